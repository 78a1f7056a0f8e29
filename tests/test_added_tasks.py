"""Tests added while a --pexen run goes on: the pytest_pexen_task_finished hook."""

from __future__ import annotations

import json
import sqlite3
import textwrap
import xml.etree.ElementTree as ET

import pytest

DISCOVERY = """
    import pytest

    @pytest.mark.pexen(provides=["devices", "checked"])
    def test_discover(pexen_data):
        pexen_data["devices"] = ["sda", "sdb", "sdc"]

    @pytest.mark.pexen(after=["checked"])
    def test_summary():
        pass
"""

EXPAND = """
    import pytest_pexen

    def check(dev):
        assert dev != "sdc", f"{dev} is broken"

    def pytest_pexen_task_finished(task, report, outcome, data):
        if task.name == "test_discover" and outcome == "passed":
            return [
                pytest_pexen.task(f"check_{dev}", lambda dev=dev: check(dev), provides=["checked"])
                for dev in data["devices"]
            ]
"""


def outcomes_of(result: pytest.RunResult) -> dict[str, str]:
    """Node id -> outcome word, from -v lines."""
    found = {}
    for line in result.outlines:
        for word in ("PASSED", "FAILED", "ERROR", "SKIPPED", "BLOCKED", "XFAIL"):
            if f" {word}" in line and "::" in line and not line.startswith(word):
                found[line.split(" ")[0]] = word
    return found


def test_a_discovery_test_expands_into_a_test_per_device(suite, run, extend_conftest, events):
    suite(test_disks=DISCOVERY)
    extend_conftest(EXPAND)
    result = run("--pexen", "--pexen-workers", "2", "-v")
    result.assert_outcomes(passed=4, failed=1)
    found = outcomes_of(result)
    assert found["test_disks.py::test_discover::check_sda"] == "PASSED"
    assert found["test_disks.py::test_discover::check_sdc"] == "FAILED"
    assert "sdc is broken" in result.stdout.str()
    # The summary waits for the added providers of "checked", as for collected ones.
    assert events().names("start")[-1] == "test_summary"


def test_added_tests_are_in_every_report(suite, run, extend_conftest, pytester):
    suite(test_disks=DISCOVERY)
    extend_conftest(EXPAND)
    result = run("--pexen", "--junitxml=junit.xml", "--pexen-xunit=pexen.xml", "--pexen-state=state.db")
    result.assert_outcomes(passed=4, failed=1)
    for name in ("junit.xml", "pexen.xml"):
        cases = {
            (case.get("classname"), case.get("name")) for case in ET.parse(pytester.path / name).iter("testcase")
        }
        assert len(cases) == 5, (name, cases)
        assert any("check_sdb" in case_name for _, case_name in cases), (name, cases)
    with sqlite3.connect(pytester.path / "state.db") as connection:
        rows = dict(connection.execute("SELECT nodeid, outcome FROM tests"))
    assert rows["test_disks.py::test_discover::check_sdc"] == "failed"
    assert rows["test_disks.py::test_discover::check_sda"] == "passed"


def test_a_failure_adds_a_log_collection_task(suite, run, extend_conftest):
    suite(
        test_app="""
        def test_ok():
            pass

        def test_broken():
            assert 0
        """
    )
    extend_conftest(
        """
        import pytest_pexen

        def pytest_pexen_task_finished(task, report, outcome):
            if outcome == "failed" and report.when == "call":
                return pytest_pexen.task("collect_logs", ["sh", "-c", "echo logs of $PEXEN_NODEID"])
        """
    )
    result = run("--pexen", "-v", "-rA")
    result.assert_outcomes(passed=2, failed=1)
    assert outcomes_of(result)["test_app.py::test_broken::collect_logs"] == "PASSED"
    result.stdout.fnmatch_lines(["*logs of test_app.py::test_broken::collect_logs*"])


def test_a_blocked_test_calls_the_hook_too(suite, run, extend_conftest):
    suite(
        test_chain="""
        import pytest

        @pytest.mark.pexen(provides=["x"])
        def test_make():
            assert 0

        @pytest.mark.pexen(requires=["x"])
        def test_use():
            pass
        """
    )
    extend_conftest(
        """
        import pytest_pexen

        def pytest_pexen_task_finished(task, outcome):
            if outcome == "blocked":
                return pytest_pexen.task("explain", lambda: None)
        """
    )
    result = run("--pexen", "-v")
    assert outcomes_of(result)["test_chain.py::test_use::explain"] == "PASSED"


