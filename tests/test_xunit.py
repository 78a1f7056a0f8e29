"""--pexen-xunit: valid for the Jenkins schema, readable by others, one case per test."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import junitparser
import pytest
import xmlschema

SCHEMA = Path(__file__).resolve().parents[2] / "shared" / "xunit" / "junit-10.xsd"
if not SCHEMA.exists():  # the repository keeps a copy for clones without shared/
    SCHEMA = Path(__file__).resolve().parent / "junit-10.xsd"

EVERY_OUTCOME = '''
import os, pytest, pytest_pexen

HERE = os.path.dirname(__file__)

def test_passes():
    print("\\x1b[31mred\\x1b[0m and a NUL \\x00 and \\ufffe")

def test_fails():
    assert 1 == 2

@pytest.fixture
def broken():
    raise ValueError("fixture broke")

def test_errors(broken):
    pass

@pytest.mark.skip(reason="not here")
def test_skipped():
    pass

@pytest.mark.xfail(reason="known")
def test_xfails():
    assert False

@pytest.mark.pexen(provides=["image"])
def test_provider():
    assert False

@pytest.mark.pexen(requires=["image"])
def test_blocked():
    pass

def test_warned():
    pytest_pexen.warn("lone surrogate \\ud800 and escape \\x1b here")

def test_subresults():
    pytest_pexen.subresult("boot", "passed")
    pytest_pexen.subresult("net", "failed", "no route")

@pytest.mark.pexen(retries=2)
def test_flaky():
    path = os.path.join(HERE, "count")
    count = int(open(path).read()) if os.path.exists(path) else 0
    open(path, "w").write(str(count + 1))
    assert count >= 1

@pytest.mark.pexen(retries=1)
def test_always_fails():
    assert False, "still broken"

@pytest.mark.pexen(timeout=0.5)
def test_times_out():
    import time
    time.sleep(30)

def test_crashes():
    os._exit(3)

def test_loud():
    print("x" * 3_000_000)
'''


def validate(path: Path) -> None:
    xmlschema.XMLSchema(str(SCHEMA)).validate(str(path))


def cases(path: Path) -> dict[str, junitparser.TestCase]:
    found = {}
    for suite in junitparser.JUnitXml.fromfile(str(path)):
        for case in suite:
            assert case.name not in found, f"duplicate testcase {case.name}"
            found[case.name] = case
    return found


def kinds(case: junitparser.TestCase) -> list[tuple[str, str | None]]:
    return [(type(r).__name__, r.type) for r in case.result]


def test_every_outcome_validates_and_reads_back(pytester, suite, run):
    suite(test_all=EVERY_OUTCOME)
    run("--pexen", "--pexen-workers=2", "--pexen-xunit=out/report.xml", timeout=120)
    path = pytester.path / "out" / "report.xml"
    validate(path)
    found = cases(path)
    assert kinds(found["test_passes"]) == []
    assert kinds(found["test_fails"]) == [("Failure", "AssertionError")]
    assert kinds(found["test_errors"]) == [("Error", "ValueError")]
    assert kinds(found["test_skipped"]) == [("Skipped", "pytest.skip")]
    assert kinds(found["test_xfails"]) == [("Skipped", "pytest.xfail")]
    assert kinds(found["test_blocked"]) == [("Skipped", "pexen.blocked")]
    assert "provided by test_all.py::test_provider which failed" in found["test_blocked"].result[0].message
    assert kinds(found["test_times_out"]) == [("Error", "pexen.timeout")]
    assert kinds(found["test_crashes"]) == [("Error", "pexen.crashed")]
    assert kinds(found["test_warned"]) == []
    assert "pexen warning: lone surrogate #xD800 and escape #x1B here" in found["test_warned"].system_out
    assert "#x1B[31mred#x1B[0m and a NUL #x00 and #xFFFE" in found["test_passes"].system_out
    assert kinds(found["test_subresults::net"]) == [("Failure", "pexen.subresult")]
    assert kinds(found["test_subresults::boot"]) == []
    assert "the first" in found["test_loud"].system_out and "characters of this output were cut" in found["test_loud"].system_out
    text = path.read_text()
    assert text.count('name="test_flaky"') == 1
    assert text.count("<flakyFailure") == 1
    assert text.count("<rerunFailure") == 1
    assert 'name="warned" value="1"' in text
    for case in found.values():
        assert case.classname == "test_all"
        assert case.time is not None and len(f"{case.time}".split(".")[-1]) <= 3


def test_rich_flavor_adds_file_line_and_properties(pytester, suite, run):
    suite(test_r="import pytest_pexen\n\ndef test_it():\n    pytest_pexen.warn('hm')\n")
    run("--pexen", "--pexen-xunit=rich.xml", "--pexen-xunit-flavor=rich")
    path = pytester.path / "rich.xml"
    (case,) = cases(path).values()
    element = case._elem
    assert element.get("file") == "test_r.py"
    assert element.get("line") == "3"
    assert [(p.get("name"), p.get("value")) for p in element.iter("property")] == [("outcome", "warned")]


def test_xunit_also_works_without_pexen(pytester, suite, run):
    suite(test_p="def test_a():\n    pass\n\ndef test_b():\n    assert 0\n")
    run("--pexen-xunit=plain.xml")
    path = pytester.path / "plain.xml"
    validate(path)
    assert {name: kinds(case) for name, case in cases(path).items()} == {
        "test_a": [],
        "test_b": [("Failure", "AssertionError")],
    }


def test_ini_sets_the_path(pytester, suite, run):
    suite(test_p="def test_a():\n    pass\n")
    pytester.makeini("[pytest]\npexen_xunit = from-ini.xml\n")
    run("--pexen")
    validate(pytester.path / "from-ini.xml")


def test_the_file_is_current_while_the_run_goes_on(pytester, suite, run):
    suite(
        test_live='''
        import os, time, pytest

        @pytest.mark.pexen(provides=["first"])
        def test_first():
            pass

        @pytest.mark.pexen(requires=["first"])
        def test_later():
            time.sleep(1.5)
            text = open(os.path.join(os.path.dirname(__file__), "live.xml")).read()
            assert 'name="test_first"' in text
        '''
    )
    run("--pexen", "--pexen-workers=1", "--pexen-xunit=live.xml").assert_outcomes(passed=2)


def test_the_file_survives_a_killed_controller(pytester, suite, start_controller, wait_for):
    suite(
        test_kill='''
        import os, time, pytest

        @pytest.mark.parametrize("n", range(3))
        def test_quick(n):
            pass

        def test_hangs():
            open(os.path.join(os.path.dirname(__file__), "hanging"), "w").close()
            time.sleep(600)
        '''
    )
    controller = start_controller("--pexen-workers=1", "--pexen-xunit=killed.xml")
    assert wait_for(lambda: (pytester.path / "hanging").exists(), 30)
    time.sleep(1.5)  # one write interval: the quick tests are on disk
    controller.send_signal(signal.SIGKILL)
    controller.wait()
    path = pytester.path / "killed.xml"
    validate(path)
    assert sorted(cases(path)) == ["test_quick[0]", "test_quick[1]", "test_quick[2]"]


@pytest.mark.parametrize("flavor", ["fancy"])
def test_unknown_flavor_is_a_usage_error(suite, run, flavor):
    suite(test_p="def test_a():\n    pass\n")
    result = run("--pexen-xunit=x.xml", f"--pexen-xunit-flavor={flavor}")
    assert result.ret == 4
