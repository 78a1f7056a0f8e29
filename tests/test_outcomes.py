"""The in-test API (warn, subresult) and retries, in real sessions."""

from __future__ import annotations


def test_warn_passes_as_warned_and_satisfies_requires(suite, run, events):
    suite(
        test_w='''
        import pytest, pytest_pexen

        @pytest.mark.pexen(provides=["disk"])
        def test_check_disk():
            pytest_pexen.warn("disk 95% full")

        @pytest.mark.pexen(requires=["disk"])
        def test_use_disk():
            pass
        '''
    )
    result = run("--pexen", "-v")
    result.stdout.fnmatch_lines(["*test_check_disk WARNED*"])
    result.stdout.fnmatch_lines(["WARNED test_w.py::test_check_disk - disk 95% full"])
    result.stdout.fnmatch_lines(["*1 passed, 1 warned*"])
    assert result.ret == 0
    assert events().names() == ["test_check_disk", "test_use_disk"]


def test_failed_subresult_fails_the_test(suite, run):
    suite(
        test_s='''
        import pytest_pexen

        def test_parts():
            pytest_pexen.subresult("boot", "passed")
            pytest_pexen.subresult("network", "failed", "no route")
            pytest_pexen.subresult("disk", "skipped", "no disk")
        '''
    )
    result = run("--pexen")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*sub-result 'network' failed: no route*"])
    result.stdout.fnmatch_lines_random(
        [
            "PASSED test_s.py::test_parts::boot",
            "FAILED test_s.py::test_parts::network - no route",
            "SKIPPED test_s.py::test_parts::disk - no disk",
        ]
    )


def test_the_api_works_without_pexen(suite, run):
    suite(test_plain="import pytest_pexen\n\ndef test_it():\n    pytest_pexen.warn('careful')\n")
    result = run()
    result.stdout.fnmatch_lines(["*1 warned*"])


def test_api_misuse_is_a_clear_error(suite, run):
    suite(
        test_bad='''
        import pytest, pytest_pexen

        def test_outcome():
            with pytest.raises(pytest_pexen.PexenError, match="outcome must be one of passed, warned, failed, skipped"):
                pytest_pexen.subresult("x", "great")

        def test_outside():
            import pytest_pexen._api as api
            item, api._current = api._current, None
            try:
                with pytest.raises(pytest_pexen.PexenError, match="can only be called while a test runs"):
                    pytest_pexen.warn("x")
            finally:
                api._current = item
        '''
    )
    run("--pexen").assert_outcomes(passed=2)


def test_retries_make_a_flaky_test_pass(suite, run):
    suite(
        test_r='''
        import os, pytest

        COUNTER = os.path.join(os.path.dirname(__file__), "attempts")

        @pytest.mark.pexen(retries=3, retry_delay=0.05)
        def test_flaky():
            count = int(open(COUNTER).read()) if os.path.exists(COUNTER) else 0
            open(COUNTER, "w").write(str(count + 1))
            assert count >= 2
        '''
    )
    result = run("--pexen")
    result.stdout.fnmatch_lines(["*2 rerun, 1 flaky*"])
    result.stdout.fnmatch_lines(["FLAKY test_r.py::test_flaky - passed on attempt 3"])
    assert result.ret == 0


def test_retries_end_with_the_last_attempts_outcome(suite, run):
    suite(
        test_r='''
        import pytest

        @pytest.mark.pexen(retries=2, provides=["x"])
        def test_broken():
            assert False

        @pytest.mark.pexen(requires=["x"])
        def test_dependent():
            pass
        '''
    )
    result = run("--pexen")
    outcomes = result.parseoutcomes()
    assert (outcomes["failed"], outcomes["blocked"], outcomes["rerun"]) == (1, 1, 2)