def test_tasks_may_add_tasks_up_to_the_limit(suite, run, extend_conftest, pytester):
    suite(
        test_seed="""
        def test_seed():
            pass
        """
    )
    pytester.makeini("[pytest]\npexen_max_added_tasks = 3\n")
    extend_conftest(
        """
        import pytest_pexen

        def pytest_pexen_task_finished(task):
            return pytest_pexen.task("again", lambda: None)
        """
    )
    result = run("--pexen", "-v")
    # The seed, then three generations; the fourth is refused, as an error of the third.
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*test_seed.py::test_seed::again::again::again*ERROR*",
            "*would add 1 test, but 3 were added in this run already and ini pexen_max_added_tasks allows 3*",
        ]
    )


def test_an_added_task_may_wait_for_a_tag_a_later_task_provides(suite, run, extend_conftest, events):
    suite(
        test_steps="""
        def test_first():
            pass

        def test_second():
            pass
        """
    )
    extend_conftest(
        """
        import pytest_pexen

        def pytest_pexen_task_finished(task):
            if task.name == "test_first":
                return pytest_pexen.task("waits", lambda: None, requires=["later"])
            if task.name == "test_second":
                return pytest_pexen.task("provides", lambda: None, provides=["later"])
        """
    )
    result = run("--pexen", "-v", "--pexen-workers", "1")
    result.assert_outcomes(passed=4)
    lines = [line for line in result.outlines if "PASSED" in line]
    assert lines[-1].startswith("test_steps.py::test_first::waits"), lines


def test_a_requirement_nothing_provides_blocks_with_a_reason(suite, run, extend_conftest):
    suite(
        test_one="""
        def test_one():
            pass
        """
    )
    extend_conftest(
        """
        import pytest_pexen

        def pytest_pexen_task_finished(task):
            if task.name == "test_one":
                return pytest_pexen.task("waits", lambda: None, requires=["never"])
        """
    )
    result = run("--pexen")
    assert result.parseoutcomes() == {"passed": 1, "blocked": 1}
    result.stdout.fnmatch_lines(
        ["BLOCKED test_one.py::test_one::waits - requires 'never', no test provided it (none was added during the run)"]
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("raise RuntimeError('no inventory')", "*pytest_pexen_task_finished raised, after test_a.py::test_a*"),
        ("return 42", "*pytest_pexen_task_finished returned 42 (int); return pytest_pexen.task(*"),
        (
            "return [pytest_pexen.task('x', lambda: None), pytest_pexen.task('x', lambda: None)]",
            "*task 'x' is added twice; names must be unique for the test that added it*",
        ),
        ("return pytest_pexen.task('x', lambda: None, group='nope')", "*group 'nope' is not configured*"),
        ("return pytest_pexen.task('x', lambda: None, colour=1)", "*unknown pexen field 'colour'*"),
    ],
)
def test_a_hook_gone_wrong_is_an_error_of_the_test_and_the_run_goes_on(suite, run, extend_conftest, body, message):
    suite(
        test_a="""
        def test_a():
            pass

        def test_b():
            pass
        """
    )
    extend_conftest(
        f"""
        import pytest_pexen

        def pytest_pexen_task_finished(task):
            if task.name == "test_a":
                {body}
        """
    )
    result = run("--pexen", "--pexen-workers", "1")
    # A task that is fine is added even when another is not (here: the first 'x').
    result.assert_outcomes(passed=3 if "twice" in message else 2, errors=1)
    result.stdout.fnmatch_lines([message])
    assert "INTERNALERROR" not in result.stdout.str()


