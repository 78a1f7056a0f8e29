"""The state store: the durable record of ``--pexen`` runs, in one SQLite file.

A run records itself here so that, when it dies (killed, crashed, power
lost, or stopped on purpose for a reboot or a breakpoint), a later run can
resume it. The default file is ``<rootdir>/.pexen/state.db``
(:data:`DEFAULT_PATH`). Only the standard library is used: ``sqlite3`` for the
data, ``fcntl.flock`` for the one-run-at-a-time lock.

Schema (format :data:`FORMAT_VERSION`)
--------------------------------------

``PRAGMA application_id`` is :data:`APPLICATION_ID` and ``PRAGMA
user_version`` is the format version: a file with other values is refused,
never touched.

``store(key, value)``
    Facts about the file: ``rootdir`` (resolved, fixed when the file is
    created; a file is refused in another rootdir) and who holds it now,
    written at every open: ``owner_pid``, ``owner_host``, ``owner_started``
    (epoch seconds), so that a run refused by the lock can say by whom.
    ``resumed:N``: when run N was resumed, a JSON list of epoch seconds
    (for the timeline; a file without it is read as never noted).
``runs``
    One row per run: ``id``; ``started`` (epoch seconds), ``pid``, ``host``,
    ``rootdir``; ``args`` (JSON list: the command line) and ``settings`` (JSON
    object: the options that shape the selection); ``status`` (see below),
    ``reason`` (why it paused), ``ended`` (when it finished or paused), and
    ``resumes`` (how many times it was resumed).
``tests``
    One row per test of a run, unique by ``(run, nodeid)``: ``position``
    (collection order), ``status``, ``attempts`` (starts, resumes included),
    ``reboots`` (reboots the test asked for), ``started`` and ``ended`` (epoch
    seconds), ``worker``, ``outcome`` and ``result`` (an opaque blob, everything
    needed to replay the test's reports; the run loop decides what it holds).

A run's status is ``running`` from :meth:`StateStore.begin_run` (or
:meth:`StateStore.resume_run`) on; ``paused`` when it stopped on purpose to
be resumed; ``finished`` when it ran to its end. A ``running`` run in a file
nobody holds died on the way. A test's status is ``pending`` (not started),
``running`` (started: if the run died, it was in flight), ``done`` (its result
is stored) or ``reboot`` (it asked for a reboot: resume runs it again).

Durability
----------

The database is in WAL mode with ``synchronous=FULL``. A commit appends the
changed pages to ``state.db-wal`` and fsyncs it before ``COMMIT`` returns: once
:meth:`StateStore.commit` returns, its data survives a SIGKILL, an OS crash and
a power loss (on a disk that honours flushes). A commit cut short at any
moment leaves all of its transaction or none: WAL frames are checksummed and
the next open ignores frames after the last complete commit. Checkpoints,
which copy the WAL into the database, sync both files and can be cut short
and redone. ``synchronous=NORMAL`` would save the fsync per commit and still
never corrupt the file, but the last commits before a power loss could roll
back: a test whose start was forgotten could run twice, a finished test
could run again. So FULL it is, and its one fsync per commit is what group
commit spreads: ``started``, ``finished`` and ``rebooting`` only buffer, and
the run loop commits once per turn, all buffered changes in one transaction.
A new file and new directories are made durable too (their directory is
fsynced); SQLite itself syncs the directory when it creates the WAL.
``fullfsync`` is on, which macOS needs for the same promise and Linux ignores.

The lock
--------

A run holds an exclusive ``flock`` on the database file, through a
descriptor of its own, for as long as the store is open: a second run on the
same file is refused (:class:`StateError`), not interleaved. SQLite's own
locks are POSIX ``fcntl`` locks, which a process loses on a file when it
closes *any* descriptor of that file; so the lock descriptor is closed only
after SQLite's connection, and a second store of the same file in one process
is refused before any descriptor is opened. Forked children (test workers)
inherit the lock descriptor; :meth:`StateStore.close_after_fork` closes the
child's copy, so that a worker that outlives the run does not keep the lock.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sqlite3
import stat
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable, NamedTuple

from ._errors import PexenError

#: Marks a SQLite file as pytest-pexen's (``PRAGMA application_id``): "pxen".
APPLICATION_ID = int.from_bytes(b"pxen", "big")
#: Layout of the tables (``PRAGMA user_version``); other versions are refused.
FORMAT_VERSION = 1
#: Where the state file is when no path is given, relative to the rootdir.
DEFAULT_PATH = Path(".pexen", "state.db")
#: How to resume, as the status display and messages say it.
RESUME_COMMAND = "pytest --pexen --pexen-resume"
#: Runs a file keeps: beginning a run forgets the ones before these.
KEPT_RUNS = 5

_SQLITE_HEADER = b"SQLite format 3\x00"
_ANOTHER_FILE = "pass --pexen-state PATH to use another file"
#: os.access() asks as the effective user (as open() will) where it can.
_EFFECTIVE_IDS = os.access in os.supports_effective_ids
#: Seconds SQLite waits for another program's lock before giving up.
_BUSY_TIMEOUT = 10.0
#: In-flight tests the status display names per run; it counts the rest.
_IN_FLIGHT_SHOWN = 5
#: Key prefix in the store table: when run N was resumed, "resumed:N" -> JSON list of epoch seconds.
_RESUMED_KEY = "resumed:"
#: Outcomes in the order the status display lists them; others follow by name.
_OUTCOME_ORDER = ("passed", "failed", "error", "crashed", "skipped", "xfailed", "xpassed")

_SCHEMA = """
CREATE TABLE store (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    pid INTEGER NOT NULL,
    host TEXT NOT NULL,
    rootdir TEXT NOT NULL,
    args TEXT NOT NULL,
    settings TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    ended REAL,
    resumes INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE tests (
    run INTEGER NOT NULL REFERENCES runs (id),
    nodeid TEXT NOT NULL,
    position INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    reboots INTEGER NOT NULL DEFAULT 0,
    started REAL,
    ended REAL,
    worker TEXT,
    outcome TEXT,
    result BLOB,
    UNIQUE (run, nodeid)
);
"""

# Every buffered statement ends with "WHERE run = ? AND nodeid = ?".
_STARTED = (
    "UPDATE tests SET status = 'running', attempts = attempts + 1, started = ?, worker = ?,"
    " ended = NULL, outcome = NULL, result = NULL WHERE run = ? AND nodeid = ?"
)
#: Parameters (run, run, nodeid): a buffered call's last two name its test.
_ADDED = (
    "INSERT OR IGNORE INTO tests (run, nodeid, position)"
    " SELECT ?1, ?3, coalesce(max(position), -1) + 1 FROM tests WHERE run = ?2"
)
_FINISHED = "UPDATE tests SET status = 'done', ended = ?, outcome = ?, result = ? WHERE run = ? AND nodeid = ?"
_REBOOTING = "UPDATE tests SET status = 'reboot', reboots = reboots + 1 WHERE run = ? AND nodeid = ?"
_UNSTARTED = (
    "UPDATE tests SET status = 'pending', attempts = attempts - 1, started = NULL, worker = NULL"
    " WHERE status = 'running' AND run = ? AND nodeid = ?"
)
_RUN_COLUMNS = "id, started, pid, host, rootdir, args, settings, status, reason, ended, resumes"
_TEST_COLUMNS = "nodeid, position, status, attempts, reboots, started, ended, worker, outcome, result"

#: Connections inherited by forked children, kept alive so that the child
#: never closes them (closing is using, and SQLite may checkpoint on close).
_INHERITED_CONNECTIONS: list[sqlite3.Connection] = []


class StateError(PexenError):
    """The state file cannot be used: damaged, foreign, locked, read-only...

    The message is for users: it names the file, says what is wrong and what
    to do. The file is left as it was.
    """


@dataclass(frozen=True)
class RunInfo:
    """A recorded run."""

    run_id: int
    #: Epoch seconds.
    started: float
    pid: int
    host: str
    rootdir: str
    #: The command-line arguments.
    args: tuple[str, ...]
    #: The options that shape the selection, as given to begin_run.
    settings: dict[str, Any]
    #: "running", "paused" or "finished".
    status: str
    #: Why it paused ("" otherwise).
    reason: str
    #: Epoch seconds when it finished or paused last.
    ended: float | None
    resumes: int


@dataclass(frozen=True)
class TestRecord:
    """One test of a run, as last committed."""

    __test__ = False  # a pytest run importing this must not collect it

    nodeid: str
    #: Collection order in the run.
    position: int
    #: "pending", "running", "done" or "reboot".
    status: str
    #: Times it was started.
    attempts: int
    #: Reboots it asked for.
    reboots: int
    started: float | None
    ended: float | None
    worker: str | None
    outcome: str | None
    #: The opaque blob given to StateStore.finished().
    result: bytes | None


@dataclass(frozen=True)
class RunSummary:
    """A run as the status display shows it."""

    run_id: int
    started: float
    status: str
    reason: str
    #: Tests in the run.
    tests: int
    #: Tests done, by outcome.
    outcomes: dict[str, int]
    #: Tests not started, or to run again after a reboot.
    waiting: int
    #: Node ids of the tests running when the run stopped, in collection order.
    in_flight: tuple[str, ...]

    @property
    def resumable(self) -> bool:
        return self.status != "finished"


class _Owner(NamedTuple):
    """Who holds a state file: recorded at open for the message of a refused run."""

    pid: int
    host: str
    started: float

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}, which opened it at {_clock(self.started)}"


#: Files open in this process, by (device, inode), with who opened them.
_OPEN_HERE: dict[tuple[int, int], _Owner] = {}


class StateStore:
    """An open state file, locked for this run; see the module docstring."""

    def __init__(self, path: Path, rootdir: Path, connection: sqlite3.Connection, lock_fd: int) -> None:
        """Use :meth:`open`."""
        self.path = path
        self.rootdir = rootdir
        self._connection: sqlite3.Connection | None = connection
        self._lock_fd = lock_fd
        self._file_id = _file_id(os.fstat(lock_fd))
        #: (statement, parameters) not yet committed, in the order they came.
        self._buffer: list[tuple[str, tuple[Any, ...]]] = []

    @classmethod
    def open(cls, path: Path, rootdir: Path) -> StateStore:
        """Open (or create) the state file at *path* for *rootdir*, and lock it.

        Raises StateError, leaving the file as it was, if it cannot be used.
        """
        rootdir = rootdir.resolve()
        _check_regular_file(path)
        _check_not_open_here(path)
        _make_directories(path.parent, path)
        _check_writable(path)
        lock_fd = _open_lock_file(path)
        owner = _Owner(os.getpid(), socket.gethostname(), time.time())
        connection = None
        try:
            _take_lock(lock_fd, path)
            _check_header(lock_fd, path)
            connection = sqlite3.connect(path, timeout=_BUSY_TIMEOUT, isolation_level=None)
            with _sqlite_errors(path, opening=True):
                _prepare(connection, path, rootdir)
                _record_owner(connection, owner)
        except BaseException:
            if connection is not None:
                connection.close()
            os.close(lock_fd)  # only after SQLite's descriptor: see the module docstring
            raise
        store = cls(path, rootdir, connection, lock_fd)
        _OPEN_HERE[store._file_id] = owner
        return store

    def close(self) -> None:
        """Commit what is buffered, close the database, then release the lock."""
        if self._connection is None:
            return
        try:
            self.commit()
        finally:
            self._connection.close()
            self._connection = None
            os.close(self._lock_fd)
            _OPEN_HERE.pop(self._file_id, None)

    def close_after_fork(self) -> None:
        """In a forked child: let go of the inherited store without touching the file.

        Closes the child's copy of the lock descriptor (the lock belongs to the
        open file, so the parent keeps it) and drops what was buffered. The
        store is closed for the child; the parent's is unchanged.
        """
        if self._connection is None:
            return
        _INHERITED_CONNECTIONS.append(self._connection)
        self._connection = None
        self._buffer.clear()
        os.close(self._lock_fd)
        _OPEN_HERE.pop(self._file_id, None)

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Runs: each call is durable when it returns, together with what was buffered.

    def begin_run(self, args: Sequence[str], settings: Mapping[str, object], nodeids: Sequence[str]) -> int:
        """Record a new run of *nodeids* (all pending); returns its run id.

        *settings* must be JSON-serializable; node ids must be unique.
        """
        _check_unique(nodeids)
        with self._transaction() as connection:
            cursor = connection.execute(
                "INSERT INTO runs (started, pid, host, rootdir, args, settings, status)"
                " VALUES (?, ?, ?, ?, ?, ?, 'running')",
                (
                    time.time(),
                    os.getpid(),
                    socket.gethostname(),
                    str(self.rootdir),
                    json.dumps(list(args)),
                    json.dumps(dict(settings), sort_keys=True),
                ),
            )
            run_id = cursor.lastrowid
            assert run_id is not None
            _insert_tests(connection, run_id, nodeids, first_position=0)
            _forget_old_runs(connection)
        return run_id

    def add_tests(self, run_id: int, nodeids: Sequence[str]) -> None:
        """Add tests (pending) at the end of a run; node ids already in it are left as they are."""
        _check_unique(nodeids)
        with self._transaction() as connection:
            (last,) = connection.execute("SELECT max(position) FROM tests WHERE run = ?", (run_id,)).fetchone()
            _insert_tests(connection, run_id, nodeids, first_position=0 if last is None else last + 1)

    def resume_run(self, run_id: int) -> None:
        """Mark an unfinished run as running again, count the resume, and note when it was."""
        with self._transaction() as connection:
            changed = connection.execute(
                "UPDATE runs SET status = 'running', reason = '', resumes = resumes + 1"
                " WHERE status != 'finished' AND id = ?",
                (run_id,),
            ).rowcount
            if changed != 1:
                raise KeyError(f"no unfinished run {run_id} in {self.path}")
            key = f"{_RESUMED_KEY}{run_id}"
            row = connection.execute("SELECT value FROM store WHERE key = ?", (key,)).fetchone()
            times = [*_times(row[0] if row else "[]"), time.time()]
            connection.execute("INSERT OR REPLACE INTO store (key, value) VALUES (?, ?)", (key, json.dumps(times)))

    def finish_run(self, run_id: int, status: str, reason: str = "") -> None:
        """End a run: *status* "finished", or "paused" (for a resume) with a *reason*."""
        if status not in ("finished", "paused"):
            raise ValueError(f"a run ends 'finished' or 'paused', not {status!r}")
        self._set_run(
            run_id, "UPDATE runs SET status = ?, reason = ?, ended = ? WHERE id = ?", status, reason, time.time()
        )

    def newest_run(self) -> RunInfo | None:
        """The newest run in the file, finished or not, if any."""
        row = self._query(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY id DESC LIMIT 1")
        return _run_info(row[0]) if row else None

    def newest_unfinished(self) -> RunInfo | None:
        """The newest run that is not finished (a resume continues it), if any."""
        row = self._query(f"SELECT {_RUN_COLUMNS} FROM runs WHERE status != 'finished' ORDER BY id DESC LIMIT 1")
        return _run_info(row[0]) if row else None

    def run(self, run_id: int) -> RunInfo:
        """The run *run_id*; KeyError if the file has none."""
        row = self._query(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", run_id)
        if not row:
            raise KeyError(f"no run {run_id} in {self.path}")
        return _run_info(row[0])

    # Tests: buffered until commit().

    def started(self, run_id: int, nodeid: str, worker: str, when: float) -> None:
        """*nodeid* started at *when* (epoch seconds) on *worker*: one attempt more."""
        self._buffer.append((_STARTED, (when, worker, run_id, nodeid)))

    def finished(self, run_id: int, nodeid: str, outcome: str, result: bytes, when: float) -> None:
        """*nodeid* ended at *when* with *outcome*; *result* is kept as it is, for a replay."""
        self._buffer.append((_FINISHED, (when, outcome, result, run_id, nodeid)))

    def added(self, run_id: int, nodeid: str) -> None:
        """*nodeid* joins run *run_id* (pending, after its other tests); a test in it already stays as it is."""
        self._buffer.append((_ADDED, (run_id, run_id, nodeid)))

    def unstarted(self, run_id: int, nodeid: str) -> None:
        """*nodeid*, recorded as started when it was handed out, came back without starting."""
        self._buffer.append((_UNSTARTED, (run_id, nodeid)))

    def rebooting(self, run_id: int, nodeid: str) -> None:
        """*nodeid* asked for a reboot: one reboot more, and it runs again on resume."""
        self._buffer.append((_REBOOTING, (run_id, nodeid)))

    def commit(self) -> None:
        """Write what was buffered since the last commit, in one transaction; return when durable.

        Without anything buffered, does nothing. If writing fails (StateError),
        the buffer is kept for another try. Calls that named a test not in
        their run do nothing; the commit raises ValueError naming them, after
        the others are durable.
        """
        if self._buffer:
            with self._transaction():
                pass

    # Reading what was committed.

    def records(self, run_id: int) -> dict[str, TestRecord]:
        """Every test of the run by node id, in collection order."""
        rows = self._query(f"SELECT {_TEST_COLUMNS} FROM tests WHERE run = ? ORDER BY position", run_id)
        return {row[0]: TestRecord(*row) for row in rows}

    def resumed_at(self, run_id: int) -> list[float]:
        """When the run was resumed (epoch seconds), oldest first; files
        written before these were noted give none."""
        row = self._query("SELECT value FROM store WHERE key = ?", f"{_RESUMED_KEY}{run_id}")
        return _times(row[0][0]) if row else []

    def durations(self, run_id: int) -> dict[str, float]:
        """Seconds each done test of the run took, by node id."""
        rows = self._query(
            "SELECT nodeid, ended - started FROM tests WHERE run = ? AND status = 'done' AND started IS NOT NULL",
            run_id,
        )
        return dict(rows)

    def runs(self) -> list[RunSummary]:
        """Every run in the file, newest first, for the status display."""
        return _run_summaries(self._query)

    # Mechanism.

    def _live_connection(self) -> sqlite3.Connection:
        if self._connection is None:
            raise RuntimeError(f"the state store {self.path} is closed")
        return self._connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: the buffer first, then the caller's statements; durable at exit."""
        connection = self._live_connection()
        with _sqlite_errors(self.path, opening=False), _write_transaction(connection):
            unknown = self._write_buffer(connection)
            yield connection
        self._buffer.clear()
        if unknown:
            raise ValueError(f"calls named tests not in their run, and did nothing: {', '.join(unknown)}")

    def _write_buffer(self, connection: sqlite3.Connection) -> list[str]:
        """Each run of calls of one kind in one executemany, in the order they came.

        Returns the tests named by calls that found no such test in their run.
        """
        unknown = []
        for statement, calls in groupby(self._buffer, key=itemgetter(0)):
            rows = [parameters for _, parameters in calls]
            if connection.executemany(statement, rows).rowcount != len(rows):
                unknown += _unknown_tests(connection, rows)
        return unknown

    def _set_run(self, run_id: int, statement: str, *parameters: object, missing: str = "no run") -> None:
        """Change the run's row (*statement* ends with "id = ?"); KeyError if there is no such row."""
        with self._transaction() as connection:
            if connection.execute(statement, (*parameters, run_id)).rowcount != 1:
                raise KeyError(f"{missing} {run_id} in {self.path}")

    def _query(self, statement: str, *parameters: object) -> list[tuple[Any, ...]]:
        with _sqlite_errors(self.path, opening=False):
            return self._live_connection().execute(statement, parameters).fetchall()


