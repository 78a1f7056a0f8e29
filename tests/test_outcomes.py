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
    assert (outcomes["failed"], outcomes["skipped"], outcomes["rerun"]) == (1, 1, 2)


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
