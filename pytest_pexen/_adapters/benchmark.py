"""pytest-benchmark: results measured in workers reach the controller's table and files.

The ``benchmark`` fixture appends each result to ``config._benchmarksession``
of the process that ran the test, and the table, ``--benchmark-json``,
``--benchmark-save``/``--benchmark-autosave`` and ``--benchmark-compare-fail``
all read the controller's. So a worker sends each result once its test has
been torn down, with that teardown's report (base64 of a pickle: a plain
string for anyone who looks), the test item it holds replaced by what the
controller needs (whether it had an error). At its finish it sends all its
results again, for the reports the controller never replays (attempts that
pexen's ``retries`` ran again); the controller keeps each result once. A
worker that dies loses only the result of the test it was running, and the
run names those tests.
"""

from __future__ import annotations

import base64
import copy
import pickle
import sys
from typing import Any, Generator

import pytest

from ._common import Items, in_worker, loaded_plugin, say

#: The report attribute (and workeroutput key) that carries results.
SHIPPED = "pexen_benchmarks"
#: workeroutput key: tests whose result was dropped because the worker was ended while they ran.
UNFINISHED = "pexen_benchmarks_unfinished"
#: Outcomes of a test whose worker was lost under it (see pexen's reporting).
LOST_OUTCOMES = ("crashed", "timeout", "interrupted")


def make(config: pytest.Config) -> BenchmarkAdapter | None:
    if loaded_plugin(config, "pytest_benchmark.plugin") is None:
        return None
    return BenchmarkAdapter(config)


class Outcome:
    """Stands in for a result's fixture (which holds the test item): only whether it failed."""

    def __init__(self, has_error: bool) -> None:
        self.has_error = has_error


class Unsent:
    """A result that could not be pickled in its worker."""

    def __init__(self, fullname: str, reason: str) -> None:
        self.fullname = fullname
        self.reason = reason


class BenchmarkAdapter:
    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        # In a worker: its results are benchmarks[first:]; those before
        # *settled* belong to tests torn down, those before *sent* were sent.
        self._worker = ""
        self._workers = 1
        self._first = self._settled = self._sent = 0
        # In the controller.
        self._items = Items()
        self._received: set[str] = set()
        #: Results that ran in a pool of several workers, beside other tests.
        self._beside_others = 0
        self._unsent: list[Unsent] = []
        #: Benchmark tests whose worker was lost while they ran.
        self._lost: set[str] = set()

    def _results(self) -> list[Any]:
        session = getattr(self._config, "_benchmarksession", None)
        return session.benchmarks if session is not None else []

    # -- in a worker ---------------------------------------------------------------

    def pytest_pexen_worker_start(self, config: pytest.Config, workerinput: dict[str, Any]) -> None:
        self._worker = workerinput["workerid"]
        self._workers = int(workerinput.get("workercount") or 1)
        self._first = self._settled = self._sent = len(self._results())

    def _pack(self, start: int, stop: int) -> str:
        results = self._results()
        keyed = [(f"{self._worker}/{index}", _portable(results[index])) for index in range(start, stop)]
        return base64.b64encode(pickle.dumps((self._workers, keyed))).decode()

    def pytest_pexen_worker_finish(self, session: pytest.Session, workeroutput: dict[str, Any]) -> None:
        results = self._results()
        if self._settled > self._first:
            workeroutput[SHIPPED] = self._pack(self._first, self._settled)
        # Ended in the middle of a test (the watchdog, a cancelled run): its
        # measurement is incomplete, so it is left out, and named.
        unfinished = sorted({str(getattr(result, "fullname", "?")) for result in results[self._settled :]})
        if unfinished:
            workeroutput[UNFINISHED] = unfinished

    # -- both: a report leaves the worker, or arrives in the controller ----------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> Generator[None, Any, Any]:
        if in_worker(self._config):
            if report.when != "teardown":
                return (yield)
            self._settled = len(self._results())
            if self._settled == self._sent:
                return (yield)
            setattr(report, SHIPPED, self._pack(self._sent, self._settled))
            self._sent = self._settled
            try:
                return (yield)
            finally:
                # Serialized for the controller by now; the worker's own copy stays plain.
                delattr(report, SHIPPED)
        shipped = report.__dict__.pop(SHIPPED, None)
        if shipped is not None:
            self._receive(shipped)
        if getattr(report, "pexen_outcome", None) in LOST_OUTCOMES and report.failed:
            item = self._items.get(report.nodeid)
            if item is not None and "benchmark" in getattr(item, "fixturenames", ()):
                self._lost.add(report.nodeid)
        return (yield)

    # -- in the controller -----------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._items.use(session)

    def pytest_pexen_worker_done(
        self, config: pytest.Config, workerid: str, workeroutput: dict[str, Any], error: str | None
    ) -> None:
        if workeroutput.get(SHIPPED) is not None:
            self._receive(workeroutput[SHIPPED])
        self._lost.update(workeroutput.get(UNFINISHED) or ())

    def _receive(self, shipped: str) -> None:
        session = getattr(self._config, "_benchmarksession", None)
        if session is None:
            return
        workers, keyed = pickle.loads(base64.b64decode(shipped))
        for key, result in keyed:
            if key in self._received:
                continue
            self._received.add(key)
            if isinstance(result, Unsent):
                self._unsent.append(result)
                continue
            if getattr(result, "cprofile_stats", None) is not None:
                result.cprofile_stats.stream = sys.stdout
            session.benchmarks.append(result)
            if workers > 1:
                self._beside_others += 1

    def pytest_terminal_summary(self, config: pytest.Config) -> None:
        if in_worker(config):
            return
        if self._lost:
            say(
                config,
                "benchmark results may be missing: the worker of each of these tests was lost "
                "while it ran: " + ", ".join(sorted(self._lost)),
            )
        for unsent in self._unsent:
            say(
                config,
                f"the benchmark result of {unsent.fullname} could not be sent from its worker: {unsent.reason}",
            )
        if self._beside_others:
            count = self._beside_others
            say(
                config,
                f"{count} benchmark{'s' if count != 1 else ''} ran in a group of several workers, beside "
                "other tests: timings may be noisier than in a plain run; give benchmark tests a "
                "group with workers=1 (see 'Other plugins' in the pytest-pexen docs)",
            )


def _portable(bench: Any) -> Any:
    """A copy of a result that pickles: no test item, no output stream."""
    result = copy.copy(bench)
    result.fixture = Outcome(bool(bench.has_error))
    if getattr(result, "cprofile_stats", None) is not None:
        result.cprofile_stats = copy.copy(result.cprofile_stats)
        result.cprofile_stats.stream = None
    try:
        pickle.dumps(result)
    except Exception as exc:
        return Unsent(str(getattr(bench, "fullname", "?")), f"{type(exc).__name__}: {exc}")
    return result