def _run_summaries(query: Callable[..., list[tuple[Any, ...]]]) -> list[RunSummary]:
    """Every run in a state file, newest first, read through *query*."""
    outcomes: dict[int, dict[str, int]] = {}
    waiting: dict[int, int] = {}
    tests: dict[int, int] = {}
    counts = query("SELECT run, status, outcome, count(*) FROM tests GROUP BY run, status, outcome")
    for run_id, status, outcome, count in counts:
        tests[run_id] = tests.get(run_id, 0) + count
        if status == "done":
            outcomes.setdefault(run_id, {})[outcome] = count
        elif status in ("pending", "reboot"):
            waiting[run_id] = waiting.get(run_id, 0) + count
    in_flight: dict[int, list[str]] = {}
    for run_id, nodeid in query("SELECT run, nodeid FROM tests WHERE status = 'running' ORDER BY position"):
        in_flight.setdefault(run_id, []).append(nodeid)
    return [
        RunSummary(
            run_id=run_id,
            started=started,
            status=status,
            reason=reason,
            tests=tests.get(run_id, 0),
            outcomes=outcomes.get(run_id, {}),
            waiting=waiting.get(run_id, 0),
            in_flight=tuple(in_flight.get(run_id, ())),
        )
        for run_id, started, status, reason in query(
            "SELECT id, started, status, reason FROM runs ORDER BY id DESC"
        )
    ]


