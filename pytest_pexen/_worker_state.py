"""What a worker process is doing right now, for its signal handlers."""

from __future__ import annotations

#: True while the worker runs a test (a watchdog interrupt is meant for it).
in_test = False