def test_adding_to_a_group_that_ran_is_an_error_naming_it(suite, run, extend_conftest, pytester):
    suite(
        test_groups="""
        import pytest

        @pytest.mark.pexen(group="early")
        def test_early():
            pass

        @pytest.mark.pexen(group="late")
        def test_late():
            pass
        """
    )
    pytester.makeini("[pytest]\npexen_groups =\n    early: workers=1\n    late: workers=1\n")
    extend_conftest(
        """
        import pytest_pexen

        def pytest_pexen_task_finished(task):
            if task.name == "test_late":
                return pytest_pexen.task("back", lambda: None, group="early")
        """
    )
    result = run("--pexen")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*test_groups.py::test_late::back: its group 'early' has run already*"])


def test_added_tests_run_again_from_the_state_file_on_resume(suite, run, extend_conftest):
    suite(test_disks=DISCOVERY)
    extend_conftest(EXPAND)
    first = run("--pexen", "--pexen-state=state.db", "--pexen-break=*test_summary", "-v")
    assert first.ret == 75, first.stdout.str()
    assert outcomes_of(first)["test_disks.py::test_discover::check_sdb"] == "PASSED"
    second = run("--pexen", "--pexen-state=state.db", "--pexen-resume", "-v")
    second.assert_outcomes(passed=4, failed=1)
    found = outcomes_of(second)
    assert found["test_disks.py::test_discover::check_sdb"] == "PASSED"
    assert found["test_disks.py::test_summary"] == "PASSED"
    assert "not selected" not in second.stdout.str(), textwrap.indent(second.stdout.str(), "  ")


def test_the_state_file_and_the_trace_name_the_worker_that_ran_an_added_test(
    suite, run, extend_conftest, pytester
):
    # Workers forked before a test was added cannot run it: a fresh worker
    # takes over, and it is the one the records name.
    suite(test_disks=DISCOVERY)
    extend_conftest(
        """
        import os

        import pytest_pexen

        def note_worker(dev):
            with open(f"ran_{dev}", "w") as file:
                file.write(os.environ["PYTEST_XDIST_WORKER"])

        def pytest_pexen_task_finished(task, report, outcome, data):
            if task.name == "test_discover":
                return [
                    pytest_pexen.task(f"check_{dev}", lambda dev=dev: note_worker(dev), provides=["checked"])
                    for dev in data["devices"]
                ]
        """
    )
    result = run("--pexen", "--pexen-workers=2", "--pexen-state=state.db", "--pexen-trace=trace.json")
    result.assert_outcomes(passed=5)
    with sqlite3.connect(pytester.path / "state.db") as connection:
        recorded = dict(connection.execute("SELECT nodeid, worker FROM tests WHERE nodeid LIKE '%::check_%'"))
    ran = {
        f"test_disks.py::test_discover::check_{dev}": (pytester.path / f"ran_{dev}").read_text()
        for dev in ("sda", "sdb", "sdc")
    }
    assert recorded == ran
    trace = json.loads((pytester.path / "trace.json").read_text())
    lanes = {event["args"]["name"] for event in trace["traceEvents"] if event.get("name") == "thread_name"}
    assert {f"worker {name}" for name in ran.values()} <= lanes


def test_added_tasks_may_go_to_a_thread_group(suite, run, extend_conftest, pytester):
    suite(
        test_seed="""
        def test_seed():
            pass
        """
    )
    pytester.makeini("[pytest]\npexen_groups =\n    sh: workers=4 pool=thread\n")
    extend_conftest(
        """
        import pytest_pexen

        def pytest_pexen_task_finished(task):
            if task.name == "test_seed":
                return [pytest_pexen.task(f"probe_{n}", f"test {n} -lt 3", group="sh") for n in range(4)]
        """
    )
    result = run("--pexen", "-v")
    result.assert_outcomes(passed=4, failed=1)
    assert outcomes_of(result)["test_seed.py::test_seed::probe_3"] == "FAILED"


def test_a_breakpoint_may_name_an_added_test(suite, run, extend_conftest):
    suite(test_disks=DISCOVERY)
    extend_conftest(EXPAND)
    first = run("--pexen", "--pexen-state=state.db", "--pexen-break=*check_sdb", "--pexen-workers", "1", "-v")
    assert first.ret == 75, first.stdout.str()
    first.stdout.fnmatch_lines(["*stopped before test_disks.py::test_discover::check_sdb*"])
    second = run("--pexen", "--pexen-state=state.db", "--pexen-resume", "-v")
    second.assert_outcomes(passed=4, failed=1)
