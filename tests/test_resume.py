"""Durable state and resume: runs killed for real (SIGKILL of the whole process
group), resumed until done; reboots with a reboot command that kills the run;
breakpoints; the status display; state files that cannot be used."""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable

import pytest

from pytest_pexen._resume import PAUSED

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def pexen_command(*args: str, cache: bool = False) -> list[str]:
    no_cache = () if cache else ("-p", "no:cacheprovider")
    return [sys.executable, "-m", "pytest", "-p", "pytest_pexen._plugin", *no_cache, *args]


@pytest.fixture
def launch(pytester: pytest.Pytester) -> Callable[..., subprocess.Popen[str]]:
    """Start pytest in the suite as the leader of a process group of its own."""
    started: list[subprocess.Popen[str]] = []

    def start(*args: str, cache: bool = False) -> subprocess.Popen[str]:
        env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
        env.pop("PYTEST_ADDOPTS", None)
        process = subprocess.Popen(
            pexen_command(*args, cache=cache),
            cwd=pytester.path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def kill_group(process: subprocess.Popen[str]) -> float:
    """SIGKILL the process and every process of its group (workers, their tests)."""
    moment = time.time()
    os.killpg(process.pid, signal.SIGKILL)
    process.communicate()
    return moment


def finish(process: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str]:
    output, _ = process.communicate(timeout=timeout)
    return process.returncode, output


def summary_counts(output: str) -> dict[str, int]:
    lines = [line for line in output.splitlines() if line.startswith("=") and " in " in line]
    assert lines, output
    return {word: int(count) for count, word in re.findall(r"(\d+) (\w+)", lines[-1])}


def xml_cases(path: Path) -> list[str]:
    root = ET.parse(path).getroot()
    return [f"{case.get('classname')}.{case.get('name')}" for case in root.iter("testcase")]


# -- a run that is never killed -------------------------------------------------------


def test_a_finished_run_is_never_resumed_by_accident(suite, run, pytester):
    suite(test_a="def test_one():\n    pass\n\ndef test_two():\n    assert 0\n")
    run("--pexen").assert_outcomes(passed=1, failed=1)
    assert (pytester.path / ".pexen" / "state.db").is_file()
    assert (pytester.path / ".pexen" / ".gitignore").read_text().strip().endswith("*")
    result = run("--pexen", "--pexen-resume")
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*nothing to resume*run 1*finished*"])
    result.stdout.no_fnmatch_line("*passed*")
    status = run("--pexen-status")
    assert status.ret == 0
    status.stdout.fnmatch_lines(["*runs in*state.db*", "*1*finished*1 passed, 1 failed*"])


def test_state_off_records_nothing(suite, run, pytester):
    suite(test_a="def test_one():\n    pass\n")
    run("--pexen", "--pexen-state=off").assert_outcomes(passed=1)
    assert not (pytester.path / ".pexen").exists()
    result = run("--pexen", "--pexen-state=off", "--pexen-resume")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--pexen-resume needs the state file*"])


# -- killed and resumed ---------------------------------------------------------------

DRILL = '''
import time
import pytest

@pytest.mark.pexen(provides=["base"])
def test_base():
    time.sleep(0.1)

@pytest.mark.parametrize("i", range(12))
@pytest.mark.pexen(requires=["base"])
def test_after_base(i):
    time.sleep(0.12)

@pytest.mark.parametrize("i", range(4))
@pytest.mark.pexen(claims=["db"], on_resume="crash")
def test_claims_db(i):
    time.sleep(0.35)

@pytest.mark.parametrize("i", range(6))
def test_free(i):
    time.sleep(0.1)
    assert i != 3

@pytest.mark.pexen(requires=["base"], provides=["top"])
def test_top():
    time.sleep(0.2)

@pytest.mark.pexen(requires=["top"])
def test_last():
    time.sleep(0.1)
'''
DRILL_TESTS = 1 + 12 + 4 + 6 + 1 + 1


@pytest.mark.parametrize("seed", [1, 2])
def test_killed_again_and_again_then_resumed_nothing_lost_nothing_run_twice(
    suite, launch, events, wait_for, pytester, seed
):
    suite(test_drill=DRILL)
    rng = random.Random(seed)
    kills: list[float] = []
    args = ("--pexen", "--pexen-workers=3", "--junitxml=junit.xml", "--pexen-xunit=pexen.xml")
    process = launch(*args)
    # The first kill once the run has recorded itself; then at any moment of a
    # resume: collecting, replaying, running, writing.
    assert wait_for(lambda: events().names(), 30)
    for _ in range(4):
        time.sleep(rng.uniform(0.1, 1.2))
        if process.poll() is not None:
            break
        kills.append(kill_group(process))
        process = launch(*args, "--pexen-resume")
    code, output = finish(process)
    # Every test reported exactly once, in the terminal and in both xUnit files.
    if "nothing to resume" not in output:  # else the last kill came after every report was written
        assert code == 1, output
        counts = summary_counts(output)
        assert counts.get("passed", 0) + counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0) == DRILL_TESTS, output
        assert counts["failed"] == 1
    for name in ("junit.xml", "pexen.xml"):
        cases = xml_cases(pytester.path / name)
        assert len(cases) == len(set(cases)) == DRILL_TESTS, name
    log = events()
    # A test that ended well before the next kill had its result saved by then:
    # it never starts again after that kill. (Workers lead process groups of
    # their own and die just after the controller: a test may still end after
    # a kill, with nobody left to save its result.)
    for name in {n for _, _, e, n in log.lines if e == "end"}:
        starts = [t for t, _, e, n in log.lines if e == "start" and n == name]
        for end in [t for t, _, e, n in log.lines if e == "end" and n == name]:
            began = max(t for t in starts if t <= end)
            if any(began < k <= end for k in kills):
                continue
            kill = next((k for k in sorted(kills) if k > end), None)
            if kill is not None and kill - end > 0.5:
                assert not [t for t in starts if t > kill], (name, starts, end, kills)
    # on_resume="crash": a test cut off by a kill is reported, never run again.
    for name in {n for _, _, _, n in log.lines if n.startswith("test_claims_db")}:
        assert len([n for _, _, e, n in log.lines if e == "start" and n == name]) == 1
    # Dependencies and the claimed lock held across every resume.
    first_start = min(t for t, _, e, n in log.lines if e == "start" and n == "test_after_base[0]")
    assert max(t for t, _, e, n in log.lines if e == "end" and n == "test_base") <= first_start
    claims = sorted(
        (t, e) for t, _, e, n in log.lines if n.startswith("test_claims_db")
    )
    holding = 0
    for _, event in claims:
        holding += 1 if event == "start" else -1
        assert holding <= 1, claims


