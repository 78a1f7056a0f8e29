"""In the controller: turn what workers send into pytest's reporting hooks.

Everything a user sees (terminal, ``--junitxml``, ``--lf`` cache, other
plugins) comes from pytest's own hooks called here, in the controller, with
real ``TestReport`` objects.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any, Literal, Sequence

import pytest

from . import _api
from ._watchdog import Running
from ._worker import WarningData, junitxml_of

try:
    from _pytest import subtests as _subtests
except ImportError:  # pytest < 9
    _subtests = None  # type: ignore[assignment]


class Reporter:
    """Calls pytest's reporting hooks for finished, blocked and crashed tests."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        #: The last item whose reports were rebuilt, and its keywords (its
        #: reports come together; keeping every item's would cost memory).
        self._keywords: tuple[pytest.Item | None, dict[str, int]] = (None, {})

    def finished(
        self, item: pytest.Item, payload: dict[str, Any], timed_out: Running | None = None
    ) -> list[pytest.TestReport]:
        """Report a test a worker ran; returns its reports.

        *timed_out*: the watchdog interrupted it, and it unwound in time.
        """
        if "location" in payload and "location" not in item.__dict__:
            item.__dict__["location"] = payload["location"]  # functools.cached_property's slot
        for attempt in payload.get("attempts", ()):
            self._earlier_attempt(item, self._reports_of(item, attempt))
        reports = self._reports_of(item, payload)
        if "attempts" in payload:
            for report in reports:
                report.pexen_attempts = len(payload["attempts"]) + 1  # type: ignore[attr-defined]
        if timed_out is not None:
            self._note_timeout(reports, timed_out)
        if _subtests is not None and "failed_subtests" in payload:
            key = getattr(item, "id", item.nodeid)
            self._config.stash[_subtests.failed_subtests_key][key] = payload["failed_subtests"]
        self._emit(item, reports)
        for data in payload.get("late", ()):
            # A resumed run's replay: reports that came after the test's own.
            item.ihook.pytest_runtest_logreport(report=self.load(data))
        for data in payload.get("warnings", ()):
            self._warning(data)
        xml = junitxml_of(self._config)
        for name, value in payload.get("suite_properties", ()):
            if xml is not None:
                xml.add_global_property(name, value)
        return reports

    def _reports_of(self, item: pytest.Item, payload: dict[str, Any]) -> list[pytest.TestReport]:
        """A worker's serialized reports, or a thread's calls made into reports here."""
        if "calls" in payload:
            hook = item.ihook
            reports = [hook.pytest_runtest_makereport(item=item, call=call) for call in payload["calls"]]
            if payload.get("interrupt"):
                for report in reports:
                    if report.failed:
                        report.pexen_outcome = "interrupted"  # type: ignore[attr-defined]
            return reports
        return [
            self._plain(item, data) if isinstance(data, tuple) else self.load(data)
            for data in payload["reports"]
        ]

    def _plain(self, item: pytest.Item, data: tuple[Any, ...]) -> pytest.TestReport:
        """A report the worker sent compact (see :func:`._worker.compact`)."""
        when, outcome, duration, start, stop = data
        if self._keywords[0] is not item:
            self._keywords = (item, {name: 1 for name in item.keywords})
        keywords = self._keywords[1]
        return pytest.TestReport(
            nodeid=item.nodeid,
            location=item.location,
            keywords=dict(keywords),
            outcome=outcome,
            longrepr=None,
            when=when,
            sections=[],
            duration=duration,
            start=start,
            stop=stop,
            user_properties=[],
        )

    def _earlier_attempt(self, item: pytest.Item, reports: list[pytest.TestReport]) -> None:
        """A failed attempt of a test that was tried again: shown as a rerun
        (with the reruns another plugin made within it)."""
        for report in reports:
            if report.failed or report.outcome == "rerun":
                report.outcome = "rerun"  # type: ignore[assignment]
                item.ihook.pytest_runtest_logreport(report=report)

    def late(self, item: pytest.Item, data: dict[str, Any]) -> pytest.TestReport:
        """A teardown failure found after the test was reported."""
        report = self.load(data)
        item.ihook.pytest_runtest_logreport(report=report)
        return report

    def blocked(self, item: pytest.Item, reason: str) -> list[pytest.TestReport]:
        """Report a test that cannot run as skipped, saying why."""
        path, lineno, _ = item.reportinfo()
        longrepr = (str(path), (lineno or 0) + 1, f"Skipped: {reason}")
        reports = [
            self._make(item, "setup", "skipped", longrepr),
            self._make(item, "teardown", "passed", None),
        ]
        reports[0].pexen_outcome = "blocked"  # type: ignore[attr-defined]
        self._emit(item, reports)
        return reports

    def crashed(
        self,
        item: pytest.Item,
        what: str,
        output: Sequence[tuple[str, str]] = (),
        phase: str = "",
        outcome: str = "crashed",
    ) -> list[pytest.TestReport]:
        """Report a test whose worker died (or was ended) under it, with its output so far.

        The report fails in the *phase* the worker was in, where known (the
        test's call, else); *outcome* is "crashed", or "interrupted" when
        the run ended it.
        """
        if outcome == "crashed":
            where = f", in its {phase} phase" if phase else ""
            message = f"worker crashed while running this test{where}: {what}"
        else:
            message = f"ended while it ran: {what}"
        when = phase or "call"
        reports = [] if when == "setup" else [self._make(item, "setup", "passed", None)]
        failed = self._make(item, when, "failed", message)
        failed.pexen_outcome = outcome  # type: ignore[attr-defined]
        until = "the crash" if outcome == "crashed" else "it was ended"
        for name, text in output:
            if text:
                failed.sections.append((f"Captured {name} until {until}", text))
        reports.append(failed)
        if when != "teardown":
            reports.append(self._make(item, "teardown", "passed", None))
        self._emit(item, reports)
        return reports

    def died_in_flight(self, item: pytest.Item) -> list[pytest.TestReport]:
        """Report a test that was running when the run died, and says on_resume="crash"."""
        message = (
            "the run died while this test was running (killed, crashed or the machine went "
            "down); its on_resume is 'crash', so it is reported so, not run again"
        )
        return self._failed_call(item, message, "crashed")

    def stray(self, item: pytest.Item, pid: int) -> pytest.TestReport:
        """A process *item* forked came back into pytest instead of ending; it was ended."""
        message = (
            f"a process this test forked (pid {pid}) returned into the test runner instead "
            "of ending; pexen ended it. End forked children with os._exit(), never by "
            "returning or raising out of the test."
        )
        report = self._make(item, "teardown", "failed", message)
        item.ihook.pytest_runtest_logreport(report=report)
        return report

    def timed_out(self, item: pytest.Item, reason: str, stacks: str) -> list[pytest.TestReport]:
        """Report a test that ran out of time and did not unwind: its worker was ended."""
        message = (
            f"Timeout: {reason}\n"
            "The test did not return when interrupted; its worker and every process it "
            "started were ended, so the test's fixture teardown did not run."
        )
        return self._failed_call(item, message, "timeout", [_stacks_section(stacks)])

    def _failed_call(
        self, item: pytest.Item, message: str, outcome: str, sections: Sequence[tuple[str, str]] = ()
    ) -> list[pytest.TestReport]:
        """Report *item* as failed in its call with pexen's *outcome*, its setup and teardown passed."""
        call = self._make(item, "call", "failed", message)
        call.pexen_outcome = outcome  # type: ignore[attr-defined]
        call.sections.extend(sections)
        reports = [self._make(item, "setup", "passed", None), call, self._make(item, "teardown", "passed", None)]
        self._emit(item, reports)
        return reports

    @staticmethod
    def _note_timeout(reports: Sequence[pytest.TestReport], running: Running) -> None:
        """Put the stacks seen at the deadline into the report that failed."""
        failed = [report for report in reports if report.failed] or list(reports[-1:])
        for report in failed[:1]:
            report.pexen_outcome = "timeout"  # type: ignore[attr-defined]
            report.sections.append(_stacks_section(running.stacks))
            report.sections.append(
                ("pexen watchdog", f"Timeout: {running.expired_because}; the test was interrupted "
                 "and its fixture teardown ran; its worker and the processes it started were then ended.")
            )

    def crashed_after(self, item: pytest.Item, what: str) -> pytest.TestReport:
        """A worker died after *item*, its last test, had been reported."""
        message = (
            "worker crashed after this test, while tearing down the fixtures "
            f"it left (module, class or session scope): {what}"
        )
        report = self._make(item, "teardown", "failed", message)
        report.pexen_outcome = "crashed"  # type: ignore[attr-defined]
        item.ihook.pytest_runtest_logreport(report=report)
        return report

    def hook_failed(self, item: pytest.Item, text: str) -> pytest.TestReport:
        """Adding tests after *item* went wrong (``pytest_pexen_task_finished``): an error of *item*."""
        report = self._make(item, "teardown", "failed", text)
        item.ihook.pytest_runtest_logreport(report=report)
        return report

    def problem(self, text: str) -> None:
        """Something went wrong around the tests, not in one: say so, in red."""
        say(self._config, text, red=True)

    def load(self, data: dict[str, Any]) -> pytest.TestReport:
        report = self._config.hook.pytest_report_from_serializable(config=self._config, data=data)
        if _subtests is not None and isinstance(report, _subtests.SubtestReport):
            # Its context applies repr() to the values again when loaded
            # ("i='1'" for i=1): keep the worker's text.
            kwargs = data.get("_subtest.context", {}).get("kwargs")
            if isinstance(kwargs, dict):
                object.__setattr__(report.context, "kwargs", dict(kwargs))
        return report

    def _emit(self, item: pytest.Item, reports: Sequence[pytest.TestReport]) -> None:
        hook = item.ihook
        hook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
        for report in reports:
            hook.pytest_runtest_logreport(report=report)
        hook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)

    @staticmethod
    def _make(
        item: pytest.Item,
        when: Literal["setup", "call", "teardown"],
        outcome: Literal["passed", "failed", "skipped"],
        longrepr: Any,
    ) -> pytest.TestReport:
        return pytest.TestReport(
            nodeid=item.nodeid,
            location=item.location,
            keywords={name: 1 for name in item.keywords},
            outcome=outcome,
            longrepr=longrepr,
            when=when,
            sections=[],
            duration=0.0,
            start=0.0,
            stop=0.0,
            user_properties=list(item.user_properties),
        )

    def _warning(self, data: WarningData) -> None:
        category = data.category or _stand_in(data.name, data.module, data.base)
        message = _warning_instance(category, data.text)
        if message is None:
            category = _stand_in(data.name, data.module, data.base)
            message = _warning_instance(category, data.text)
        record = warnings.WarningMessage(message, category, data.filename, data.lineno, line=data.line)
        self._config.hook.pytest_warning_recorded.call_historic(
            kwargs=dict(warning_message=record, when=data.when, nodeid=data.nodeid, location=data.location)
        )


