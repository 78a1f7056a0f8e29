"""--pexen-xunit: valid for the Jenkins schema, readable by others, one case per test."""

from __future__ import annotations

import os
import signal
import socket
import stat
import threading
import time
import xml.etree.ElementTree as ET
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


def test_rich_flavor_gives_a_plain_pass_its_file_line_and_properties(pytester, suite, run):
    suite(test_q="def test_quiet(record_property):\n    record_property('build', '7 & <8>')\n")
    run("--pexen", "--pexen-xunit=rich.xml", "--pexen-xunit-flavor=rich")
    (case,) = cases(pytester.path / "rich.xml").values()
    element = case._elem
    assert (element.get("file"), element.get("line")) == ("test_q.py", "1")
    assert [(p.get("name"), p.get("value")) for p in element.iter("property")] == [
        ("outcome", "passed"),
        ("build", "7 & <8>"),
    ]


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


def test_the_ini_path_is_relative_to_the_rootdir_and_the_option_to_the_working_directory(pytester, monkeypatch):
    suite = pytester.path / "suite"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\npexen_xunit = reports/from-ini.xml\n")
    (suite / "test_p.py").write_text("def test_a():\n    pass\n")
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.runpytest_subprocess("-p", "pytest_pexen._plugin", "--pexen", "suite").assert_outcomes(passed=1)
    validate(suite / "reports" / "from-ini.xml")
    assert not (pytester.path / "reports").exists()
    pytester.runpytest_subprocess(
        "-p", "pytest_pexen._plugin", "--pexen", "suite", "--pexen-xunit=here.xml"
    ).assert_outcomes(passed=1)
    validate(pytester.path / "here.xml")


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


# -- where the file goes: checked before anything runs ------------------------------

WITH_AND_WITHOUT_PEXEN = pytest.mark.parametrize("pexen", [(), ("--pexen",)], ids=["plain", "pexen"])


def assert_usage_error(result: pytest.RunResult, pytester: pytest.Pytester, *expected: str) -> None:
    assert result.ret == 4, result.stdout.str() + result.stderr.str()
    message = result.stderr.str()
    for text in expected:
        assert text in message, message
    assert "INTERNALERROR" not in result.stdout.str() + message
    assert not (pytester.path / "events.log").exists(), "a test ran"


@WITH_AND_WITHOUT_PEXEN
def test_a_directory_is_a_usage_error(pytester, suite, run, pexen):
    suite(test_p="def test_a():\n    pass\n")
    (pytester.path / "adir").mkdir()
    result = run(*pexen, "--pexen-xunit=adir")
    assert_usage_error(result, pytester, "--pexen-xunit: adir is a directory", "adir/report.xml")
    assert list((pytester.path / "adir").iterdir()) == []


@WITH_AND_WITHOUT_PEXEN
def test_a_path_ending_in_a_slash_is_a_usage_error(pytester, suite, run, pexen):
    suite(test_p="def test_a():\n    pass\n")
    result = run(*pexen, "--pexen-xunit=out/")
    assert_usage_error(result, pytester, "out/ names a directory")
    assert not (pytester.path / "out").exists()


@WITH_AND_WITHOUT_PEXEN
def test_a_parent_that_is_a_file_is_a_usage_error(pytester, suite, run, pexen):
    suite(test_p="def test_a():\n    pass\n")
    (pytester.path / "notes.txt").write_text("mine\n")
    result = run(*pexen, "--pexen-xunit=notes.txt/report.xml")
    assert_usage_error(result, pytester, "cannot create notes.txt/report.xml", "notes.txt is not a directory")
    assert (pytester.path / "notes.txt").read_text() == "mine\n"


