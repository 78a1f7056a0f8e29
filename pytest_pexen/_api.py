"""The in-test API: ``pytest_pexen.warn()``, ``.subresult()``, ``.reboot()``, ``.reboot_count()``.

What a test says is kept in its ``user_properties``, so it travels with the
test's reports (from a worker to the controller too) and reaches every
report consumer. Works with and without ``--pexen``: this module is also
the plugin that tracks the running test, fails tests with failed
sub-results, and shows warned, rerun and flaky tests.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Generator, Iterable, NamedTuple, NoReturn

import pytest

from ._errors import PexenError

WARNED = "pexen.warned"
SUBRESULT = "pexen.subresult"
SUBRESULT_OUTCOMES = ("passed", "warned", "failed", "skipped")

REBOOT_COUNT_VARIABLE = "PEXEN_REBOOT_COUNT"

_current: pytest.Item | None = None
#: The test a thread of a thread pool runs (``item``), where that is not _current.
_in_thread = threading.local()
#: How reboot() asks for a reboot in this process, or why it cannot.
_rebooter: Callable[[pytest.Item], None] | str = (
    "pytest_pexen.reboot() needs a --pexen run with a state file; run the suite with --pexen"
)
#: With a state file: reboots each test asked for earlier in the run, by node
#: id (set before workers fork); None without one.
reboot_counts: dict[str, int] | None = None
#: Times each test was started in earlier parts of a resumed run, by node id.
attempts_before: dict[str, int] = {}


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


def reboot() -> NoReturn:
    """Reboot the machine, and run the calling test again once it is back.

    In a ``--pexen`` run with a state file and a reboot command: the run
    stops handing out tests, lets the other running tests finish, saves its
    state and runs the reboot command; this call never returns. After the
    machine is back, ``pytest --pexen --pexen-resume`` runs this test again,
    with :func:`reboot_count` one higher, so it can do its second half.
    Elsewhere it fails the test, saying why.
    """
    item = _item("reboot")
    if isinstance(_rebooter, str):
        raise PexenError(_rebooter)
    _rebooter(item)
    raise AssertionError("unreachable: a reboot never returns into the test")


def reboot_count() -> int:
    """How many times the running test asked for a reboot before (0 the first time)."""
    return reboot_count_of(_item("reboot_count").nodeid)


def set_rebooter(rebooter: Callable[[pytest.Item], None] | str) -> None:
    """How reboot() asks for a reboot in this process, or why it cannot (see _worker)."""
    global _rebooter
    _rebooter = rebooter


def _item(function: str) -> pytest.Item:
    item = getattr(_in_thread, "item", None) or _current
    if item is None:
        raise PexenError(f"pytest_pexen.{function}() can only be called while a test runs")
    return item


def set_current(item: pytest.Item | None) -> None:
    global _current
    _current = item


def set_current_in_thread(item: pytest.Item | None) -> None:
    """The test the calling thread (of a thread pool) runs, for the API calls it makes."""
    _in_thread.item = item


def reboot_count_of(nodeid: str) -> int:
    """How many times the test *nodeid* asked for a reboot before in this run (0 without state)."""
    return (reboot_counts or {}).get(nodeid, 0)


def warnings_of(properties: Iterable[tuple[str, Any]]) -> list[str]:
    return [value for name, value in properties if name == WARNED]


def subresults_of(properties: Iterable[tuple[str, Any]]) -> list[Subresult]:
    return [Subresult(*value) for name, value in properties if name == SUBRESULT]


# -- hooks (registered as a plugin, with and without --pexen) -------------------------


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    set_current(item)
    if reboot_counts is not None:
        _tell_resumed(item)
    try:
        return (yield)
    finally:
        set_current(None)


def _tell_resumed(item: pytest.Item) -> None:
    """A test of a run with a state file: its reboot count in the environment;
    earlier reboots and starts in its properties (they reach every report)."""
    assert reboot_counts is not None
    reboots = reboot_counts.get(item.nodeid, 0)
    count = str(reboots)
    if os.environ.get(REBOOT_COUNT_VARIABLE) != count:
        os.environ[REBOOT_COUNT_VARIABLE] = count
    started = attempts_before.get(item.nodeid, 0)
    if not reboots and not started:
        return
    names = {name for name, _ in item.user_properties}
    if reboots and "pexen.reboots" not in names:
        item.user_properties.append(("pexen.reboots", reboots))
    if started and "pexen.attempt" not in names:
        item.user_properties.append(("pexen.attempt", started + 1))


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
