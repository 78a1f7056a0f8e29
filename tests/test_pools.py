"""Pools driven directly, for what no suite can provoke (faults in the harness itself)."""

from __future__ import annotations

import functools
import time
from collections import deque
from pathlib import Path

from pytest_pexen._channel import Channel
from pytest_pexen._pools import Finished, Lost
from pytest_pexen._pools.process import ProcessPool
from pytest_pexen._pools.thread import ThreadPool


def wait_for_events(pool: ThreadPool | ProcessPool, count: int) -> list[object]:
    events: list[object] = []
    deadline = time.monotonic() + 10
    while len(events) < count and time.monotonic() < deadline:
        events.extend(pool.wait(0.1))
    return events


def test_a_thread_whose_task_harness_fails_is_reported_lost_and_replaced():
    def run(index: int, inputs: bytes | None) -> dict[str, int]:
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


def run_until_released(directory: Path, channel: Channel) -> None:
    """A process pool's worker reduced to its queue: task N ends once the file N exists.

    It keeps to the runner's protocol (queue positions, starting a task only
    if it was not taken back, "done" per task), which is what the pool's
    bookkeeping of taken-back tasks relies on.
    """
    from pytest_pexen import _worker_state

    queue: deque[tuple[int, int]] = deque()
    assigned = 0
    while True:
        for kind, indices, *_ in channel.receive(wait=not queue):
            if kind == "stop":
                return
            queue.extend(enumerate(indices, assigned))
            assigned += len(indices)
        if not queue:
            continue
        position, index = queue.popleft()
        assert _worker_state.progress is not None
        if not _worker_state.progress.start(position):
            continue
        while not (directory / str(index)).exists():
            time.sleep(0.01)
        channel.send(("done", index, {}))


def test_a_test_taken_back_from_twice_keeps_running_where_it_is(tmp_path):
    # Its worker had moved on to it before the first take-back was decided
    # (the pool had not read that the test before it was done), and was
    # given more tests behind it before the second: positions in its queue
    # are no longer consecutive.
    pool = ProcessPool(1, functools.partial(run_until_released, tmp_path))
    try:
        (worker,) = pool.assigned()
        pool.assign(worker, [0, 1, 2])
        (tmp_path / "0").touch()
        time.sleep(0.3)  # the worker finishes 0 and starts 1; the pool has not read it
        assert pool.revoke(worker) == [2]
        (finished,) = wait_for_events(pool, 1)
        assert isinstance(finished, Finished) and finished.index == 0
        pool.assign(worker, [3, 4])
        assert pool.revoke(worker) == [3, 4]
        assert list(pool.assigned()[worker]) == [1]
        (tmp_path / "1").touch()
        (finished,) = wait_for_events(pool, 1)
        assert isinstance(finished, Finished) and finished.index == 1
    finally:
        pool.close()
