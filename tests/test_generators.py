"""Tests a conftest generates with pytest_pexen_generate and pytest_pexen.task()."""

from __future__ import annotations

import json
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

#: How a generated suite runs: plain pytest, --pexen's process pool, its thread pool.
MODES = {
    "plain": ((), "[pytest]\n"),
    "process": (("--pexen", "--pexen-workers=2"), "[pytest]\n"),
    "thread": (("--pexen",), "[pytest]\npexen_groups =\n    default: workers=4 pool=thread\n"),
}

CHECKS = '''
import json, os, pytest, pytest_pexen

HERE = os.path.dirname(__file__)


def record(name, value):
    with open(os.path.join(HERE, name + ".json"), "w") as out:
        json.dump(value, out)


def no_argument():
    record("no_argument", "ran")


def with_context(context):
    record("with_context", [context.nodeid, str(context.tmp_path), context.tmp_path.is_dir(),
                            os.listdir(context.tmp_path), context.reboot_count])


def fails():
    assert 6 * 7 == 43, "the answer changed"


def skips():
    pytest.skip("no SMART on virtual disks")


def warns():
    pytest_pexen.warn("reallocated sectors: 12")


def pytest_pexen_generate(config, path):
    yield pytest_pexen.task("no_argument", no_argument)
    yield pytest_pexen.task("with_context", with_context)
    for disk in ["sda"]:
        # A default binds the loop variable: called with no argument.
        yield pytest_pexen.task(f"bound_{disk}", lambda disk=disk: record("bound", disk))
    yield pytest_pexen.task("fails", fails)
    yield pytest_pexen.task("skips", skips)
    yield pytest_pexen.task("warns", warns)
'''


def counts(result: pytest.RunResult) -> dict[str, int]:
    """The closing line's counts, warnings about the run left out."""
    return {word: n for word, n in result.parseoutcomes().items() if word not in ("warning", "warnings")}


def ran(result: pytest.RunResult) -> dict[str, int]:
    """The counts of tests that ran; blocked ones are checked by the lines giving their reasons."""
    return {word: n for word, n in counts(result).items() if word not in ("skipped", "blocked")}