def test_in_flight_tests_follow_on_resume(suite, launch, events, wait_for, pytester):
    suite(
        test_flight='''
        import os, time, pytest

        MARK = os.path.join(os.path.dirname(__file__), "second-time")

        @pytest.mark.pexen(on_resume="crash")
        def test_crash_policy():
            time.sleep(0 if os.path.exists(MARK) else 60)

        @pytest.mark.pexen(on_resume="rerun")
        def test_rerun_policy():
            time.sleep(0 if os.path.exists(MARK) else 60)

        def test_quick():
            pass
        '''
    )
    process = launch("--pexen", "--pexen-workers=3")
    assert wait_for(lambda: len(events().names()) >= 3, 30)
    assert wait_for(lambda: "test_quick" in events().names("end"), 30)
    time.sleep(0.3)  # test_quick's result is committed within a turn of the loop
    kill_group(process)
    (pytester.path / "second-time").write_text("")
    status = subprocess.run(
        pexen_command("--pexen-status"), cwd=pytester.path, capture_output=True, text=True,
        env=dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1"),
    )
    assert "in flight" in status.stdout and "test_crash_policy" in status.stdout, status.stdout
    code, output = finish(launch("--pexen", "--pexen-resume", "-rA"))
    assert code == 1, output
    assert re.search(r"CRASHED test_flight.py::test_crash_policy - the run died", output), output
    assert "PASSED test_flight.py::test_rerun_policy" in output
    assert "PASSED test_flight.py::test_quick" in output
    assert events().names().count("test_rerun_policy") == 2
    assert events().names().count("test_crash_policy") == 1
    assert events().names().count("test_quick") == 1


def test_last_failed_knows_the_failures_of_the_parts_before_a_resume(suite, launch, run, events, wait_for, pytester):
    suite(
        test_lf='''
        import os, time

        MARK = os.path.join(os.path.dirname(__file__), "second-time")

        def test_fails():
            assert 0

        def test_slow():
            time.sleep(0 if os.path.exists(MARK) else 60)

        def test_passes():
            pass
        '''
    )
    process = launch("--pexen", "--pexen-workers=3", cache=True)
    assert wait_for(lambda: {"test_fails", "test_passes"} <= set(events().names("end")), 30)
    time.sleep(0.3)  # their results are committed within a turn of the loop
    kill_group(process)
    (pytester.path / "second-time").write_text("")
    code, output = finish(launch("--pexen", "--pexen-resume", cache=True))
    assert code == 1, output
    assert events().names().count("test_fails") == 1  # reported from the state file
    last_failed = run("--pexen", "--lf", "-v")
    last_failed.assert_outcomes(failed=1, deselected=2)
    last_failed.stdout.fnmatch_lines(["*test_lf.py::test_fails FAILED*"])


