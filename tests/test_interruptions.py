"""Runs that stop early: a test's KeyboardInterrupt, pytest.exit(), SIGTERM/SIGHUP, a killed controller.

Whatever stops a run, every selected test is reported (ran, ended, or not
run), the summary is printed and the xUnit file is written.
"""

from __future__ import annotations

import signal
import xml.etree.ElementTree as ET

import pytest

SLOW_TESTS = '''
import os, time, pytest

HERE = os.path.dirname(__file__)


@pytest.mark.parametrize("n", range(6))
def test_slow(n):
    print(f"slow test {n} at work")
    open(os.path.join(HERE, f"started-{n}"), "w").close()
    time.sleep(30)
'''


def test_a_test_raising_keyboard_interrupt_stops_the_run_as_plain_pytest_does(suite, run):
    suite(
        test_kbi='''
        import pytest

        def test_stops():
            print("said before stopping")
            raise KeyboardInterrupt

        @pytest.mark.parametrize("n", range(3))
        def test_later(n):
            pass
        '''
    )
    result = run("--pexen", "--pexen-workers=1", "-rs")
    assert result.ret == 2
    result.stdout.fnmatch_lines(
        [
            "*said before stopping*",
            "*!!! KeyboardInterrupt !!!*",
            "*test_kbi.py:6: KeyboardInterrupt",
        ]
    )
    result.stdout.fnmatch_lines(["*not run: test_kbi.py::test_stops raised KeyboardInterrupt*"])
    result.stdout.no_fnmatch_line("*exited with code*")
    result.stdout.no_fnmatch_line("*_worker.py*")
    result.stderr.no_fnmatch_line("*Traceback*")
    result.assert_outcomes(errors=1)
    assert result.parseoutcomes()["blocked"] == 3


def test_keyboard_interrupt_in_a_fixture_names_its_phase(suite, run):
    suite(
        test_kbi_fixture='''
        import pytest

        @pytest.fixture
        def stops():
            raise KeyboardInterrupt

        def test_uses_it(stops):
            pass
        '''
    )
    result = run("--pexen", "--pexen-workers=1")
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*ERROR at setup of test_uses_it*", "*!!! KeyboardInterrupt !!!*"])


def test_pytest_exit_gives_back_the_tests_queued_behind_it(suite, run):
    # Short tests are fed to a worker in batches: those behind the exit
    # never start, and none of them may be reported as crashed.
    suite(
        test_exit_batch='''
        import pytest

        @pytest.mark.parametrize("n", range(200))
        def test_many(n):
            if n == 50:
                pytest.exit("enough", returncode=3)
        '''
    )
    result = run("--pexen", "--pexen-workers=1", "-p", "no:cacheprovider")
    assert result.ret == 3
    result.stdout.fnmatch_lines(["*Exit: enough*"])
    result.stdout.no_fnmatch_line("*crashed*")
    result.stdout.fnmatch_lines(["*50 passed*"])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_an_ending_signal_reports_every_test_and_writes_the_reports(
    pytester, suite, start_controller, wait_for, signum
):
    suite(test_s=SLOW_TESTS)
    controller = start_controller("--pexen-workers=2", "-p", "no:cacheprovider", "--pexen-xunit=out.xml", "-rs")
    assert wait_for(lambda: len(list(pytester.path.glob("started-*"))) == 2, 30)
    controller.send_signal(signum)
    # The tests sleep 30 s: ending within the timeout means they were ended.
    output = controller.communicate(timeout=20)[0].decode()
    name = signal.Signals(signum).name
    assert controller.returncode == 2, output
    assert f"Interrupted: the run was ended by {name}" in output
    assert output.count(f"ended while it ran: the run was ended by {name}") == 2, output
    assert output.count("Captured stdout until it was ended") == 2, output
    assert "ERROR at call of test_slow" in output
    assert f"not run: the run was ended by {name}" in output
    assert "2 errors, 4 blocked" in output
    cases = ET.parse(pytester.path / "out.xml").getroot().iter("testcase")
    assert len(list(cases)) == 6


def test_a_killed_controller_leaves_no_scratch_files_and_says_what_it_ended(
    pytester, suite, start_controller, wait_for
):
    suite(test_s=SLOW_TESTS)
    basetemp = pytester.path / "basetemp"
    controller = start_controller("--pexen-workers=2", "-p", "no:cacheprovider", f"--basetemp={basetemp}")
    assert wait_for(lambda: len(list(pytester.path.glob("started-*"))) == 2, 30)
    assert list(basetemp.glob("pexen-*")), "the pool keeps its scratch files under pytest's basetemp"
    controller.kill()
    output = controller.communicate(timeout=20)[0].decode()
    assert "its guardian ended 2 worker(s)" in output
    assert not list(basetemp.glob("pexen-*"))


THREAD_ITEMS = '''
import pytest


class Step(pytest.Item):
    pexen_threadsafe = True

    def runtest(self):
        if self.name == "interrupts":
            raise KeyboardInterrupt
        if self.name == "exits":
            pytest.exit("enough", returncode=3)

    def reportinfo(self):
        return self.path, 0, self.name


class Steps(pytest.File):
    def collect(self):
        for name in self.path.read_text().split():
            yield Step.from_parent(self, name=name)


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".steps":
        return Steps.from_parent(parent, path=file_path)


def pytest_pexen_groups(config):
    return {"default": "workers=1 pool=thread"}
'''


@pytest.mark.parametrize(
    "step, status, line",
    [("interrupts", 2, "*!!! KeyboardInterrupt !!!*"), ("exits", 3, "*Exit: enough*")],
)
def test_thread_groups_stop_like_process_groups(pytester, run, step, status, line):
    pytester.makeconftest(THREAD_ITEMS)
    pytester.path.joinpath("run.steps").write_text(f"first {step} after\n")
    result = run("--pexen", "-p", "no:cacheprovider", timeout=60)
    assert result.ret == status
    result.stdout.fnmatch_lines([line])
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1, outcomes  # "after" never runs
