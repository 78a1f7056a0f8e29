"""Timeouts, crashes and interrupts: hangs and deaths become ordinary outcomes."""

from __future__ import annotations

import signal
import time

import psutil
import pytest

HANGS_WITH_DESCENDANTS = '''
import os, subprocess, sys, time, pytest

HERE = os.path.dirname(__file__)


@pytest.fixture
def cleanup_marker():
    yield
    open(os.path.join(HERE, "teardown-ran"), "w").close()


@pytest.mark.pexen(timeout=1, provides=["hung"])
def test_hangs(cleanup_marker):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    daemon = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    if os.fork() == 0:  # double fork: the grandchild is orphaned at once
        grandchild = os.fork()
        if grandchild == 0:
            time.sleep(600)
        with open(os.path.join(HERE, "grandchild"), "w") as out:
            out.write(f"{grandchild}\\n")
        os._exit(0)
    with open(os.path.join(HERE, "pids"), "w") as out:
        out.write(f"{child.pid} {daemon.pid}\\n")
    time.sleep(600)


@pytest.mark.pexen(requires=["hung"])
def test_dependent():
    pass


def test_unaffected():
    pass
'''


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_hung_test_is_ended_with_its_whole_process_tree(pytester, suite, run):
    suite(test_hang=HANGS_WITH_DESCENDANTS)
    result = run("--pexen", "--pexen-workers=2", "-rsE", timeout=60)
    result.assert_outcomes(passed=1, errors=1)
    assert result.parseoutcomes()["blocked"] == 1
    result.stdout.fnmatch_lines(["*ERROR at call of test_hangs*"])
    result.stdout.fnmatch_lines(["TIMEOUT test_hang.py::test_hangs - *Timeout*"])
    result.stdout.fnmatch_lines(
        [
            "*Timeout: test exceeded its time limit of 1s (pexen watchdog)*",
            "*pexen watchdog: stacks at the deadline*",
            "*test_hang.py*in test_hangs*",
        ]
    )
    result.stdout.fnmatch_lines(["*requires 'hung', provided by test_hang.py::test_hangs which timed out*"])
    assert (pytester.path / "teardown-ran").exists()
    pids = [int(p) for p in (pytester.path / "pids").read_text().split()]
    pids.append(int((pytester.path / "grandchild").read_text()))
    assert len(pids) == 3
    assert not [pid for pid in pids if alive(pid)]


def test_a_test_that_ignores_the_interrupt_is_killed(pytester, suite, run):
    suite(
        test_stubborn='''
        import os, signal, time, pytest

        @pytest.fixture
        def cleanup_marker():
            yield
            open(os.path.join(os.path.dirname(__file__), "teardown-ran"), "w").close()

        @pytest.mark.pexen(timeout=0.5)
        def test_stubborn(cleanup_marker):
            signal.signal(signal.SIGUSR2, signal.SIG_IGN)
            time.sleep(600)

        def test_after():
            pass
        '''
    )
    result = run("--pexen", "--pexen-workers=1", timeout=60)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*Timeout: test exceeded its time limit of 0.5s (pexen watchdog)*",
            "*so the test's fixture teardown did not run*",
        ]
    )
    assert not (pytester.path / "teardown-ran").exists()


@pytest.mark.parametrize(
    "marker, conftest, command_line, ini, passes",
    [
        ("timeout=5", "", "--pexen-timeout=0.3", "", True),
        ("", "pexen_defaults = {'timeout': 5}", "--pexen-timeout=0.3", "", True),
        ("", "", "--pexen-timeout=5", "pexen_timeout = 0.3", True),
        ("", "", "", "pexen_timeout = 0.3", False),
        ("timeout=0.3", "pexen_defaults = {'timeout': 5}", "", "", False),
    ],
    ids=["marker-over-cli", "conftest-over-cli", "cli-over-ini", "ini", "marker-over-conftest"],
)
def test_timeout_precedence(pytester, extend_conftest, suite, run, marker, conftest, command_line, ini, passes):
    suite(
        test_limit=f'''
        import time, pytest

        @pytest.mark.pexen({marker})
        def test_sleeps():
            time.sleep(1)
        '''
    )
    if conftest:
        extend_conftest(
            f"\n{conftest}\n"
        )
    pytester.makeini(f"[pytest]\n{ini}\n")
    args = ["--pexen"] + ([command_line] if command_line else [])
    result = run(*args, timeout=60)
    if passes:
        result.assert_outcomes(passed=1)
    else:
        result.assert_outcomes(errors=1)


@pytest.mark.parametrize("option", ["--pexen-timeout=0", "--pexen-timeout=soon", "--pexen-session-timeout=-1"])
def test_bad_time_limits_are_usage_errors(suite, run, option):
    suite(test_t="def test_it():\n    pass\n")
    result = run("--pexen", option)
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*must be a number of seconds greater than 0*"])