def test_a_test_handed_out_but_never_started_is_not_in_flight(suite, launch, events, wait_for, pytester):
    suite(
        test_queue='''
        import os, time, pytest

        MARK = os.path.join(os.path.dirname(__file__), "second-time")

        @pytest.mark.parametrize("i", range(30))
        def test_a_fast(i):
            pass

        def test_b_slow():
            time.sleep(0 if os.path.exists(MARK) else 60)

        @pytest.mark.pexen(on_resume="crash")
        def test_c_crash_policy():
            pass

        def test_d_after():
            pass
        '''
    )
    process = launch("--pexen", "--pexen-workers=1")
    # Killed at once: before the tests queued behind the slow one are taken back.
    assert wait_for(lambda: "test_b_slow" in events().names(), 30)
    kill_group(process)
    (pytester.path / "second-time").write_text("")
    code, output = finish(launch("--pexen", "--pexen-resume", "-rA"))
    assert code == 0, output
    assert "PASSED test_queue.py::test_c_crash_policy" in output
    assert events().names().count("test_c_crash_policy") == 1
    assert summary_counts(output) == {"passed": 33}


def test_a_teardown_error_found_after_the_test_is_replayed_with_it(suite, launch, events, wait_for, pytester):
    suite(
        test_a_module='''
        import pytest

        @pytest.fixture(scope="module")
        def leaky():
            yield
            raise RuntimeError("module teardown broke")

        def test_uses_leaky(leaky):
            pass
        ''',
        test_b_module='''
        import os, time

        def test_slow():
            time.sleep(0 if os.path.exists(os.path.join(os.path.dirname(__file__), "second-time")) else 60)
        ''',
    )
    process = launch("--pexen", "--pexen-workers=1", "--pexen-affinity=none")
    assert wait_for(lambda: "test_slow" in events().names(), 30)
    time.sleep(0.3)
    kill_group(process)
    (pytester.path / "second-time").write_text("")
    code, output = finish(launch("--pexen", "--pexen-resume"))
    assert code == 1, output
    assert "ERROR at teardown of test_uses_leaky" in output, output
    assert "module teardown broke" in output
    assert events().names().count("test_uses_leaky") == 1


def test_resume_and_break_need_pexen(suite, run):
    suite(test_a="def test_one():\n    pass\n")
    result = run("--pexen-resume")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--pexen-resume needs --pexen*"])


# -- reboots ---------------------------------------------------------------------------

REBOOTER = '''
import os, pytest, pytest_pexen

def test_before():
    pass

def test_reboots():
    count = pytest_pexen.reboot_count()
    assert os.environ.get("PEXEN_REBOOT_COUNT", "0") == str(count)
    if count == 0:
        print("first half")
        pytest_pexen.reboot()
        raise AssertionError("reboot() returned")
    print(f"second half after {count} reboot")

def test_other():
    pass
'''


def test_a_test_reboots_the_machine_and_does_its_second_half_after_resume(suite, launch, pytester):
    suite(test_reboot=REBOOTER)
    # The "machine going down": the command kills the whole run, as a reboot would.
    command = "kill -KILL 0"
    code, output = finish(launch("--pexen", "--pexen-workers=2", f"--pexen-reboot-cmd={command}"))
    assert code == -signal.SIGKILL, output
    assert "test_reboot.py::test_reboots asked for a reboot" in output
    code, output = finish(launch("--pexen", "--pexen-resume", "-rA", "--junitxml=junit.xml"))
    assert code == 0, output
    assert "second half after 1 reboot" in output
    assert summary_counts(output) == {"passed": 3}
    root = ET.parse(pytester.path / "junit.xml").getroot()
    case = next(c for c in root.iter("testcase") if c.get("name") == "test_reboots")
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties["pexen.reboots"] == "1"


def test_reboot_without_a_command_or_a_state_file_fails_the_test_saying_why(suite, run):
    suite(test_reboot=REBOOTER)
    result = run("--pexen", "-rA")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*reboot() needs a reboot command: pass --pexen-reboot-cmd*"])
    result = run("--pexen", "--pexen-state=off", "--pexen-reboot-cmd=true")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*reboot() needs the state file*--pexen-state is off*"])
    result = run("-p", "no:cacheprovider")  # plain pytest
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*reboot() needs a --pexen run*"])