def peek_runs(path: Path, rootdir: Path) -> tuple[list[RunSummary], str | None]:
    """The runs in the state file at *path*, read without taking its lock, and
    who holds it (a live run) if anyone: for --pexen-status. Raises StateError
    as :meth:`StateStore.open` does."""
    _check_regular_file(path)
    holder = _holder(path)
    connection = _read_only(path, timeout=_BUSY_TIMEOUT)
    try:
        with _sqlite_errors(path, opening=True):
            (application_id,) = connection.execute("PRAGMA application_id").fetchone()
            (version,) = connection.execute("PRAGMA user_version").fetchone()
            _check_ours(path, application_id, version)
            _check_rootdir(connection, path, rootdir.resolve())
            runs = _run_summaries(lambda statement, *parameters: connection.execute(statement, parameters).fetchall())
    finally:
        connection.close()
    return runs, holder


def _read_only(path: Path, timeout: float) -> sqlite3.Connection:
    """A connection that only reads *path*: it takes no lock of ours and writes nothing."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout)


def _holder(path: Path) -> str | None:
    """Who holds the file's lock now, if anyone (probed before SQLite opens it:
    closing the probe's descriptor drops this process's POSIX locks on the file).
    Raises StateError for a file that is not a SQLite database, as opening does."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check_header(fd, path)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = _read_owner(path)
        return owner.describe() if owner is not None else "another process"
    finally:
        os.close(fd)
    return None


