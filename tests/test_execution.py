"""Running tests in workers: pytest's semantics kept, crashes contained."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

FIXTURE_SCOPES = '''
import os, pytest

LOG = os.path.join(os.path.dirname(__file__), "scopes.log")


def say(text):
    with open(LOG, "a") as log:
        log.write(f"{os.getpid()} {text}\\n")


@pytest.fixture(scope="session")
def sess():
    say("setup session")
    yield
    say("teardown session")


@pytest.fixture(scope="module")
def mod(request, sess):
    say(f"setup module {request.module.__name__}")
    yield
    say(f"teardown module {request.module.__name__}")


@pytest.fixture(scope="class")
def cls(mod):
    say("setup class")
    yield
    say("teardown class")


@pytest.fixture
def func(mod):
    say("setup function")
    yield
    say("teardown function")
'''


def scope_log(pytester: pytest.Pytester) -> dict[int, list[str]]:
    by_pid: dict[int, list[str]] = {}
    for line in (pytester.path / "scopes.log").read_text().splitlines():
        pid, text = line.split(" ", 1)
        by_pid.setdefault(int(pid), []).append(text)
    return by_pid


def test_fixture_scopes_set_up_once_per_worker_and_torn_down_in_order(pytester, suite, run):
    (pytester.path / "conftest.py").write_text(FIXTURE_SCOPES)
    suite(
        test_m1='''
        import pytest

        @pytest.mark.parametrize("n", range(3))
        def test_f(func, n):
            pass

        class TestC:
            def test_x(self, cls):
                pass

            def test_y(self, cls):
                pass
        ''',
        test_m2='''
        def test_g(func):
            pass
        ''',
    )
    run("--pexen", "--pexen-workers=1").assert_outcomes(passed=6)
    ((log),) = scope_log(pytester).values()
    assert log.count("setup session") == log.count("teardown session") == 1
    assert log[-1] == "teardown session"
    assert log.count("setup module test_m1") == 1
    assert log.count("setup class") == 1
    assert log.count("setup function") == log.count("teardown function") == 4
    # Module teardown happens before the next module is set up.
    assert log.index("teardown module test_m1") < log.index("setup module test_m2")
    assert log.index("teardown class") < log.index("teardown module test_m1")


def test_fixture_teardown_is_complete_with_two_workers(pytester, suite, run):
    (pytester.path / "conftest.py").write_text(FIXTURE_SCOPES)
    suite(
        test_m='''
        import time, pytest

        @pytest.mark.parametrize("n", range(6))
        def test_f(func, n):
            time.sleep(0.05)
        '''
    )
    run("--pexen", "--pexen-workers=2").assert_outcomes(passed=6)
    logs = scope_log(pytester)
    assert len(logs) == 2
    for log in logs.values():
        assert log[0] == "setup session" and log[-1] == "teardown session"
        assert log.count("setup session") == 1
        assert log.count("setup function") == log.count("teardown function")


def test_module_fixture_teardown_error_is_reported(suite, run):
    suite(
        test_bad_teardown='''
        import pytest

        @pytest.fixture(scope="module")
        def res():
            yield
            raise RuntimeError("teardown broke")

        def test_a(res):
            pass
        ''',
        test_z='''
        def test_later():
            pass
        ''',
    )
    result = run("--pexen", "--pexen-workers=1")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_a*", "*RuntimeError: teardown broke*"])


def test_outcomes_match_plain_pytest(suite, run):
    suite(
        test_mix='''
        import sys, warnings, pytest

        def test_pass():
            print("to stdout")

        def test_fail():
            print("captured text")
            assert 1 == 2

        @pytest.fixture
        def broken():
            raise ValueError("setup broke")

        def test_error(broken):
            pass

        @pytest.mark.skip(reason="skip me")
        def test_skip():
            pass

        @pytest.mark.xfail(reason="known")
        def test_xfail():
            assert False

        @pytest.mark.xfail(reason="fixed")
        def test_xpass():
            pass

        @pytest.mark.xfail(strict=True)
        def test_xpass_strict():
            pass

        def test_imperative_skip():
            pytest.skip("not today")

        def test_warns():
            warnings.warn(UserWarning("careful"))

        def test_monkeypatch(monkeypatch):
            monkeypatch.setattr(sys, "platform", "nowhere")
            assert sys.platform == "nowhere"

        def test_monkeypatch_undone():
            assert sys.platform != "nowhere"

        def test_capsys(capsys):
            print("hello")
            assert capsys.readouterr().out == "hello\\n"

        def test_tmp_path(tmp_path):
            assert tmp_path.is_dir()
        '''
    )
    plain = run("-rA")
    pexen = run("--pexen", "--pexen-workers=2", "-rA")
    assert pexen.parseoutcomes() == plain.parseoutcomes()
    assert plain.parseoutcomes() == {
        "passed": 6, "failed": 2, "errors": 1, "skipped": 2, "xfailed": 1, "xpassed": 1, "warnings": 1,
    }
    pexen.stdout.fnmatch_lines(["*Captured stdout call*", "captured text"])
    pexen.stdout.fnmatch_lines(["*ValueError: setup broke*"])
    pexen.stdout.fnmatch_lines(["*warnings summary*", "test_mix.py::test_warns", "*UserWarning: careful*"])


def test_verbose_and_quiet_terminal_output(suite, run):
    suite(test_v="def test_one():\n    pass\n\ndef test_two():\n    pass\n")
    verbose = run("--pexen", "-v")
    verbose.stdout.fnmatch_lines_random(["*test_v.py::test_one PASSED*", "*test_v.py::test_two PASSED*"])
    quiet = run("--pexen", "-q")
    quiet.stdout.fnmatch_lines(["..*", "2 passed*"])


def test_junitxml_from_pytest_works(pytester, suite, run):
    suite(
        test_j='''
        def test_ok():
            pass

        def test_bad():
            assert False
        '''
    )
    run("--pexen", "--junitxml=out.xml").assert_outcomes(passed=1, failed=1)
    cases = ET.parse(pytester.path / "out.xml").getroot().iter("testcase")
    result = {case.get("name"): [child.tag for child in case] for case in cases}
    assert result == {"test_ok": [], "test_bad": ["failure"]}


def test_exitfirst_stops_dispatching(suite, run, events):
    suite(
        test_x='''
        import time, pytest

        def test_fails():
            assert False

        @pytest.mark.parametrize("n", range(20))
        def test_slow(n):
            time.sleep(0.1)
        '''
    )
    result = run("--pexen", "--pexen-workers=2", "-x")
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 1
    assert outcomes.get("passed", 0) < 5
    result.stdout.fnmatch_lines(["*stopping after 1 failures*"])
    assert len(events().names()) < 6


def test_maxfail_counts_failures(suite, run):
    suite(
        test_mf='''
        import pytest

        @pytest.mark.parametrize("n", range(10))
        def test_bad(n):
            assert False
        '''
    )
    result = run("--pexen", "--pexen-workers=1", "--maxfail=3")
    assert result.parseoutcomes()["failed"] == 3


@pytest.mark.parametrize(
    "body, words",
    [
        ("os._exit(3)", "exited with code 3"),
        ("os.kill(os.getpid(), signal.SIGKILL)", "killed by signal 9 (SIGKILL)"),
        ("ctypes.string_at(0)", "killed by signal 11 (SIGSEGV)"),
    ],
    ids=["os_exit", "sigkill", "segfault"],
)
def test_worker_crash_costs_only_its_test(suite, run, body, words):
    suite(
        test_crash=f'''
        import ctypes, os, signal, pytest

        @pytest.mark.pexen(provides=["crashy"])
        def test_crash():
            {body}

        @pytest.mark.pexen(requires=["crashy"])
        def test_dependent():
            pass

        @pytest.mark.parametrize("n", range(6))
        def test_others(n):
            pass
        '''
    )
    result = run("--pexen", "--pexen-workers=2")
    result.assert_outcomes(passed=6, errors=1)
    assert result.parseoutcomes()["blocked"] == 1
    result.stdout.fnmatch_lines(
        [
            f"*ERROR at call of test_crash*",
            f"*worker crashed while running this test, in its call phase: worker gw* {words}*",
            "BLOCKED test_crash.py::test_dependent - requires 'crashy', provided by test_crash.py::test_crash which crashed",
        ]
    )


def test_pytest_exit_in_a_test_ends_the_run(suite, run):
    suite(
        test_exit='''
        import pytest

        def test_first():
            pytest.exit("enough", returncode=3)

        def test_second():
            pass
        '''
    )
    result = run("--pexen", "--pexen-workers=1")
    assert result.ret == 3
    result.stdout.fnmatch_lines(["*Exit: enough*"])


def test_collect_only_runs_nothing(suite, run, events):
    suite(test_c="def test_a():\n    pass\n")
    result = run("--pexen", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["test_c.py::test_a"])
    assert events().names() == []


def test_collection_error_interrupts(suite, run):
    suite(test_ok="def test_a():\n    pass\n", test_broken="import nonexistent_module_xyz\n")
    result = run("--pexen")
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*Interrupted: 1 error during collection*"])


def test_without_pexen_nothing_changes(suite, run, events):
    suite(
        test_plain='''
        import pytest

        @pytest.mark.pexen(requires=["later"])
        def test_first():
            pass

        @pytest.mark.pexen(provides=["later"])
        def test_second():
            pass
        '''
    )
    run().assert_outcomes(passed=2)
    assert events().names() == ["test_first", "test_second"]
    assert len(events().pids()) == 1


def test_pexen_is_loaded_through_its_entry_point(pytester):
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*pytest-pexen*", "*--pexen *", "*--pexen-workers=N|auto*", "*--pexen-no-pull*"])


def test_values_that_cannot_be_pickled_travel_as_repr(suite, run):
    suite(
        test_unpicklable='''
        def test_property(record_property):
            record_property("callback", lambda: None)
        '''
    )
    run("--pexen", "--junitxml=out.xml").assert_outcomes(passed=1)


@pytest.mark.skipif(not hasattr(pytest, "Subtests"), reason="pytest < 9 has no built-in subtests")
def test_failed_subtests_fail_their_test(suite, run):
    suite(
        test_sub='''
        def test_with_subtests(subtests):
            for i in range(3):
                with subtests.test(i=i):
                    assert i != 1
        '''
    )
    plain = run()
    pexen = run("--pexen")
    assert pexen.parseoutcomes() == plain.parseoutcomes()
    pexen.stdout.fnmatch_lines(["*contains 1 failed subtest*"])


def test_late_teardown_error_survives_plugins_reading_funcargs(extend_conftest, suite, run):
    extend_conftest(
        """
        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_makereport(item, call):
            report = yield
            item.funcargs.get("anything")
            return report
        """
    )
    suite(
        test_late='''
        import time, pytest

        @pytest.fixture(scope="module")
        def resource():
            yield
            raise RuntimeError("module teardown failed")

        def test_a(resource):
            time.sleep(0.2)
        '''
    )
    result = run("--pexen", "--pexen-workers=1")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*RuntimeError: module teardown failed*"])


def test_worker_dying_after_its_last_test_is_reported(suite, run):
    suite(
        test_dies_late='''
        import os, time, pytest

        @pytest.fixture(scope="module")
        def resource():
            yield
            os._exit(3)

        def test_a(resource):
            time.sleep(0.2)
        '''
    )
    result = run("--pexen", "--pexen-workers=1")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*worker crashed after this test*exited with code 3*"])


def test_workers_share_one_basetemp(pytester, suite, run):
    suite(
        test_tmp='''
        import time, pytest

        @pytest.mark.parametrize("n", range(4))
        def test_file_survives(tmp_path, n):
            path = tmp_path / "data.txt"
            path.write_text("hello")
            time.sleep(0.3)
            assert path.read_text() == "hello"
        '''
    )
    run("--pexen", "--pexen-workers=2", f"--basetemp={pytester.path / 'bt'}").assert_outcomes(passed=4)


def test_suite_properties_reach_junitxml(pytester, suite, run):
    suite(
        test_prop='''
        def test_a(record_testsuite_property):
            record_testsuite_property("build", "42")
        '''
    )
    run("--pexen", "--junitxml=out.xml").assert_outcomes(passed=1)
    properties = ET.parse(pytester.path / "out.xml").getroot().iter("property")
    assert [(p.get("name"), p.get("value")) for p in properties] == [("build", "42")]


def test_tests_may_use_multiprocessing(suite, run):
    suite(
        test_mp='''
        import multiprocessing

        def square(x):
            return x * x

        def test_pool():
            with multiprocessing.get_context("fork").Pool(2) as pool:
                assert pool.map(square, range(4)) == [0, 1, 4, 9]
        '''
    )
    run("--pexen").assert_outcomes(passed=1)


def test_processes_a_test_forks_get_signals_as_plain_pytest_leaves_them(suite, run):
    # The worker catches SIGTERM, SIGUSR1 and SIGUSR2; a child a test forks
    # does not: it dies of each, as under plain pytest, even sent at once.
    suite(
        test_fork='''
        import os
        import signal
        import time

        import pytest

        @pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2])
        def test_child_dies_of(signum):
            pid = os.fork()
            if pid == 0:
                if signal.getsignal(signum) != signal.SIG_DFL:
                    os._exit(3)
                time.sleep(60)
                os._exit(0)
            os.kill(pid, signum)
            _, status = os.waitpid(pid, 0)
            assert os.WIFSIGNALED(status), os.waitstatus_to_exitcode(status)
            assert os.WTERMSIG(status) == signum

        def test_no_signal_stays_held_back():
            assert not signal.pthread_sigmask(signal.SIG_BLOCK, set())
        '''
    )
    run().assert_outcomes(passed=4)
    run("--pexen").assert_outcomes(passed=4)


def test_processes_a_thread_pool_task_forks_get_signals_as_plain_pytest_leaves_them(pytester, run):
    # In a thread group, tasks run in the controller, which catches SIGINT,
    # SIGTERM and SIGHUP during the run; a child such a task forks does not.
    pytester.makeconftest(
        """
        import os
        import signal
        import time

        import pytest

        class Forks(pytest.Item):
            pexen_threadsafe = True

            def runtest(self):
                # What plain pytest leaves: SIGINT raises KeyboardInterrupt, the others kill.
                signum = getattr(signal, self.name)
                pid = os.fork()
                if pid == 0:
                    if signal.getsignal(signum) not in (signal.SIG_DFL, signal.default_int_handler):
                        os._exit(3)
                    if signum == signal.SIGINT:
                        os._exit(0)
                    time.sleep(60)
                    os._exit(4)
                if signum != signal.SIGINT:
                    os.kill(pid, signum)
                _, status = os.waitpid(pid, 0)
                if signum == signal.SIGINT:
                    assert os.waitstatus_to_exitcode(status) == 0
                else:
                    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signum, status

            def reportinfo(self):
                return self.path, 0, self.name

        class ForksFile(pytest.File):
            def collect(self):
                for name in ("SIGINT", "SIGTERM", "SIGHUP"):
                    item = Forks.from_parent(self, name=name)
                    item.add_marker(pytest.mark.pexen(group="light"))
                    yield item

        def pytest_collect_file(file_path, parent):
            if file_path.suffix == ".forks":
                return ForksFile.from_parent(parent, path=file_path)
        """
    )
    pytester.path.joinpath("x.forks").write_text("")
    pytester.makeini("[pytest]\npexen_groups =\n    light: workers=2 pool=thread\n")
    run("--pexen").assert_outcomes(passed=3)


def test_unpicklable_values_inside_named_tuples(suite, run):
    suite(
        test_named='''
        import collections

        Pair = collections.namedtuple("Pair", "left right")

        def test_property(record_property):
            record_property("pair", Pair(lambda: None, 1))
        '''
    )
    run("--pexen").assert_outcomes(passed=1)


def test_a_crash_report_carries_the_output_so_far(suite, run):
    suite(
        test_talks="""
        import os, sys

        def test_talks_then_dies():
            print("about to go")
            sys.stderr.write("last words\\n")
            sys.stdout.flush()
            os._exit(7)
        """
    )
    result = run("--pexen")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*exited with code 7*",
            "*Captured stdout until the crash*",
            "about to go",
            "*Captured stderr until the crash*",
            "last words",
        ]
    )


@pytest.mark.parametrize("capture", ["fd", "sys", "tee-sys"])
def test_streams_bound_at_collection_stay_usable(suite, run, capture):
    suite(
        test_streams="""
        import logging, sys

        STDOUT = sys.stdout
        HANDLER = logging.StreamHandler(sys.stderr)

        def test_same_object():
            assert sys.stdout is STDOUT

        def test_write():
            STDOUT.write("hello\\n")
            HANDLER.emit(logging.makeLogRecord({"msg": "logged"}))
        """
    )
    run("--pexen", "--pexen-workers=1", f"--capture={capture}").assert_outcomes(passed=2)


def test_output_of_tests_does_not_mix_between_workers(suite, run):
    suite(
        test_mix="""
        import os, sys, pytest

        @pytest.mark.parametrize("n", range(40))
        def test_tagged(n):
            print(f"tag-{n}-out")
            sys.stderr.write(f"tag-{n}-err\\n")
            os.write(1, f"tag-{n}-fd\\n".encode())
            assert False
        """
    )
    result = run("--pexen", "--pexen-workers=2")
    result.assert_outcomes(failed=40)
    sections = result.stdout.str().split("_ test_tagged[")[1:]
    assert len(sections) == 40
    for section in sections:
        n = section.split("]", 1)[0]
        tags = {word for word in section.split() if word.startswith("tag-")}
        assert tags == {f"tag-{n}-out", f"tag-{n}-err", f"tag-{n}-fd"}, (n, tags)
