"""Script trees: executable files under ini pexen_scripts are tests, with and without --pexen."""

from __future__ import annotations

import os
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import psutil
import pytest

#: The ways a suite of scripts runs: plain pytest, --pexen's process pool, its thread pool.
MODES = {
    "plain": ((), "[pytest]\npexen_scripts = sys\n"),
    "process": (("--pexen", "--pexen-workers=2"), "[pytest]\npexen_scripts = sys\n"),
    "thread": (
        ("--pexen",),
        "[pytest]\npexen_scripts = sys\npexen_groups =\n    default: workers=4 pool=thread\n",
    ),
}


def write(root: Path, name: str, body: str, executable: bool = True) -> Path:
    """A script at *name* under *root* (dedented; "#!/bin/sh" first unless it has a #! line)."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    text = textwrap.dedent(body).lstrip("\n")
    path.write_text(text if text.startswith("#!") else "#!/bin/sh\n" + text)
    path.chmod(0o755 if executable else 0o644)
    return path


def counts(result: pytest.RunResult) -> dict[str, int]:
    """The closing line's counts, warnings about the run left out."""
    return {word: n for word, n in result.parseoutcomes().items() if word not in ("warning", "warnings")}


def ran(result: pytest.RunResult) -> dict[str, int]:
    """The counts of tests that ran; blocked ones are checked by the lines giving their reasons."""
    return {word: n for word, n in counts(result).items() if word not in ("skipped", "blocked")}


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.fixture
def scripts(pytester: pytest.Pytester):
    """Write scripts under sys/ of a suite whose ini collects them."""
    pytester.makeini("[pytest]\npexen_scripts = sys\n")

    def make(**bodies: str) -> None:
        for name, body in bodies.items():
            write(pytester.path / "sys", name.replace("__", "/") + ".sh", body)

    return make


def test_executable_files_under_pexen_scripts_are_tests_in_path_order(pytester, scripts, run):
    scripts(b="exit 0", a="exit 0", net__ping="exit 0", net__dns="exit 0", zz="exit 0")
    write(pytester.path / "sys", "notes.sh", "exit 1", executable=False)
    write(pytester.path, "elsewhere.sh", "exit 1")
    result = run("--collect-only", "-q")
    lines = [line for line in result.stdout.lines if line.startswith("sys/")]
    assert lines == ["sys/a.sh", "sys/b.sh", "sys/net/dns.sh", "sys/net/ping.sh", "sys/zz.sh"]


@pytest.mark.parametrize("mode", MODES)
def test_exit_status_is_the_outcome(pytester, run, mode):
    args, ini = MODES[mode]
    pytester.makeini(ini)
    root = pytester.path / "sys"
    write(root, "passes.sh", "exit 0")
    write(root, "skips.sh", "echo 'no network here'\nexit 77")
    write(root, "warns.sh", "echo 'disk 95% full' >&2\nexit 78")
    write(root, "breaks.sh", "echo 'cannot mount' >&2\nexit 99")
    write(root, "fails.sh", "echo 'checksum mismatch' >&2\nexit 3")
    write(root, "dies.sh", "kill -9 $$")
    result = run(*args, "-rA")
    assert counts(result) == {"passed": 1, "skipped": 1, "warned": 1, "errors": 1, "failed": 2}
    result.stdout.fnmatch_lines_random(
        [
            "SKIPPED [[]1[]] sys/skips.sh:1: no network here",
            "WARNED sys/warns.sh - disk 95% full",
            "ERROR sys/breaks.sh - CommandError*",
            "breaks.sh exited with 99 (error: it could not run): cannot mount",
            "FAILED sys/fails.sh - CommandFailed*",
            "fails.sh exited with code 3: checksum mismatch",
            "FAILED sys/dies.sh - CommandFailed: dies.sh killed by signal 9 (SIGKILL)",
        ]
    )


def test_the_warned_exit_code_is_configurable(pytester, run):
    pytester.makeini("[pytest]\npexen_scripts = sys\npexen_script_warn_code = 4\n")
    write(pytester.path / "sys", "ltp_style.sh", "exit 4")
    write(pytester.path / "sys", "seventy_eight.sh", "exit 78")
    result = run("-rA")
    assert counts(result) == {"warned": 1, "failed": 1}
    result.stdout.fnmatch_lines(["WARNED sys/ltp_style.sh - ltp_style.sh exited with 4 (warned)"])


@pytest.mark.parametrize("code", ["77", "0", "300", "often"])
def test_a_warned_code_that_cannot_be_is_a_usage_error(pytester, run, code):
    pytester.makeini(f"[pytest]\npexen_scripts = sys\npexen_script_warn_code = {code}\n")
    result = run()
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"*pexen_script_warn_code must be an exit code from 1 to 255*got '{code}'*"])