def format_status(summaries: Sequence[RunSummary], holder: str | None = None) -> str:
    """The runs as a short text table, newest first, with how to resume.

    *holder*: who holds the file now; then its newest run is running now, not interrupted.
    """
    if not summaries:
        return "No runs are recorded in this state file."
    newest_first = sorted(summaries, key=lambda summary: summary.run_id, reverse=True)
    live = newest_first[0].run_id if holder is not None and newest_first[0].status == "running" else None
    table = [("run", "started", "status", "tests", "results")]
    table += [
        (str(s.run_id), _clock(s.started), "running now" if s.run_id == live else _status_word(s.status),
         str(s.tests), _results(s))
        for s in newest_first
    ]
    widths = [max(len(row[column]) for row in table) for column in range(4)]
    indent = " " * (widths[0] + 2)
    lines = [_table_line(table[0], widths)]
    for row, summary in zip(table[1:], newest_first):
        lines.append(_table_line(row, widths))
        lines += [indent + detail for detail in _details(summary)]
    newest = newest_first[0]
    if live is not None:
        lines.append(f"Run {live} is running now, in {holder}.")
    elif newest.resumable:
        lines.append(f"Run {newest.run_id} can be resumed: {RESUME_COMMAND}")
    else:
        # A resume continues the newest run only: an older unfinished one was left for it.
        lines.append(f"The newest run, {newest.run_id}, finished: nothing to resume.")
    return "\n".join(lines)


