"""What a --pexen run says about itself: the header line, and blocked tests in the summary."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

CHAIN = '''
import pytest

@pytest.mark.pexen(provides=["db"])
def test_db():
    assert False

@pytest.mark.pexen(requires=["db"], provides=["schema"])
def test_schema():
    pass

@pytest.mark.pexen(requires=["schema"])
def test_query():
    pass

def test_free():
    pass
'''

BLOCKED_SCHEMA = "BLOCKED test_chain.py::test_schema - requires 'db', provided by test_chain.py::test_db which failed"
BLOCKED_QUERY = (
    "BLOCKED test_chain.py::test_query - requires 'schema', provided by test_chain.py::test_schema which was blocked"
)

LIGHT_ITEMS = """
class Light(pytest.Item):
    pexen_threadsafe = True

    def runtest(self):
        pass

    def reportinfo(self):
        return self.path, 0, self.name


class LightFile(pytest.File):
    def collect(self):
        item = Light.from_parent(self, name="light")
        item.add_marker(pytest.mark.pexen(group="light"))
        yield item


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".light":
        return LightFile.from_parent(parent, path=file_path)
"""


def test_the_header_says_groups_with_workers_and_pools_and_what_waits_or_locks(pytester, suite, run, extend_conftest):
    extend_conftest(LIGHT_ITEMS)
    for name in ("a", "b", "c"):
        pytester.path.joinpath(f"{name}.light").write_text("")
    pytester.makeini("[pytest]\npexen_groups =\n    serial: workers=1\n    light: workers=32 pool=thread\n")
    suite(
        test_mixed='''
        import pytest

        @pytest.mark.pexen(provides=["x"])
        def test_make():
            pass

        @pytest.mark.pexen(requires=["x"], claims=["disk"])
        def test_need():
            pass

        @pytest.mark.pexen(uses=["disk"])
        def test_read():
            pass

        @pytest.mark.pexen(group="serial", after=["x"])
        def test_one():
            pass

        @pytest.mark.pexen(group="serial")
        def test_two():
            pass
        '''
    )
    result = run("--pexen", "--pexen-workers=2")
    assert result.ret == 0
    # A group gets at most a worker per test: 3 light items, 3 threads.
    result.stdout.fnmatch_lines(
        [
            "collected 8 items",
            "pexen: 2 workers (default, process), 1 (serial, process), 3 (light, thread); "
            "2 tests with dependencies, 2 with locks",
        ]
    )


def test_no_header_without_pexen(suite, run):
    suite(test_chain=CHAIN)
    result = run()
    assert "pexen:" not in result.stdout.str()


def test_quiet_leaves_out_the_header_as_pytest_leaves_out_its_own(suite, run):
    suite(test_chain=CHAIN)
    header = "pexen: 2 workers (default, process); 2 tests with dependencies, 0 with locks"
    assert run("--pexen", "--pexen-workers=2").stdout.lines.count(header) == 1
    assert "pexen: " not in run("--pexen", "--pexen-workers=2", "-q").stdout.str()


def test_blocked_tests_are_counted_as_blocked_in_the_closing_line(suite, run):
    suite(test_chain=CHAIN)
    result = run("--pexen")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert result.parseoutcomes() == {"failed": 1, "passed": 1, "blocked": 2}
    progress = next(line for line in result.stdout.lines if line.startswith("test_chain.py "))
    assert sorted(re.match(r"test_chain\.py (\S+)", progress).group(1)) == [".", "F", "b", "b"]


def test_blocked_reasons_are_in_the_short_summary_by_default(suite, run):
    suite(test_chain=CHAIN)
    result = run("--pexen")
    result.stdout.fnmatch_lines(
        [
            "*= short test summary info =*",
            "FAILED test_chain.py::test_db - assert False",
            BLOCKED_SCHEMA,
            BLOCKED_QUERY,
            "*= 1 failed, 1 passed, 2 blocked in *",
        ]
    )
    assert sum("short test summary info" in line for line in result.stdout.lines) == 1


def test_only_blocked_tests_exit_zero_and_get_a_summary_of_their_own(suite, run):
    suite(test_chain=CHAIN)
    result = run("--pexen", "--pexen-no-pull", "-k", "query")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "*= short test summary info =*",
            "BLOCKED test_chain.py::test_query - requires 'schema', provided by "
            "test_chain.py::test_schema which was not selected",
            "*= 3 deselected, 1 blocked in *",
        ]
    )


@pytest.mark.parametrize("flag", ["-rs", "-ra"])
def test_asking_for_skips_lists_each_blocked_test_once(suite, run, flag):
    suite(
        test_chain=CHAIN,
        test_skip='''
        import pytest

        @pytest.mark.skip(reason="no hardware")
        def test_probe():
            pass
        ''',
    )
    result = run("--pexen", flag)
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] test_skip.py:4: no hardware"])
    lines = result.stdout.lines
    summary = lines[next(i for i, line in enumerate(lines) if "short test summary info" in line) :]
    assert [line for line in summary if "requires" in line] == [BLOCKED_SCHEMA, BLOCKED_QUERY]


def test_verbose_shows_the_word_blocked_with_the_reason(suite, run):
    suite(test_chain=CHAIN)
    result = run("--pexen", "-v")
    result.stdout.fnmatch_lines(["test_chain.py::test_schema BLOCKED (blocked: requires 'db'*"])


def test_no_summary_leaves_out_the_blocked_lines(suite, run):
    suite(test_chain=CHAIN)
    result = run("--pexen", "--no-summary")
    assert "BLOCKED test_chain.py" not in result.stdout.str()
    assert result.parseoutcomes()["blocked"] == 2


def test_blocked_tests_stay_skipped_in_junitxml_and_the_xunit_file(pytester, suite, run):
    suite(test_chain=CHAIN)
    run("--pexen", "--junitxml=junit.xml", "--pexen-xunit=xunit.xml")
    for name, kind in (("junit.xml", "pytest.skip"), ("xunit.xml", "pexen.blocked")):
        root = ET.parse(pytester.path / name).getroot()
        suite_element = root if root.tag == "testsuite" else root.find("testsuite")
        assert suite_element.get("skipped") == "2", name
        case = next(c for c in root.iter("testcase") if c.get("name") == "test_schema")
        skipped = case.find("skipped")
        assert skipped.get("type") == kind, name
        assert "requires 'db', provided by test_chain.py::test_db which failed" in skipped.get("message"), name
