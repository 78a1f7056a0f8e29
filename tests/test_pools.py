"""Pools driven directly, for what no suite can provoke (faults in the harness itself)."""

from __future__ import annotations

import time

from pytest_pexen._pools import Finished, Lost
from pytest_pexen._pools.thread import ThreadPool


def wait_for_events(pool: ThreadPool, count: int) -> list[object]:
    events: list[object] = []
    deadline = time.monotonic() + 10
    while len(events) < count and time.monotonic() < deadline:
        events.extend(pool.wait(0.1))
    return events


def test_a_thread_whose_task_harness_fails_is_reported_lost_and_replaced():
    def run(index: int) -> dict[str, int]:
        if index == 1:
            raise RuntimeError("harness fault")
        return {"index": index}

    pool = ThreadPool(1, run)
    try:
        (worker,) = pool.assigned()
        pool.assign(worker, [0, 1, 2])
        first, lost = wait_for_events(pool, 2)
        assert isinstance(first, Finished) and first.index == 0
        assert isinstance(lost, Lost) and (lost.running, lost.queued, lost.ended) == (1, (2,), False)
        assert "RuntimeError: harness fault" in dict(lost.output)["traceback"]
        (replacement,) = pool.assigned()
        assert replacement != worker
        pool.assign(replacement, [2])
        (finished,) = wait_for_events(pool, 1)
        assert isinstance(finished, Finished) and finished.index == 2
    finally:
        pool.close()
