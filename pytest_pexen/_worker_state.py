"""What a worker process is doing right now: for its signal handlers and its pool.

The process pool fills these in once per worker process; the worker's code
marks the test and the phase it is in. That lives in memory shared with the
controller (:class:`Progress`), so that when a worker dies, the controller
still knows which phase of which test it died in; and so that the controller
can take back tests queued behind a long one while the worker is busy.
"""

from __future__ import annotations

import mmap
import multiprocessing
import struct

#: Phases a test goes through; "" is between phases (pexen's own code).
PHASES = ("", "setup", "call", "teardown")
#: index, phase; then the queue position of the last test started, and the
#: position below which no test may start any more (taken back).
_PHASE = struct.Struct("=iB")
_POSITIONS = struct.Struct("=qq")


class Progress:
    """Where a worker is, in memory shared across fork(), and its queue's take-back line."""

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, _PHASE.size + _POSITIONS.size)
        # Taking back and starting must not cross: a test is either started
        # by the worker or given back by the controller, never both.
        self._lock = multiprocessing.get_context("fork").Lock()
        self.set(-1, "")
        _POSITIONS.pack_into(self._memory, _PHASE.size, -1, 0)

    def set(self, index: int, phase: str) -> None:
        _PHASE.pack_into(self._memory, 0, index, PHASES.index(phase))

    def get(self) -> tuple[int | None, str]:
        """(index, phase) as last set; index None before the first test."""
        index, code = _PHASE.unpack_from(self._memory, 0)
        return (None if index < 0 else index), PHASES[code]

    def start(self, position: int) -> bool:
        """In the worker: start the test at queue *position*, unless it was taken back."""
        with self._lock:
            _, below = _POSITIONS.unpack_from(self._memory, _PHASE.size)
            if position < below:
                return False
            _POSITIONS.pack_into(self._memory, _PHASE.size, position, below)
            return True

    def take_back(self, below: int, timeout: float) -> int | None:
        """In the controller: no test at a position under *below* starts from now on.

        Returns the position of the last test the worker started (-1: none),
        or None if the worker could not be asked in *timeout* seconds.
        """
        if not self._lock.acquire(timeout=timeout):
            return None
        try:
            started, _ = _POSITIONS.unpack_from(self._memory, _PHASE.size)
            _POSITIONS.pack_into(self._memory, _PHASE.size, started, below)
            return started
        finally:
            self._lock.release()

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
