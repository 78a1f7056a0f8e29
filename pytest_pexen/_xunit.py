"""``--pexen-xunit``: a JUnit XML file for CI, kept current during the run.

Built with the junit-xml package, then corrected where its output falls
short of the Jenkins schema (``junit-10.xsd``): no ``disabled`` attribute,
times with at most 3 decimals and never in exponent form, ISO 8601 suite
timestamps. Text is made XML-safe before junit-xml sees it: characters XML
cannot carry are written visibly (``#x1B``), never dropped.

One ``testsuite`` per test module (file); one ``testcase`` per test.
Sub-results are testcases of their own, named ``test::subresult``; earlier
attempts of a retried test are ``flakyFailure``/``rerunFailure`` children
of its one testcase. A test is written once its closing (teardown) report
is in; one that never got it counts as an error of type
``pexen.interrupted``.

Each finished test is rendered once, to a fragment of text; a suite's totals
are kept as tests finish. Writing the file joins the fragments: a thread
does it, so the run never waits for the disk, at most once per
:data:`MIN_INTERVAL` seconds and no sooner than :data:`COST_FACTOR` times
what the last write took. The file is replaced atomically (a temporary file
next to it, fsync, rename), so after a crash it is a valid document of what
finished. A FIFO or a character device is not replaced but written through,
once, at the end of the run. A path that cannot take the file is a usage
error before anything runs; a write that fails later is a warning, and a
final write that fails is an error in the summary and exit status 3.
"""

from __future__ import annotations

import datetime
import errno
import os
import re
import select
import socket
import stat
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple
from xml.sax.saxutils import escape

import junit_xml
import pytest

from . import _api, _files
from ._errors import PexenError
from ._files import describe as _describe
from ._files import refusal as _refusal
from ._files import umask as _umask
from ._files import write_all as _write_all
from ._plugin import XUNIT_PLUGIN
#: Rewrites during the run are at least this many seconds apart ...
MIN_INTERVAL = 1.0
#: ... and at least this many times as long as the last rewrite took.
COST_FACTOR = 20
#: Pauses between the attempts at the final write.
FINAL_RETRIES = (0.2, 1.0)
#: Seconds to wait, at the end, for a process to open a FIFO for reading.
READER_WAIT = 5.0
#: Seconds the reader of a FIFO or device may take no data before we give up.
STALL_LIMIT = 30.0
#: Captured output kept per stream and test.
OUTPUT_LIMIT = 256 * 1024

#: Outcomes written as a failure or an error.
FAILED_OUTCOMES = ("failed", "error", "timeout", "crashed", "interrupted")

# Characters XML 1.0 cannot carry, plus the Unicode non-characters.
_NOT_XML = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
    "\U0001fffe\U0001ffff\U0002fffe\U0002ffff\U0003fffe\U0003ffff\U0004fffe\U0004ffff"
    "\U0005fffe\U0005ffff\U0006fffe\U0006ffff\U0007fffe\U0007ffff\U0008fffe\U0008ffff"
    "\U0009fffe\U0009ffff\U000afffe\U000affff\U000bfffe\U000bffff\U000cfffe\U000cffff"
    "\U000dfffe\U000dffff\U000efffe\U000effff\U000ffffe\U000fffff\U0010fffe\U0010ffff]"
)
# A process's own standard streams: opening them reopens whatever they are.
_STANDARD_STREAM = re.compile(r"/dev/(?P<name>stdout|stderr)|(?:/dev|/proc/(?P<pid>self|\d+))/fd/(?P<fd>\d+)")
_ATTRIBUTE_ENTITIES = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#09;"}
# Anything an attribute value cannot hold as it is.
_NOT_PLAIN = re.compile(f'[&<>"\t\n\r{_NOT_XML.pattern[1:-1]}]')


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


class _Rendered(NamedTuple):
    """A finished test as it goes into the file: its XML and what it adds to the totals."""

    xml: str
    tests: int
    failures: int
    errors: int
    skipped: int
    time: float
    warned: int


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
    #: passed, warned, failed, error, skipped, blocked, timeout, crashed,
    #: xfailed, xpassed, interrupted
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
    #: Its place among its suite's fragments, once it has finished.
    slot: int | None = None
    rendered: _Rendered | None = None


@dataclass
class _Suite:
    """One test module: the fragments of its finished tests, and their totals."""

    name: str
    first_seen: float
    fragments: list[str] = field(default_factory=list)
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    time: float = 0.0
    warned: int = 0
    start: float | None = None

    def count(self, rendered: _Rendered, sign: int) -> None:
        self.tests += sign * rendered.tests
        self.failures += sign * rendered.failures
        self.errors += sign * rendered.errors
        self.skipped += sign * rendered.skipped
        self.time += sign * rendered.time
        self.warned += sign * rendered.warned