def test_a_reboot_command_that_fails_or_returns_ends_the_run_saying_so(suite, run):
    suite(test_reboot="import pytest_pexen\n\ndef test_always_reboots():\n    pytest_pexen.reboot()\n")
    result = run("--pexen", "--pexen-reboot-cmd=exit 3")
    assert result.ret == PAUSED
    result.stdout.fnmatch_lines(["*the reboot command failed (exit status 3)*--pexen-resume*"])
    result = run("--pexen", "--pexen-resume", "--pexen-reboot-cmd=true", "--pexen-reboot-wait=0.2")
    assert result.ret == PAUSED
    result.stdout.fnmatch_lines(["*the machine did not go down within 0.2s*"])


# -- breakpoints ---------------------------------------------------------------------------


def test_a_breakpoint_stops_before_the_test_and_resume_starts_there(suite, run, events):
    suite(
        test_chain='''
        import pytest

        @pytest.mark.pexen(provides=["one"])
        def test_first():
            pass

        @pytest.mark.pexen(requires=["one"], provides=["two"])
        def test_second():
            pass

        @pytest.mark.pexen(requires=["two"])
        def test_third():
            pass
        '''
    )
    result = run("--pexen", "--pexen-break=*test_second")
    assert result.ret == PAUSED
    result.stdout.fnmatch_lines(["*breakpoint *test_second: stopped before test_chain.py::test_second*--pexen-resume*"])
    assert events().names() == ["test_first"]
    result = run("--pexen", "--pexen-resume", "--pexen-break=tag:two")  # the same test: not again
    assert result.ret == 0
    result.assert_outcomes(passed=3)
    assert events().names() == ["test_first", "test_second", "test_third"]


# -- what a resume checks ------------------------------------------------------------------


def test_resume_takes_the_saved_selection_and_refuses_another(suite, launch, run, events, wait_for):
    suite(
        test_sel='''
        import os, time

        def test_a():
            pass

        def test_b():
            time.sleep(60)

        def test_c():
            pass
        '''
    )
    process = launch("--pexen", "--pexen-workers=1", "-k", "a or b")
    assert wait_for(lambda: "test_b" in events().names(), 30)
    kill_group(process)
    refused = run("--pexen", "--pexen-resume", "-k", "c")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*selection differs*", "*keyword: saved 'a or b', now 'c'*", "*--pexen-resume-anyway*"])
    events_before = len(events().lines)
    anyway = run("--pexen", "--pexen-resume", "--pexen-resume-anyway", "-k", "c")
    anyway.assert_outcomes(passed=1)  # test_c, added; test_b is no longer selected
    anyway.stdout.fnmatch_lines(["*1 added since: test_sel.py::test_c*2 no longer collected*"])
    assert [n for _, _, e, n in events().lines[events_before:] if e == "start"] == ["test_c"]


def test_a_plain_run_says_an_unfinished_one_exists(suite, launch, run, events, wait_for):
    suite(test_x="import time\n\ndef test_slow():\n    time.sleep(60)\n")
    process = launch("--pexen")
    assert wait_for(lambda: "test_slow" in events().names(), 30)
    kill_group(process)
    result = run("--pexen", "--pexen-session-timeout=1")
    result.stdout.fnmatch_lines(["pexen: run 1 in *state.db is unfinished*--pexen-resume*"])


# -- state files that cannot be used --------------------------------------------------------


def test_a_second_run_on_the_same_state_file_is_refused(suite, launch, run, events, wait_for):
    suite(test_x="import time\n\ndef test_slow():\n    time.sleep(60)\n")
    process = launch("--pexen")
    assert wait_for(lambda: "test_slow" in events().names(), 30)
    result = run("--pexen")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*state.db is in use by another pytest-pexen run (pid {process.pid}*"])
    status = run("--pexen-status")  # looking needs no lock
    assert status.ret == 0
    status.stdout.fnmatch_lines(["*1*running now*", "*in flight*test_slow*", f"Run 1 is running now, in pid {process.pid}*"])
    kill_group(process)


def test_a_damaged_or_foreign_state_file_is_a_usage_error_and_left_alone(suite, run, pytester):
    suite(test_x="def test_one():\n    pass\n")
    state = pytester.path / "not-a-db"
    state.write_bytes(b"precious data, not a database" * 100)
    result = run("--pexen", f"--pexen-state={state}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*not-a-db is not a SQLite database*"])
    assert state.read_bytes() == b"precious data, not a database" * 100
    foreign = pytester.path / "other.db"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE mine (x)")
    before = foreign.read_bytes()
    result = run("--pexen", f"--pexen-state={foreign}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*other.db is a SQLite database that pytest-pexen did not write*"])
    assert foreign.read_bytes() == before
