"""Inside a worker process: run assigned items through pytest's own protocol.

A worker is forked from the controller after collection, so it holds the
same session and items. It calls ``pytest_runtest_protocol`` for each item,
which keeps fixtures, markers, capture and other plugins working exactly as
in plain pytest, and relays every report and warning to the controller,
which alone prints and writes files.

Fixture teardown follows pytest: an item is run knowing the next item, so
module- and session-scoped fixtures live exactly as long as they are needed.
When the next item is not known yet (the controller has not sent it),
only the item's own fixtures are torn down; the rest waits until the next
item (or the end) shows what is no longer needed.
"""

from __future__ import annotations

import functools
import os
import pickle
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections import deque
from typing import Any, Callable, Generator, Mapping, NamedTuple, Sequence

import pytest
from _pytest import nodes
from _pytest.junitxml import xml_key
from _pytest.runner import CallInfo

from . import _api, _data, _forks, _worker_state
from ._channel import Channel
from ._errors import Timeout
from ._plugin import XUNIT_PLUGIN

try:
    from _pytest.subtests import failed_subtests_key
except ImportError:  # pytest < 9
    failed_subtests_key = None  # type: ignore[assignment]


class WarningData(NamedTuple):
    """A warning as it crosses the process boundary."""

    text: str
    #: The category itself, or None where it cannot be pickled (defined in a function).
    category: Any
    #: Its name, module, and nearest base that can be pickled, to stand in for it.
    name: str
    module: str
    base: Any
    filename: str
    lineno: int
    line: str | None
    when: str
    nodeid: str
    location: Any


#: What a report of pytest's own class holds when no plugin added anything.
_PLAIN_REPORT_KEYS = frozenset(
    pytest.TestReport(
        nodeid="x", location=("x", 0, "x"), keywords={}, outcome="passed", longrepr=None, when="call"
    ).__dict__
)


def compact(report: pytest.TestReport, item: pytest.Item | None, keywords: dict[str, int]) -> tuple[Any, ...] | None:
    """A plain report of *item* as ``(when, outcome, duration, start, stop)``, or None.

    Most reports say only that a phase passed: sent like this, they cost a
    fraction of pytest's serialization, here and in the controller (which
    rebuilds them from its own copy of the item). Anything more, and the
    report travels whole.
    """
    if (
        type(report) is pytest.TestReport
        and item is not None
        and report.longrepr is None
        and not report.sections
        and not report.user_properties
        and report.__dict__.keys() == _PLAIN_REPORT_KEYS
        and report.nodeid == item.nodeid
        and report.location == item.location
        and report.keywords == keywords
    ):
        return (report.when, report.outcome, report.duration, report.start, report.stop)
    return None


def _outcome(data: dict[str, Any] | tuple[Any, ...]) -> str:
    """The outcome of a report as the relay keeps it (compact or serialized)."""
    return data[1] if isinstance(data, tuple) else data.get("outcome", "")