def test_output_goes_to_the_report_and_the_xunit_files(pytester, scripts, run):
    scripts(
        fails="echo 'step 1 ok'\necho 'step 2 broke' >&2\nexit 1",
        passes="echo 'all good'",
    )
    result = run("--pexen", "--pexen-xunit=pexen.xml", "--junitxml=junit.xml", "-o", "junit_logging=all")
    result.stdout.fnmatch_lines(
        [
            "*_ [[]script[]] fails.sh _*",
            "fails.sh exited with code 1: step 2 broke",
            "*Captured stdout call*",
            "step 1 ok",
            "*Captured stderr call*",
            "step 2 broke",
        ]
    )
    for report in ("pexen.xml", "junit.xml"):
        cases = {case.get("name"): case for case in ET.parse(pytester.path / report).iter("testcase")}
        failed = next(case for name, case in cases.items() if "fails" in name)
        assert "step 1 ok" in failed.findtext("system-out"), report
        assert "step 2 broke" in failed.findtext("system-err"), report
        assert failed.find("failure") is not None, report
        assert len(cases) == 2, report


def test_scripts_run_in_their_directory_told_their_node_id_scratch_dir_and_reboot_count(pytester, scripts, run):
    tell = """
        pwd > "$0.cwd"
        echo "$PEXEN_NODEID" > "$0.nodeid"
        echo "$PEXEN_TMPDIR" > "$0.tmpdir"
        echo "$PEXEN_REBOOT_COUNT" > "$0.reboots"
        ls -A "$PEXEN_TMPDIR" > "$0.listing"
        touch "$PEXEN_TMPDIR/left-behind"
    """
    scripts(net__ping=tell, disk=tell)
    run("--pexen").assert_outcomes(passed=2)
    ping = pytester.path / "sys" / "net" / "ping.sh"
    disk = pytester.path / "sys" / "disk.sh"
    for script, nodeid in ((ping, "sys/net/ping.sh"), (disk, "sys/disk.sh")):
        def told(what: str) -> str:
            return Path(f"{script}.{what}").read_text().strip()

        assert told("cwd") == str(script.parent)
        assert told("nodeid") == nodeid
        assert told("reboots") == "0"
        assert told("listing") == ""
        assert Path(told("tmpdir")).is_dir()
    assert Path(f"{ping}.tmpdir").read_text() != Path(f"{disk}.tmpdir").read_text()


def test_header_metadata_orders_scripts_and_blocks_dependents(pytester, scripts, run):
    scripts(
        a_uses_kernel="""
            # pexen: requires=kernel priority=-5
            ls "$(dirname "$0")/built" > /dev/null
        """,
        b_build_kernel="""
            # pexen: provides=kernel
            touch "$(dirname "$0")/built"
        """,
        c_build_image="""
            # pexen: provides=image
            exit 1
        """,
        d_boot="""
            # pexen: requires=image|rescue
            exit 0
        """,
        e_build_rescue="""
            # pexen: provides=rescue
            exit 1
        """,
    )
    result = run("--pexen", "--pexen-workers=2", "-rs")
    assert ran(result) == {"passed": 2, "failed": 2}
    result.stdout.fnmatch_lines(
        ["*sys/d_boot.sh*requires one of 'image', 'rescue', provided by sys/c_build_image.sh which failed*"]
    )


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("requries=kernel", "unknown pexen field 'requries' (did you mean 'requires'?)*"),
        ("priority=high", "pexen field 'priority' must be an integer, got 'high'"),
        ("timeout=-3", "pexen field 'timeout' must be a finite number greater than 0*"),
        ("claims", "pexen header fields are name=value, got 'claims'*"),
        ("claims='net", "cannot read the pexen header (No closing quotation)*"),
        ("provides=a,,b", "pexen field 'provides' must be a list or set of non-empty strings, got ''*"),
        ("on_resume=later", "pexen field 'on_resume' must be one of 'rerun', 'crash', got 'later'"),
    ],
)
def test_a_bad_header_is_a_usage_error_naming_file_and_line(pytester, scripts, run, header, message):
    scripts(good="exit 0", net__bad=f"# a comment first\n# pexen: {header}\nexit 0")
    result = run()
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: sys/net/bad.sh:3: {message}"])


def test_a_field_given_on_two_header_lines_is_an_error(pytester, scripts, run):
    scripts(twice="# pexen: timeout=5\n# pexen: claims=net timeout=10\nexit 0")
    result = run("--pexen")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["ERROR: sys/twice.sh:3: pexen field 'timeout' was given on line 2 already; give it once"]
    )