def conftest(root: Path, code: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "conftest.py"
    path.write_text(textwrap.dedent(code))
    return path


@pytest.mark.parametrize("mode", MODES)
def test_callables_pass_fail_skip_and_warn_as_tests_do(pytester, run, mode):
    args, ini = MODES[mode]
    pytester.makeini(ini)
    conftest(pytester.path / "disks", CHECKS)
    result = run(*args, "-rA")
    assert counts(result) == {"passed": 3, "failed": 1, "skipped": 1, "warned": 1}
    result.stdout.fnmatch_lines_random(
        [
            "FAILED disks/conftest.py::fails - AssertionError: the answer changed*",
            "SKIPPED [[]1[]] disks/conftest.py:*: no SMART on virtual disks",
            "WARNED disks/conftest.py::warns - reallocated sectors: 12",
        ]
    )
    # The traceback is the test's own code, not the harness's.
    result.stdout.fnmatch_lines(["*_ [[]task[]] fails _*", "", "    def fails():", ">*assert 6 * 7 == 43*"])
    recorded = json.loads((pytester.path / "disks" / "with_context.json").read_text())
    nodeid, tmp_path, is_dir, listing, reboots = recorded
    assert (nodeid, is_dir, listing, reboots) == ("disks/conftest.py::with_context", True, [], 0)
    assert json.loads((pytester.path / "disks" / "no_argument.json").read_text()) == "ran"
    assert json.loads((pytester.path / "disks" / "bound.json").read_text()) == "sda"


@pytest.mark.parametrize("mode", ["plain", "thread"])
def test_commands_run_like_script_tests(pytester, run, mode):
    args, ini = MODES[mode]
    pytester.makeini(ini)
    conftest(
        pytester.path / "gen",
        """
        import pytest_pexen

        def pytest_pexen_generate(config, path):
            yield pytest_pexen.task("shell", "echo $PEXEN_NODEID > told && pwd >> told && test -d $PEXEN_TMPDIR")
            yield pytest_pexen.task("argv", ["sh", "-c", "echo 'no such device' >&2; exit 77"])
            yield pytest_pexen.task("broken", "echo 'sda: I/O error' >&2; exit 5")
        """,
    )
    result = run(*args, "-rA")
    assert counts(result) == {"passed": 1, "failed": 1, "skipped": 1}
    result.stdout.fnmatch_lines_random(
        [
            "SKIPPED [[]1[]] gen/conftest.py:1: no such device",
            """command "echo 'sda: I/O error' >&2; exit 5" exited with code 5: sda: I/O error""",
            "*Captured stderr call*",
        ]
    )
    told = (pytester.path / "gen" / "told").read_text().split()
    assert told == ["gen/conftest.py::shell", str(pytester.path / "gen")]


def test_each_directory_generates_its_own_tests_once(pytester, run):
    calls = """
        import os, pytest_pexen

        def pytest_pexen_generate(path):
            with open(os.path.join(os.path.dirname(__file__), "..", "calls"), "a") as out:
                out.write(f"{{path.name}}\\n")
            for name in {names}:
                yield pytest_pexen.task(name, lambda: None)
    """
    conftest(pytester.path / "machines", calls.format(names='["alpha", "beta"]'))
    conftest(pytester.path / "machines" / "gpus", calls.replace("..", "../..").format(names='["alpha"]'))
    result = run("--collect-only", "-q")
    ids = [line for line in result.stdout.lines if "::" in line]
    assert ids == [
        "machines/conftest.py::alpha",
        "machines/conftest.py::beta",
        "machines/gpus/conftest.py::alpha",
    ]
    assert sorted((pytester.path / "calls").read_text().split()) == ["gpus", "machines"]


def test_generated_tests_are_selected_by_node_id_keyword_and_last_failed(pytester, run):
    conftest(
        pytester.path / "inventory",
        """
        import os, pytest_pexen

        def check(context):
            assert not os.path.exists(os.path.join(os.path.dirname(__file__), "broken-" + context.nodeid[-3:]))

        def pytest_pexen_generate(config, path):
            for disk in ("sda", "sdb", "nvme0"):
                yield pytest_pexen.task(f"smart_{disk}", check)
        """,
    )
    (pytester.path / "inventory" / "broken-sdb").touch()
    run("inventory/conftest.py::smart_sda", "--pexen").assert_outcomes(passed=1)
    run("-k", "sda or nvme0").assert_outcomes(passed=2, deselected=1)
    run("--pexen").assert_outcomes(passed=2, failed=1)
    (pytester.path / "inventory" / "broken-sdb").unlink()
    result = run("--pexen", "--lf", "-v")
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(["inventory/conftest.py::smart_sdb PASSED*"])


def test_generated_tests_and_scripts_are_in_the_xunit_file(pytester, run):
    pytester.makeini("[pytest]\npexen_scripts = sys\n")
    conftest(
        pytester.path / "gen",
        """
        import pytest_pexen

        def pytest_pexen_generate(config, path):
            yield pytest_pexen.task("fine", lambda: None)
            yield pytest_pexen.task("broken", "exit 1")
        """,
    )
    script = pytester.path / "sys" / "ping.sh"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    run("--pexen", "--pexen-xunit=out.xml").assert_outcomes(passed=2, failed=1)
    cases = {
        (case.get("classname"), case.get("name")): case.find("failure") is not None
        for case in ET.parse(pytester.path / "out.xml").iter("testcase")
    }
    assert cases == {
        ("gen.conftest", "fine"): False,
        ("gen.conftest", "broken"): True,
        ("sys.ping.sh", "sys/ping.sh"): False,
    }


def test_metadata_orders_generated_tests_with_python_tests(pytester, run):
    conftest(
        pytester.path / "lab",
        """
        import os, pytest_pexen

        BUILT = os.path.join(os.path.dirname(__file__), "built")

        def boot():
            assert os.path.exists(BUILT)

        def pytest_pexen_generate(config, path):
            yield pytest_pexen.task("boot", boot, requires={"image"}, priority=-10)
            yield pytest_pexen.task("install", "exit 2", provides=["os"])
            yield pytest_pexen.task("login", lambda: None, requires=["os"])
        """,
    )
    pytester.makepyfile(
        test_build="""
        import os, pytest

        @pytest.mark.pexen(provides=["image"])
        def test_image():
            open(os.path.join("lab", "built"), "w").close()
        """
    )
    result = run("--pexen", "--pexen-workers=2", "-rs")
    assert ran(result) == {"passed": 2, "failed": 1}
    result.stdout.fnmatch_lines(["*lab/conftest.py*requires 'os', provided by lab/conftest.py::install which failed"])


def test_defaults_apply_down_the_tree_to_python_tests_scripts_and_generated_tests(pytester, run):
    pytester.makeini("[pytest]\npexen_scripts = tree\n")
    pytester.makepyfile(
        test_setup="""
        import pytest

        @pytest.mark.pexen(provides=["network"])
        def test_network():
            assert False, "no link"
        """
    )
    conftest(pytester.path / "tree", 'pexen_defaults = {"requires": ["network"]}\n')
    conftest(
        pytester.path / "tree" / "deep",
        """
        import pytest_pexen

        def pytest_pexen_generate(config, path):
            yield pytest_pexen.task("ping_gateway", lambda: None)
        """,
    )
    (pytester.path / "tree" / "deep" / "test_dns.py").write_text("def test_dns():\n    pass\n")
    script = pytester.path / "tree" / "deep" / "http.sh"
    script.write_text("#!/bin/sh\n# pexen: priority=1\nexit 0\n")
    script.chmod(0o755)
    result = run("--pexen", "-rs")
    assert ran(result) == {"failed": 1}
    blocked = "requires 'network', provided by test_setup.py::test_network which failed"
    result.stdout.fnmatch_lines_random(
        [
            f"*tree/deep/conftest.py*{blocked}",
            f"*tree/deep/http.sh*{blocked}",
            f"*tree/deep/test_dns.py*{blocked}",
        ]
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'yield pytest_pexen.task("a", f)\n    yield pytest_pexen.task("a", f)',
            "gen/conftest.py: task 'a' is generated twice; names must be unique in a conftest",
        ),
        (
            'yield pytest_pexen.task("a", 42)',
            "gen/conftest.py: task 'a': the body must be a callable, a command line (str) or a "
            "non-empty list of arguments, got 42 (int)",
        ),
        (
            'yield pytest_pexen.task("a", f, requries=["x"])',
            "gen/conftest.py: task 'a': unknown pexen field 'requries' (did you mean 'requires'?)*",
        ),
        (
            'yield pytest_pexen.task("a", f, priority="high")',
            "gen/conftest.py: task 'a': pexen field 'priority' must be an integer, got 'high' (str)",
        ),
        (
            'yield pytest_pexen.task("a", lambda x, y: None)',
            "gen/conftest.py: task 'a': its callable needs the arguments x, y; a task's callable "
            "takes none, or one: the context*",
        ),
        ('yield "a"', "gen/conftest.py: pytest_pexen_generate yielded 'a' (str); yield pytest_pexen.task(*"),
        ('yield pytest_pexen.task("a::b", f)', "gen/conftest.py: pytest_pexen_generate: task name 'a::b' must be*"),
        ("return 42", "gen/conftest.py: pytest_pexen_generate must yield or return tasks*got 42"),
    ],
)
def test_mistakes_in_what_a_generator_yields_are_usage_errors_naming_its_conftest(pytester, run, body, message):
    conftest(
        pytester.path / "gen",
        f"import pytest_pexen\n\ndef f():\n    pass\n\ndef pytest_pexen_generate(config, path):\n    {body}\n",
    )
    result = run()
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: {message}"])


def test_a_generator_that_raises_is_a_collection_error_of_its_conftest(pytester, run):
    conftest(
        pytester.path / "gen",
        """
        def pytest_pexen_generate(config, path):
            raise FileNotFoundError("inventory.yaml")
        """,
    )
    result = run("--pexen")
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*ERROR collecting gen/conftest.py*", "*FileNotFoundError: inventory.yaml*"])