def test_session_timeout_ends_running_tests_and_reports_the_rest(suite, run):
    suite(
        test_long='''
        import time, pytest

        @pytest.mark.parametrize("n", range(6))
        def test_slow(n):
            time.sleep(30)
        '''
    )
    result = run("--pexen", "--pexen-workers=2", "--pexen-session-timeout=1", "-rs", timeout=60)
    assert result.ret == 2
    result.assert_outcomes(errors=2)
    assert result.parseoutcomes()["blocked"] == 4
    result.stdout.fnmatch_lines(["*the session timeout of 1s expired while it ran (pexen watchdog)*"])
    result.stdout.fnmatch_lines(["*not run: the session timeout of 1s expired*"])
    result.stdout.fnmatch_lines(["*Interrupted: the session timeout of 1s expired*"])


def test_crashes_in_a_row_stop_the_run(suite, run):
    suite(
        test_crashy='''
        import os, pytest

        @pytest.mark.parametrize("n", range(5))
        def test_crash(n):
            os._exit(1)
        '''
    )
    result = run("--pexen", "--pexen-workers=1", "--pexen-max-crashes=2", "-rs", timeout=60)
    assert result.ret == 2
    result.assert_outcomes(errors=2)
    assert result.parseoutcomes()["blocked"] == 3
    result.stdout.fnmatch_lines(["*not run: 2 workers crashed in a row (--pexen-max-crashes); the run stopped*"])


def test_threads_past_their_limit_are_reported_and_replaced(pytester, extend_conftest, suite, run):
    extend_conftest(
        '''
import time

class Hang(pytest.Item):
    pexen_threadsafe = True

    def runtest(self):
        time.sleep(30 if self.name == "hang" else 0)

    def reportinfo(self):
        return self.path, 0, self.name

class HangFile(pytest.File):
    def collect(self):
        for name in ("hang", "quick1", "quick2"):
            item = Hang.from_parent(self, name=name)
            item.add_marker(pytest.mark.pexen(group="light", timeout=0.5))
            yield item

def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".hang":
        return HangFile.from_parent(parent, path=file_path)
'''
    )
    pytester.path.joinpath("x.hang").write_text("")
    pytester.makeini("[pytest]\npexen_groups =\n    light: workers=1 pool=thread\n")
    result = run("--pexen", timeout=60)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*Timeout: test exceeded its time limit of 0.5s*", "*in runtest*"])


SLEEPS_WITH_CHILD = '''
import os, subprocess, sys, time

def test_sleeps_{n}():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(os.path.join(os.path.dirname(__file__), "pids-{n}"), "w") as out:
        out.write(f"{{os.getpid()}} {{child.pid}}\\n")
    time.sleep(600)
'''


def test_killing_the_controller_ends_workers_and_their_tests(pytester, suite, start_controller, wait_for):
    suite(test_a=SLEEPS_WITH_CHILD.format(n=1), test_b=SLEEPS_WITH_CHILD.format(n=2))
    controller = start_controller("--pexen-workers=2")
    files = [pytester.path / "pids-1", pytester.path / "pids-2"]
    assert wait_for(lambda: all(f.exists() and f.read_text().endswith("\n") for f in files), 30)
    pids = [int(p) for f in files for p in f.read_text().split()]
    assert all(alive(pid) for pid in pids)
    controller.kill()
    controller.wait()
    assert wait_for(lambda: not any(alive(pid) for pid in pids), 10), [p for p in pids if alive(p)]


def test_first_ctrl_c_lets_running_tests_finish(pytester, suite, start_controller, wait_for):
    suite(
        test_c='''
        import os, time, pytest

        @pytest.mark.parametrize("n", range(4))
        def test_slow(n):
            open(os.path.join(os.path.dirname(__file__), f"started-{n}"), "w").close()
            time.sleep(1)
        '''
    )
    controller = start_controller("--pexen-workers=2", "-p", "no:cacheprovider")
    assert wait_for(lambda: len(list(pytester.path.glob("started-*"))) == 2, 30)
    controller.send_signal(signal.SIGINT)
    output = controller.communicate(timeout=30)[0].decode()
    assert controller.returncode == 2, output
    assert "no more tests start; running tests finish" in output
    assert "2 passed" in output
    assert "KeyboardInterrupt" in output
    assert len(list(pytester.path.glob("started-*"))) == 2


def test_second_ctrl_c_ends_running_tests_now(pytester, suite, start_controller, wait_for):
    suite(test_a=SLEEPS_WITH_CHILD.format(n=1))
    controller = start_controller("--pexen-workers=1", "-p", "no:cacheprovider")
    marker = pytester.path / "pids-1"
    assert wait_for(lambda: marker.exists() and marker.read_text().endswith("\n"), 30)
    pids = [int(p) for p in marker.read_text().split()]
    controller.send_signal(signal.SIGINT)
    time.sleep(0.5)
    controller.send_signal(signal.SIGINT)
    output = controller.communicate(timeout=30)[0].decode()
    assert controller.returncode == 2, output
    assert "ended by a second Ctrl-C" in output
    assert wait_for(lambda: not any(alive(pid) for pid in pids), 10)
