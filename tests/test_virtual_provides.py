"""Virtual provides: ``any:TAG`` is met by any one of the tests that provide TAG."""

from __future__ import annotations

import stat
import textwrap

import pytest_pexen

HTTPD = """
    import pytest

    @pytest.mark.pexen(provides=["httpd"], priority=-1)
    def test_apache():
        {apache}

    @pytest.mark.pexen(provides=["httpd"])
    def test_nginx():
        {nginx}

    @pytest.mark.pexen(requires=[pytest_pexen.any_of("httpd")])
    def test_page():
        pass
"""


def httpd(apache: str = "pass", nginx: str = "pass") -> str:
    return "import pytest_pexen\n" + textwrap.dedent(HTTPD).format(apache=apache, nginx=nginx)


def test_any_of_is_the_string_that_requires_takes():
    assert pytest_pexen.any_of("httpd") == "any:httpd"


def test_one_passing_provider_is_enough(suite, run):
    suite(test_web=httpd(apache="assert 0"))
    result = run("--pexen", "--pexen-workers", "2")
    result.assert_outcomes(passed=2, failed=1)


def test_every_provider_failing_blocks_naming_each(suite, run):
    suite(test_web=httpd(apache="assert 0", nginx="pytest.skip('no nginx here')"))
    result = run("--pexen")
    assert result.parseoutcomes() == {"failed": 1, "skipped": 1, "blocked": 1}
    result.stdout.fnmatch_lines(
        [
            "BLOCKED test_web.py::test_page - requires any provider of 'httpd', provided by "
            "test_web.py::test_apache which failed, test_web.py::test_nginx which was skipped"
        ]
    )


def test_a_plain_requirement_still_waits_for_every_provider(suite, run):
    suite(
        test_web=httpd(apache="assert 0")
        + textwrap.dedent(
            """
            @pytest.mark.pexen(requires=["httpd"])
            def test_all_servers():
                pass
            """
        )
    )
    result = run("--pexen")
    assert result.parseoutcomes() == {"failed": 1, "passed": 2, "blocked": 1}


def test_pull_in_chooses_one_provider_by_priority_and_says_which(suite, run, events):
    suite(test_web=httpd())
    result = run("--pexen", "-k", "page", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*pulled in 1 test that the selection requires: test_web.py::test_apache*",
            "*any provider of 'httpd' will do: test_web.py::test_apache runs first; "
            "standing by: test_web.py::test_nginx*",
        ]
    )
    assert events().names() == ["test_apache", "test_page"]


def test_the_provider_standing_by_runs_when_the_chosen_one_fails(suite, run, events):
    suite(test_web=httpd(apache="assert 0"))
    result = run("--pexen", "-k", "page", "-v")
    result.assert_outcomes(passed=2, failed=1)
    assert events().names() == ["test_apache", "test_nginx", "test_page"]


def test_any_in_a_script_header(pytester, suite, run):
    pytester.makeini("[pytest]\npexen_scripts = checks\n")
    suite(test_web=httpd(nginx="assert 0"))
    script = pytester.path / "checks" / "get_page.sh"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n# pexen: requires=any:httpd\nexit 0\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    result = run("--pexen", "-v")
    result.assert_outcomes(passed=3, failed=1)


def test_any_in_provides_is_a_usage_error(suite, run):
    suite(
        test_bad="""
        import pytest

        @pytest.mark.pexen(provides=["any:httpd"])
        def test_x():
            pass
        """
    )
    result = run("--pexen")
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*'any:' (any one provider is enough) goes before a tag in requires only*"])