def cannot_create_in(directory: str) -> bool:
    try:
        descriptor = os.open(os.path.join(directory, f"pexen-probe-{os.getpid()}"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except OSError:
        return True
    os.close(descriptor)
    os.unlink(os.path.join(directory, f"pexen-probe-{os.getpid()}"))
    return False


@WITH_AND_WITHOUT_PEXEN
@pytest.mark.parametrize("directory", ["/proc", "/sys"])
def test_a_directory_that_takes_no_files_is_a_usage_error(pytester, suite, run, pexen, directory):
    if not os.path.isdir(directory) or not cannot_create_in(directory):
        pytest.skip(f"{directory} takes new files here")
    suite(test_p="def test_a():\n    pass\n")
    result = run(*pexen, f"--pexen-xunit={directory}/x.xml")
    assert_usage_error(result, pytester, f"cannot create {directory}/x.xml", f"creating a file in {directory} failed")


@WITH_AND_WITHOUT_PEXEN
def test_a_read_only_directory_is_a_usage_error(pytester, suite, run, pexen):
    locked = pytester.path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if not cannot_create_in(str(locked)):
            pytest.skip("permission bits do not stop this user (root); /proc and /sys stand in")
        suite(test_p="def test_a():\n    pass\n")
        result = run(*pexen, "--pexen-xunit=locked/report.xml")
    finally:
        locked.chmod(0o755)
    assert_usage_error(result, pytester, "cannot create locked/report.xml", "Permission denied")


# -- what goes wrong later: a warning, the run goes on, the end says so ----------------

BREAKS_THE_DIRECTORY = """
import os, time

OUT = os.path.join(os.path.dirname(__file__), "out")

def test_1_breaks_it():
    os.rename(OUT, OUT + ".moved")
    open(OUT, "w").close()  # a file where the report's directory was

def test_2_waits():
    time.sleep(1.2)

def test_3_waits():
    time.sleep(1.2)
"""

REPAIRS_THE_DIRECTORY = """

def test_4_repairs_it():
    os.remove(OUT)
    os.rename(OUT + ".moved", OUT)
"""


@WITH_AND_WITHOUT_PEXEN
def test_a_failing_write_warns_once_and_the_run_goes_on(pytester, suite, run, pexen):
    suite(test_break=BREAKS_THE_DIRECTORY + REPAIRS_THE_DIRECTORY)
    (pytester.path / "out").mkdir()
    result = run(*pexen, "--pexen-workers=1", "--pexen-xunit=out/report.xml")
    output = result.stdout.str()
    assert result.ret == 0, output
    assert output.count("cannot update the xUnit file") == 1, output
    assert "the run goes on" in output
    path = pytester.path / "out" / "report.xml"
    validate(path)
    assert sorted(cases(path)) == ["test_1_breaks_it", "test_2_waits", "test_3_waits", "test_4_repairs_it"]


@WITH_AND_WITHOUT_PEXEN
def test_a_failing_final_write_is_an_error_and_not_a_success(pytester, suite, run, pexen):
    suite(test_break=BREAKS_THE_DIRECTORY)
    (pytester.path / "out").mkdir()
    result = run(*pexen, "--pexen-workers=1", "--pexen-xunit=out/report.xml")
    output = result.stdout.str()
    assert result.ret == 3, output
    assert "INTERNALERROR" not in output
    result.assert_outcomes(passed=3)
    assert "pexen xunit file NOT written" in output
    assert f"the xUnit file {pytester.path / 'out' / 'report.xml'} was not written" in output
    assert "Not a directory" in output
    assert "so the exit status is 3 (it would have been 0)" in output


# -- files that are not regular files ----------------------------------------------------


def make_device(path: Path, kind: int, device: int) -> None:
    try:
        os.mknod(path, 0o666 | kind, device)
    except OSError as error:
        pytest.skip(f"cannot make a device node here: {error}")


@WITH_AND_WITHOUT_PEXEN
def test_a_character_device_is_written_through_and_stays_a_device(pytester, suite, run, pexen):
    null = pytester.path / "null"
    make_device(null, stat.S_IFCHR, os.makedev(1, 3))  # a /dev/null of our own
    try:
        os.close(os.open(null, os.O_WRONLY))
    except OSError as error:
        pytest.skip(f"device nodes cannot be opened here: {error}")
    suite(test_p="def test_a():\n    pass\n")
    result = run(*pexen, f"--pexen-xunit={null}")
    assert result.ret == 0, result.stdout.str()
    assert stat.S_ISCHR(os.stat(null).st_mode)
    assert [p.name for p in pytester.path.iterdir() if p.name.startswith(".null")] == []


@WITH_AND_WITHOUT_PEXEN
def test_a_fifo_with_a_reader_gets_the_report_once(pytester, suite, run, pexen):
    fifo = pytester.path / "report.fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def read() -> None:
        with open(fifo, "rb") as reader:  # waits for the writer
            received.append(reader.read())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    suite(test_p="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    result = run(*pexen, f"--pexen-xunit={fifo}")
    reader.join(30)
    assert result.ret == 0, result.stdout.str()
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    (data,) = received
    root = ET.fromstring(data)
    assert sorted(case.get("name") for case in root.iter("testcase")) == ["test_a", "test_b"]


def test_a_fifo_without_a_reader_does_not_hang_the_run(pytester, suite, run):
    fifo = pytester.path / "report.fifo"
    os.mkfifo(fifo)
    suite(test_p="def test_a():\n    pass\n")
    started = time.monotonic()
    result = run("--pexen", f"--pexen-xunit={fifo}", timeout=60)
    assert time.monotonic() - started < 30
    output = result.stdout.str()
    assert result.ret == 3, output
    assert "no process opened" in output and "for reading" in output
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


@WITH_AND_WITHOUT_PEXEN
def test_stdout_redirected_to_a_file_gets_the_report_among_pytests_lines(pytester, suite, run, pexen):
    suite(test_p="def test_a():\n    pass\n")
    result = run(*pexen, "--pexen-xunit=/dev/stdout")  # pytester sends stdout to a file
    assert result.ret == 0
    output = result.stdout.str()
    assert '<testcase name="test_a"' in output and "</testsuites>" in output
    assert output.index("</testsuites>") < output.index("pexen xunit file: /dev/stdout")
    result.assert_outcomes(passed=1)


def test_a_block_device_is_a_usage_error(pytester, suite, run):
    disk = pytester.path / "disk"
    make_device(disk, stat.S_IFBLK, os.makedev(240, 250))  # a local-use number: no real disk
    suite(test_p="def test_a():\n    pass\n")
    result = run("--pexen", f"--pexen-xunit={disk}")
    assert_usage_error(result, pytester, f"{disk} is a block device")
    assert stat.S_ISBLK(os.stat(disk).st_mode)


def test_a_socket_is_a_usage_error(pytester, suite, run):
    path = pytester.path / "sock"
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(path))
        suite(test_p="def test_a():\n    pass\n")
        result = run(f"--pexen-xunit={path}")
    assert_usage_error(result, pytester, f"{path} is a socket")
    assert stat.S_ISSOCK(os.lstat(path).st_mode)


@WITH_AND_WITHOUT_PEXEN
def test_a_symlink_stays_a_link_and_its_target_is_replaced(pytester, suite, run, pexen):
    (pytester.path / "real").mkdir()
    link = pytester.path / "link.xml"
    link.symlink_to("real/report.xml")
    suite(test_p="def test_a():\n    pass\n")
    result = run(*pexen, "--pexen-xunit=link.xml")
    assert result.ret == 0, result.stdout.str()
    assert link.is_symlink() and os.readlink(link) == "real/report.xml"
    validate(pytester.path / "real" / "report.xml")
    assert list(cases(link)) == ["test_a"]


# -- the file's mode and owner -------------------------------------------------------------


@WITH_AND_WITHOUT_PEXEN
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_a_new_file_honours_the_umask(pytester, suite, run, pexen, umask, mode):
    suite(test_p="def test_a():\n    pass\n")
    previous = os.umask(umask)
    try:
        result = run(*pexen, "--pexen-xunit=report.xml")
    finally:
        os.umask(previous)
    assert result.ret == 0, result.stdout.str()
    assert stat.S_IMODE(os.stat(pytester.path / "report.xml").st_mode) == mode


@WITH_AND_WITHOUT_PEXEN
def test_an_existing_file_keeps_its_mode(pytester, suite, run, pexen):
    path = pytester.path / "report.xml"
    path.write_text("old")
    path.chmod(0o640)
    suite(test_p="def test_a():\n    pass\n")
    assert run(*pexen, "--pexen-xunit=report.xml").ret == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    validate(path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root can give a file away")
def test_an_existing_file_keeps_its_owner_and_group(pytester, suite, run):
    path = pytester.path / "report.xml"
    path.write_text("old")
    os.chown(path, 4321, 8765)
    suite(test_p="def test_a():\n    pass\n")
    assert run("--pexen", "--pexen-xunit=report.xml").ret == 0
    status = path.stat()
    assert (status.st_uid, status.st_gid) == (4321, 8765)
    validate(path)


# -- tests that never got their closing report -------------------------------------------------


@WITH_AND_WITHOUT_PEXEN
def test_a_test_that_calls_pytest_exit_is_interrupted_not_passed(pytester, suite, run, pexen):
    suite(
        test_exit="""
        import pytest

        def test_1_passes():
            pass

        def test_2_exits():
            pytest.exit("enough for today")
        """
    )
    result = run(*pexen, "--pexen-workers=1", "--pexen-xunit=report.xml")
    assert result.ret == 2, result.stdout.str()
    path = pytester.path / "report.xml"
    validate(path)
    found = cases(path)
    assert kinds(found["test_1_passes"]) == []
    assert kinds(found["test_2_exits"]) == [("Error", "pexen.interrupted")]
    message = found["test_2_exits"].result[0].message
    assert "did not finish" in message and "enough for today" in message
    root = ET.parse(path).getroot()
    assert (root.get("tests"), root.get("errors")) == ("2", "1")


def test_a_keyboard_interrupt_mid_test_is_interrupted_not_passed(pytester, suite, run):
    suite(
        test_ctrl_c="""
        def test_1_passes():
            pass

        def test_2_interrupted():
            raise KeyboardInterrupt
        """
    )
    result = run("--pexen-xunit=report.xml")
    assert result.ret == 2, result.stdout.str()
    path = pytester.path / "report.xml"
    validate(path)
    found = cases(path)
    assert kinds(found["test_1_passes"]) == []
    assert kinds(found["test_2_interrupted"]) == [("Error", "pexen.interrupted")]
    assert "KeyboardInterrupt" in found["test_2_interrupted"].result[0].message


@pytest.mark.parametrize("stop", ["pytest.exit('enough for today')", "raise KeyboardInterrupt"])
def test_a_worker_that_stops_before_the_controller_hears_of_it_has_not_crashed(
    pytester, suite, run, extend_conftest, stop
):
    # The controller is busy with the first test's report while the worker
    # runs the second, which stops the run: the worker's result and its exit
    # then reach the controller together, and the exit is not a crash. (A
    # first run gives durations, so the worker is handed all three at once.)
    extend_conftest(
        """
        import os
        import time

        def pytest_runtest_logreport(report):
            if "PYTEST_XDIST_WORKER" not in os.environ and report.when == "teardown" and "test_1" in report.nodeid:
                time.sleep(1)
        """
    )
    suite(
        test_stop=f"""
        import pytest

        def test_1_passes():
            pass

        def test_2_stops():
            {stop}

        def test_3_never_runs():
            pass
        """
    )
    run("--pexen", "-k", "not test_2").assert_outcomes(passed=2, deselected=1)
    result = run("--pexen", "--pexen-workers=1", "--pexen-xunit=report.xml")
    assert result.ret == 2, result.stdout.str()
    assert "worker crashed" not in result.stdout.str() and "CRASHED" not in result.stdout.str(), result.stdout.str()
    found = cases(pytester.path / "report.xml")
    assert kinds(found["test_1_passes"]) == []
    assert kinds(found["test_2_stops"]) == [("Error", "pexen.interrupted")]


# -- at any moment, a valid document of what finished ----------------------------------------------


def test_the_file_is_valid_when_the_controller_is_killed_mid_run(pytester, suite, start_controller, wait_for):
    suite(
        **{
            f"test_many_{m}": "import time\n\n"
            + "".join(f"def test_{m}_{i}():\n    time.sleep(0.005)\n\n" for i in range(400))
            for m in range(10)
        }
    )
    path = pytester.path / "killed.xml"

    def finished_some() -> bool:
        return path.exists() and b"<testcase" in path.read_bytes()

    controller = start_controller("--pexen-workers=2", "--pexen-xunit=killed.xml")
    assert wait_for(finished_some, 60)
    time.sleep(5)
    assert controller.poll() is None, "the run ended before it could be killed; make it longer"
    killed_at = time.time()
    controller.send_signal(signal.SIGKILL)
    controller.wait()
    validate(path)
    written = cases(path)
    assert all(kinds(case) == [] for case in written.values())
    events = [line.split() for line in (pytester.path / "events.log").read_text().splitlines()]
    # Rewrites are a second or so apart (more if one is slow): what ended
    # well before the kill is in, and nothing that had not ended.
    ended = {name: float(stamp) for stamp, _, event, name in events if event == "end"}
    ended_early = {name for name, stamp in ended.items() if stamp < killed_at - 4}
    assert ended_early and ended_early <= set(written) <= set(ended)
