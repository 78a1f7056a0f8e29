"""In the controller: what a run tells its state file, and what a resume reads back.

The run loop calls a :class:`Recorder` at the moments that matter for a
resume: a test handed to a worker (it may start at once, so it counts as
started), handed tests that came back without starting, a test's result, a
reboot asked for, the run's end. The recorder buffers them in the state
store and :meth:`Recorder.commit` makes them durable, once per turn of the
loop, before any test the turn hands out can start.

A result is stored as the payload the live run reported it from (the
worker's reports, compact or serialized, its warnings and attempts; or the
serialized reports the controller made for a crash, a timeout): a resume
reports it through the very same path, :meth:`Reporter.finished`.
"""

from __future__ import annotations

import pickle
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import pytest

from ._state import StateStore, TestRecord
from ._worker import compact

#: Results kept in memory after they were stored, for reports that come late.
_RECENT = 64
#: How a paused run's reason names the test a breakpoint stopped it before.
_BREAK_BEFORE = "stopped before "


def break_reason(pattern: str, nodeid: str) -> str:
    """Why a run paused at a breakpoint (the resume reads the node id back)."""
    return f"breakpoint {pattern}: {_BREAK_BEFORE}{nodeid}"


def break_at(reason: str) -> str | None:
    """The node id a paused run's *reason* says a breakpoint stopped it before."""
    return reason.partition(_BREAK_BEFORE)[2] or None


@dataclass(frozen=True)
class Saved:
    """What a resumed run takes from its state file."""

    #: Results of finished tests, by node id: (outcome, payload blob).
    results: Mapping[str, tuple[str, bytes]] = field(default_factory=dict)
    #: Tests that were running when the run stopped.
    in_flight: frozenset[str] = frozenset()
    #: Reboots each test asked for, by node id (only those with any).
    reboots: Mapping[str, int] = field(default_factory=dict)
    #: Times each in-flight test was started before, by node id.
    attempts: Mapping[str, int] = field(default_factory=dict)
    #: The test a breakpoint stopped the run before, which is where the resume starts.
    break_at: str | None = None

    @classmethod
    def from_records(cls, records: Mapping[str, TestRecord], break_at: str | None) -> Saved:
        return cls(
            results={
                nodeid: (record.outcome or "", record.result)
                for nodeid, record in records.items()
                if record.status == "done" and record.result is not None
            },
            in_flight=frozenset(nodeid for nodeid, record in records.items() if record.status == "running"),
            reboots={nodeid: record.reboots for nodeid, record in records.items() if record.reboots},
            attempts={
                nodeid: record.attempts for nodeid, record in records.items() if record.status == "running"
            },
            break_at=break_at,
        )


def load_payload(blob: bytes) -> dict[str, Any]:
    """A stored result as the reporter takes it; raises on a blob this version cannot read."""
    payload = pickle.loads(blob)
    if not isinstance(payload, dict):
        raise ValueError(f"a stored result is a dict, not {type(payload).__name__}")
    return payload


