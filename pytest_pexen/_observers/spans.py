"""The run as spans of time, built from its events: what the timeline and the trace draw.

Times are kept as the events give them (``time.monotonic()`` seconds of
this session) and turned into seconds from the run's first moment when the
picture is made. A resumed run's earlier sessions (read from the state
file: :class:`History`) join in the same time base, so one picture shows
the whole run, its boots and resumes marked.

A short test may start and end between two looks of the controller: no
:class:`Started` comes for it, and it is taken to have begun when the test
before it on its worker ended (or when it was handed out, if later).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from .. import _events as ev
from .. import _files
from .._planner import Task

#: Outcomes from the worst to the best: an aggregate of tests shows its worst.
SEVERITY = (
    "crashed", "timeout", "error", "failed", "interrupted", "xpassed", "warned",
    "blocked", "skipped", "xfailed", "passed",
)


#: Holds of a resource looked at per waiting test (the nearest before it was handed out).
_LOOK_BACK = 64


@dataclass(slots=True)
class TestSpan:
    """One test of the run, as far as it got (slots: a run may have 100,000)."""

    __test__ = False  # not a pytest test class

    nodeid: str
    group: str = ""
    claims: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    ready: float | None = None
    handed: float | None = None
    start: float | None = None
    end: float | None = None
    worker: str = ""
    outcome: str = ""
    #: Why it never ran (blocked, or not run when the run stopped).
    blocked: str = ""
    #: Ran in an earlier session of a resumed run (times from the state file).
    earlier: bool = False

    @property
    def duration(self) -> float:
        if self.start is None or self.end is None:
            return 0.0
        return max(0.0, self.end - self.start)


@dataclass(frozen=True)
class History:
    """What a resumed run's earlier sessions did, from the state file (epoch seconds)."""

    #: Each earlier session's start ("began" for the first, else "resumed").
    sessions: tuple[float, ...]
    #: (nodeid, started, ended, worker, outcome) of tests finished before this session.
    tests: tuple[tuple[str, float, float, str, str], ...]


@dataclass
class Mark:
    """A moment of the run worth a line: a boot, a resume, the end."""

    at: float
    label: str


