"""The controller's event loop: feed the pool from the planner, report results.

Policy lives in the planner (which test next) and mechanism in the pool
(processes, pipes); this loop only moves events between them and pytest's
reporting. It also decides how far ahead to feed each worker: short tests
are sent in batches so that no worker idles while the controller answers,
long tests one at a time so that no test waits behind another on a busy
worker while a free one could take it.
"""

from __future__ import annotations

from typing import Callable, Sequence

import pytest

from ._errors import PexenError
from ._planner import Planner, State
from ._pool import Dropped, Finished, Gone, Late, Lost, Pool, exit_description
from ._reporting import Reporter, duration_of, outcome_of

#: Work (in seconds of expected test time) queued on a worker beyond the
#: test it is running. Small enough not to hurt balance, big enough to hide
#: a round trip to the controller.
PREFETCH_SECONDS = 0.02
MAX_QUEUED = 32


class RunLoop:
    """Runs *items* as the *planner* allows, each group on a pool from *make_pool(group)*."""

    def __init__(
        self,
        session: pytest.Session,
        items: Sequence[pytest.Item],
        planner: Planner,
        make_pool: Callable[[str], Pool],
        durations: dict[str, float],
    ) -> None:
        self._session = session
        self._items = items
        self._index = {item.nodeid: index for index, item in enumerate(items)}
        self._planner = planner
        self._make_pool = make_pool
        self._reporter = Reporter(session.config)
        #: Durations measured in this run, by node id (for the next run).
        self.durations = durations
        known = [durations[i.nodeid] for i in items if i.nodeid in durations]
        self._typical = sum(known) / len(known) if known else None
        self.exit_request: tuple[str, int | None] | None = None
        # With -x/--maxfail, a test queued behind a failing one would run
        # before the stop reaches its worker: feed one test at a time.
        self._stop_on_failure = bool(session.config.getoption("maxfail", 0))

    def run(self) -> None:
        """Run every group in turn, each on a pool of its own."""
        self._report_blocked()
        for group in self._planner.groups():
            if self._must_stop():
                break
            self._planner.begin(group)
            if not self._planner.group_is_active():
                continue
            pool = self._make_pool(group)
            try:
                self._loop(pool)
            finally:
                pool.close()

    def _loop(self, pool: Pool) -> None:
        stopping = False
        while True:
            if not stopping and self._must_stop():
                stopping = True
                pool.shutdown(drop_queued=True)
            if not stopping:
                self._dispatch(pool)
                if not self._planner.group_is_active():
                    stopping = True
                    pool.shutdown(drop_queued=False)
            assigned = pool.assigned()
            if not assigned:
                return
            if not stopping and not any(assigned.values()):
                stuck = [i.nodeid for i in self._items if self._planner.state(i.nodeid) is State.READY]
                raise PexenError("scheduler stalled with tests ready but none handed out: " + ", ".join(stuck))
            for event in pool.wait(None):
                self._handle(event)

    def _must_stop(self) -> bool:
        session = self._session
        return bool(session.shouldfail or session.shouldstop or self.exit_request)

    def _depth(self) -> int:
        """How many tasks a worker should hold, the running one included."""
        if self._stop_on_failure or self._typical is None or self._typical >= PREFETCH_SECONDS:
            return 1
        return min(MAX_QUEUED, 1 + int(PREFETCH_SECONDS / max(self._typical, 1e-6)))

    def _dispatch(self, pool: Pool) -> None:
        depth = self._depth()
        for worker, queue in pool.assigned().items():
            # Top up in batches: one message per half-emptied queue.
            if len(queue) > depth // 2:
                continue
            # A test with locks holds them from the moment it is handed out:
            # only an idle worker gets one, so it starts at once.
            taken = [] if queue else self._planner.take(1)
            taken += self._planner.take(depth - len(queue) - len(taken), locks=False)
            if taken:
                pool.assign(worker, [self._index[task_id] for task_id in taken])

    def _handle(self, event: object) -> None:
        if isinstance(event, Finished):
            item = self._items[event.index]
            reports = self._reporter.finished(item, event.payload)
            outcome = outcome_of(reports)
            self._learn(item.nodeid, duration_of(reports))
            self._planner.done(item.nodeid, outcome)
            if "exit" in event.payload:
                self.exit_request = tuple(event.payload["exit"])
            self._report_blocked()
        elif isinstance(event, Late):
            self._reporter.late(self._items[event.index], event.payload)
        elif isinstance(event, Dropped):
            for index in event.indices:
                self._planner.give_back(self._items[index].nodeid)
        elif isinstance(event, Lost):
            for index in event.queued:
                self._planner.give_back(self._items[index].nodeid)
            what = f"worker {event.worker} {exit_description(event.exitcode)}"
            if event.running is not None:
                item = self._items[event.running]
                self._reporter.crashed(item, what)
                self._planner.done(item.nodeid, "crashed")
                self._report_blocked()
            elif event.last is not None:
                self._reporter.crashed_after(self._items[event.last], what)
        else:
            assert isinstance(event, Gone), event

    def _learn(self, nodeid: str, seconds: float) -> None:
        self.durations[nodeid] = seconds
        if self._typical is None:
            self._typical = seconds
        else:
            self._typical += 0.1 * (seconds - self._typical)

    def _report_blocked(self) -> None:
        for task_id, reason in self._planner.pop_blocked():
            self._reporter.blocked(self._items[self._index[task_id]], reason)
