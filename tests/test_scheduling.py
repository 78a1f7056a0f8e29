"""Order, blocking and selection in real ``pytest --pexen`` sessions."""

from __future__ import annotations


def test_requires_orders_by_timestamps(suite, run, events):
    suite(
        test_chain='''
        import time, pytest

        @pytest.mark.pexen(requires=["built"])
        def test_use():
            pass

        @pytest.mark.pexen(provides=["built"])
        def test_build():
            time.sleep(0.3)

        def test_free():
            time.sleep(0.3)
        '''
    )
    result = run("--pexen", "--pexen-workers=2")
    result.assert_outcomes(passed=3)
    log = events()
    assert log.start("test_use") >= log.end("test_build")
    # The free test ran beside the provider, not after it.
    assert log.start("test_free") < log.end("test_build")


def test_after_waits_for_a_failed_provider(suite, run, events):
    suite(
        test_after='''
        import time, pytest

        @pytest.mark.pexen(after=["work"])
        def test_cleanup():
            pass

        @pytest.mark.pexen(provides=["work"])
        def test_work():
            time.sleep(0.2)
            assert False
        '''
    )
    result = run("--pexen", "--pexen-workers=2")
    result.assert_outcomes(passed=1, failed=1)
    log = events()
    assert log.start("test_cleanup") >= log.end("test_work")


def test_failed_provider_blocks_dependents_with_reason(suite, run, events):
    suite(
        test_block='''
        import pytest

        @pytest.mark.pexen(provides=["image"])
        def test_build():
            assert False

        @pytest.mark.pexen(requires=["image"], provides=["service"])
        def test_deploy():
            pass

        @pytest.mark.pexen(requires=["service"])
        def test_check():
            pass
        '''
    )
    result = run("--pexen")
    result.assert_outcomes(failed=1)
    assert result.parseoutcomes()["blocked"] == 2
    result.stdout.fnmatch_lines(
        [
            "BLOCKED test_block.py::test_deploy - requires 'image', provided by test_block.py::test_build which failed",
            "BLOCKED test_block.py::test_check - requires 'service', provided by test_block.py::test_deploy which was blocked",
        ]
    )
    assert events().names() == ["test_build"]


def test_skipped_provider_blocks(suite, run):
    suite(
        test_skip='''
        import pytest

        @pytest.mark.skip(reason="no hardware")
        @pytest.mark.pexen(provides=["hw"])
        def test_probe():
            pass

        @pytest.mark.pexen(requires=["hw"])
        def test_use():
            pass
        '''
    )
    result = run("--pexen", "-rs")
    result.assert_outcomes(skipped=1)
    assert result.parseoutcomes()["blocked"] == 1
    result.stdout.fnmatch_lines(
        [
            "SKIPPED [[]1[]] test_skip.py:4: no hardware",
            "BLOCKED test_skip.py::test_use - requires 'hw', provided by test_skip.py::test_probe which was skipped",
        ]
    )


def test_priority_orders_ready_tests(suite, run, events):
    suite(
        test_prio='''
        import pytest

        def test_c():
            pass

        @pytest.mark.pexen(priority=-5)
        def test_b():
            pass

        @pytest.mark.pexen(priority=-10)
        def test_a():
            pass
        '''
    )
    run("--pexen", "--pexen-workers=1").assert_outcomes(passed=3)
    assert events().names() == ["test_a", "test_b", "test_c"]


def test_keyword_selection_pulls_in_providers(suite, run, events):
    suite(
        test_pull='''
        import pytest

        @pytest.mark.pexen(provides=["base"])
        def test_base():
            pass

        @pytest.mark.pexen(requires=["base"], provides=["image"])
        def test_image():
            pass

        @pytest.mark.pexen(requires=["image"])
        def test_target():
            pass

        def test_unrelated():
            pass
        '''
    )
    result = run("--pexen", "-k", "target")
    result.assert_outcomes(passed=3, deselected=1)
    result.stdout.fnmatch_lines(["pexen: pulled in 2 tests that the selection requires: *test_base*test_image*"])
    assert events().names() == ["test_base", "test_image", "test_target"]


def test_marker_selection_pulls_in_providers(suite, run):
    suite(
        test_mark='''
        import pytest

        @pytest.mark.pexen(provides=["db"])
        def test_db():
            pass

        @pytest.mark.smoke
        @pytest.mark.pexen(requires=["db"])
        def test_query():
            pass
        '''
    )
    result = run("--pexen", "-m", "smoke", "-W", "ignore::pytest.PytestUnknownMarkWarning")
    result.assert_outcomes(passed=2)


def test_no_pull_reports_unselected_provider_as_blocked(suite, run):
    suite(
        test_nopull='''
        import pytest

        @pytest.mark.pexen(provides=["base"])
        def test_base():
            pass

        @pytest.mark.pexen(requires=["base"])
        def test_target():
            pass
        '''
    )
    result = run("--pexen", "-k", "target", "--pexen-no-pull")
    result.assert_outcomes(deselected=1)
    assert result.parseoutcomes()["blocked"] == 1
    result.stdout.fnmatch_lines(
        ["BLOCKED test_nopull.py::test_target - requires 'base', provided by test_nopull.py::test_base which was not selected"]
    )


def test_last_failed_pulls_in_providers(suite, run, monkeypatch):
    suite(
        test_lf='''
        import os, pytest

        @pytest.mark.pexen(provides=["data"])
        def test_make():
            pass

        @pytest.mark.pexen(requires=["data"])
        def test_flaky():
            assert os.environ.get("FIXED")

        def test_other():
            pass
        '''
    )
    run("--pexen").assert_outcomes(passed=2, failed=1)
    monkeypatch.setenv("FIXED", "1")
    result = run("--pexen", "--lf")
    result.assert_outcomes(passed=2, deselected=1)
    result.stdout.fnmatch_lines(["pexen: pulled in 1 test*test_make*"])


