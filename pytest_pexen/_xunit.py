"""``--pexen-xunit``: a JUnit XML file for CI, kept current during the run.

Built with the junit-xml package, then corrected where its output falls
short of the Jenkins schema (``junit-10.xsd``): no ``disabled`` attribute,
times with at most 3 decimals and never in exponent form, ISO 8601 suite
timestamps. Text is made XML-safe before junit-xml sees it: characters XML
cannot carry are written visibly (``#x1B``), never dropped.

One ``testsuite`` per test module (file); one ``testcase`` per test.
Sub-results are testcases of their own, named ``test::subresult``; earlier
attempts of a retried test are ``flakyFailure``/``rerunFailure`` children
of its one testcase. The file is replaced atomically (temporary file and
rename) as tests finish, at most once per :data:`WRITE_INTERVAL` seconds
(a timer writes what is left), and at the end, so after a crash it is a
valid document of what finished.
"""

from __future__ import annotations

import datetime
import os
import re
import socket
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import junit_xml
import pytest

from . import _api

#: Name under which the writer is registered (workers unregister it).
XUNIT_PLUGIN = "pexen-xunit"
WRITE_INTERVAL = 1.0
#: Captured output kept per stream and test.
OUTPUT_LIMIT = 256 * 1024

# Characters XML 1.0 cannot carry, plus the Unicode non-characters.
_NOT_XML = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
    "\U0001fffe\U0001ffff\U0002fffe\U0002ffff\U0003fffe\U0003ffff\U0004fffe\U0004ffff"
    "\U0005fffe\U0005ffff\U0006fffe\U0006ffff\U0007fffe\U0007ffff\U0008fffe\U0008ffff"
    "\U0009fffe\U0009ffff\U000afffe\U000affff\U000bfffe\U000bffff\U000cfffe\U000cffff"
    "\U000dfffe\U000dffff\U000efffe\U000effff\U000ffffe\U000fffff\U0010fffe\U0010ffff]"
)


def xml_safe(text: Any) -> str:
    """*text* with every character XML cannot carry written as ``#xHH``."""
    return _NOT_XML.sub(lambda m: f"#x{ord(m.group()):02X}", str(text))


def _cap(text: str) -> str:
    if len(text) <= OUTPUT_LIMIT:
        return text
    cut = len(text) - OUTPUT_LIMIT
    return f"[pexen: the first {cut} characters of this output were cut]\n" + text[cut:]


@dataclass
class _Attempt:
    kind: str  # "failure" or "error"
    message: str
    type: str
    details: str
    stdout: str
    stderr: str


@dataclass
class _Case:
    nodeid: str
    classname: str
    name: str
    file: str
    line: int | None
    suite: str
    time: float = 0.0
    start: float | None = None
    #: passed, warned, failed, error, skipped, blocked, timeout, crashed, xfailed, xpassed
    outcome: str = "passed"
    message: str = ""
    kind: str = ""
    details: str = ""
    stdout: dict[str, str] = field(default_factory=dict)
    stderr: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    subresults: list[_api.Subresult] = field(default_factory=list)
    attempts: list[_Attempt] = field(default_factory=list)
    properties: list[tuple[str, str]] = field(default_factory=list)


def _address(nodeid: str) -> tuple[str, str, str]:
    """(suite, classname, name) of a node id, as dotted paths."""
    path, _, rest = nodeid.partition("::")
    module = re.sub(r"\.py$", "", path).replace("/", ".").replace("\\", ".")
    parts = rest.split("::") if rest else [path]
    return module, ".".join([module, *parts[:-1]]), parts[-1]


def _sections(sections: dict[str, str]) -> str:
    return "\n".join(f"--- {title} ---\n{content}" for title, content in sections.items())


def _message(report: pytest.TestReport) -> str:
    """The one-line message of a failure: the exception, else the report's last line."""
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    return (message or _short(str(report.longrepr or ""))).strip()[:500]