def _table_line(row: tuple[str, ...], widths: list[int]) -> str:
    run_id, started, status, tests, results = row
    line = f"{run_id:>{widths[0]}}  {started:<{widths[1]}}  {status:<{widths[2]}}  {tests:>{widths[3]}}  {results}"
    return line.rstrip()


def _status_word(status: str) -> str:
    # A "running" run in a file nobody else holds stopped without saying so.
    return "interrupted" if status == "running" else status


def _results(summary: RunSummary) -> str:
    def rank(outcome: str) -> tuple[int, str]:
        known = outcome in _OUTCOME_ORDER
        return (_OUTCOME_ORDER.index(outcome) if known else len(_OUTCOME_ORDER), outcome)

    parts = [f"{summary.outcomes[outcome]} {outcome}" for outcome in sorted(summary.outcomes, key=rank)]
    if summary.in_flight:
        parts.append(f"{len(summary.in_flight)} in flight")
    if summary.waiting:
        parts.append(f"{summary.waiting} not run")
    return ", ".join(parts)


def _details(summary: RunSummary) -> list[str]:
    details = []
    if summary.reason:
        details.append(f"reason: {summary.reason}")
    if summary.in_flight:
        shown = ", ".join(summary.in_flight[:_IN_FLIGHT_SHOWN])
        more = len(summary.in_flight) - _IN_FLIGHT_SHOWN
        details.append(f"in flight: {shown}" + (f" and {more} more" if more > 0 else ""))
    return details