class _ReportRelay:
    """Collects, in the worker, what the controller must report."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        #: The item being run, and the keywords its plain reports carry.
        self.item: pytest.Item | None = None
        self._keywords: dict[str, int] = {}
        self.reports: list[dict[str, Any]] = []
        self.warnings: list[WarningData] = []
        self._suite_properties = 0
        #: Off while being registered: the historic warning hook replays the
        #: controller's own (configure, collection) warnings to new plugins.
        self.live = False

    def serialize(self, report: pytest.TestReport) -> dict[str, Any]:
        return self._config.hook.pytest_report_to_serializable(config=self._config, report=report)

    def running(self, item: pytest.Item) -> None:
        self.item = item
        self._keywords = {name: 1 for name in item.keywords}

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        plain = compact(report, self.item, self._keywords)
        self.reports.append(self.serialize(report) if plain is None else plain)

    @pytest.hookimpl(trylast=True)
    def pytest_warning_recorded(
        self, warning_message: warnings.WarningMessage, when: str, nodeid: str, location: Any
    ) -> None:
        if not self.live:
            return
        category = warning_message.category
        base = next(c for c in category.__mro__ if _picklable(c))
        self.warnings.append(
            WarningData(
                text=str(warning_message.message),
                category=category if base is category else None,
                name=category.__qualname__,
                module=category.__module__,
                base=base,
                filename=str(warning_message.filename),
                lineno=warning_message.lineno,
                line=warning_message.line,
                when=when,
                nodeid=nodeid,
                location=location,
            )
        )

    def take(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"reports": self.reports, "warnings": self.warnings}
        self.reports, self.warnings = [], []
        item = self.item
        if item is not None:
            # Worked out here for the reports anyway; the controller takes it
            # rather than working it out again, serially.
            payload["location"] = item.location
        if failed_subtests_key is not None and item is not None:
            # pytest fails a test with failed subtests where its reports are
            # shown (the controller), by a count kept where they ran (here).
            count = self._config.stash[failed_subtests_key].get(getattr(item, "id", item.nodeid), 0)
            if count:
                payload["failed_subtests"] = count
        # record_testsuite_property() writes to this process's junitxml
        # object, which writes no file here: pass the new ones on.
        xml = junitxml_of(self._config)
        if xml is not None and len(xml.global_properties) > self._suite_properties:
            payload["suite_properties"] = xml.global_properties[self._suite_properties :]
            self._suite_properties = len(xml.global_properties)
        return payload


class _PhaseTracker:
    """Marks the phase each test is in, and ends processes a test forked that return into pytest.

    Its wrappers are the innermost, so a forked child that returns from a
    test (or a fixture) is caught before any other plugin's code runs in it.
    """

    def _phase(self, phase: str) -> Generator[None, object, object]:
        _worker_state.enter(phase)
        returned = False
        try:
            result = yield
            returned = True
            return result
        finally:
            if os.getpid() != _worker_state.pid:
                _end_stray_child(0 if returned else 1)
            if returned:
                # Kept after an exception that ends the worker's run
                # (KeyboardInterrupt, pytest.exit): it says where.
                _worker_state.enter("")

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_setup(self) -> Generator[None, object, object]:
        return (yield from self._phase("setup"))

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(self) -> Generator[None, object, object]:
        return (yield from self._phase("call"))

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_teardown(self) -> Generator[None, object, object]:
        return (yield from self._phase("teardown"))


def _end_stray_child(code: int) -> None:
    """In a process a test forked that came back into pytest: tell the pool, then end.

    Left alone it would run the worker's loop too, and speak on its channel.
    """
    notice = f"{_worker_state.name} {_worker_state.index} {os.getpid()}\n".encode()
    try:
        os.write(_worker_state.stray_fd, notice)
    finally:
        os._exit(code)


def _picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:
        return False
    return True


def junitxml_of(config: pytest.Config) -> Any:
    """The session's ``--junitxml`` writer (a LogXML), if any."""
    return config.stash.get(xml_key, None)


class _MutedTerminal:
    """Stands in for the terminal reporter in a worker.

    Has no hook implementations, so the worker prints no progress (the
    controller does), but code that asks for the terminal writer (e.g.
    ``--setup-show``) still gets the real one.
    """

    def __init__(self, real: object) -> None:
        self._real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _become_worker(config: pytest.Config) -> _ReportRelay:
    manager = config.pluginmanager
    terminal = manager.get_plugin("terminalreporter")
    if terminal is not None:
        manager.unregister(terminal)
        manager.register(_MutedTerminal(terminal), "terminalreporter")
    # The controller writes our own xunit file.
    manager.unregister(name=XUNIT_PLUGIN)
    xml = junitxml_of(config)
    if xml is not None and manager.is_registered(xml):
        # Kept (record_testsuite_property writes to it) but deaf: the
        # controller writes the file.
        manager.unregister(xml)
    _fresh_capture(config)
    relay = _ReportRelay(config)
    manager.register(relay, "pexen-relay")
    relay.live = True
    manager.register(_PhaseTracker(), "pexen-phases")
    return relay


def _fresh_capture(config: pytest.Config) -> None:
    """Give the worker capture files of its own, behind the same objects.

    The forked capture manager shares its temporary files (and their offsets)
    with the controller and the other workers; reading them would mix up the
    output of different tests. The capture objects themselves must stay: with
    fd capture ``sys.stdout`` *is* the capture file, and code imported during
    collection may hold it (``from sys import stdout``, a logging handler).
    So the file descriptor under each one is pointed at a new temporary file.
    """
    capman = config.pluginmanager.get_plugin("capturemanager")
    if capman is None or capman._global_capturing is None:
        return
    capturing = capman._global_capturing
    capman.suspend_global_capture()
    for capture in (capturing.out, capturing.err):
        if capture is None:
            continue
        if hasattr(capture, "targetfd"):
            private = tempfile.TemporaryFile(buffering=0)
            try:
                os.dup2(private.fileno(), capture.tmpfile.fileno())
            finally:
                private.close()
        else:  # sys capture: in memory, private since the fork; start empty
            capture.tmpfile.seek(0)
            capture.tmpfile.truncate()


