"""What a worker process is doing right now: for its signal handlers and its pool.

The process pool fills these in once per worker process; the worker's code
marks the test and the phase it is in. The phase lives in memory shared with
the controller (:class:`Progress`), so that when a worker dies, the
controller still knows which phase of which test it died in.
"""

from __future__ import annotations

import mmap
import struct

#: Phases a test goes through; "" is between phases (pexen's own code).
PHASES = ("", "setup", "call", "teardown")
_LAYOUT = struct.Struct("=iB")


class Progress:
    """The index and phase of the test a worker runs, in memory shared across fork()."""

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, _LAYOUT.size)
        self.set(-1, "")

    def set(self, index: int, phase: str) -> None:
        _LAYOUT.pack_into(self._memory, 0, index, PHASES.index(phase))

    def get(self) -> tuple[int | None, str]:
        """(index, phase) as last set; index None before the first test."""
        index, code = _LAYOUT.unpack_from(self._memory, 0)
        return (None if index < 0 else index), PHASES[code]

    def close(self) -> None:
        self._memory.close()


#: True while the worker runs a test (a watchdog interrupt is meant for it).
in_test = False
#: The worker's own process id: code running with another one was forked by a test.
pid = 0
#: The worker's name, as its pool knows it, unique in the run ("gw3").
name = ""
#: Workers its pool started with.
count = 0
#: Whether the worker's finishing step has run.
finished = False
#: Where a process forked by a test says that it returned into the runner.
stray_fd = -1
#: The test being run (index into the session's items), or -1.
index = -1
progress: Progress | None = None


def enter(phase: str) -> None:
    """The worker starts *phase* of test :data:`index` ("" when it leaves a phase)."""
    if progress is not None:
        progress.set(index, phase)
