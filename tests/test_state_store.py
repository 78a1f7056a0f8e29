"""The state store alone: files, errors, the lock, group commit and SIGKILLs.

No pytest runs here: each test opens a store in tmp_path and does what the
run loop will do, then checks the file as a user (or another process) sees it.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pytest_pexen._errors import PexenError
from pytest_pexen._state import (
    APPLICATION_ID,
    FORMAT_VERSION,
    KEPT_RUNS,
    StateError,
    StateStore,
    format_status,
    peek_runs,
)

#: Opens the store at argv[1] for rootdir argv[2]; prints "opened" or the StateError.
OPEN = """
import sys
from pathlib import Path
from pytest_pexen._state import StateError, StateStore
try:
    StateStore.open(Path(sys.argv[1]), Path(sys.argv[2])).close()
except StateError as error:
    print(error)
else:
    print("opened")
"""

#: Opens the store, records one committed run, says "holding" and holds it until stdin ends.
HOLD = """
import sys, time
from pathlib import Path
from pytest_pexen._state import StateStore
store = StateStore.open(Path(sys.argv[1]), Path(sys.argv[2]))
run_id = store.begin_run([], {}, ["t::a"])
store.started(run_id, "t::a", "w0", time.time())
store.commit()
print("holding", flush=True)
sys.stdin.read()
store.close()
"""

#: Runs tests of 1 KB results in commits of 1 to 20 tests; prints how many are committed after each commit.
WRITE = """
import os, random, sys, time
from pathlib import Path
from pytest_pexen._state import StateStore
store = StateStore.open(Path(sys.argv[1]), Path(sys.argv[2]))
nodeids = [f"t.py::test_{i}" for i in range(5000)]
run_id = store.begin_run(["--pexen"], {}, nodeids)
# One write each, so that a kill never leaves half a line (stdout may be unbuffered).
os.write(1, f"run {run_id}\n".encode())
batches = random.Random(int(sys.argv[3]))
done = 0
while done < len(nodeids):
    batch = nodeids[done : done + batches.randint(1, 20)]
    for nodeid in batch:
        store.started(run_id, nodeid, "w0", time.time())
    store.commit()
    for nodeid in batch:
        store.finished(run_id, nodeid, "passed", nodeid.encode().ljust(1024, b"."), time.time())
    store.commit()
    done += len(batch)
    os.write(1, f"committed {done}\n".encode())
"""


def state_path(tmp_path: Path) -> Path:
    return tmp_path / ".pexen" / "state.db"


def open_store(tmp_path: Path) -> StateStore:
    return StateStore.open(state_path(tmp_path), tmp_path)


def open_elsewhere(path: Path, rootdir: Path) -> str:
    """Open the store in another process: "opened", or the StateError's message."""
    done = subprocess.run([sys.executable, "-c", OPEN, path, rootdir], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def refusal(path: Path, rootdir: Path) -> str:
    """The message of the StateError that opening *path* raises."""
    with pytest.raises(StateError) as raised:
        StateStore.open(path, rootdir)
    return str(raised.value)


def reader(path: Path) -> sqlite3.Connection:
    """Another connection to the file, read-only, as another program would look."""
    return sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)


def read_one(path: Path, query: str) -> object:
    connection = reader(path)
    try:
        return connection.execute(query).fetchone()[0]
    finally:
        connection.close()


@contextmanager
def holder(path: Path, rootdir: Path) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the store until the block ends (or the test kills it)."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, path, rootdir], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline() == "holding\n"
        yield process
    finally:
        process.communicate("")


@contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """Make *path* unwritable in a way root respects too: the immutable attribute as root, mode bits otherwise."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", path], capture_output=True).returncode:
        pytest.skip("root ignores mode bits, and chattr +i does not work here")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", path], check=True)


@contextmanager
def forked_child(store: StateStore, close_after_fork: bool) -> Iterator[int]:
    """A forked child that (maybe) calls close_after_fork(), then lives until the block ends."""
    ready_read, ready_write = os.pipe()
    end_read, end_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(end_write)
            if close_after_fork:
                store.close_after_fork()
            os.write(ready_write, b"x")
            os.read(end_read, 1)
        finally:
            os._exit(0)
    os.close(ready_write)
    os.close(end_read)
    try:
        assert os.read(ready_read, 1) == b"x"
        yield pid
    finally:
        os.close(end_write)
        os.waitpid(pid, 0)
        os.close(ready_read)


def snapshot(path: Path) -> bytes:
    return path.read_bytes()


# A new file.


def test_a_new_store_is_created_with_its_directory_as_the_umask_allows(tmp_path):
    old = os.umask(0o027)
    try:
        open_store(tmp_path).close()
    finally:
        os.umask(old)
    path = state_path(tmp_path)
    assert path.parent.stat().st_mode & 0o777 == 0o750
    assert path.stat().st_mode & 0o777 == 0o640


def test_a_store_is_marked_as_ours_and_in_wal_mode(tmp_path):
    open_store(tmp_path).close()
    path = state_path(tmp_path)
    assert read_one(path, "PRAGMA application_id") == APPLICATION_ID
    assert read_one(path, "PRAGMA user_version") == FORMAT_VERSION
    assert read_one(path, "PRAGMA journal_mode") == "wal"


def test_opening_an_existing_store_does_not_change_its_mode(tmp_path):
    open_store(tmp_path).close()
    path = state_path(tmp_path)
    path.chmod(0o604)
    open_store(tmp_path).close()
    assert path.stat().st_mode & 0o777 == 0o604


def test_state_errors_are_pexen_errors():
    assert issubclass(StateError, PexenError)


# Round trips.


def test_a_run_keeps_what_began_it(tmp_path):
    with open_store(tmp_path) as store:
        before = time.time()
        run_id = store.begin_run(["--pexen", "-k", "fast"], {"keyword": "fast", "workers": 2}, ["a.py::x", "a.py::y"])
        after = time.time()
    with open_store(tmp_path) as store:
        run = store.run(run_id)
    assert before <= run.started <= after
    assert (run.pid, run.host, run.rootdir) == (os.getpid(), socket.gethostname(), str(tmp_path.resolve()))
    assert run.args == ("--pexen", "-k", "fast")
    assert run.settings == {"keyword": "fast", "workers": 2}
    assert (run.status, run.reason, run.ended, run.resumes) == ("running", "", None, 0)


def test_a_new_run_has_every_test_pending_in_collection_order(tmp_path):
    with open_store(tmp_path) as store:
        run_id = store.begin_run([], {}, ["b.py::z", "a.py::x"])
        records = store.records(run_id)
    assert list(records) == ["b.py::z", "a.py::x"]
    z = records["b.py::z"]
    assert (z.position, z.status, z.attempts, z.reboots) == (0, "pending", 0, 0)
    assert (z.started, z.ended, z.worker, z.outcome, z.result) == (None, None, None, None, None)


def test_a_finished_test_keeps_every_field_across_a_reopen(tmp_path):
    result = bytes(range(256)) * 8
    with open_store(tmp_path) as store:
        run_id = store.begin_run([], {}, ["a.py::x"])
        store.started(run_id, "a.py::x", "gw1", 1000.25)
        store.commit()
        store.finished(run_id, "a.py::x", "failed", result, 1002.5)
    with open_store(tmp_path) as store:
        record = store.records(run_id)["a.py::x"]
        durations = store.durations(run_id)
    assert (record.status, record.attempts, record.worker) == ("done", 1, "gw1")
    assert (record.started, record.ended, record.outcome, record.result) == (1000.25, 1002.5, "failed", result)
    assert durations == {"a.py::x": 2.25}


def test_a_running_test_is_in_flight(tmp_path):
    with open_store(tmp_path) as store:
        run_id = store.begin_run([], {}, ["a.py::x"])
        store.started(run_id, "a.py::x", "gw0", 5.0)
        store.commit()
        record = store.records(run_id)["a.py::x"]
    assert (record.status, record.attempts, record.started, record.ended) == ("running", 1, 5.0, None)


def test_a_test_that_asks_for_a_reboot_runs_again_and_knows_its_count(tmp_path):
    with open_store(tmp_path) as store:
        run_id = store.begin_run([], {}, ["a.py::x"])
        store.started(run_id, "a.py::x", "gw0", 1.0)
        store.rebooting(run_id, "a.py::x")
        store.commit()
        asked = store.records(run_id)["a.py::x"]
        store.started(run_id, "a.py::x", "gw1", 2.0)
        store.commit()
        again = store.records(run_id)["a.py::x"]
    assert (asked.status, asked.attempts, asked.reboots) == ("reboot", 1, 1)
    assert (again.status, again.attempts, again.reboots, again.worker) == ("running", 2, 1, "gw1")


def test_added_tests_come_after_the_others_and_known_ones_stay_as_they_are(tmp_path):
    with open_store(tmp_path) as store:
        run_id = store.begin_run([], {}, ["a.py::x"])
        store.started(run_id, "a.py::x", "gw0", 1.0)
        store.add_tests(run_id, ["a.py::new", "a.py::x"])
        records = store.records(run_id)
    assert list(records) == ["a.py::x", "a.py::new"]
    assert records["a.py::x"].status == "running"
    assert records["a.py::new"].status == "pending"


def test_node_ids_given_twice_are_refused(tmp_path):
    with open_store(tmp_path) as store:
        with pytest.raises(ValueError, match="given more than once: a.py::x"):
            store.begin_run([], {}, ["a.py::x", "a.py::y", "a.py::x"])


def test_a_call_naming_a_test_not_in_the_run_is_an_error_after_the_others_are_committed(tmp_path):
    with open_store(tmp_path) as store:
        run_id = store.begin_run([], {}, ["a.py::x"])
        store.started(run_id, "a.py::x", "gw0", 1.0)
        store.started(run_id, "a.py::typo", "gw0", 1.0)
        with pytest.raises(ValueError, match=r"tests not in their run, and did nothing: a.py::typo \(run 1\)$"):
            store.commit()
        records = store.records(run_id)
    assert list(records) == ["a.py::x"]
    assert records["a.py::x"].status == "running"


def test_the_newest_unfinished_run_is_the_one_to_resume(tmp_path):
    with open_store(tmp_path) as store:
        paused = store.begin_run([], {}, ["a.py::x"])
        store.finish_run(paused, "paused", "break before a.py::x")
        finished = store.begin_run([], {}, ["a.py::x"])
        store.finish_run(finished, "finished")
        newest = store.newest_unfinished()
    assert newest is not None
    assert (newest.run_id, newest.status, newest.reason) == (paused, "paused", "break before a.py::x")
    assert newest.ended is not None


def test_a_resumed_run_is_running_again_and_counts_its_resumes(tmp_path):
    with open_store(tmp_path) as store:
        run_id = store.begin_run([], {}, ["a.py::x"])
        store.finish_run(run_id, "paused", "reboot")
        store.resume_run(run_id)
        run = store.run(run_id)
    assert (run.status, run.reason, run.resumes) == ("running", "", 1)


def test_a_finished_run_cannot_be_resumed(tmp_path):
    with open_store(tmp_path) as store:
        run_id = store.begin_run([], {}, ["a.py::x"])
        store.finish_run(run_id, "finished")
        with pytest.raises(KeyError, match="no unfinished run 1 in "):
            store.resume_run(run_id)
        assert store.newest_unfinished() is None


def test_a_run_ends_finished_or_paused_only(tmp_path):
    with open_store(tmp_path) as store:
        run_id = store.begin_run([], {}, ["a.py::x"])
        with pytest.raises(ValueError, match="'finished' or 'paused', not 'done'"):
            store.finish_run(run_id, "done")


# The status display.


def run_three(store: StateStore) -> None:
    """A finished run; a paused run; a run that died with two tests in flight."""
    first = store.begin_run([], {}, ["a.py::x", "a.py::y"])
    for nodeid, outcome in [("a.py::x", "passed"), ("a.py::y", "failed")]:
        store.started(first, nodeid, "gw0", 1.0)
        store.finished(first, nodeid, outcome, b"", 2.0)
    store.finish_run(first, "finished")
    second = store.begin_run([], {}, ["a.py::x"])
    store.finish_run(second, "paused", "break before a.py::x")
    third = store.begin_run([], {}, ["a.py::x", "a.py::y", "a.py::z", "a.py::w"])
    store.started(third, "a.py::x", "gw0", 1.0)
    store.finished(third, "a.py::x", "skipped", b"", 2.0)
    for nodeid in ["a.py::z", "a.py::y"]:
        store.started(third, nodeid, "gw1", 3.0)
    store.commit()


def test_runs_are_summarized_newest_first(tmp_path):
    with open_store(tmp_path) as store:
        run_three(store)
        third, second, first = store.runs()
    assert (first.run_id, first.status, first.outcomes, first.waiting, first.resumable) == (
        1,
        "finished",
        {"passed": 1, "failed": 1},
        0,
        False,
    )
    assert (second.status, second.reason, second.waiting, second.resumable) == (
        "paused",
        "break before a.py::x",
        1,
        True,
    )
    assert (third.tests, third.outcomes, third.waiting) == (4, {"skipped": 1}, 1)
    assert third.in_flight == ("a.py::y", "a.py::z")


def test_the_status_text_shows_each_run_and_how_to_resume(tmp_path):
    with open_store(tmp_path) as store:
        run_three(store)
        text = format_status(store.runs())
    lines = text.splitlines()
    assert lines[0].split() == ["run", "started", "status", "tests", "results"]
    assert lines[1].split()[3:] == ["interrupted", "4", "1", "skipped,", "2", "in", "flight,", "1", "not", "run"]
    assert lines[2].strip() == "in flight: a.py::y, a.py::z"
    assert lines[3].split()[3:5] == ["paused", "1"]
    assert lines[4].strip() == "reason: break before a.py::x"
    assert lines[5].split()[3:] == ["finished", "2", "1", "passed,", "1", "failed"]
    assert lines[6] == "Run 3 can be resumed: pytest --pexen --pexen-resume"


def test_the_status_text_of_an_empty_file_says_so():
    assert format_status([]) == "No runs are recorded in this state file."


# Group commit.


def test_buffered_calls_reach_the_file_at_commit_and_not_before(tmp_path):
    path = state_path(tmp_path)
    with open_store(tmp_path) as store:
        run_id = store.begin_run([], {}, ["a.py::x"])
        store.started(run_id, "a.py::x", "gw0", 1.0)
        before = read_one(path, "SELECT status FROM tests")
        store.commit()
        after = read_one(path, "SELECT status FROM tests")
    assert (before, after) == ("pending", "running")


def test_one_commit_applies_the_calls_in_the_order_they_came(tmp_path):
    with open_store(tmp_path) as store:
        run_id = store.begin_run([], {}, ["a.py::x", "a.py::y"])
        store.started(run_id, "a.py::x", "gw0", 1.0)
        store.finished(run_id, "a.py::x", "passed", b"r", 2.0)
        store.started(run_id, "a.py::y", "gw0", 2.0)
        store.commit()
        records = store.records(run_id)
    assert (records["a.py::x"].status, records["a.py::y"].status) == ("done", "running")


def test_a_commit_with_nothing_buffered_takes_no_lock(tmp_path):
    path = state_path(tmp_path)
    with open_store(tmp_path) as store:
        other = sqlite3.connect(path, timeout=0, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer: a commit that wrote would have to wait
        try:
            store.commit()
        finally:
            other.execute("ROLLBACK")
            other.close()


def test_closing_commits_what_is_buffered(tmp_path):
    with open_store(tmp_path) as store:
        run_id = store.begin_run([], {}, ["a.py::x"])
        store.started(run_id, "a.py::x", "gw0", 1.0)
    assert read_one(state_path(tmp_path), "SELECT status FROM tests") == "running"


# Files that are not a store.


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda path: path.mkdir(), "is a directory, not a file"),
        (lambda path: os.mkfifo(path), "is a FIFO (named pipe), not a file"),
        (lambda path: path.symlink_to(path.parent), "is a directory (through a symbolic link), not a file"),
        (lambda path: path.symlink_to(path.parent / "gone"), "is a symbolic link to "),
    ],
    ids=["directory", "fifo", "symlink-to-directory", "dangling-symlink"],
)
def test_a_path_that_is_not_a_regular_file_is_refused(tmp_path, make, kind):
    path = tmp_path / "state.db"
    make(path)
    message = refusal(path, tmp_path)
    assert message.startswith(f"{path} {kind}")
    assert message.endswith("pass --pexen-state PATH to use another file.")


def test_a_device_is_refused_and_left_alone():
    message = refusal(Path("/dev/null"), Path("/"))
    assert message.startswith("/dev/null is a character device, not a file")


def test_a_state_path_inside_a_file_is_refused(tmp_path):
    (tmp_path / "plain").write_text("")
    message = refusal(tmp_path / "plain" / "state.db", tmp_path)
    assert f"cannot create the state file {tmp_path}/plain/state.db: {tmp_path}/plain is not a directory" in message


def test_a_file_that_is_not_sqlite_is_refused_and_kept(tmp_path):
    path = tmp_path / "state.db"
    path.write_text("my notes\n" * 100)
    message = refusal(path, tmp_path)
    assert message.startswith(f"{path} is not a SQLite database (it starts with b'my notes\\nmy note')")
    assert "it is left as it is. Move it away, or pass --pexen-state PATH" in message
    assert path.read_text() == "my notes\n" * 100


def test_a_damaged_store_is_refused_and_kept(tmp_path):
    path = state_path(tmp_path)
    with open_store(tmp_path) as store:
        store.begin_run([], {}, [f"a.py::test_{i}" for i in range(2000)])
    with path.open("r+b") as file:
        file.seek(4096 * 3)  # past the schema: the pages of the tables
        file.write(b"\xa5" * 4096 * 4)
    damaged = snapshot(path)
    message = refusal(path, tmp_path)
    assert message.startswith(f"{path} is damaged (")
    assert f"it is left as it is, for you to inspect or recover (sqlite3 {path} .recover)" in message
    assert snapshot(path) == damaged


def test_a_sqlite_database_of_another_program_is_refused_and_kept(tmp_path):
    path = tmp_path / "state.db"
    other = sqlite3.connect(path)
    other.executescript("PRAGMA application_id = 42; CREATE TABLE notes (text); INSERT INTO notes VALUES ('mine');")
    other.close()
    kept = snapshot(path)
    message = refusal(path, tmp_path)
    assert message.startswith(f"{path} is a SQLite database that pytest-pexen did not write (application id 0x2a)")
    assert snapshot(path) == kept


def test_a_store_of_a_newer_format_is_refused_and_kept(tmp_path):
    open_store(tmp_path).close()
    path = state_path(tmp_path)
    newer = sqlite3.connect(path)
    newer.execute(f"PRAGMA user_version = {FORMAT_VERSION + 1}")
    newer.close()
    kept = snapshot(path)
    message = refusal(path, tmp_path)
    assert message.startswith(
        f"{path} holds pytest-pexen state in format {FORMAT_VERSION + 1}, a newer format than this"
        f" pytest-pexen reads (format {FORMAT_VERSION})"
    )
    assert "Resume its runs with the pytest-pexen that wrote it" in message
    assert snapshot(path) == kept


def test_a_store_of_another_rootdir_is_refused(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    path = tmp_path / "state.db"
    StateStore.open(path, tmp_path / "one").close()
    message = refusal(path, tmp_path / "two")
    assert message.startswith(
        f"{path} holds the runs of rootdir {tmp_path}/one, not of this rootdir {tmp_path}/two; it is left as it is."
    )
    assert "pass --pexen-state PATH to use a state file of this rootdir" in message


def test_a_rootdir_reached_through_a_symlink_is_the_same_rootdir(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    path = tmp_path / "state.db"
    StateStore.open(path, tmp_path / "real").close()
    StateStore.open(path, tmp_path / "link").close()


def test_a_read_only_state_file_is_refused(tmp_path):
    open_store(tmp_path).close()
    path = state_path(tmp_path)
    with unwritable(path):
        message = refusal(path, tmp_path)
    assert message.startswith(f"cannot write {path}, the state file (")
    assert message.endswith("Make it writable, or pass --pexen-state PATH to use another file.")


def test_a_read_only_state_directory_is_refused(tmp_path):
    directory = state_path(tmp_path).parent
    directory.mkdir()
    with unwritable(directory):
        message = refusal(state_path(tmp_path), tmp_path)
    assert message.startswith(f"cannot write {directory}, the directory of the state file {state_path(tmp_path)} (")


def test_a_state_directory_that_cannot_be_created_is_refused(tmp_path):
    (tmp_path / "shut").mkdir()
    path = tmp_path / "shut" / ".pexen" / "state.db"
    with unwritable(tmp_path / "shut"):
        message = refusal(path, tmp_path)
    assert message.startswith(f"cannot create the directory {path.parent} for the state file {path} (")
    assert message.endswith("Create it, or pass --pexen-state PATH to use another file.")


def test_a_state_file_on_a_read_only_file_system_is_refused(tmp_path):
    open_store(tmp_path).close()
    # A read-only bind mount of the rootdir, in a mount namespace of the child's own.
    script = 'mount --bind -o ro "$1" "$1" && exec "$2" -c "$3" "$4" "$1"'
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
    done = subprocess.run(
        [*command, tmp_path, sys.executable, OPEN, state_path(tmp_path)], capture_output=True, text=True
    )
    if done.returncode and "mount" in done.stderr:
        pytest.skip(f"cannot make a read-only bind mount here: {done.stderr.strip()}")
    assert done.stdout.startswith(
        f"cannot write {state_path(tmp_path).parent}, the directory of the state file"
        f" {state_path(tmp_path)} (read-only file system)"
    )


# The lock.


def test_a_second_store_of_one_file_in_one_process_is_refused(tmp_path):
    with open_store(tmp_path) as store:
        message = refusal(state_path(tmp_path), tmp_path)
        run_id = store.begin_run([], {}, ["a.py::x"])  # the first store goes on
    assert message.startswith(f"{state_path(tmp_path)} is in use by another pytest-pexen run (pid {os.getpid()}")
    assert open_store(tmp_path).records(run_id)


def test_a_run_in_another_process_is_refused_and_named(tmp_path):
    path = state_path(tmp_path)
    with holder(path, tmp_path) as process:
        message = refusal(path, tmp_path)
    assert message.startswith(
        f"{path} is in use by another pytest-pexen run (pid {process.pid} on host {socket.gethostname()},"
        f" which opened it at {time.strftime('%Y-%m-%d')}"
    )
    assert message.endswith(
        "two runs cannot share a state file. Wait for that run to end, or pass --pexen-state PATH to use another file."
    )


def test_the_file_can_be_opened_once_the_other_run_closed_it(tmp_path):
    with holder(state_path(tmp_path), tmp_path):
        pass
    open_store(tmp_path).close()


def test_the_file_can_be_opened_after_the_other_run_was_killed(tmp_path):
    with holder(state_path(tmp_path), tmp_path) as process:
        process.kill()
        process.wait()
    with open_store(tmp_path) as store:
        assert store.records(1)["t::a"].status == "running"


def test_a_forked_child_that_closes_its_copy_leaves_the_lock_with_the_parent(tmp_path):
    path = state_path(tmp_path)
    with open_store(tmp_path) as store:
        run_id = store.begin_run([], {}, ["a.py::x"])
        with forked_child(store, close_after_fork=True):
            refused = open_elsewhere(path, tmp_path)
        store.started(run_id, "a.py::x", "gw0", 1.0)
        store.commit()
    assert refused.startswith(f"{path} is in use by another pytest-pexen run (pid {os.getpid()}")
    assert open_elsewhere(path, tmp_path) == "opened"


@pytest.mark.parametrize(
    ("close_after_fork", "another_run"),
    [(True, "opened"), (False, "is in use by another pytest-pexen run")],
    ids=["closed-its-copy", "kept-its-copy"],
)
def test_a_forked_child_that_outlives_the_run_keeps_the_lock_only_if_it_kept_its_copy(
    tmp_path, close_after_fork, another_run
):
    store = open_store(tmp_path)
    with forked_child(store, close_after_fork):
        store.close()
        assert another_run in open_elsewhere(state_path(tmp_path), tmp_path)


# SIGKILL.


def test_a_store_killed_at_random_moments_keeps_every_committed_result(tmp_path):
    path = state_path(tmp_path)
    moments = random.Random(11)
    for round_ in range(6):
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITE, path, tmp_path, str(round_)], stdout=subprocess.PIPE, text=True
        )
        assert writer.stdout is not None
        said = [] if round_ == 0 else [writer.stdout.readline()]  # the first dies opening or beginning
        time.sleep(moments.uniform(0.0, 0.3))
        writer.kill()
        said += writer.communicate()[0].splitlines()
        run_ids = [int(line.split()[1]) for line in said if line.startswith("run")]
        committed = max([int(line.split()[1]) for line in said if line.startswith("committed")], default=0)
        with open_store(tmp_path) as store:  # opening runs quick_check
            for summary in store.runs():
                assert summary.tests == 5000  # a run was begun whole, or not at all
            records = list(store.records(run_ids[0]).values()) if run_ids else []
        done = [record for record in records if record.status == "done"]
        assert len(done) >= committed, f"round {round_}: {committed} committed, {len(done)} in the file"
        assert [record.position for record in done] == list(range(len(done)))
        assert all(record.result == record.nodeid.encode().ljust(1024, b".") for record in done)
    assert read_one(path, "PRAGMA quick_check") == "ok"


def test_a_file_keeps_the_newest_runs_only(tmp_path):
    with StateStore.open(tmp_path / "state.db", tmp_path) as store:
        run_ids = [store.begin_run([], {}, [f"t{n}", "shared"]) for n in range(KEPT_RUNS + 3)]
        assert [summary.run_id for summary in store.runs()] == run_ids[::-1][:KEPT_RUNS]
        for forgotten in run_ids[:3]:
            assert store.records(forgotten) == {}
        assert set(store.records(run_ids[-1])) == {f"t{KEPT_RUNS + 2}", "shared"}


def test_the_runs_can_be_read_while_a_run_holds_the_file(tmp_path):
    path = tmp_path / "state.db"
    with StateStore.open(path, tmp_path) as store:
        run_id = store.begin_run([], {}, ["a", "b"])
        store.started(run_id, "a", "gw0", time.time())
        store.commit()
        (summary,), holder = peek_runs(path, tmp_path)
        assert (summary.run_id, summary.status, summary.in_flight) == (run_id, "running", ("a",))
        assert holder is not None and f"pid {os.getpid()}" in holder
        assert "is running now" in format_status([summary], holder)
        with pytest.raises(StateError, match="in use by another pytest-pexen run"):
            StateStore.open(path, tmp_path)
    assert peek_runs(path, tmp_path)[1] is None
    with pytest.raises(StateError, match="holds the runs of rootdir"):
        peek_runs(path, tmp_path / "elsewhere")
    other = tmp_path / "notes.txt"
    other.write_text("not a database")
    with pytest.raises(StateError, match="notes.txt is not a SQLite database"):
        peek_runs(other, tmp_path)