def _address(nodeid: str) -> tuple[str, str, str]:
    """(suite, classname, name) of a node id, as dotted paths."""
    path, _, rest = nodeid.partition("::")
    module = path.removesuffix(".py").replace("/", ".").replace("\\", ".")
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
    """Collects finished tests from pytest's report hooks; keeps the file current.

    The constructor checks that *path* can take the report and raises
    :class:`pytest.UsageError` if it cannot, before anything runs.
    """

    def __init__(self, path: str, flavor: str) -> None:
        self._path = os.path.abspath(path)
        #: Written through once at the end rather than replaced as tests finish.
        self._stream = _check_target(path, self._path)
        self._flavor = flavor
        self._new_file_mode = 0o666 & ~_umask()
        self._hostname = socket.gethostname()
        self._cases: dict[str, _Case] = {}
        self._suites: dict[str, _Suite] = {}
        self._config: pytest.Config | None = None
        self._stopped_by = ""
        # The main thread records and renders; the writer thread takes a
        # snapshot of the fragments under this lock and writes it.
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._dirty = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._next_write = 0.0
        self._trouble: str | None = None
        self._warned = False
        self._final_error: str | None = None
        #: The exit status a failed final write replaced.
        self._replaced_status: int | None = None
        self._error_shown = False

    # -- hooks -----------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._config = session.config
        if self._stream:
            return
        # Whatever an earlier run left there is not this run's report.
        with self._lock:
            pieces = self._document()
        try:
            self._write_file(pieces, when="start")
        except (OSError, PexenError) as error:
            self._trouble = _describe(error)
        self._report_trouble()

    def pytest_runtest_logstart(self, nodeid: str, location: tuple[str, int | None, str]) -> None:
        self._case(nodeid, location)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        case = self._case(report.nodeid, report.location)
        self._record(case, report)
        # The teardown report closes a test; reports after it (a teardown
        # failure found later) change a test already written.
        if case.slot is not None or (report.when == "teardown" and report.outcome != "rerun"):
            self._finish(case)
        self._report_trouble()

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        if isinstance(excinfo.value, pytest.exit.Exception):
            self._stopped_by = f"the run was ended by pytest.exit({excinfo.value.msg!r})"
        else:
            self._stopped_by = "the run was interrupted (KeyboardInterrupt)"

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._stop_thread()
        self._report_trouble()
        for case in list(self._cases.values()):
            if case.slot is None:
                self._interrupted(case)
        self._final_error = self._final_write()
        if self._final_error is not None and session.exitstatus in (
            pytest.ExitCode.OK,
            pytest.ExitCode.NO_TESTS_COLLECTED,
        ):
            self._replaced_status = int(session.exitstatus)
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self._final_error is None:
            terminalreporter.write_sep("-", f"pexen xunit file: {self._path}")
            return
        terminalreporter.write_sep("!", "pexen xunit file NOT written", red=True, bold=True)
        terminalreporter.write_line(self._error_text(), red=True, bold=True)
        self._error_shown = True

    def pytest_unconfigure(self) -> None:
        self._stop_thread()
        if self._final_error is not None and not self._error_shown:
            sys.stderr.write(self._error_text() + "\n")

    # -- collecting -------------------------------------------------------------

    def _case(self, nodeid: str, location: tuple[str, int | None, str]) -> _Case:
        case = self._cases.get(nodeid)
        if case is None:
            suite, classname, name = _address(nodeid)
            path, line, _ = location
            case = _Case(nodeid, classname, name, path, None if line is None else line + 1, suite)
            self._cases[nodeid] = case
            if suite not in self._suites:
                with self._lock:
                    self._suites[suite] = _Suite(suite, time.time())
        return case

    def _record(self, case: _Case, report: pytest.TestReport) -> None:
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
        special = getattr(report, "pexen_outcome", None)
        when = report.when
        if special is not None or when == "call" or report.outcome != "passed":
            self._outcome(case, report, special)  # nothing to do for most reports
        if when == "call" or (when == "setup" and report.outcome != "passed"):
            if not report.user_properties and getattr(report, "pexen_attempts", 1) == 1:
                return
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

    @staticmethod
    def _attempt(report: pytest.TestReport) -> _Attempt:
        details = str(report.longrepr or "")
        kind = "failure" if report.when == "call" else "error"
        return _Attempt(
            kind, _message(report), _exception_name(report) or kind, details, report.capstdout, report.capstderr
        )

    def _outcome(self, case: _Case, report: pytest.TestReport, special: str | None) -> None:
        details = str(report.longrepr or "")
        if report.failed:
            if case.outcome in FAILED_OUTCOMES:
                case.details += "\n\n" + details  # e.g. a teardown error after a failure
                return
            if special in ("timeout", "crashed", "interrupted"):
                case.outcome, case.kind = special, f"pexen.{special}"
            elif report.when == "call":
                case.outcome = "failed"
                case.kind = _exception_name(report) or (
                    "pexen.subresult" if _api.subresults_of(report.user_properties) else "failure"
                )
            else:
                case.outcome, case.kind = "error", _exception_name(report) or "error"
            case.message, case.details = _message(report), details
        elif special == "timeout" and case.outcome not in FAILED_OUTCOMES:
            # Interrupted between two phases: the report that says so passed.
            case.outcome, case.kind = "timeout", "pexen.timeout"
            case.details = _sections(case.stdout)
            case.message = _short(case.stdout.get("pexen watchdog", "")) or "test exceeded its time limit"
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
            elif report.user_properties and _api.warnings_of(report.user_properties):
                case.outcome = "warned"

    def _interrupted(self, case: _Case) -> None:
        """At the end of the run: a test that never got its closing report."""
        if case.outcome not in FAILED_OUTCOMES:
            case.outcome, case.kind = "interrupted", "pexen.interrupted"
            stopped_by = self._stopped_by or "the run ended before its last report"
            case.message = f"the test did not finish: {stopped_by}"
            case.details = case.message
        self._finish(case)

    # -- rendering ------------------------------------------------------------------

    def _finish(self, case: _Case) -> None:
        """Render *case* into its suite (again, if it was there) and ask for a write."""
        rendered = self._render(case)
        with self._wake:
            suite = self._suites[case.suite]
            if case.slot is None:
                case.slot = len(suite.fragments)
                suite.fragments.append(rendered.xml)
            else:
                suite.fragments[case.slot] = rendered.xml
                assert case.rendered is not None
                suite.count(case.rendered, -1)
            suite.count(rendered, +1)
            case.rendered = rendered
            if case.start and (suite.start is None or case.start < suite.start):
                suite.start = case.start
            if self._dirty or self._stream or self._stopping:
                return  # the writer knows already, or waits for no one
            self._dirty = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._keep_current, name="pexen-xunit", daemon=True)
                self._thread.start()
            else:
                self._wake.notify()

    def _render(self, case: _Case) -> _Rendered:
        quiet = self._quiet_pass(case)
        if quiet is not None:
            return _Rendered(quiet, tests=1, failures=0, errors=0, skipped=0, time=case.time, warned=0)
        testcases = [self._junit_case(case), *(self._subresult_case(case, sub) for sub in case.subresults)]
        suite = junit_xml.TestSuite("", testcases).build_xml_doc()
        elements = [child for child in suite if child.tag == "testcase"]
        for testcase in elements:
            self._fix_time(testcase)
        self._add_details(elements[0], case)
        return _Rendered(
            xml="".join(ET.tostring(testcase, encoding="unicode") for testcase in elements),
            tests=len(elements),
            failures=int(suite.get("failures", "0")),
            errors=int(suite.get("errors", "0")),
            skipped=int(suite.get("skipped", "0")),
            time=case.time,
            warned=int(case.outcome == "warned"),
        )

    def _quiet_pass(self, case: _Case) -> str | None:
        """The XML of a test that passed with nothing to say (most tests), else None.

        Written directly: going through junit-xml and ElementTree would cost
        each of them several times as much, for the same element.
        """
        if case.outcome != "passed" or case.stdout or case.stderr or case.subresults or case.attempts:
            return None
        if self._flavor != "rich":
            return (
                f'<testcase name="{_attribute(case.name)}" time="{_seconds(case.time)}" '
                f'classname="{_attribute(case.classname)}" />'
            )
        attributes: dict[str, object] = {"name": case.name, "time": _seconds(case.time), "classname": case.classname}
        attributes["file"] = case.file
        if case.line is not None:
            attributes["line"] = case.line
        properties = "".join(
            _start_tag("property", {"name": name, "value": value}, empty=True)
            for name, value in [("outcome", case.outcome), *case.properties]
        )
        return f"{_start_tag('testcase', attributes)}<properties>{properties}</properties></testcase>"

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
        elif case.outcome in FAILED_OUTCOMES:
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

    def _add_details(self, testcase: ET.Element, case: _Case) -> None:
        """What junit-xml cannot say: skip types, earlier attempts, properties."""
        for skipped in testcase.iter("skipped"):
            skipped.set("type", xml_safe(case.kind))
        self._add_properties(testcase, case)
        final_failed = case.outcome in FAILED_OUTCOMES
        for attempt in case.attempts:
            prefix = "rerun" if final_failed else "flaky"
            tag = prefix + ("Failure" if attempt.kind == "failure" else "Error")
            child = ET.SubElement(testcase, tag, {"message": xml_safe(attempt.message), "type": xml_safe(attempt.type)})
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

    def _document(self) -> list[str]:
        """The whole file as pieces of text, from the fragments (call with the lock held)."""
        pieces = ["", ""]  # the declaration and the root tag, once the totals are known
        tests = failures = errors = 0
        total_time = 0.0
        for suite in self._suites.values():
            if not suite.fragments:
                continue
            pieces.append(self._suite_tag(suite))
            pieces.extend(suite.fragments)
            pieces.append("</testsuite>")
            tests, failures, errors = tests + suite.tests, failures + suite.failures, errors + suite.errors
            total_time += suite.time
        pieces[0] = '<?xml version="1.0" encoding="utf-8"?>\n'
        pieces[1] = _start_tag(
            "testsuites",
            {"tests": tests, "failures": failures, "errors": errors, "time": _seconds(total_time), "name": "pytest-pexen"},
        )
        pieces.append("</testsuites>\n")
        return pieces

    def _suite_tag(self, suite: _Suite) -> str:
        stamp = datetime.datetime.fromtimestamp(suite.start or suite.first_seen).astimezone()
        tag = _start_tag(
            "testsuite",
            {
                "errors": suite.errors,
                "failures": suite.failures,
                "name": suite.name,
                "skipped": suite.skipped,
                "tests": suite.tests,
                "time": _seconds(suite.time),
                "hostname": self._hostname,
                "timestamp": stamp.isoformat(timespec="seconds"),
            },
        )
        if suite.warned:
            tag += f'<properties><property name="warned" value="{suite.warned}" /></properties>'
        return tag

    # -- writing ------------------------------------------------------------------

    def _keep_current(self) -> None:
        """The writer thread: write a snapshot whenever something finished and it is time."""
        while True:
            with self._wake:
                while not self._stopping and not (self._dirty and time.monotonic() >= self._next_write):
                    self._wake.wait(max(0.0, self._next_write - time.monotonic()) if self._dirty else None)
                if self._stopping:
                    return
                self._dirty = False
            started = time.monotonic()
            try:
                with self._lock:
                    pieces = self._document()
                self._write_file(pieces, when="during")
            except Exception as error:  # a failed write must never end the run
                self._trouble = _describe(error)
            took = time.monotonic() - started
            self._next_write = time.monotonic() + max(MIN_INTERVAL, COST_FACTOR * took)

    def _stop_thread(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
            thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def _final_write(self) -> str | None:
        """Write everything, trying again briefly; what went wrong, or None."""
        with self._lock:
            pieces = self._document()
        for pause in (*FINAL_RETRIES, None):
            try:
                self._write_file(pieces, when="end")
                return None
            except OSError as error:
                problem = _describe(error)
            except PexenError as error:
                return str(error)  # waiting will not help
            if pause is not None:
                time.sleep(pause)
        return problem

    def _write_file(self, pieces: list[str], *, when: Literal["start", "during", "end"]) -> None:
        """Replace the file with *pieces*; a FIFO or device only gets the write at the end.

        Missing directories are made at the start and at the end, not while
        tests run: a test may be moving them about.
        """
        try:
            status: os.stat_result | None = os.stat(self._path)
        except OSError:
            status = None
        if self._stream or (status is not None and _written_through(status.st_mode)):
            if when == "end":
                self._write_through("".join(pieces).encode("utf-8"))
            return
        if status is not None:
            refusal = _refusal(status.st_mode, self._path)
            if refusal:
                raise PexenError(refusal)
        self._replace("".join(pieces).encode("utf-8"), make_directories=when != "during")

    def _replace(self, data: bytes, *, make_directories: bool) -> None:
        """Atomically replace the file (see :func:`._files.replace`)."""
        _files.replace(self._path, data, new_file_mode=self._new_file_mode, make_directories=make_directories)

    def _write_through(self, data: bytes) -> None:
        """Write into a FIFO or device in place: wait for a reader, never forever.

        Not tried again when it fails: a reader that went away is not coming back.
        """
        try:
            self._write_into(data)
        except OSError as error:
            raise PexenError(f"writing into {self._path} failed: {_describe(error)}") from None

    def _write_into(self, data: bytes) -> None:
        descriptor = _own_descriptor(self._path)
        if descriptor is not None and stat.S_ISREG(os.fstat(descriptor).st_mode):
            # Our stdout redirected to a file: opened anew, the file would be
            # written at an offset of its own, over what pytest writes next.
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except (OSError, ValueError):
                    pass
            _write_all(descriptor, data)
            return
        flags = os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        deadline = time.monotonic() + READER_WAIT
        while True:
            try:
                descriptor = os.open(self._path, flags)
                break
            except OSError as error:
                if error.errno != errno.ENXIO:
                    raise
                if time.monotonic() >= deadline:
                    raise PexenError(
                        f"no process opened {self._path} for reading within {READER_WAIT:g}s "
                        "after the run; start the reader before pytest"
                    ) from None
                time.sleep(0.05)
        try:
            poller = select.poll()
            poller.register(descriptor, select.POLLOUT)
            view = memoryview(data)
            progress = time.monotonic()
            while view:
                try:
                    view = view[os.write(descriptor, view):]
                    progress = time.monotonic()
                except BlockingIOError:
                    if time.monotonic() - progress > STALL_LIMIT:
                        raise PexenError(
                            f"the reader of {self._path} took no data for {STALL_LIMIT:g}s; "
                            f"{len(data) - len(view)} of {len(data)} bytes were written"
                        ) from None
                    poller.poll(100)
        finally:
            os.close(descriptor)

    # -- telling the user -----------------------------------------------------------

    def _report_trouble(self) -> None:
        """Say once (in the main thread) that a write during the run failed."""
        if self._trouble is None or self._warned:
            return
        self._warned = True
        text = (
            f"pexen: WARNING: cannot update the xUnit file {self._path}: {self._trouble}; "
            "the run goes on, and the file is written again at the end"
        )
        terminal = self._config.pluginmanager.get_plugin("terminalreporter") if self._config else None
        if terminal is not None:
            terminal.write_line(text, yellow=True, bold=True)
        else:
            sys.stderr.write(text + "\n")

    def _error_text(self) -> str:
        text = (
            f"pexen: ERROR: the xUnit file {self._path} was not written: {self._final_error}. "
            "It does not hold this run's results"
        )
        if self._replaced_status is not None:
            text += f", so the exit status is 3 (it would have been {self._replaced_status})"
        return text + "."


def _start_tag(tag: str, attributes: dict[str, object], *, empty: bool = False) -> str:
    """``<tag name="value" ...>``, made XML-safe and escaped as ElementTree escapes; ``<tag ... />`` if *empty*."""
    text = "".join(f' {name}="{_attribute(value)}"' for name, value in attributes.items())
    return f"<{tag}{text} />" if empty else f"<{tag}{text}>"


def _attribute(value: object) -> str:
    text = str(value)
    if _NOT_PLAIN.search(text) is None:  # nearly always: names, numbers
        return text
    return escape(xml_safe(text), _ATTRIBUTE_ENTITIES)


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


# -- the file on disk ----------------------------------------------------------------


def _check_target(given: str, path: str) -> bool:
    """Whether *path* is written through (a FIFO or device) rather than replaced.

    Raises :class:`pytest.UsageError` when it cannot take the report. Leaves
    nothing behind: to find out, for real, whether the directory takes new
    files, a file is created in it and removed.
    """
    _files.check_file_name("--pexen-xunit", given, path, "report.xml")
    if _STANDARD_STREAM.fullmatch(path):
        return True
    status = _files.look_at("--pexen-xunit", given, path)
    if status is not None:
        refusal = _refusal(status.st_mode, given)
        if refusal:
            raise pytest.UsageError(f"--pexen-xunit: {refusal}")
        if _written_through(status.st_mode):
            return True
    _files.check_directory("--pexen-xunit", given, path)
    return False


def _written_through(mode: int) -> bool:
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def _own_descriptor(path: str) -> int | None:
    """The descriptor of this process that *path* names (/dev/stdout: 1), if it names one."""
    match = _STANDARD_STREAM.fullmatch(path)
    if match is None or match["pid"] not in (None, "self", str(os.getpid())):
        return None
    if match["name"]:
        return 1 if match["name"] == "stdout" else 2
    return int(match["fd"])