@pytest.mark.parametrize("pool", ["process", "thread"])
def test_a_timeout_ends_the_scripts_whole_process_tree(pytester, run, wait_for, pool):
    pytester.makeini(
        "[pytest]\npexen_scripts = sys\npexen_groups =\n    default: workers=2 pool=" + pool + "\n"
    )
    write(
        pytester.path / "sys",
        "hangs.sh",
        """
        # pexen: timeout=1
        echo "started"
        sleep 600 &
        echo $! > "$0.child"
        setsid sleep 600 &
        echo $! > "$0.daemon"
        sleep 600
        """,
    )
    write(pytester.path / "sys", "quick.sh", "exit 0")
    result = run("--pexen", "-rE", timeout=60)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["TIMEOUT sys/hangs.sh - *Timeout*"])
    result.stdout.fnmatch_lines(
        ["test exceeded its time limit of 1s (pexen watchdog)", "*Captured stdout call*", "started"]
    )
    hangs = pytester.path / "sys" / "hangs.sh"
    pids = [int(Path(f"{hangs}.{name}").read_text()) for name in ("child", "daemon")]
    assert wait_for(lambda: not any(alive(pid) for pid in pids), 5), [pid for pid in pids if alive(pid)]


def test_scripts_are_selected_by_node_id_and_keyword(pytester, scripts, run):
    scripts(net__ping="exit 0", net__dns="exit 0", disk="exit 0")
    run("sys/net/ping.sh", "sys/disk.sh", "--pexen").assert_outcomes(passed=2)
    result = run("-k", "ping or disk", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines_random(["sys/net/ping.sh PASSED*", "sys/disk.sh PASSED*"])
    result = run("-k", "net", "--pexen")
    result.assert_outcomes(passed=2)


def test_last_failed_runs_the_failed_scripts_again(pytester, scripts, run):
    scripts(flaky='test -e "$0.fixed"', steady="exit 0")
    run("--pexen").assert_outcomes(passed=1, failed=1)
    Path(f"{pytester.path / 'sys' / 'flaky.sh'}.fixed").touch()
    result = run("--pexen", "--lf", "-v")
    result.assert_outcomes(passed=1, deselected=1)
    result.stdout.fnmatch_lines(["sys/flaky.sh PASSED*"])


def test_a_script_that_cannot_start_fails_saying_why(pytester, run):
    pytester.makeini("[pytest]\npexen_scripts = sys\n")
    path = pytester.path / "sys" / "no_shebang"
    path.parent.mkdir()
    path.write_bytes(b"\x7fELF garbage")
    path.chmod(0o755)
    result = run()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no_shebang could not be started: [[]Errno 8[]] Exec format error*#! line*"])


def test_a_script_whose_interpreter_is_missing_fails_naming_it(pytester, run):
    pytester.makeini("[pytest]\npexen_scripts = sys\n")
    (pytester.path / "sys").mkdir()
    for name, text in {"crlf.sh": b"#!/bin/sh\r\necho hi\r\n", "odd.sh": b"#!/no/such/shell\necho hi\n"}.items():
        (pytester.path / "sys" / name).write_bytes(text)
        (pytester.path / "sys" / name).chmod(0o755)
    result = run()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*crlf.sh could not be started: *No such file or directory*Windows line endings*"])
    result.stdout.fnmatch_lines(["*odd.sh could not be started: *interpreter*is missing: /no/such/shell*"])


def test_a_pexen_scripts_path_that_does_not_exist_is_warned_about(pytester, run):
    pytester.makeini("[pytest]\npexen_scripts = sys sytem/** !gone\n")
    write(pytester.path / "sys", "ok.sh", "exit 0\n")
    result = run()
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(["*PytestConfigWarning: ini pexen_scripts names 'sytem/**'*"])
    assert "'sys'" not in result.stdout.str()


def test_globs_select_and_exclude_and_python_tests_stay_python(pytester, run):
    pytester.makeini("[pytest]\npexen_scripts = sys/** !sys/lib other/*.run\n")
    write(pytester.path / "sys", "check.sh", "exit 0")
    write(pytester.path / "sys" / "lib", "helper.sh", "exit 1")
    write(pytester.path / "other", "a.run", "exit 0")
    write(pytester.path / "other", "a.sh", "exit 1")
    test_module = pytester.path / "sys" / "test_python.py"
    test_module.write_text("#!/usr/bin/env python3\ndef test_it():\n    pass\n")
    test_module.chmod(0o755)
    result = run("--collect-only", "-q")
    lines = sorted(line for line in result.stdout.lines if line.startswith(("sys", "other")))
    assert lines == ["other/a.run", "sys/check.sh", "sys/test_python.py::test_it"]