class Recorder:
    """Tells the state store what happens in one run (see the module docstring)."""

    def __init__(self, store: StateStore, run_id: int) -> None:
        self._store = store
        self.run_id = run_id
        #: Since when something buffered waits for a commit (None: nothing does).
        self._held_since: float | None = None
        #: Payloads stored last, by item index: reports that come late join them.
        self._recent: OrderedDict[int, tuple[str, bytes]] = OrderedDict()

    def started(self, items: Sequence[pytest.Item], indices: Sequence[int], worker: str) -> None:
        now = time.time()
        for index in indices:
            self._store.started(self.run_id, items[index].nodeid, worker, now)

    def added(self, items: Sequence[pytest.Item], indices: Sequence[int]) -> None:
        """Tests added to the run while it goes on (pending, after the others)."""
        for index in indices:
            self._store.added(self.run_id, items[index].nodeid)
        self._hold()

    def snapshot(self, payload: dict[str, Any]) -> bytes | None:
        """*payload* as stored, taken before it is reported (pytest's report
        loader turns the serialized reports in it into objects)."""
        return _dump(payload)

    def snapshot_reports(
        self, config: pytest.Config, item: pytest.Item, reports: Sequence[pytest.TestReport], data: bytes | None = None
    ) -> bytes | None:
        """A result the controller made for *item* (a crash, a timeout) or a thread's, as stored,
        with what it wrote for its dependents (*data*).

        Plain reports are kept as a worker sends them (:func:`._worker.compact`):
        a thread pool's thousands of passing scripts cost a fraction to store.
        """
        hook = config.hook
        stored = []
        for report in reports:
            plain = compact(report, item, report.keywords)
            stored.append(plain if plain is not None else hook.pytest_report_to_serializable(config=config, report=report))
        return _dump({"reports": stored, "data": data} if data is not None else {"reports": stored})

    def finished(self, item: pytest.Item, index: int, outcome: str, result: bytes | None) -> None:
        """*item* ended with *outcome*; *result* is its :meth:`snapshot`."""
        if result is None:
            return
        self._store.finished(self.run_id, item.nodeid, outcome, result, time.time())
        self._hold()
        self._recent[index] = (outcome, result)
        if len(self._recent) > _RECENT:
            self._recent.popitem(last=False)

    def amend(self, config: pytest.Config, item: pytest.Item, index: int, report: pytest.TestReport) -> None:
        """A report about a finished test came late (a teardown failure, a stray process): keep it too."""
        recent = self._recent.get(index)
        if recent is None:
            return
        outcome, result = recent
        payload = load_payload(result)
        serialized = config.hook.pytest_report_to_serializable(config=config, report=report)
        payload["late"] = [*payload.get("late", ()), serialized]
        self.finished(item, index, outcome, _dump(payload) or result)

    def unstarted(self, items: Sequence[pytest.Item], indices: Sequence[int]) -> None:
        """Tests handed out (so recorded as started) came back without starting."""
        for index in indices:
            self._store.unstarted(self.run_id, items[index].nodeid)
        self._hold()

    def rebooting(self, item: pytest.Item) -> None:
        self._store.rebooting(self.run_id, item.nodeid)
        self._hold()

    def commit(self) -> None:
        """Make what is buffered durable; return when it is."""
        self._store.commit()
        self._held_since = None

    def held_longer_than(self, seconds: float) -> bool:
        """Whether something has waited for a commit for more than *seconds*."""
        return self._held_since is not None and time.monotonic() - self._held_since > seconds

    def _hold(self) -> None:
        if self._held_since is None:
            self._held_since = time.monotonic()

    def end(self, finished: bool, reason: str = "") -> None:
        """The run stopped: *finished* (nothing left to run), else paused with *reason*."""
        self._store.finish_run(self.run_id, "finished" if finished else "paused", reason)


class NoRecorder(Recorder):
    """Records nothing: ``--pexen-state=off``."""

    def __init__(self) -> None:
        self.run_id = 0

    def started(self, items: Sequence[pytest.Item], indices: Sequence[int], worker: str) -> None:
        pass

    def added(self, items: Sequence[pytest.Item], indices: Sequence[int]) -> None:
        pass

    def snapshot(self, payload: dict[str, Any]) -> bytes | None:
        return None

    def snapshot_reports(
        self, config: pytest.Config, item: pytest.Item, reports: Sequence[pytest.TestReport], data: bytes | None = None
    ) -> bytes | None:
        return None

    def finished(self, item: pytest.Item, index: int, outcome: str, result: bytes | None) -> None:
        pass

    def amend(self, config: pytest.Config, item: pytest.Item, index: int, report: pytest.TestReport) -> None:
        pass

    def unstarted(self, items: Sequence[pytest.Item], indices: Sequence[int]) -> None:
        pass

    def rebooting(self, item: pytest.Item) -> None:
        pass

    def commit(self) -> None:
        pass

    def held_longer_than(self, seconds: float) -> bool:
        return False

    def end(self, finished: bool, reason: str = "") -> None:
        pass


def _dump(payload: dict[str, Any]) -> bytes | None:
    """*payload* pickled; without its warnings if they cannot be; None if it cannot be at all."""
    try:
        return pickle.dumps(payload, pickle.HIGHEST_PROTOCOL)
    except Exception:
        pass
    try:
        return pickle.dumps({key: value for key, value in payload.items() if key != "warnings"}, pickle.HIGHEST_PROTOCOL)
    except Exception:
        return None
