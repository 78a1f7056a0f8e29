"""Tests that use processes the way system tests do: fork, setsid, wait, their parent.

A worker is a shim process (its group's leader and subreaper) and the runner
it forked; these tests check what that means for the tests it runs.
"""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    "how",
    ["return", "raise RuntimeError('in the child')"],
    ids=["returns", "raises"],
)
def test_a_forked_child_returning_into_pytest_is_an_error_and_the_run_goes_on(suite, run, how):
    suite(
        test_fork=f'''
        import os, pytest

        def test_forks():
            pid = os.fork()
            if pid == 0:
                {how}
            os.waitpid(pid, 0)

        @pytest.mark.parametrize("n", range(20))
        def test_after(n):
            pass
        '''
    )
    result = run("--pexen", "--pexen-workers=2")
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_forks*",
            "*a process this test forked (pid *) returned into the test runner instead of ending*os._exit()*",
        ]
    )
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.assert_outcomes(passed=21, errors=1)


def test_a_child_forked_by_a_fixture_is_caught_too(suite, run):
    suite(
        test_fork_fixture='''
        import os, pytest

        @pytest.fixture
        def forks():
            pid = os.fork()
            yield
            if pid:
                os.waitpid(pid, 0)

        def test_uses_it(forks):
            pass

        def test_next():
            pass
        '''
    )
    result = run("--pexen", "--pexen-workers=1")
    result.stdout.fnmatch_lines(["*returned into the test runner instead of ending*"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")
    result.assert_outcomes(passed=2, errors=1)


def test_a_test_may_start_a_new_session(suite, run):
    suite(
        test_setsid='''
        import os

        def test_setsid_itself():
            os.setsid()
            assert os.getsid(0) == os.getpid()

        def test_child_setsid():
            pid = os.fork()
            if pid == 0:
                os.setsid()
                os._exit(0)
            assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        '''
    )
    run("--pexen", "--pexen-workers=1").assert_outcomes(passed=2)


def test_wait_sees_only_the_tests_own_children(suite, run):
    suite(
        test_wait='''
        import os, time

        def test_leaves_an_orphan():
            child = os.fork()
            if child == 0:  # the child forks a grandchild and leaves
                if os.fork() == 0:
                    time.sleep(0.2)
                os._exit(0)
            os.waitpid(child, 0)

        def test_waits_for_its_child():
            time.sleep(0.5)  # the orphan has exited by now
            pid = os.fork()
            if pid == 0:
                os._exit(7)
            reaped, status = os.wait()
            assert (reaped, os.waitstatus_to_exitcode(status)) == (pid, 7)
        '''
    )
    run("--pexen", "--pexen-workers=1").assert_outcomes(passed=2)


def test_a_test_sending_itself_sigint_gets_keyboard_interrupt(suite, run):
    suite(
        test_self='''
        import os, signal, pytest

        def test_interrupts_itself():
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), signal.SIGINT)
                signal.sigtimedwait([], 5)
        '''
    )
    run("--pexen", "--pexen-workers=1").assert_outcomes(passed=1)


def test_a_test_that_signals_its_parent_does_not_end_the_run(suite, run):
    suite(
        test_parent='''
        import os, signal

        def test_signals_parent():
            os.kill(os.getppid(), signal.SIGTERM)
            signal.sigtimedwait([], 5)

        def test_after():
            pass
        '''
    )
    result = run("--pexen", "--pexen-workers=1")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*worker crashed while running this test*killed by signal 15 (SIGTERM)*"])


@pytest.mark.parametrize("phase", ["setup", "teardown"])
def test_a_crash_names_the_phase_it_happened_in(suite, run, phase):
    before, after = ("os._exit(5)", "") if phase == "setup" else ("", "os._exit(5)")
    suite(
        test_phase=f'''
        import os, pytest

        @pytest.fixture
        def dies():
            {before or "pass"}
            yield
            {after or "pass"}

        def test_it(dies):
            pass
        '''
    )
    result = run("--pexen", "--pexen-workers=1")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*ERROR at {phase} of test_it*",
            f"*worker crashed while running this test, in its {phase} phase: worker gw* exited with code 5*",
        ]
    )