def test_unknown_tag_is_a_usage_error(suite, run, events):
    suite(
        test_typo='''
        import pytest

        @pytest.mark.pexen(requires=["imgae"])
        def test_use():
            pass
        '''
    )
    result = run("--pexen")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*no test provides these tags*", "*tag 'imgae', needed by: test_typo.py::test_use*"])
    assert events().names() == []


def test_cycle_is_a_usage_error_printing_it(suite, run, events):
    suite(
        test_cycle='''
        import pytest

        @pytest.mark.pexen(requires=["b"], provides=["a"])
        def test_a():
            pass

        @pytest.mark.pexen(requires=["a"], provides=["b"])
        def test_b():
            pass
        '''
    )
    result = run("--pexen")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [
            "*dependency cycle*",
            "*test_cycle.py::test_* requires '*', provided by",
            "*test_cycle.py::test_* requires '*', provided by",
            "*test_cycle.py::test_*",
        ]
    )
    assert events().names() == []


def test_workers_run_in_parallel(suite, run, events):
    suite(
        test_par='''
        import time, pytest

        @pytest.mark.parametrize("n", range(4))
        def test_sleep(n):
            time.sleep(0.3)
        '''
    )
    run("--pexen", "--pexen-workers=2").assert_outcomes(passed=4)
    log = events()
    assert log.max_concurrency() == 2
    assert len(log.pids()) == 2


def test_tests_queued_behind_a_long_test_go_to_a_free_worker(suite, run, events):
    # Short tests are fed in batches; the four long ones come last, so one
    # worker's batch holds several of them. Those behind the one it runs must
    # move to the other worker: each worker runs two.
    suite(
        test_mix='''
        import time, pytest

        @pytest.mark.parametrize("i", range(54))
        def test_mix(i):
            if i >= 50:
                time.sleep(1)
        '''
    )
    run("--pexen", "--pexen-workers=2", "-p", "no:cacheprovider").assert_outcomes(passed=54)
    log = events()
    long_ones = {f"test_mix[{i}]" for i in range(50, 54)}
    workers = [pid for _, pid, event, name in log.lines if event == "start" and name in long_ones]
    assert sorted(workers.count(pid) for pid in set(workers)) == [2, 2], log.lines



AFFINITY_SUITE = '''
import time, unittest, pytest


class TestShared(unittest.TestCase):
    def test_1(self): time.sleep(0.15)
    def test_2(self): time.sleep(0.15)
    def test_3(self): time.sleep(0.15)
    def test_4(self): time.sleep(0.15)


class TestPlain:
    def test_a(self): time.sleep(0.15)
    def test_b(self): time.sleep(0.15)
    def test_c(self): time.sleep(0.15)


@pytest.mark.parametrize("n", range(6))
def test_free(n):
    time.sleep(0.05)
'''


def workers_of(log, names):
    return {pid for _, pid, event, name in log.lines if event == "start" and name in names}


def starts_in_order(log, names):
    return [name for name in log.names() if name in names] == list(names)


def test_tests_of_a_class_run_on_one_worker_in_order_by_default(suite, run, events):
    suite(test_aff=AFFINITY_SUITE)
    run("--pexen", "--pexen-workers=2").assert_outcomes(passed=13)
    log = events()
    for names in (["test_1", "test_2", "test_3", "test_4"], ["test_a", "test_b", "test_c"]):
        assert len(workers_of(log, names)) == 1, log.lines
        assert starts_in_order(log, names), log.names()
    assert len(log.pids()) == 2  # the rest still ran on both workers


def test_affinity_none_spreads_a_class_over_workers(suite, run, events):
    suite(test_aff=AFFINITY_SUITE)
    run("--pexen", "--pexen-workers=2", "--pexen-affinity=none").assert_outcomes(passed=13)
    assert len(workers_of(events(), ["test_1", "test_2", "test_3", "test_4"])) == 2


def test_affinity_file_from_conftest_and_a_marker_that_overrides_it(pytester, suite, run, events):
    suite(
        **{
            "sub/test_one": """
            import time

            def test_x1(): time.sleep(0.02)
            def test_x2(): time.sleep(0.02)
            def test_x3(): time.sleep(0.02)
            """,
            "sub/test_two": """
            import time, pytest

            pytestmark = pytest.mark.pexen(affinity="none")

            def test_y1(): time.sleep(0.3)
            def test_y2(): time.sleep(0.3)
            def test_y3(): time.sleep(0.3)
            def test_y4(): time.sleep(0.3)
            """,
        }
    )
    (pytester.path / "sub" / "conftest.py").write_text('pexen_defaults = {"affinity": "file"}\n')
    run("--pexen", "--pexen-workers=2").assert_outcomes(passed=7)
    log = events()
    assert len(workers_of(log, ["test_x1", "test_x2", "test_x3"])) == 1
    assert starts_in_order(log, ["test_x1", "test_x2", "test_x3"])
    assert len(workers_of(log, ["test_y1", "test_y2", "test_y3", "test_y4"])) == 2


def test_a_bad_affinity_is_a_usage_error(suite, run):
    suite(test_a="def test_it():\n    pass\n")
    result = run("--pexen", "--pexen-affinity=module")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["ERROR: --pexen-affinity must be one of none, class, file, got 'module'"])