def _short(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip()[:500] if lines else ""


class XunitWriter:
    """Collects finished tests from pytest's report hooks; writes the file."""

    def __init__(self, path: str, flavor: str) -> None:
        self._path = Path(path).resolve()
        self._flavor = flavor
        self._cases: dict[str, _Case] = {}
        self._order: list[str] = []
        self._last_write = 0.0
        self._hostname = socket.gethostname()
        # Reports arrive in the main thread; a timer thread writes what came
        # in since the last write, so a hang does not leave the file stale.
        self._lock = threading.RLock()
        self._timer: threading.Timer | None = None

    # -- hooks -----------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        with self._lock:
            self._record(report)

    def _record(self, report: pytest.TestReport) -> None:
        case = self._case(report)
        if report.outcome == "rerun":
            case.attempts.append(self._attempt(report))
            return
        case.time += report.duration or 0.0
        if case.start is None and report.start:
            case.start = report.start
        # A report repeats the sections of the phases before it: keep each once.
        for title, content in report.sections:
            if title.startswith("Captured stderr"):
                case.stderr[title] = content
            elif title.startswith(("Captured stdout", "Captured log", "pexen watchdog")):
                case.stdout[title] = content
        self._outcome(case, report)
        if report.when == "call" or (report.when == "setup" and not report.passed):
            case.warnings = _api.warnings_of(report.user_properties)
            case.subresults = _api.subresults_of(report.user_properties)
            case.properties = [
                (str(name), str(value))
                for name, value in report.user_properties
                if name not in (_api.WARNED, _api.SUBRESULT)
            ]
            attempts = getattr(report, "pexen_attempts", 1)
            if attempts > 1:
                case.properties.append(("attempts", str(attempts)))

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        self._soon()

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        self.write()

    def _soon(self) -> None:
        """Write now, or once WRITE_INTERVAL has passed since the last write."""
        wait = self._last_write + WRITE_INTERVAL - time.monotonic()
        if wait <= 0:
            self.write()
            return
        with self._lock:
            if self._timer is None:
                self._timer = threading.Timer(wait, self._on_timer)
                self._timer.daemon = True
                self._timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
        self.write()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_sep("-", f"pexen xunit file: {self._path}")

    # -- collecting -------------------------------------------------------------

    def _case(self, report: pytest.TestReport) -> _Case:
        case = self._cases.get(report.nodeid)
        if case is None:
            suite, classname, name = _address(report.nodeid)
            path, line, _ = report.location
            case = _Case(report.nodeid, classname, name, path, None if line is None else line + 1, suite)
            self._cases[report.nodeid] = case
            self._order.append(report.nodeid)
        return case

    @staticmethod
    def _attempt(report: pytest.TestReport) -> _Attempt:
        details = str(report.longrepr or "")
        kind = "failure" if report.when == "call" else "error"
        return _Attempt(
            kind, _message(report), _exception_name(report) or kind, details, report.capstdout, report.capstderr
        )

    def _outcome(self, case: _Case, report: pytest.TestReport) -> None:
        special = getattr(report, "pexen_outcome", None)
        details = str(report.longrepr or "")
        if report.failed:
            if case.outcome in ("failed", "error", "timeout", "crashed"):
                case.details += "\n\n" + details  # e.g. a teardown error after a failure
                return
            if special in ("timeout", "crashed"):
                case.outcome, case.kind = special, f"pexen.{special}"
            elif report.when == "call":
                case.outcome = "failed"
                case.kind = _exception_name(report) or (
                    "pexen.subresult" if _api.subresults_of(report.user_properties) else "failure"
                )
            else:
                case.outcome, case.kind = "error", _exception_name(report) or "error"
            case.message, case.details = _message(report), details
        elif report.skipped and case.outcome == "passed":
            if hasattr(report, "wasxfail"):
                case.outcome, case.kind = "xfailed", "pytest.xfail"
                case.message = f"expected failure: {report.wasxfail}" if report.wasxfail else "expected failure"
            else:
                reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else details
                reason = reason.removeprefix("Skipped: ")
                blocked = special == "blocked"
                case.outcome = "blocked" if blocked else "skipped"
                case.kind = "pexen.blocked" if blocked else "pytest.skip"
                case.message = reason
        elif report.when == "call" and report.passed and case.outcome == "passed":
            if hasattr(report, "wasxfail"):
                case.outcome = "xpassed"
            elif _api.warnings_of(report.user_properties):
                case.outcome = "warned"

    # -- writing ------------------------------------------------------------------

    def write(self) -> None:
        """Replace the file, atomically, with everything finished so far."""
        with self._lock:
            self._last_write = time.monotonic()
            root = self._document()
        self._path.parent.mkdir(parents=True, exist_ok=True)
        data = ET.tostring(root, encoding="unicode")
        descriptor, temporary = tempfile.mkstemp(prefix=".pexen-xunit-", dir=self._path.parent)
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write('<?xml version="1.0" encoding="utf-8"?>\n')
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self._path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise

    def _document(self) -> ET.Element:
        suites: dict[str, list[_Case]] = {}
        for nodeid in self._order:
            case = self._cases[nodeid]
            suites.setdefault(case.suite, []).append(case)
        root = ET.Element("testsuites")
        totals = {"tests": 0, "failures": 0, "errors": 0}
        total_time = 0.0
        for name, cases in suites.items():
            element = self._suite(name, cases)
            root.append(element)
            for key in totals:
                totals[key] += int(element.get(key, "0"))
            total_time += sum(case.time for case in cases)
        for key, value in totals.items():
            root.set(key, str(value))
        root.set("time", _seconds(total_time))
        root.set("name", "pytest-pexen")
        return root

    def _suite(self, name: str, cases: list[_Case]) -> ET.Element:
        junit_cases = []
        extra: list[tuple[junit_xml.TestCase, _Case]] = []
        for case in cases:
            junit_case = self._junit_case(case)
            junit_cases.append(junit_case)
            extra.append((junit_case, case))
            for sub in case.subresults:
                junit_cases.append(self._subresult_case(case, sub))
        starts = [case.start for case in cases if case.start]
        stamp = datetime.datetime.fromtimestamp(min(starts) if starts else time.time()).astimezone()
        warned = sum(case.outcome == "warned" for case in cases)
        suite = junit_xml.TestSuite(
            xml_safe(name),
            junit_cases,
            hostname=xml_safe(self._hostname),
            timestamp=stamp.isoformat(timespec="seconds"),
            properties={"warned": str(warned)} if warned else None,
        )
        element = suite.build_xml_doc()
        element.attrib.pop("disabled", None)
        element.set("time", _seconds(sum(case.time for case in cases)))
        for testcase in element.iter("testcase"):
            self._fix_time(testcase)
        self._add_details(element, extra)
        return element

    def _junit_case(self, case: _Case) -> junit_xml.TestCase:
        stdout = _sections(case.stdout)
        if case.warnings:
            stdout = "\n".join(f"pexen warning: {w}" for w in case.warnings) + ("\n" + stdout if stdout else "")
        junit_case = junit_xml.TestCase(
            xml_safe(case.name),
            classname=xml_safe(case.classname),
            elapsed_sec=case.time,
            stdout=xml_safe(_cap(stdout)) or None,
            stderr=xml_safe(_cap(_sections(case.stderr))) or None,
            file=xml_safe(case.file) if self._flavor == "rich" else None,
            line=str(case.line) if self._flavor == "rich" and case.line is not None else None,
            allow_multiple_subelements=True,
        )
        message, details, kind = xml_safe(case.message), xml_safe(_cap(case.details)), xml_safe(case.kind)
        if case.outcome == "failed":
            junit_case.add_failure_info(message, details, kind)
        elif case.outcome in ("error", "timeout", "crashed"):
            junit_case.add_error_info(message, details, kind)
        elif case.outcome in ("skipped", "blocked", "xfailed"):
            junit_case.add_skipped_info(message or case.outcome, None)
        return junit_case

    def _subresult_case(self, case: _Case, sub: _api.Subresult) -> junit_xml.TestCase:
        junit_case = junit_xml.TestCase(
            xml_safe(f"{case.name}::{sub.name}"), classname=xml_safe(case.classname), elapsed_sec=0.0
        )
        message = xml_safe(sub.message)
        if sub.outcome == "failed":
            junit_case.add_failure_info(message or f"sub-result {sub.name} failed", None, "pexen.subresult")
        elif sub.outcome == "skipped":
            junit_case.add_skipped_info(message, None)
        elif sub.outcome == "warned":
            junit_case.stdout = f"pexen warning: {message}"
        return junit_case

    @staticmethod
    def _fix_time(testcase: ET.Element) -> None:
        """junit-xml writes "%f" (or nothing for 0); the schema wants at most 3 decimals."""
        time_text = testcase.get("time")
        testcase.set("time", _seconds(float(time_text)) if time_text else "0.000")

    def _add_details(self, element: ET.Element, cases: list[tuple[junit_xml.TestCase, _Case]]) -> None:
        """What junit-xml cannot say: skip types, earlier attempts, properties."""
        testcases = [child for child in element if child.tag == "testcase"]
        lookup = {(tc.get("classname"), tc.get("name")): tc for tc in testcases}
        for junit_case, case in cases:
            testcase = lookup[(junit_case.classname, junit_case.name)]
            for skipped in testcase.iter("skipped"):
                skipped.set("type", case.kind)
            self._add_properties(testcase, case)
            final_failed = case.outcome in ("failed", "error", "timeout", "crashed")
            for attempt in case.attempts:
                prefix = "rerun" if final_failed else "flaky"
                tag = prefix + ("Failure" if attempt.kind == "failure" else "Error")
                child = ET.SubElement(
                    testcase, tag, {"message": xml_safe(attempt.message), "type": xml_safe(attempt.type)}
                )
                trace = ET.SubElement(child, "stackTrace")
                trace.text = xml_safe(_cap(attempt.details))
                if attempt.stdout:
                    ET.SubElement(child, "system-out").text = xml_safe(_cap(attempt.stdout))
                if attempt.stderr:
                    ET.SubElement(child, "system-err").text = xml_safe(_cap(attempt.stderr))

    def _add_properties(self, testcase: ET.Element, case: _Case) -> None:
        if self._flavor != "rich":
            return
        properties = [("outcome", case.outcome), *case.properties]
        element = ET.Element("properties")
        for name, value in properties:
            ET.SubElement(element, "property", {"name": xml_safe(name), "value": xml_safe(value)})
        testcase.insert(0, element)


def _seconds(value: float) -> str:
    return f"{max(value, 0.0):.3f}"


def _exception_name(report: pytest.TestReport) -> str:
    """The exception type a failure report names ("ValueError"), where it says."""
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", "") or ""
    name, sep, _ = message.partition(":")
    name = name.strip()
    if sep and name and " " not in name:
        return name
    if message.startswith("assert"):
        return "AssertionError"
    return ""
