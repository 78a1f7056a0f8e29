"""The watchdog's bookkeeping: when each running test must end.

Pure logic, no clocks of its own and no threads: the run loop tells it
what started and ended, asks for the nearest deadline (its wait timeout),
and asks what has expired. One dict entry per busy worker, so its cost does
not grow with the number of tests.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Seconds a timed-out test gets to unwind (its fixtures' teardown) after
#: it is interrupted, before its worker is ended.
UNWIND_SECONDS = 3.0
#: Seconds between SIGTERM and SIGKILL when ending a process tree.
KILL_GRACE = 1.0


@dataclass
class Running:
    """A test running on a worker, and where the watchdog is with it."""

    index: int
    started: float
    deadline: float | None
    limit: float | None
    #: Set once the deadline passed: why, and what was seen then.
    expired_because: str | None = None
    stacks: str = ""


class Watchdog:
    """Deadlines of running tests, per worker."""

    def __init__(self) -> None:
        self._running: dict[str, Running] = {}

    def started(self, worker: str, index: int, now: float, limit: float | None) -> None:
        deadline = None if limit is None else now + limit
        self._running[worker] = Running(index, now, deadline, limit)

    def ended(self, worker: str) -> Running | None:
        return self._running.pop(worker, None)

    def current(self, worker: str) -> Running | None:
        return self._running.get(worker)

    def expire(self, worker: str, reason: str, stacks: str, now: float, unwind: float) -> None:
        """The test on *worker* is out of time: give it *unwind* seconds to wind down."""
        running = self._running[worker]
        running.expired_because = reason
        running.stacks = stacks
        running.deadline = now + unwind

    def next_deadline(self) -> float | None:
        deadlines = [r.deadline for r in self._running.values() if r.deadline is not None]
        return min(deadlines, default=None)

    def due(self, now: float) -> list[tuple[str, Running]]:
        """Workers whose test passed its deadline (or its unwinding time)."""
        return [
            (worker, running)
            for worker, running in self._running.items()
            if running.deadline is not None and running.deadline <= now
        ]

    def workers(self) -> list[str]:
        return list(self._running)