@dataclass
class Spans:
    """Folds the run's events into :class:`TestSpan` records (an observer's model)."""

    tasks: dict[str, Task]
    #: Workers of each group (at most one per test).
    workers: Mapping[str, int]
    tests: dict[str, TestSpan] = field(default_factory=dict)
    #: (group, began) in the order groups ran.
    groups: list[tuple[str, float]] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    #: Workers that died, with when and why.
    lost: list[tuple[str, float, str]] = field(default_factory=list)
    began: float | None = None
    wall: float | None = None
    ended: float | None = None
    why: str = ""
    _last_end: dict[str, float] = field(default_factory=dict)
    _history_added: bool = False
    #: Counts what changes the picture (a test started, ended or was blocked).
    changes: int = 0
    title = "pexen's record of the run for the timeline and trace"

    def span(self, nodeid: str) -> TestSpan:
        test = self.tests.get(nodeid)
        if test is None:
            task = self.tasks.get(nodeid)
            test = TestSpan(nodeid)
            if task is not None:
                test.group, test.claims, test.uses = task.group, task.claims, task.uses
            self.tests[nodeid] = test
        return test

    def __post_init__(self) -> None:
        self._handlers: dict[type, Callable[[Any], None]] = {
            ev.Finished: self._finished,
            ev.Handed: self._handed,
            ev.Started: self._started,
            ev.Ready: self._ready,
            ev.GivenBack: self._given_back,
            ev.Blocked: self._blocked,
            ev.Replayed: self._replayed,
            ev.GroupBegan: self._group_began,
            ev.WorkerLeft: self._worker_left,
            ev.RunBegan: self._run_began,
            ev.RunEnded: self._run_ended,
            ev.Added: self._added,
        }

    def _added(self, event: ev.Added) -> None:
        for task in event.tasks:
            self.tasks[task.id] = task

    def notice(self, event: ev.Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def _finished(self, event: ev.Finished) -> None:
        self.changes += 1
        test = self.tests.get(event.nodeid) or self.span(event.nodeid)
        test.end, test.outcome = event.at, event.outcome
        worker = test.worker
        if test.start is None:
            # Began when the test before it on its worker ended, or when handed out.
            handed = test.handed if test.handed is not None else event.at
            test.start = min(event.at, max(handed, self._last_end.get(worker, handed)))
        if worker:
            self._last_end[worker] = event.at

    def _handed(self, event: ev.Handed) -> None:
        tests, worker, at = self.tests, event.worker, event.at
        for nodeid in event.nodeids:
            test = tests.get(nodeid) or self.span(nodeid)
            test.worker, test.handed, test.start = worker, at, None

    def _started(self, event: ev.Started) -> None:
        self.changes += 1
        test = self.span(event.nodeid)
        if test.end is None:
            test.start = event.at

    def _ready(self, event: ev.Ready) -> None:
        self.span(event.nodeid).ready = event.at

    def _given_back(self, event: ev.GivenBack) -> None:
        for nodeid in event.nodeids:
            test = self.span(nodeid)
            test.worker, test.handed, test.start = "", None, None

    def _blocked(self, event: ev.Blocked) -> None:
        self.changes += 1
        test = self.span(event.nodeid)
        test.blocked, test.outcome = event.reason, "blocked"

    def _replayed(self, event: ev.Replayed) -> None:
        test = self.span(event.nodeid)
        test.outcome, test.earlier = event.outcome, True

    def _group_began(self, event: ev.GroupBegan) -> None:
        self.groups.append((event.group, event.at))

    def _worker_left(self, event: ev.WorkerLeft) -> None:
        if event.why != "stopped":
            self.lost.append((event.worker, event.at, event.why))

    def _run_began(self, event: ev.RunBegan) -> None:
        self.began, self.wall = event.at, event.wall

    def _run_ended(self, event: ev.RunEnded) -> None:
        self.ended, self.why = event.at, event.why

    def tick(self, now: float) -> float:
        return float("inf")

    def close(self) -> None:
        pass

    def add_history(self, history: History | None, to_monotonic: float) -> None:
        """Tests of earlier sessions, their epoch times moved into this session's clock
        (*to_monotonic*: add it to an epoch time)."""
        if history is None or self._history_added:
            return
        self._history_added = True
        for number, at in enumerate(history.sessions):
            self.marks.append(Mark(at + to_monotonic, "run began" if number == 0 else "resumed"))
        for nodeid, started, ended, worker, outcome in history.tests:
            test = self.span(nodeid)
            test.start, test.end = started + to_monotonic, ended + to_monotonic
            test.worker, test.outcome, test.earlier = worker or "?", outcome or test.outcome, True


@dataclass(frozen=True)
class Totals:
    """The run's numbers: where the time went, and how close it came to the best possible."""

    wall: float
    work: float
    #: Seconds each worker ran tests.
    busy: Mapping[str, float]
    critical: float
    bound: float
    #: Node ids on the critical path, in order.
    path: tuple[str, ...]


def totals(spans: Spans, tests: Sequence[TestSpan], start: float, end: float) -> Totals:
    """Wall time, work, busy time per worker and the lower bound of a run.

    The bound is, per group (groups run one after another), the larger of
    its critical path (the longest chain of its tests through requires and
    after, each taking what it took here) and its work over its workers;
    summed over the groups. The path shown is the groups' paths in turn.
    """
    ran = [t for t in tests if t.start is not None and t.end is not None]
    busy: dict[str, float] = {}
    work_by_group: dict[str, float] = {}
    for test in ran:
        busy[test.worker] = busy.get(test.worker, 0.0) + test.duration
        work_by_group[test.group] = work_by_group.get(test.group, 0.0) + test.duration
    bound = critical = 0.0
    path: list[str] = []
    for group, work in work_by_group.items():
        length, chain = critical_path([t for t in ran if t.group == group], spans.tasks)
        workers = max(1, spans.workers.get(group, 1))
        bound += max(length, work / workers)
        critical += length
        path.extend(chain)
    return Totals(max(0.0, end - start), sum(work_by_group.values()), busy, critical, bound, tuple(path))


def critical_path(tests: Sequence[TestSpan], tasks: Mapping[str, Task]) -> tuple[float, list[str]]:
    """The longest chain of *tests* through their requires and after, by duration.

    A requirement met by any one of several tags waits for the alternative
    that was met first; a tag several tests provide, for all of them.
    """
    chained = [tasks[t.nodeid] for t in tests if t.nodeid in tasks and (tasks[t.nodeid].requires or tasks[t.nodeid].after)]
    if not chained:  # no test waits for another: the longest test is the path
        longest = max(tests, key=lambda t: t.duration, default=None)
        return (longest.duration, [longest.nodeid]) if longest is not None else (0.0, [])
    by_id = {t.nodeid: t for t in tests}
    providers: dict[str, list[str]] = {}
    for test in tests:
        task = tasks.get(test.nodeid)
        for tag in task.provides if task is not None else ():
            providers.setdefault(tag, []).append(test.nodeid)
    finish: dict[str, float] = {}
    before: dict[str, str | None] = {}
    # In order of start: every provider a test waited for started before it.
    for test in sorted(tests, key=lambda t: (t.start or 0.0, t.nodeid)):
        task = tasks.get(test.nodeid)
        earliest, previous = 0.0, None
        if task is not None:
            waits = [(tag,) for tag in task.after] + [tuple(r) for r in task.requires]
            for alternatives in waits:
                best: tuple[float, str | None] | None = None
                for tag in alternatives:
                    done = [(finish[p], p) for p in providers.get(tag, ()) if p in finish]
                    if not done:
                        continue
                    latest = max(done)
                    if best is None or latest[0] < best[0]:
                        best = latest
                if best is not None and best[0] > earliest:
                    earliest, previous = best
        finish[test.nodeid] = earliest + by_id[test.nodeid].duration
        before[test.nodeid] = previous
    if not finish:
        return 0.0, []
    last = max(finish, key=lambda nodeid: finish[nodeid])
    chain = []
    node: str | None = last
    while node is not None:
        chain.append(node)
        node = before[node]
    return finish[last], chain[::-1]


def lock_waits(tests: Sequence[TestSpan], spans: Spans) -> list[tuple[TestSpan, float, float]]:
    """(test, from, to) for tests with locks that were ready, in their group's
    turn, and waited before they were handed out while another test held
    what they needed (a claim they needed, or a use of what they claim).

    The wait shown runs from when the first such hold overlapped the test's
    wait to when the test was handed out (or the last such hold ended, if sooner).
    """
    began = dict(spans.groups)
    # Per resource: (handed, end, nodeid, claims it) of each holder, by hand-out time.
    holds: dict[str, list[tuple[float, float, str, bool]]] = {}
    for test in tests:
        if test.handed is None or test.end is None:
            continue
        for resource in test.claims:
            holds.setdefault(resource, []).append((test.handed, test.end, test.nodeid, True))
        for resource in test.uses:
            holds.setdefault(resource, []).append((test.handed, test.end, test.nodeid, False))
    for entries in holds.values():
        entries.sort()
    waits = []
    for test in tests:
        if not (test.claims or test.uses) or test.handed is None or test.ready is None:
            continue
        since = max(test.ready, began.get(test.group, test.ready))
        if test.handed - since <= 1e-3:
            continue
        first = last = None
        needs = [(r, True) for r in test.claims] + [(r, False) for r in test.uses]
        for resource, claims in needs:
            entries = holds.get(resource, [])
            # Holds handed out before this test was: the nearest ones, a bounded look back.
            stop = bisect.bisect_left(entries, (test.handed,))
            for handed, end, nodeid, exclusive in entries[max(0, stop - _LOOK_BACK):stop]:
                if nodeid == test.nodeid or not (claims or exclusive) or end <= since:
                    continue
                first = max(since, handed) if first is None else min(first, max(since, handed))
                last = min(test.handed, end) if last is None else max(last, min(test.handed, end))
        if first is not None and last is not None and last > first:
            waits.append((test, first, last))
    return waits


_RANK = {name: place for place, name in enumerate(SEVERITY)}


def worst(outcomes: Iterable[str]) -> str:
    """The worst of *outcomes* (one not in :data:`SEVERITY`, such as "running", counts as worst)."""
    return min(outcomes, key=lambda outcome: _RANK.get(outcome, -1), default="passed")


class FileWriter:
    """An observer that writes a file from the shared record of the run
    (:class:`Spans`, which takes the events): the timeline, the trace."""

    #: It reads the record, so it takes no events itself.
    listens = False

    def __init__(
        self, path: str, spans: Spans, history: Callable[[], History | None], say: Callable[[str], None]
    ) -> None:
        self._path = path
        self._spans = spans
        self._history = history
        self._say = say
        self._new_file_mode = 0o666 & ~_files.umask()

    def notice(self, event: ev.Event) -> None:
        """Not called (``listens`` is False)."""

    def _replace(self, data: bytes) -> None:
        _files.replace(self._path, data, new_file_mode=self._new_file_mode, make_directories=True)

    def _write_last(self, data: bytes, name: str, written: str) -> None:
        """The file's final write; says *written*, or that the file *name* was not written, and why."""
        try:
            self._replace(data)
        except OSError as error:
            self._say(f"{name} {self._path} was not written: {_files.describe(error)}")
            return
        self._say(written)
