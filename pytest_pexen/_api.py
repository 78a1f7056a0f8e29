"""The in-test API: ``pytest_pexen.warn()`` and ``pytest_pexen.subresult()``.

What a test says is kept in its ``user_properties``, so it travels with the
test's reports (from a worker to the controller too) and reaches every
report consumer. Works with and without ``--pexen``: this module is also
the plugin that tracks the running test, fails tests with failed
sub-results, and shows warned, rerun and flaky tests.
"""

from __future__ import annotations

from typing import Any, Generator, Iterable, NamedTuple

import pytest

from ._errors import PexenError

WARNED = "pexen.warned"
SUBRESULT = "pexen.subresult"
SUBRESULT_OUTCOMES = ("passed", "warned", "failed", "skipped")

_current: pytest.Item | None = None


class Subresult(NamedTuple):
    """A named part of a test's result."""

    name: str
    outcome: str
    message: str = ""


def warn(message: str) -> None:
    """The running test passes as *warned*: it worked, but found problems."""
    _item("warn").user_properties.append((WARNED, str(message)))


def subresult(name: str, outcome: str, message: str = "") -> None:
    """Record a named sub-result of the running test.

    *outcome* is one of passed, warned, failed, skipped. A failed sub-result
    makes the test fail (unless it already failed).
    """
    if outcome not in SUBRESULT_OUTCOMES:
        raise PexenError(
            f"pytest_pexen.subresult({name!r}, {outcome!r}): outcome must be one of "
            f"{', '.join(SUBRESULT_OUTCOMES)}"
        )
    item = _item("subresult")
    item.user_properties.append((SUBRESULT, tuple(Subresult(str(name), outcome, str(message)))))


def _item(function: str) -> pytest.Item:
    if _current is None:
        raise PexenError(f"pytest_pexen.{function}() can only be called while a test runs")
    return _current


def set_current(item: pytest.Item | None) -> None:
    global _current
    _current = item


def warnings_of(properties: Iterable[tuple[str, Any]]) -> list[str]:
    return [value for name, value in properties if name == WARNED]


def subresults_of(properties: Iterable[tuple[str, Any]]) -> list[Subresult]:
    return [Subresult(*value) for name, value in properties if name == SUBRESULT]


# -- hooks (registered as a plugin, with and without --pexen) -------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    set_current(item)
    try:
        return (yield)
    finally:
        set_current(None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" and report.passed:
        failed = [s for s in subresults_of(item.user_properties) if s.outcome == "failed"]
        if failed:
            report.outcome = "failed"
            report.longrepr = "\n".join(
                f"sub-result {s.name!r} failed" + (f": {s.message}" if s.message else "") for s in failed
            )
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport) -> tuple[str, str, Any] | None:
    if report.outcome == "rerun":
        return "rerun", "R", ("RERUN", {"yellow": True})
    if report.when != "call":
        return None
    if report.passed and not hasattr(report, "wasxfail"):
        if getattr(report, "pexen_attempts", 1) > 1:
            return "flaky", "f", ("FLAKY", {"yellow": True})
        if report.user_properties and warnings_of(report.user_properties):
            return "warned", "W", ("WARNED", {"yellow": True})
    return None


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """List what tests said through the API: warnings, sub-results, flaky passes."""
    lines = []
    for category in ("warned", "flaky", "passed", "failed"):
        for report in terminalreporter.stats.get(category, []):
            if getattr(report, "when", None) != "call":
                continue
            for message in warnings_of(report.user_properties):
                lines.append(f"WARNED {report.nodeid} - {message}")
            for sub in subresults_of(report.user_properties):
                detail = f" - {sub.message}" if sub.message else ""
                lines.append(f"{sub.outcome.upper()} {report.nodeid}::{sub.name}{detail}")
            attempts = getattr(report, "pexen_attempts", 1)
            if attempts > 1 and report.passed:
                lines.append(f"FLAKY {report.nodeid} - passed on attempt {attempts}")
    if lines:
        terminalreporter.write_sep("=", "pexen: warnings, sub-results and flaky tests")
        for line in lines:
            terminalreporter.write_line(line)