def _clock(epoch_seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch_seconds))


# Opening, in order: checks that need no descriptor, then the lock, then SQLite.


def _check_regular_file(path: Path) -> None:
    """A path that exists must be a regular file (or a symlink to one); nothing is opened."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if os.path.islink(path):
            raise StateError(
                f"{path} is a symbolic link to {os.readlink(path)}, which does not exist; {_ANOTHER_FILE}."
            ) from None
        return
    except NotADirectoryError:
        return  # _make_directories says which part is not a directory
    except OSError as error:
        raise StateError(f"cannot look at {path}: {error.strerror}; {_ANOTHER_FILE}.") from None
    if not stat.S_ISREG(mode):
        raise StateError(_not_regular(path, mode))


def _not_regular(path: Path, mode: int) -> str:
    kinds = [
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
    ]
    kind = next((name for test, name in kinds if test(mode)), "not a regular file")
    link = " (through a symbolic link)" if os.path.islink(path) else ""
    return f"{path} is {kind}{link}, not a file pytest-pexen can keep its state in; {_ANOTHER_FILE}."


def _check_not_open_here(path: Path) -> None:
    """Refuse a second store of one file in this process (closing its descriptor would drop SQLite's locks)."""
    try:
        owner = _OPEN_HERE.get(_file_id(os.stat(path)))
    except OSError:
        return
    if owner is not None:
        raise StateError(_locked(path, owner))


def _make_directories(directory: Path, path: Path) -> None:
    """Create *directory* and missing parents (umask applies), each made durable."""
    missing = []
    while not directory.is_dir():
        if os.path.lexists(directory):
            raise StateError(f"cannot create the state file {path}: {directory} is not a directory; {_ANOTHER_FILE}.")
        missing.append(directory)
        directory = directory.parent
    for new in reversed(missing):
        try:
            os.mkdir(new)
        except FileExistsError:
            continue  # made meanwhile by someone else
        except OSError as error:
            raise StateError(
                f"cannot create the directory {new} for the state file {path} ({error.strerror})."
                f" Create it, or {_ANOTHER_FILE}."
            ) from None
        _sync_directory(new.parent)


def _check_writable(path: Path) -> None:
    """The directory (SQLite creates the WAL there) and the file, if it exists, must be writable."""
    directory = path.parent
    if not os.access(directory, os.W_OK | os.X_OK, effective_ids=_EFFECTIVE_IDS):
        raise _not_writable(path, directory, None)
    if os.path.exists(path) and not os.access(path, os.W_OK, effective_ids=_EFFECTIVE_IDS):
        raise _not_writable(path, path, None)


def _not_writable(path: Path, place: Path, error: OSError | None) -> StateError:
    if error is not None:
        why = error.strerror
    elif _on_read_only_file_system(place):
        why = "read-only file system"
    else:
        why = "no write permission"
    what = "the state file" if place == path else f"the directory of the state file {path}"
    return StateError(
        f"cannot write {place}, {what} ({why}); pytest-pexen needs to write its state there"
        f" (SQLite also creates files next to it). Make it writable, or {_ANOTHER_FILE}."
    )


def _on_read_only_file_system(place: Path) -> bool:
    try:
        return bool(os.statvfs(place).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _open_lock_file(path: Path) -> int:
    """The descriptor that holds the lock; creates the file (umask applies) if missing."""
    created = not os.path.lexists(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC, 0o666)
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise _not_writable(path, path, error) from None
        raise StateError(f"cannot open {path}: {error.strerror}; {_ANOTHER_FILE}.") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):  # it changed since _check_regular_file
        os.close(fd)
        raise StateError(_not_regular(path, mode))
    if created:
        _sync_directory(path.parent)
    return fd


def _take_lock(lock_fd: int, path: Path) -> None:
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise StateError(_locked(path, _read_owner(path))) from None


def _locked(path: Path, owner: _Owner | None) -> str:
    by = f" ({owner.describe()})" if owner is not None else ""
    return (
        f"{path} is in use by another pytest-pexen run{by}; two runs cannot share a state file."
        f" Wait for that run to end, or {_ANOTHER_FILE}."
    )


def _read_owner(path: Path) -> _Owner | None:
    """Who holds the file, as it recorded at open; None if that cannot be read."""
    try:
        reader = _read_only(path, timeout=1.0)
        try:
            values = dict(reader.execute("SELECT key, value FROM store WHERE key LIKE 'owner%'"))
        finally:
            reader.close()
        return _Owner(int(values["owner_pid"]), values["owner_host"], float(values["owner_started"]))
    except (sqlite3.Error, KeyError, ValueError):
        return None


def _check_header(lock_fd: int, path: Path) -> None:
    """An empty file becomes a new store; anything else must start as SQLite files do."""
    header = os.pread(lock_fd, len(_SQLITE_HEADER), 0)
    if header and header != _SQLITE_HEADER:
        raise StateError(
            f"{path} is not a SQLite database (it starts with {header!r}), so not a pytest-pexen state file;"
            f" it is left as it is. Move it away, or {_ANOTHER_FILE}."
        )


def _prepare(connection: sqlite3.Connection, path: Path, rootdir: Path) -> None:
    """Check an existing store (or create a new one), then switch to WAL with full syncs."""
    connection.execute("PRAGMA synchronous = FULL")
    connection.execute("PRAGMA fullfsync = ON")
    (application_id,) = connection.execute("PRAGMA application_id").fetchone()
    (version,) = connection.execute("PRAGMA user_version").fetchone()
    (objects,) = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    if application_id == 0 and version == 0 and objects == 0:
        _create(connection, rootdir)
    else:
        _check_ours(path, application_id, version)
        _check_intact(connection, path)
        _check_rootdir(connection, path, rootdir)
    (mode,) = connection.execute("PRAGMA journal_mode = WAL").fetchone()
    if mode != "wal":
        raise StateError(
            f"{path} cannot be used in SQLite's WAL mode (it stays in {mode!r} mode), which pytest-pexen"
            f" needs for durable commits; network file systems cannot do it. {_ANOTHER_FILE.capitalize()}"
            " on a local disk."
        )


def _create(connection: sqlite3.Connection, rootdir: Path) -> None:
    """The tables, in one transaction: a kill leaves a blank file or a whole store."""
    with _write_transaction(connection):
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                connection.execute(statement)
        connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        connection.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
        connection.execute("INSERT INTO store (key, value) VALUES ('rootdir', ?)", (str(rootdir),))


def _check_ours(path: Path, application_id: int, version: int) -> None:
    if application_id != APPLICATION_ID:
        raise StateError(
            f"{path} is a SQLite database that pytest-pexen did not write (application id {application_id:#x});"
            f" it is left as it is. Move it away, or {_ANOTHER_FILE}."
        )
    if version != FORMAT_VERSION:
        age = "a newer" if version > FORMAT_VERSION else "an unknown"
        raise StateError(
            f"{path} holds pytest-pexen state in format {version}, {age} format than this pytest-pexen reads"
            f" (format {FORMAT_VERSION}); it is left as it is. Resume its runs with the pytest-pexen that wrote"
            f" it, or {_ANOTHER_FILE}."
        )


def _check_intact(connection: sqlite3.Connection, path: Path) -> None:
    problems = [problem for (problem,) in connection.execute("PRAGMA quick_check").fetchall()]
    if problems != ["ok"]:
        raise StateError(_damaged(path, problems[0]))


def _damaged(path: Path, problem: str) -> str:
    return (
        f"{path} is damaged ({problem}); it is left as it is, for you to inspect or recover"
        f" (sqlite3 {path} .recover). Move it away to start afresh, or {_ANOTHER_FILE}."
    )


def _check_rootdir(connection: sqlite3.Connection, path: Path, rootdir: Path) -> None:
    row = connection.execute("SELECT value FROM store WHERE key = 'rootdir'").fetchone()
    if row is None:
        raise StateError(_damaged(path, "it does not say which rootdir it belongs to"))
    if Path(row[0]).resolve() != rootdir:
        raise StateError(
            f"{path} holds the runs of rootdir {row[0]}, not of this rootdir {rootdir}; it is left as it is."
            f" Run from {row[0]}, or pass --pexen-state PATH to use a state file of this rootdir."
        )


def _record_owner(connection: sqlite3.Connection, owner: _Owner) -> None:
    with _write_transaction(connection):
        connection.executemany(
            "INSERT OR REPLACE INTO store (key, value) VALUES (?, ?)",
            [("owner_pid", str(owner.pid)), ("owner_host", owner.host), ("owner_started", repr(owner.started))],
        )


#: SQLite's primary result codes that are about the file, not about our code.
_SQLITE_FILE_CODES = {
    3: "PERM",
    5: "BUSY",
    6: "LOCKED",
    8: "READONLY",
    10: "IOERR",
    11: "CORRUPT",
    13: "FULL",
    14: "CANTOPEN",
    15: "PROTOCOL",
    22: "NOLFS",
    23: "AUTH",
    26: "NOTADB",
}


@contextmanager
def _sqlite_errors(path: Path, opening: bool) -> Iterator[None]:
    """SQLite's errors about the file as StateErrors; others (our bugs) as they are.

    While *opening*, any SQLite error means the file is not a store we can use.
    """
    try:
        yield
    except sqlite3.DatabaseError as error:
        code = _SQLITE_FILE_CODES.get(getattr(error, "sqlite_errorcode", 0) & 0xFF)
        if code is None and not opening:
            raise
        raise StateError(_sqlite_problem(path, code, error)) from error


def _sqlite_problem(path: Path, code: str | None, error: sqlite3.Error) -> str:
    if code in ("CORRUPT", "NOTADB"):
        return _damaged(path, str(error))
    if code in ("BUSY", "LOCKED"):
        return f"{path} is locked by another program ({error}). End that program, or {_ANOTHER_FILE}."
    if code in ("PERM", "READONLY", "CANTOPEN", "AUTH"):
        return f"cannot write {path} ({error}). Make it and its directory writable, or {_ANOTHER_FILE}."
    if code == "FULL":
        return f"cannot write {path}: the disk is full. Free some space; then resume with {RESUME_COMMAND}."
    if code is not None:
        return f"cannot read or write {path} ({error}). Check the disk, or {_ANOTHER_FILE}."
    return f"{path} cannot be read as a pytest-pexen state file ({error}). Move it away, or {_ANOTHER_FILE}."


# Small pieces.


@contextmanager
def _write_transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE, the body, COMMIT (durable when it returns); rolled back if the body raises."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def _file_id(status: os.stat_result) -> tuple[int, int]:
    return (status.st_dev, status.st_ino)


def _sync_directory(directory: Path) -> None:
    """Make the names in *directory* durable (a new file or subdirectory)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_unique(nodeids: Sequence[str]) -> None:
    if len(set(nodeids)) != len(nodeids):
        seen: set[str] = set()
        repeated = sorted({nodeid for nodeid in nodeids if nodeid in seen or seen.add(nodeid)})
        raise ValueError(f"node ids given more than once: {', '.join(repeated)}")


def _forget_old_runs(connection: sqlite3.Connection) -> None:
    """Keep the newest KEPT_RUNS runs: the file (and the check at every open)
    would otherwise grow with every run. Their pages are reused, not returned."""
    old = "SELECT id FROM runs ORDER BY id DESC LIMIT -1 OFFSET ?"
    connection.execute(f"DELETE FROM tests WHERE run IN ({old})", (KEPT_RUNS,))
    connection.execute(f"DELETE FROM runs WHERE id IN ({old})", (KEPT_RUNS,))
    connection.execute(
        "DELETE FROM store WHERE key LIKE ? AND CAST(substr(key, ?) AS INTEGER) NOT IN (SELECT id FROM runs)",
        (f"{_RESUMED_KEY}%", len(_RESUMED_KEY) + 1),
    )


def _times(text: str) -> list[float]:
    """A JSON list of epoch seconds, as kept under a ``resumed:`` key (anything else: none)."""
    try:
        values = json.loads(text)
    except ValueError:
        return []
    return [float(v) for v in values if isinstance(v, (int, float))] if isinstance(values, list) else []


def _insert_tests(connection: sqlite3.Connection, run_id: int, nodeids: Sequence[str], first_position: int) -> None:
    connection.executemany(
        "INSERT OR IGNORE INTO tests (run, nodeid, position) VALUES (?, ?, ?)",
        [(run_id, nodeid, first_position + offset) for offset, nodeid in enumerate(nodeids)],
    )


def _unknown_tests(connection: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> list[str]:
    """The tests, named by buffered calls, that are not in their run (a bug of the caller)."""
    return [
        f"{nodeid} (run {run_id})"
        for *_, run_id, nodeid in rows
        if connection.execute("SELECT 1 FROM tests WHERE run = ? AND nodeid = ?", (run_id, nodeid)).fetchone() is None
    ]


def _run_info(row: tuple[Any, ...]) -> RunInfo:
    run_id, started, pid, host, rootdir, args, settings, status, reason, ended, resumes = row
    return RunInfo(
        run_id=run_id,
        started=started,
        pid=pid,
        host=host,
        rootdir=rootdir,
        args=tuple(json.loads(args)),
        settings=json.loads(settings),
        status=status,
        reason=reason,
        ended=ended,
        resumes=resumes,
    )