_stand_ins: dict[tuple[str, str, type], type] = {}


def _stand_in(name: str, module: str, base: type) -> type:
    """A warning category of that name and module, for one defined where pickle cannot reach."""
    key = (name, module, base)
    if key not in _stand_ins:
        category = type(name.rpartition(".")[2], (base,), {"__module__": module})
        category.__qualname__ = name
        _stand_ins[key] = category
    return _stand_ins[key]


def _warning_instance(category: type, text: str) -> Any:
    """*category* carrying *text*, made without its ``__init__`` (which may take other arguments)."""
    try:
        message = category.__new__(category)
        message.args = (text,)
        if str(message) == text:
            return message
    except Exception:
        pass
    return None


def say(config: pytest.Config, text: str, **markup: bool) -> None:
    """A ``pexen:`` line for the user, on its own line of the terminal (else on stderr)."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is None:
        sys.stderr.write(f"pexen: {text}\n")
        return
    terminal.ensure_newline()
    terminal.write_line(f"pexen: {text}", **markup)


def _stacks_section(stacks: str) -> tuple[str, str]:
    return ("pexen watchdog: stacks at the deadline", stacks or "(no stacks could be read)")


#: Outcomes pexen gives a failed report of its own (they count as errors).
PEXEN_FAILURES = ("timeout", "crashed", "interrupted")


def outcome_of(reports: Sequence[pytest.TestReport]) -> str:
    """One word for a test's result: passed, warned, failed, error, skipped, xfailed, interrupted."""
    for report in reports:
        if report.failed and getattr(report, "pexen_outcome", None) in PEXEN_FAILURES:
            return report.pexen_outcome  # type: ignore[attr-defined, no-any-return]
    for report in reports:
        if report.failed:
            return "failed" if report.when == "call" else "error"
    for report in reports:
        if report.skipped:
            return "xfailed" if hasattr(report, "wasxfail") else "skipped"
    if any(report.user_properties and _api.warnings_of(report.user_properties) for report in reports):
        return "warned"
    return "passed"


def duration_of(reports: Sequence[pytest.TestReport]) -> float:
    return sum(getattr(report, "duration", 0.0) for report in reports)


def busy_of(reports: Sequence[pytest.TestReport]) -> float:
    """Wall time from the start of the first report to the end of the last:
    the phases and pytest's work between them."""
    try:
        return max(0.0, reports[-1].stop - reports[0].start)
    except (AttributeError, IndexError, TypeError):
        return duration_of(reports)