def capture_files(config: pytest.Config) -> dict[str, int]:
    """File descriptors holding the running test's captured stdout and stderr.

    With fd capture, pytest keeps what a test has printed so far in these
    files; if the worker dies, the controller can still read them.
    """
    capman = config.pluginmanager.get_plugin("capturemanager")
    capturing = getattr(capman, "_global_capturing", None)
    files = {}
    for name in ("stdout", "stderr"):
        capture = getattr(capturing, name[3:], None)
        tmpfile = getattr(capture, "tmpfile", None)
        if hasattr(capture, "targetfd") and tmpfile is not None:
            files[name] = tmpfile.fileno()
    return files


class Retry(NamedTuple):
    """How often a failing test runs again, and how long it waits first."""

    retries: int
    delay: float


NO_RETRY = Retry(0, 0.0)


class WorkerSetup(NamedTuple):
    """What the controller tells every worker of a run (inherited through fork)."""

    retries: Mapping[int, Retry]
    testrunuid: str
    #: None if pytest_pexen.reboot() may reboot; else why it cannot (its error).
    reboot_refusal: str | None
    #: Lets go, in the fresh worker, of what only the controller may use (the state file).
    after_fork: Callable[[], None]


def run_worker(session: pytest.Session, setup: WorkerSetup, channel: Channel) -> None:
    """The worker's whole life: receive indices, run items, send reports."""
    setup.after_fork()
    retries, testrunuid = setup.retries, setup.testrunuid
    _api.set_rebooter(setup.reboot_refusal or functools.partial(_ask_for_reboot, channel))
    relay = _become_worker(session.config)
    channel.send(("files", None, capture_files(session.config)))
    _start(session, testrunuid, channel)
    items = session.items
    #: (queue position, item index): positions count every test assigned.
    queue: deque[tuple[int, int]] = deque()
    assigned = 0
    #: Inputs of queued items that have any, by index (see :mod:`._data`).
    inputs: dict[int, bytes] = {}
    stopping = False
    #: The last item run, and the next item it was run with: what its
    #: teardown left standing is what that item needs.
    last: tuple[int, Any] | None = None

    while True:
        if not stopping:
            try:
                messages = channel.receive(wait=not queue)
            except EOFError:
                os._exit(1)  # the controller is gone; nobody would read our reports
            for message in messages:
                if message[0] == "run":
                    queue.extend(enumerate(message[1], assigned))
                    assigned += len(message[1])
                    if message[2]:
                        inputs.update(message[2])
                else:
                    stopping = True
                    if message[1]:
                        _drop(queue, channel)
        if not queue:
            if stopping:
                break
            continue
        position, index = queue.popleft()
        if _worker_state.progress is not None and not _worker_state.progress.start(position):
            continue  # the controller took it back for another worker
        item = items[index]
        _data.receive(item, inputs.pop(index, None))
        if last is not None and last[1] is not item:
            _finish_teardown(session, items[last[0]], last[0], item, relay, channel)
        _worker_state.index = index
        nextitem: nodes.Node | None
        if queue:
            nextitem = items[queue[0][1]]
        elif stopping:
            nextitem = None
        else:
            # Pretend the next item is a sibling: tear down this item only.
            nextitem = item.parent
        payload = _run_item(session, item, nextitem, relay, retries.get(index, NO_RETRY))
        channel.send(("done", index, payload))
        last = (index, nextitem)
        if "exit" in payload or "interrupt" in payload:
            # The run stops, as in plain pytest; what this item left
            # standing is torn down at the end, like pytest's session end.
            stopping = True
            last = (index, item.parent)
            _drop(queue, channel)
    if last is not None and last[1] is not None:
        _finish_teardown(session, items[last[0]], last[0], None, relay, channel)
    _finish(session, channel)
    channel.close()


def _ask_for_reboot(channel: Channel, item: pytest.Item) -> None:
    """pytest_pexen.reboot() in a worker: tell the controller, then wait to be ended.

    The controller saves the state, ends this worker once the other running
    tests are done, and runs the reboot command; the test never goes on.
    """
    channel.send(("reboot", _worker_state.index, None))
    while True:
        time.sleep(3600)


def _drop(queue: deque[tuple[int, int]], channel: Channel) -> None:
    """Give the queued tests back without running them (the run is stopping)."""
    if queue:
        channel.send(("dropped", None, [index for _, index in queue]))
        queue.clear()


