"""Live progress: the status line on a terminal, the heartbeat in logs, the event bus under them."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from pytest_pexen import _events as ev
from pytest_pexen._observers.progress import Progress, StatusStream, clock
from pytest_pexen._planner import Task

COLUMNS = 100
SUITE = '''
import time, pytest

def test_slow():
    time.sleep(1.5)

@pytest.mark.parametrize("i", range(40))
def test_fast(i):
    time.sleep(0.01)

def test_fails():
    assert False, "boom"
'''
#: What the status line starts with.
STATUS = "pexen ["


def run_in_terminal(directory: Path, *args: str) -> bytes:
    """pytest --pexen in a pseudo-terminal COLUMNS wide; everything it wrote."""
    primary, secondary = os.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, COLUMNS, 0, 0))
    env = {**os.environ, "COLUMNS": str(COLUMNS), "TERM": "xterm"}
    env.pop("PYTEST_ADDOPTS", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pexen", "--pexen-workers=2",
         "--pexen-state=off", *args],
        cwd=directory, stdin=secondary, stdout=secondary, stderr=secondary, env=env, close_fds=True,
    )
    os.close(secondary)
    output = bytearray()
    try:
        while True:
            ready, _, _ = select.select([primary], [], [], 120)
            if not ready:
                raise AssertionError("pytest wrote nothing for 120s:\n" + output.decode(errors="replace"))
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
    finally:
        os.close(primary)
        process.wait(timeout=60)
    return bytes(output)


def screen(raw: bytes, width: int = COLUMNS) -> list[str]:
    """What a terminal shows after *raw*: the few controls pytest and the status line use."""
    lines: list[list[str]] = [[]]
    row = col = 0
    text = re.sub(r"\x1b\[[0-9;]*m", "", raw.decode("utf-8", errors="replace"))  # colours take no room
    position = 0
    while position < len(text):
        control = re.match(r"\x1b\[(\d*)([A-Za-z])", text[position:])
        if control:
            number, code = int(control.group(1) or 1), control.group(2)
            if code == "K":
                del lines[row][col:]
            elif code == "A":
                row = max(0, row - number)
            elif code == "G":
                col = number - 1
            else:
                raise AssertionError(f"unexpected control {control.group()!r}")
            position += control.end()
            continue
        char = text[position]
        position += 1
        if char == "\r":
            col = 0
        elif char == "\n":
            row, col = row + 1, 0
            while len(lines) <= row:
                lines.append([])
        else:
            if col >= width:
                row, col = row + 1, 0
                while len(lines) <= row:
                    lines.append([])
            line = lines[row]
            line.extend(" " * (col - len(line)))
            if col < len(line):
                line[col] = char
            else:
                line.append(char)
            col += 1
    return ["".join(line).rstrip() for line in lines]


@pytest.fixture
def slow_suite(pytester: pytest.Pytester) -> Path:
    pytester.makepyfile(test_mod=SUITE)
    return pytester.path


def test_the_status_line_shows_what_runs_and_is_gone_at_the_end(slow_suite: Path) -> None:
    raw = run_in_terminal(slow_suite)
    text = raw.decode(errors="replace")
    shown = re.findall(r"pexen \[\d+/42\][^\r\n\x1b]*", text)
    assert any("running:" in line and "test_slow" in line for line in shown), shown
    assert all(len(line) < COLUMNS for line in shown)
    final = screen(raw)
    assert not [line for line in final if STATUS in line], final
    dots = [line for line in final if line.startswith("test_mod.py ")]
    assert len(dots) == 1 and re.fullmatch(r"test_mod\.py [.F]{42}\s+\[100%\]", dots[0]), final
    assert any(re.search(r"1 failed, 41 passed in", line) for line in final), final
    assert any("assert False" in line for line in final), final


def test_verbose_lines_stay_whole_under_the_status_line(slow_suite: Path) -> None:
    raw = run_in_terminal(slow_suite, "-v")
    assert STATUS in raw.decode(errors="replace")
    final = screen(raw)
    assert not [line for line in final if STATUS in line], final
    results = [line for line in final if line.startswith("test_mod.py::")]
    assert len(results) == 42, final
    for line in results:
        assert re.fullmatch(r"test_mod\.py::test_\w+(\[\d+\])? (PASSED|FAILED)\s+\[\s*\d+%\]", line), line


@pytest.mark.parametrize(
    "args", [("-qq",), ("--pexen-progress=off",), ("-s",), ("--capture=sys",), ("--capture=tee-sys",)]
)
def test_the_status_line_can_be_turned_off(slow_suite: Path, args: tuple[str, ...]) -> None:
    text = run_in_terminal(slow_suite, *args).decode(errors="replace")
    assert STATUS not in text
    assert "\x1b[K" not in text


def test_no_status_line_when_output_is_not_a_terminal(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod=SUITE)
    result = pytester.runpytest_subprocess("--pexen", "--pexen-workers=2", "--pexen-state=off")
    assert STATUS not in result.stdout.str()
    assert "\x1b[K" not in result.stdout.str()
    result.assert_outcomes(passed=41, failed=1)


def test_the_heartbeat_names_the_test_that_hangs_and_its_time(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod="import time\n\ndef test_quick():\n    pass\n\ndef test_hangs():\n    time.sleep(3)\n")
    result = pytester.runpytest_subprocess(
        "--pexen", "--pexen-workers=2", "--pexen-state=off", "--pexen-heartbeat=0.2"
    )
    result.assert_outcomes(passed=2)
    beats = [line for line in result.outlines if line.startswith("pexen: heartbeat")]
    assert beats, result.outlines
    seconds = [int(t) for t in re.findall(r"running longest: test_mod\.py::test_hangs (\d+)s on gw\d+", "\n".join(beats))]
    assert seconds and max(seconds) >= 1, beats
    assert any("1/2 done (1 passed)" in beat for beat in beats), beats


def test_a_heartbeat_of_zero_writes_none(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_mod="import time\n\ndef test_waits():\n    time.sleep(1)\n")
    result = pytester.runpytest_subprocess("--pexen", "--pexen-state=off", "--pexen-heartbeat=0")
    result.assert_outcomes(passed=1)
    assert "pexen: heartbeat" not in result.stdout.str()


@pytest.mark.parametrize(
    "args, ini, message",
    [
        (["--pexen-heartbeat=soon"], "", "--pexen-heartbeat must be a number of seconds"),
        (["--pexen-heartbeat=-5"], "", "--pexen-heartbeat must be a number of seconds"),
        ([], "pexen_progress = sometimes", "ini pexen_progress must be one of auto, on, off"),
        ([], "pexen_heartbeat = never", "ini pexen_heartbeat must be a number of seconds"),
    ],
)
def test_bad_progress_options_are_usage_errors(
    pytester: pytest.Pytester, args: list[str], ini: str, message: str
) -> None:
    pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile(test_mod="def test_it():\n    pass\n")
    result = pytester.runpytest("--pexen", "--pexen-state=off", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


# -- the status line's text, from events ------------------------------------------


def _progress(durations: dict[str, float] | None = None) -> Progress:
    tasks = {name: Task(name, claims=("vm",) if name == "t::locked" else ()) for name in ("t::a", "t::b", "t::c", "t::locked")}
    return Progress(len(tasks), tasks, durations or {})


def test_the_longest_running_test_comes_first_and_the_line_fits() -> None:
    progress = _progress()
    for event in (
        ev.RunBegan(0.0, 1000.0),
        ev.Ready("t::locked", 0.0),
        ev.Handed("gw0", ("t::a",), 0.0),
        ev.Handed("gw1", ("t::b",), 5.0),
        ev.Started("gw1", "t::b", 5.0),
    ):
        progress.notice(event)
    line = progress.status(now=70.0, width=200)
    assert line.index("a 1m10s") < line.index("b 1m05s"), line
    assert "1 waits for a lock" in line
    assert len(progress.status(now=70.0, width=40)) <= 40


def test_the_eta_comes_from_earlier_durations_once_there_is_a_basis() -> None:
    progress = _progress({"t::a": 10.0, "t::b": 10.0, "t::c": 10.0, "t::locked": 30.0})
    progress.notice(ev.RunBegan(0.0, 1000.0))
    assert progress.eta(1.0) is None
    for name, at in (("t::a", 10.0), ("t::b", 20.0), ("t::c", 30.0)):
        progress.notice(ev.Handed("gw0", (name,), at - 10))
        progress.notice(ev.Finished(name, "passed", at))
    # 30 of 60 expected seconds done in 30 seconds: 30 left.
    assert progress.eta(30.0) == pytest.approx(30.0)
    assert "ETA 30s" in progress.status(30.0, 200)


def test_no_eta_without_earlier_durations() -> None:
    # Three quick tests done and a long one running: counting tests would say seconds.
    progress = _progress()
    progress.notice(ev.RunBegan(0.0, 1000.0))
    for name, at in (("t::a", 1.0), ("t::b", 2.0), ("t::c", 3.0)):
        progress.notice(ev.Handed("gw0", (name,), at - 1))
        progress.notice(ev.Finished(name, "passed", at))
    assert progress.eta(30.0) is None
    assert "ETA" not in progress.status(30.0, 200)


def test_a_test_added_during_the_run_counts_in_the_total() -> None:
    progress = _progress()
    progress.notice(ev.Handed("gw0", ("t::new",), 0.0))
    progress.notice(ev.Finished("t::new", "passed", 1.0))
    assert progress.status(1.0, 200).startswith("pexen [1/5] 1 passed")


def test_clock() -> None:
    assert [clock(s) for s in (0.4, 59, 61, 3599, 3600 * 2 + 240)] == ["0s", "59s", "1m01s", "59m59s", "2h04m"]


class _Terminal:
    def __init__(self) -> None:
        self.written: list[str] = []

    def write(self, text: str) -> int:
        self.written.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_the_status_line_goes_under_an_unfinished_line_and_back() -> None:
    terminal = _Terminal()
    stream = StatusStream(terminal)  # type: ignore[arg-type]
    stream.width = 40
    stream.write("test_mod.py ..")
    stream.show("pexen [2/9]")
    stream.write(".")
    stream.hide()
    stream.write("\n")
    final = screen("".join(terminal.written).encode(), width=40)
    assert final == ["test_mod.py ...", ""], final


# -- the bus --------------------------------------------------------------------------


class _Counting:
    def __init__(self) -> None:
        self.seen: list[ev.Event] = []
        self.closed = 0

    def notice(self, event: ev.Event) -> None:
        self.seen.append(event)

    def tick(self, now: float) -> float:
        return now + 1

    def close(self) -> None:
        self.closed += 1


class _Failing(_Counting):
    title = "the failing observer"

    def notice(self, event: ev.Event) -> None:
        super().notice(event)
        raise RuntimeError("observer bug")


def test_a_failing_observer_is_reported_once_and_dropped_and_the_others_go_on() -> None:
    problems: list[str] = []
    bus = ev.Bus(problems.append)
    failing, counting = _Failing(), _Counting()
    bus.subscribe(failing)
    bus.subscribe(counting)
    for number in range(3):
        bus.publish(ev.Finished(f"t::{number}", "passed", float(number)))
    assert len(problems) == 1 and "the failing observer" in problems[0] and "observer bug" in problems[0]
    assert len(failing.seen) == 1 and failing.closed == 1
    assert len(counting.seen) == 3
    bus.close()
    assert counting.closed == 1 and not bus.on


def test_without_observers_the_bus_is_off() -> None:
    bus = ev.Bus(lambda text: None)
    assert not bus.on
    bus.subscribe(_Counting())
    assert bus.on


class _Reading(_Counting):
    listens = False


def test_an_observer_that_does_not_listen_gets_ticks_and_the_close_but_no_events() -> None:
    bus = ev.Bus(lambda text: None)
    reading = _Reading()
    ticks: list[float] = []
    reading.tick = lambda now: ticks.append(now) or now + 1  # type: ignore[method-assign]
    bus.subscribe(reading)
    bus.publish(ev.Finished("t::a", "passed", 0.0))
    bus.tick(5.0)
    bus.close()
    assert reading.seen == [] and ticks == [5.0] and reading.closed == 1
