"""In the controller: the terminal's output, written once per turn of the run loop.

pytest's terminal reporter flushes after every report, and its stream is
usually unbuffered: one system call per progress dot, each waking whatever
reads the terminal or the CI log. Run serially, that cost hides behind the
tests; in the controller it is the serial part of the run (about a tenth of
the controller's time at 20,000 trivial tests). While the loop runs, the
writes are held and go out together when the loop is about to wait, so the
output is the same, only in fewer pieces, at most :data:`HOLD_SECONDS`
(plus one wait of the loop) late.
"""

from __future__ import annotations

import time
from typing import Any, TextIO

import pytest

#: Held text beyond this many characters is written at once.
_LIMIT = 1 << 16
#: How long output may be held while the loop is busy.
HOLD_SECONDS = 0.05


class _HeldStream:
    """A stand-in for the terminal writer's stream that keeps what is written."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._pieces: list[str] = []
        self._size = 0

    def write(self, text: str) -> int:
        self._pieces.append(text)
        self._size += len(text)
        if self._size > _LIMIT:
            self.release()
        return len(text)

    def flush(self) -> None:
        """pytest's flush after each report: held until :meth:`release`."""

    def release(self) -> None:
        if self._pieces:
            text = "".join(self._pieces)
            self._pieces.clear()
            self._size = 0
            self.stream.write(text)
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class HeldTerminal:
    """Holds the terminal writer's output until :meth:`release` (a no-op
    when there is no terminal reporter, or its writer is not the kind we know)."""

    def __init__(self, config: pytest.Config) -> None:
        terminal = config.pluginmanager.get_plugin("terminalreporter")
        writer = getattr(terminal, "_tw", None)
        stream = getattr(writer, "_file", None)
        self._writer = writer if callable(getattr(stream, "write", None)) else None
        self._held: _HeldStream | None = None
        self._released = time.monotonic()
        if self._writer is not None:
            self._held = _HeldStream(stream)  # type: ignore[arg-type]
            self._writer._file = self._held  # type: ignore[union-attr]

    def release_if_due(self, now: float) -> None:
        """Write what is held if it was held long enough (called each turn of the loop)."""
        if self._held is not None and now - self._released >= HOLD_SECONDS:
            self._released = now
            self._held.release()

    def close(self) -> None:
        """Write what is held and give the writer its stream back."""
        if self._held is not None:
            self._held.release()
            if self._writer is not None and self._writer._file is self._held:
                self._writer._file = self._held.stream
            self._held = None