def test_retries_apply_in_thread_groups(pytester, suite, run, extend_conftest):
    extend_conftest(
        """
        import os

        class Flaky(pytest.Item):
            pexen_threadsafe = True

            def runtest(self):
                counter = os.path.join(os.path.dirname(str(self.path)), "attempts")
                count = int(open(counter).read()) if os.path.exists(counter) else 0
                open(counter, "w").write(str(count + 1))
                assert count >= 1

            def reportinfo(self):
                return self.path, 0, self.name

        class FlakyFile(pytest.File):
            def collect(self):
                item = Flaky.from_parent(self, name="flaky")
                item.add_marker(pytest.mark.pexen(group="light", retries=2))
                yield item

        def pytest_collect_file(file_path, parent):
            if file_path.suffix == ".flaky":
                return FlakyFile.from_parent(parent, path=file_path)
        """
    )
    pytester.path.joinpath("x.flaky").write_text("")
    pytester.makeini("[pytest]\npexen_groups =\n    light: workers=2 pool=thread\n")
    result = run("--pexen")
    result.stdout.fnmatch_lines(["*1 rerun, 1 flaky*"])
    assert result.ret == 0


PARITY_SUITE = '''
import unittest, warnings

warnings.warn("said at import")


class TestHasInit:
    def __init__(self):
        pass

    def test_never(self):
        pass


class CodedWarning(Warning):
    def __init__(self, code):
        super().__init__(f"code {code}")


def test_warns_with_a_custom_init():
    warnings.warn(CodedWarning(42))


def test_warns_with_a_local_category():
    class LocalWarning(DeprecationWarning):
        pass

    warnings.warn("local one", LocalWarning)


class TestUnit(unittest.TestCase):
    def test_subtests(self):
        for i in range(2):
            with self.subTest(i=i):
                self.assertEqual(i, 0)
'''


def summary_lines(result: pytest.RunResult) -> list[str]:
    """What a user compares: the warnings summary and the closing lines, without timings."""
    start = next(i for i, line in enumerate(result.stdout.lines) if "warnings summary" in line)
    lines = result.stdout.lines[start:]
    return [line.split(" in ")[0] for line in lines if line.strip()]


def test_warnings_and_subtests_are_reported_as_plain_pytest_reports_them(pytester, suite, run):
    pytester.makeini("[pytest]\nunknown_ini_key = 1\n")
    suite(test_parity=PARITY_SUITE)
    plain = run("-p", "no:cacheprovider")
    pexen = run("-p", "no:cacheprovider", "--pexen", "--pexen-workers=2")
    # Tests on two workers may finish (and warn) in either order.
    assert sorted(summary_lines(pexen)) == sorted(summary_lines(plain))
    for line in (
        "*CodedWarning: code 42",
        "*LocalWarning: local one",
        "SUBFAILED(i=1) test_parity.py::TestUnit::test_subtests*",
        "*1 failed, 3 passed, 5 warnings*",
    ):
        pexen.stdout.fnmatch_lines([line])


REPORT_LOG_CONFTEST = '''
import json, os, pytest

@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and item.name == "test_tagged":
        report.tag = "from a plugin"
    return report

def pytest_runtest_logreport(report):
    config = pytest_runtest_logreport.config
    if hasattr(config, "workerinput"):
        return  # a --pexen worker: the controller logs what is shown
    line = [report.nodeid, report.when, report.outcome, getattr(report, "tag", None),
            sorted(report.keywords), report.sections, report.user_properties]
    with open(os.path.join(str(config.rootpath), "reports.jsonl"), "a") as out:
        out.write(json.dumps(line) + "\\n")

def pytest_configure(config):
    pytest_runtest_logreport.config = config
'''


def test_reports_reach_the_controller_with_all_a_plugin_or_test_added(pytester, suite, run, extend_conftest):
    extend_conftest(REPORT_LOG_CONFTEST)
    suite(
        test_reports='''
        import pytest

        def test_plain():
            pass

        def test_tagged():
            pass

        def test_marks_itself(request):
            request.node.add_marker("added_late")

        def test_prints(record_property):
            record_property("size", 3)
            print("hello")
        '''
    )
    log = pytester.path / "reports.jsonl"
    run("-p", "no:cacheprovider").assert_outcomes(passed=4)
    plain = sorted(log.read_text().splitlines())
    log.unlink()
    run("-p", "no:cacheprovider", "--pexen", "--pexen-workers=2").assert_outcomes(passed=4)
    assert sorted(log.read_text().splitlines()) == plain