def _start(session: pytest.Session, testrunuid: str, channel: Channel) -> None:
    """Speak pytest-xdist's worker conventions, and let plugins set up this worker.

    Plugins that support xdist read these (pytest-django names its test
    database after ``workerid``; syrupy and others look at the variable).
    """
    config = session.config
    workerinput = {
        "workerid": _worker_state.name,
        "workercount": _worker_state.count,
        "testrunuid": testrunuid,
        "mainargv": list(sys.argv),
        "pexen": True,
    }
    os.environ["PYTEST_XDIST_WORKER"] = _worker_state.name
    os.environ["PYTEST_XDIST_WORKER_COUNT"] = str(_worker_state.count)
    os.environ["PYTEST_XDIST_TESTRUNUID"] = testrunuid
    config.workerinput = workerinput  # type: ignore[attr-defined]
    config.workeroutput = {}  # type: ignore[attr-defined]
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_DFL or callable(previous):
        # Ended by SIGTERM (the watchdog, a cancelled run): finish first, so
        # what the worker measured (coverage, ...) is not lost with it; then
        # what was there before (dying, or a handler such as coverage's).
        _forks.catch(signal.SIGTERM, functools.partial(_finish_then, session, channel, previous))
    try:
        config.hook.pytest_pexen_worker_start(config=config, workerinput=workerinput)
    except Exception:
        config.workeroutput["pexen_error"] = traceback.format_exc()  # type: ignore[attr-defined]


def _finish(session: pytest.Session, channel: Channel) -> None:
    """Let plugins finish this worker, then send the controller its workeroutput (once)."""
    if _worker_state.finished:
        return
    _worker_state.finished = True
    config = session.config
    output: dict[str, Any] = config.workeroutput  # type: ignore[attr-defined]
    try:
        config.hook.pytest_pexen_worker_finish(session=session, workeroutput=output)
    except Exception:
        output["pexen_error"] = "\n".join(filter(None, [output.get("pexen_error"), traceback.format_exc()]))
    if not channel.sending:
        channel.send(("output", None, output))


def _finish_then(session: pytest.Session, channel: Channel, previous: Any, signum: int, frame: Any) -> None:
    signal.signal(signum, previous)
    if os.getpid() == _worker_state.pid:  # not in a process a test forked
        _finish(session, channel)
    if callable(previous):
        previous(signum, frame)
    else:
        os.kill(os.getpid(), signum)


def _run_item(
    session: pytest.Session, item: pytest.Item, nextitem: Any, relay: _ReportRelay, retry: Retry
) -> dict[str, Any]:
    """Run *item*, again while it fails and retries are left; the last attempt counts."""
    earlier: list[dict[str, Any]] = []
    for attempt in range(retry.retries + 1):
        if attempt:
            time.sleep(retry.delay)
            item.user_properties.clear()
        payload = _attempt(session, item, nextitem, relay)
        failed = any(_outcome(report) == "failed" for report in payload["reports"])
        if not failed or attempt == retry.retries or "exit" in payload or "interrupt" in payload:
            break
        earlier.append(payload)
        _data.take(item)  # what a failed attempt wrote is not handed on
    if earlier:
        payload["attempts"] = earlier
    _hand_on_data(item, payload)
    return payload


def _attempt(
    session: pytest.Session, item: pytest.Item, nextitem: Any, relay: _ReportRelay
) -> dict[str, Any]:
    exit_reason = None
    interrupt = None
    relay.running(item)
    _worker_state.in_test = True
    try:
        item.ihook.pytest_runtest_protocol(item=item, nextitem=nextitem)
    except pytest.exit.Exception as exc:
        exit_reason = (exc.msg, exc.returncode)
    except KeyboardInterrupt:
        interrupt = _interrupt_report(item, relay)
    except Timeout:
        pass  # it hit pytest's own code between phases; the reports so far stand
    finally:
        _worker_state.in_test = False
        if os.getpid() != _worker_state.pid:
            _end_stray_child(1)
    # The controller decides when the run stops (-x, --maxfail); a worker's
    # own count must not make it tear everything down after each item.
    session.shouldfail = False
    session.shouldstop = False
    payload = relay.take()
    if exit_reason is not None:
        payload["exit"] = exit_reason
    if interrupt is not None:
        payload["reports"].append(interrupt)
        payload["interrupt"] = True
    return payload


