"""``--pexen-trace PATH.json``: the run in the Chrome Trace Event format.

Perfetto (ui.perfetto.dev) and chrome://tracing open it. One process (the
run); one track (``tid``) per worker, named by a ``thread_name`` metadata
event; each test a complete event (``"ph": "X"``, ``ts`` and ``dur`` in
microseconds from the run's first moment) named by its node id, with its
outcome, worker, group and locks in ``args``. Groups are complete events on
a track of their own, lock waits on a track per resource, boots, resumes,
lost workers and blocked tests instant events (``"ph": "i"``).

Written once, at the end of the run (atomically, see :mod:`._files`).
"""

from __future__ import annotations

import json
from typing import Any, Callable

from .spans import FileWriter, History, Spans, lock_waits, totals

#: The process id all tracks share.
PID = 1
#: Tracks that are not workers come after the workers'.
_GROUPS_TID = 10_000


class TraceObserver(FileWriter):
    """Writes the trace file when the run is over."""

    title = "the --pexen-trace writer"

    def __init__(
        self, path: str, spans: Spans, history: Callable[[], History | None], say: Callable[[str], None]
    ) -> None:
        super().__init__(path, spans, history, say)
        self._written = False

    def tick(self, now: float) -> float:
        return float("inf")

    def close(self) -> None:
        if self._written or self._spans.began is None:
            return
        self._written = True
        data = json.dumps(trace(self._spans, self._history()), separators=(",", ":")).encode()
        self._write_last(data, "the trace file", f"trace of the run (open it in ui.perfetto.dev): {self._path}")


def trace(spans: Spans, history: History | None) -> dict[str, Any]:
    """The trace document: ``{"traceEvents": [...], "displayTimeUnit": "ms", ...}``."""
    assert spans.began is not None and spans.wall is not None
    spans.add_history(history, spans.began - spans.wall)
    tests = list(spans.tests.values())
    ran = [t for t in tests if t.start is not None and t.end is not None]
    end = spans.ended if spans.ended is not None else max([t.end for t in ran if t.end] or [spans.began])
    origin = min([spans.began, *(m.at for m in spans.marks), *(t.start for t in ran if t.start is not None)])

    def micro(at: float) -> int:
        return round((at - origin) * 1e6)

    workers = sorted({t.worker for t in ran}, key=_worker_order)
    tids = {worker: number + 1 for number, worker in enumerate(workers)}
    events: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": PID, "tid": 0, "args": {"name": "pytest-pexen run"}},
    ]
    for worker, tid in tids.items():
        events.append({"ph": "M", "name": "thread_name", "pid": PID, "tid": tid, "args": {"name": f"worker {worker}"}})
        events.append({"ph": "M", "name": "thread_sort_index", "pid": PID, "tid": tid, "args": {"sort_index": tid}})
    events.append({"ph": "M", "name": "thread_name", "pid": PID, "tid": _GROUPS_TID, "args": {"name": "groups"}})
    for test in ran:
        assert test.start is not None and test.end is not None
        args: dict[str, Any] = {"nodeid": test.nodeid, "outcome": test.outcome, "worker": test.worker}
        if test.group:
            args["group"] = test.group
        if test.claims:
            args["claims"] = list(test.claims)
        if test.uses:
            args["uses"] = list(test.uses)
        if test.earlier:
            args["session"] = "earlier"
        events.append({
            "ph": "X", "name": test.nodeid, "cat": test.outcome or "unknown", "pid": PID, "tid": tids[test.worker],
            "ts": micro(test.start), "dur": max(0, micro(test.end) - micro(test.start)), "args": args,
        })
    for number, (group, began) in enumerate(spans.groups):
        until = spans.groups[number + 1][1] if number + 1 < len(spans.groups) else end
        events.append({
            "ph": "X", "name": f"group {group}", "cat": "group", "pid": PID, "tid": _GROUPS_TID,
            "ts": micro(began), "dur": max(0, micro(until) - micro(began)), "args": {"group": group},
        })
    resources: dict[str, int] = {}
    for test, since, until in lock_waits(tests, spans):
        for resource in (*test.claims, *test.uses):
            tid = resources.setdefault(resource, _GROUPS_TID + 1 + len(resources))
            events.append({
                "ph": "X", "name": f"{test.nodeid} waits", "cat": "lock wait", "pid": PID, "tid": tid,
                "ts": micro(since), "dur": max(0, micro(until) - micro(since)),
                "args": {"nodeid": test.nodeid, "resource": resource},
            })
    for resource, tid in resources.items():
        events.append({"ph": "M", "name": "thread_name", "pid": PID, "tid": tid, "args": {"name": f"lock {resource}"}})
    marks = [*((m.at, m.label) for m in spans.marks), (spans.began, "resumed" if spans.marks else "run began")]
    for at, label in marks:
        events.append({"ph": "i", "s": "g", "name": label, "cat": "run", "pid": PID, "tid": 0, "ts": micro(at)})
    for worker, at, why in spans.lost:
        events.append({
            "ph": "i", "s": "t", "name": f"worker {worker} lost", "cat": "worker", "pid": PID,
            "tid": tids.get(worker, 0), "ts": micro(at), "args": {"why": why},
        })
    for test in tests:
        if test.blocked:
            events.append({
                "ph": "i", "s": "g", "name": f"blocked {test.nodeid}", "cat": "blocked", "pid": PID, "tid": 0,
                "ts": micro(end), "args": {"nodeid": test.nodeid, "reason": test.blocked},
            })
    numbers = totals(spans, ran, origin, end)
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "tool": "pytest-pexen",
            "wall_seconds": round(numbers.wall, 6),
            "work_seconds": round(numbers.work, 6),
            "critical_path_seconds": round(numbers.critical, 6),
            "lower_bound_seconds": round(numbers.bound, 6),
            "stopped_because": spans.why,
        },
    }


def _worker_order(worker: str) -> tuple[str, int, str]:
    """gw2 before gw10."""
    head = worker.rstrip("0123456789")
    tail = worker[len(head):]
    return (head, int(tail) if tail else -1, worker)
