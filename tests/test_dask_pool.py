"""Groups with pool=dask: the same run, its tests on the workers of a Dask cluster.

Most tests share one local cluster (two single-threaded worker processes,
each with a nanny that restarts it if it dies) and give its address with
--pexen-dask; two let pexen start a cluster of its own, and the usage
errors need none.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from typing import Any, Iterator

import psutil
import pytest

#: Where a test finds the Dask worker it runs on: the parent of its host process
#: (whose forks, the worker's shim and runner, have the same command line).
DASK_WORKER_OF_THIS_TEST = '''
import psutil

def dask_worker():
    process = psutil.Process()
    while "pytest_pexen._pools.dask_host" in " ".join(process.parent().cmdline()):
        process = process.parent()
    return process.parent()
'''


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", memory_limit=0
    ) as cluster:
        yield cluster


@pytest.fixture
def dask(dask_cluster: Any) -> str:
    """The shared cluster's address, once both its workers are there (a test may have killed one)."""
    distributed = pytest.importorskip("distributed")
    with distributed.Client(dask_cluster.scheduler_address, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
    return f"--pexen-dask={dask_cluster.scheduler_address}"


def dask_group(pytester: pytest.Pytester, workers: int = 2) -> None:
    pytester.makeini(f"[pytest]\npexen_groups = default: workers={workers} pool=dask\n")


def statuses(result: pytest.RunResult) -> dict[str, str]:
    """Each test's word in the verbose output (PASSED, FAILED, ERROR, BLOCKED, ...)."""
    found = {}
    for line in result.outlines:
        match = re.match(r"^(\S+::\S+) ([A-Z]+)\b", line)
        if match:
            found.setdefault(match[1], "")
            found[match[1]] += match[2] + " "
    return found


REALISTIC_SUITE = {
    "test_app": '''
    import warnings
    import pytest
    import pytest_pexen

    @pytest.fixture(scope="module")
    def server():
        yield {"port": 8080}

    @pytest.fixture
    def broken():
        raise RuntimeError("no database")

    @pytest.fixture
    def leaky():
        yield
        raise RuntimeError("teardown went wrong")

    @pytest.mark.pexen(provides=["built"])
    def test_build(server):
        print("building on", server["port"])

    @pytest.mark.pexen(requires=["built"], claims=["db"])
    def test_migrate():
        pass

    @pytest.mark.pexen(requires=["built"], claims=["db"])
    def test_seed():
        assert 1 + 1 == 3, "wrong sum"

    @pytest.mark.pexen(provides=["deployed"])
    def test_deploy():
        raise OSError("host unreachable")

    @pytest.mark.pexen(requires=["deployed"])
    def test_smoke():
        pass

    @pytest.mark.skip(reason="not on this platform")
    def test_skipped():
        pass

    @pytest.mark.xfail(reason="known bug")
    def test_known_bug():
        assert False

    @pytest.mark.xfail(reason="fixed meanwhile")
    def test_fixed():
        pass

    def test_setup_error(broken):
        pass

    def test_teardown_error(leaky):
        pass

    def test_warns():
        warnings.warn(UserWarning("deprecated thing"))
        pytest_pexen.warn("disk nearly full")

    class TestAccounts:
        @pytest.mark.parametrize("n", range(4))
        def test_balance(self, n, server):
            assert n != 3
    ''',
}


def test_outcomes_on_dask_workers_are_those_of_the_local_process_pool(pytester, suite, run, dask):
    suite(**REALISTIC_SUITE)
    local = run("--pexen", "--pexen-workers=2", "-v")
    dask_group(pytester)
    remote = run("--pexen", dask, "-v")
    assert statuses(remote) == statuses(local)
    assert remote.parseoutcomes() == local.parseoutcomes()
    assert remote.ret == local.ret == 1
    assert "TestAccounts::test_balance[3] FAILED" in remote.stdout.str()
    remote.stdout.fnmatch_lines(
        [
            "*deprecated thing*",
            "WARNED test_app.py::test_warns - disk nearly full",
            "BLOCKED test_app.py::test_smoke - requires 'deployed', provided by test_app.py::test_deploy which failed",
        ]
    )


@pytest.mark.slow
def test_a_test_that_kills_its_dask_worker_is_crashed_and_the_run_goes_on(pytester, suite, run, dask):
    suite(
        test_kill=DASK_WORKER_OF_THIS_TEST
        + textwrap.dedent(
            '''
        import time
        import pytest

        def test_kills_its_dask_worker():
            dask_worker().kill()
            time.sleep(60)

        @pytest.mark.parametrize("n", range(6))
        def test_others(n):
            time.sleep(0.2)
        '''
        )
    )
    dask_group(pytester)
    result = run("--pexen", dask, "-v")
    assert statuses(result)["test_kill.py::test_kills_its_dask_worker"] == "CRASHED "
    result.stdout.fnmatch_lines(["*its Dask worker at tcp://* was lost*"])
    result.assert_outcomes(passed=6, errors=1)


def test_a_worker_process_that_dies_on_a_dask_worker_is_replaced_there(pytester, suite, run, dask):
    suite(
        test_exit='''
        import os
        import pytest

        def test_dies():
            print("about to go")
            os._exit(3)

        @pytest.mark.parametrize("n", range(4))
        def test_after(n):
            assert os.environ["PYTEST_XDIST_WORKER"].startswith("dask")
        '''
    )
    dask_group(pytester, workers=1)
    result = run("--pexen", dask, "-v")
    result.stdout.fnmatch_lines(
        [
            "*worker crashed while running this test, in its call phase: worker dask*-gw* exited with code 3*",
            "*about to go*",
        ]
    )
    result.assert_outcomes(passed=4, errors=1)


def test_a_host_that_ends_costs_its_running_test_and_another_takes_its_place(pytester, suite, run, dask):
    suite(
        test_host='''
        import time
        import psutil
        import pytest

        def test_ends_its_host():
            process = psutil.Process()
            while "pytest_pexen._pools.dask_host" in " ".join(process.parent().cmdline()):
                process = process.parent()
            process.kill()
            time.sleep(60)

        @pytest.mark.parametrize("n", range(4))
        def test_after(n):
            pass
        '''
    )
    dask_group(pytester, workers=1)
    result = run("--pexen", dask, "-v")
    result.stdout.fnmatch_lines(
        [
            "*its host process on the Dask worker at tcp://* ended, its output:",
            # Its pool's guardian ended the worker and what the test started.
            "*its guardian ended 1 worker(s)*",
        ]
    )
    assert statuses(result)["test_host.py::test_ends_its_host"] == "CRASHED "
    result.assert_outcomes(passed=4, errors=1)


def test_a_test_past_its_time_limit_on_a_dask_worker_is_ended_by_the_watchdog(pytester, suite, run, dask):
    released = pytester.path / "released"
    suite(
        test_hang=f'''
        import time
        import pytest

        @pytest.fixture
        def resource():
            yield
            open({str(released)!r}, "w").close()

        @pytest.mark.pexen(timeout=1)
        def test_hangs(resource):
            time.sleep(60)

        def test_after():
            pass
        '''
    )
    dask_group(pytester, workers=1)
    result = run("--pexen", dask, "-v", "-rA")
    result.stdout.fnmatch_lines(
        [
            "*test_hangs TIMEOUT*",
            "*pexen watchdog: stacks at the deadline*",
            "*in test_hangs*",
        ]
    )
    result.assert_outcomes(passed=1, errors=1)
    assert released.exists()  # interrupted, its fixtures were torn down


def test_dependencies_and_locks_hold_across_dask_workers(pytester, suite, run, events, dask):
    suite(
        test_order='''
        import os, time
        import pytest

        @pytest.mark.pexen(provides=["image"])
        def test_build():
            time.sleep(0.3)

        @pytest.mark.pexen(requires=["image"])
        def test_boot():
            pass

        @pytest.mark.pexen(claims=["lab"])
        def test_lab_a():
            time.sleep(0.3)

        @pytest.mark.pexen(claims=["lab"])
        def test_lab_b():
            time.sleep(0.3)

        @pytest.mark.parametrize("n", range(4))
        def test_free(n):
            time.sleep(0.1)
        '''
    )
    dask_group(pytester)
    # -W error: a host must not import pytest-pexen's plugin before pytest
    # does (pytest warns that it cannot rewrite it, and the host fails).
    result = run("--pexen", dask, "-W", "error")
    result.assert_outcomes(passed=8)
    seen = events()
    assert seen.start("test_boot") >= seen.end("test_build")
    first, second = sorted(["test_lab_a", "test_lab_b"], key=seen.start)
    assert seen.start(second) >= seen.end(first)
    assert len(seen.pids()) == 2  # both Dask workers ran tests


def test_a_dask_worker_that_collects_other_tests_is_a_clear_error(pytester, suite, run, dask, monkeypatch):
    suite(
        test_where='''
        import os

        if os.environ.get("ONLY_ON_THE_CONTROLLER"):
            def test_here_only():
                pass

        def test_everywhere():
            pass
        '''
    )
    dask_group(pytester)
    # The cluster's workers were started without it: they collect one test less.
    monkeypatch.setenv("ONLY_ON_THE_CONTROLLER", "1")
    result = run("--pexen", dask)
    result.stdout.fnmatch_lines(
        [
            "*Interrupted: group 'default' (pool=dask, --pexen-dask): the Dask cluster at tcp://* "
            "cannot run these tests: the Dask worker(s) at tcp://*, tcp://*: it collected other tests "
            "than the controller in *: 1 test(s) the controller collected are missing here: "
            "test_where.py::test_here_only*",
        ]
    )
    assert result.parseoutcomes() == {"blocked": 2}


def test_coverage_of_a_local_group_survives_a_dask_group_after_it(pytester, suite, run, dask):
    pytest.importorskip("pytest_cov")
    pytester.makepyfile(mod="def f(x):\n    return x + 1\n")
    suite(
        test_local='''
        import pytest
        import mod

        @pytest.mark.pexen(group="local")
        def test_local():
            assert mod.f(0) == 1
        ''',
        test_remote="def test_remote():\n    pass\n",
    )
    pytester.makeini("[pytest]\npexen_groups =\n    local: workers=1 pool=process\n    default: workers=2 pool=dask\n")
    result = run("-p", "pytest_cov.plugin", "--pexen", dask, "--cov=mod", "--cov-report=term")
    result.assert_outcomes(passed=2)
    # Measured in the local worker, saved at its end, not erased by a host.
    result.stdout.re_match_lines([r"mod.py\s+2\s+0\s+100%"])


@pytest.mark.slow
def test_without_an_address_pexen_runs_a_local_cluster_for_the_run(pytester, suite, run, tmp_path):
    pytest.importorskip("distributed")
    suite(
        test_local=DASK_WORKER_OF_THIS_TEST
        + textwrap.dedent(
            f'''
        import os
        import pytest

        @pytest.mark.parametrize("n", range(6))
        def test_where(n):
            count = os.environ["PYTEST_XDIST_WORKER_COUNT"]
            line = f"{{os.environ['PYTEST_XDIST_WORKER']}} {{dask_worker().pid}} {{count}}\\n"
            with open({str(tmp_path / "seen")!r}, "a") as file:
                file.write(line)
        '''
        )
    )
    dask_group(pytester)
    result = run("--pexen")
    result.assert_outcomes(passed=6)
    seen = {tuple(line.split()) for line in (tmp_path / "seen").read_text().splitlines()}
    workers = {worker for worker, _, _ in seen}
    assert len(workers) == 2 and all(worker.startswith("dask") for worker in workers)
    assert {count for _, _, count in seen} == {"2"}  # the group's workers, as xdist counts them
    # The cluster lived for the run only.
    assert not any(psutil.pid_exists(int(pid)) for _, pid, _ in seen)


@pytest.mark.slow
@pytest.mark.parametrize(
    "signum, closing",
    [
        # Ctrl-C at the terminal: running tests finish.
        (signal.SIGINT, ["BLOCKED*not run: the run was interrupted (Ctrl-C)", "2 passed, 4 blocked"]),
        # A CI runner cancelling the job: running tests are ended, with what they printed.
        (
            signal.SIGTERM,
            ["ended while it ran: the run was ended by SIGTERM", "INTERRUPTED test_slow.py::*", "2 errors, 4 blocked"],
        ),
    ],
    ids=["SIGINT", "SIGTERM"],
)
def test_a_signal_to_the_process_group_is_the_controllers_with_a_local_cluster(
    pytester, suite, tmp_path, wait_for, signum, closing
):
    pytest.importorskip("distributed")
    started = tmp_path / "started"
    suite(
        test_slow=f'''
        import time
        import pytest

        @pytest.mark.parametrize("n", range(6))
        def test_slow(n):
            with open({str(started)!r}, "a") as file:
                file.write("started\\n")
            time.sleep(2)
        '''
    )
    dask_group(pytester)
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    command = [sys.executable, "-m", "pytest", "-p", "pytest_pexen._plugin", "--pexen", "-p", "no:cacheprovider", "-rA"]
    # A session of its own: the signal goes to its process group (the local
    # cluster's Dask workers too) as a terminal's or a CI runner's would.
    controller = subprocess.Popen(
        command, cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        assert wait_for(lambda: started.exists() and len(started.read_text().split()) == 2, 60)
        os.killpg(controller.pid, signum)
        output, _ = controller.communicate(timeout=60)
    finally:
        if controller.poll() is None:
            os.killpg(controller.pid, signal.SIGKILL)
            controller.wait()
    lines = output.decode().splitlines()
    pytest.LineMatcher(lines).fnmatch_lines([f"*{line}*" for line in closing])
    assert not any("CRASHED" in line for line in lines), lines


BLOCK_DISTRIBUTED = '''
import sys

class NotInstalled:
    """Finds distributed nowhere, as on a machine without the dask extra."""

    def find_spec(self, name, path=None, target=None):
        if name == "distributed" or name.startswith("distributed."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
'''


def test_without_the_dask_extra_a_dask_group_is_a_usage_error_naming_it(pytester, suite, run):
    suite(test_one="def test_one():\n    pass\n")
    pytester.makepyfile(block_distributed=BLOCK_DISTRIBUTED)
    dask_group(pytester)
    result = run("-p", "block_distributed", "--pexen")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert (
        "ERROR: ini pexen_groups: group 'default' runs on Dask (pool=dask), which needs the "
        "distributed package; install it with: pip install 'pytest-pexen[dask]'"
    ) in result.stderr.str()


def test_a_dask_address_with_no_group_on_dask_is_a_usage_error(pytester, suite, run):
    suite(test_one="def test_one():\n    pass\n")
    result = run("--pexen", "--pexen-dask=tcp://lab:8786")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no group has it*'default: workers=8 pool=dask'*"])


def test_a_test_added_during_the_run_cannot_go_to_a_dask_group(pytester, suite, run, extend_conftest, dask):
    suite(
        test_mixed="""
        import pytest

        @pytest.mark.pexen(group="local")
        def test_local():
            pass

        def test_remote():
            pass
        """
    )
    pytester.makeini("[pytest]\npexen_groups =\n    local: workers=1\n    default: workers=2 pool=dask\n")
    extend_conftest(
        """
        import pytest_pexen

        def pytest_pexen_task_finished(task):
            if task.name == "test_local":
                return pytest_pexen.task("later", lambda: None)
        """
    )
    result = run("--pexen", dask)
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*test_mixed.py::test_local::later: group 'default' runs on Dask, whose hosts collect the suite themselves*"]
    )