def _interrupt_report(item: pytest.Item, relay: _ReportRelay) -> dict[str, Any]:
    """A test raised KeyboardInterrupt: the report of the phase it stopped, with its output.

    The run stops as in plain pytest; this report keeps the traceback and
    what the test printed, which would otherwise be lost with the phase.
    """
    excinfo = pytest.ExceptionInfo.from_current()
    _, phase = _worker_state.progress.get() if _worker_state.progress else (None, "")
    when = phase or "call"
    capman = item.config.pluginmanager.get_plugin("capturemanager")
    if capman is not None:
        capman.suspend_global_capture(in_=False)
        out, err = capman.read_global_capture()
        item.add_report_section(when, "stdout", out)
        item.add_report_section(when, "stderr", err)
    call = CallInfo(None, excinfo, start=time.time(), stop=time.time(), duration=0.0, when=when, _ispytest=True)  # type: ignore[arg-type]
    report = item.ihook.pytest_runtest_makereport(item=item, call=call)
    report.pexen_outcome = "interrupted"
    return relay.serialize(report)


def _finish_teardown(
    session: pytest.Session,
    item: pytest.Item,
    index: int,
    nextitem: pytest.Item | None,
    relay: _ReportRelay,
    channel: Channel,
) -> None:
    """Tear down what *item* left standing that *nextitem* does not need.

    A failure here belongs to *item*'s teardown, as in plain pytest; it
    reaches the controller as a late report.
    """
    capman = session.config.pluginmanager.get_plugin("capturemanager")
    if capman is not None:
        capman.resume_global_capture()
    try:
        # Nothing is re-raised: pytest.exit() or a KeyboardInterrupt here
        # becomes this teardown's error, and the worker goes on.
        call = CallInfo.from_call(
            lambda: session._setupstate.teardown_exact(nextitem), when="teardown", reraise=()
        )
    finally:
        _worker_state.enter("")
        if capman is not None:
            capman.suspend_global_capture()
            out, err = capman.read_global_capture()
            if out:
                item.add_report_section("teardown", "stdout", out)
            if err:
                item.add_report_section("teardown", "stderr", err)
    if call.excinfo is None:
        return
    # The protocol cleared the item's request; plugins making the report may
    # still look at its fixture values, as they can in a teardown phase.
    restore = getattr(item, "funcargs", {}) is None
    if restore:
        item.funcargs = {}  # type: ignore[attr-defined]
    try:
        report = item.ihook.pytest_runtest_makereport(item=item, call=call)
    finally:
        if restore:
            item.funcargs = None  # type: ignore[attr-defined]
    channel.send(("late", index, relay.serialize(report)))


def run_in_thread(
    items: Sequence[pytest.Item], retries: Mapping[int, Retry], index: int, inputs: bytes | None
) -> dict[str, Any]:
    """Run a thread-safe item's body in a thread of the controller.

    Such items need no fixtures: setup and teardown have nothing to do. The
    controller turns the calls into reports (hooks run in its main thread).
    A failing body runs again while retries are left, as in a worker.
    """
    item = items[index]
    _data.receive(item, inputs)
    retry = retries.get(index, NO_RETRY)
    earlier: list[dict[str, Any]] = []
    for attempt in range(retry.retries + 1):
        if attempt:
            time.sleep(retry.delay)
        setup = CallInfo.from_call(lambda: None, when="setup")
        _api.set_current_in_thread(item)  # pytest_pexen.warn() and friends
        try:
            call = CallInfo.from_call(item.runtest, when="call", reraise=())
        finally:
            _api.set_current_in_thread(None)
        teardown = CallInfo.from_call(lambda: None, when="teardown")
        payload: dict[str, Any] = {"calls": [setup, call, teardown]}
        # As in a worker process: pytest.exit() and KeyboardInterrupt stop the run.
        if call.excinfo is not None and call.excinfo.errisinstance(pytest.exit.Exception):
            exit_exception = call.excinfo.value
            payload = {"calls": [setup], "exit": (exit_exception.msg, exit_exception.returncode), "stop": True}
            break
        if call.excinfo is not None and call.excinfo.errisinstance(KeyboardInterrupt):
            payload.update(interrupt=True, stop=True)
            break
        if call.excinfo is None or attempt == retry.retries:
            break
        earlier.append(payload)
    if earlier:
        payload["attempts"] = earlier
    _hand_on_data(item, payload)
    return payload


def _hand_on_data(item: pytest.Item, payload: dict[str, Any]) -> None:
    """What *item* wrote for its dependents goes with its result (and leaves the item)."""
    data = _data.take(item)
    if data is not None:
        payload["data"] = data
