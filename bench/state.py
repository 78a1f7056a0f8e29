"""Benchmark the state store: what durable per-test state costs a run.

Run from the repository root as ``python bench/state.py``. No pytest, no
processes: for each directory, number of tests and commit interval, a fresh
state file gets a run of N tests (``begin_run``), then the run loop's pattern
in batches of ``every`` tests: ``started`` for each, ``commit`` (a start is
durable before the test starts), ``finished`` for each with a 1 KB result,
``commit``. So a batch costs two commits, each one fsync of the WAL.

Printed per case: the file system, tests, tests per commit, commits, seconds
for ``begin_run``, seconds for all starts and finishes with their commits
("run s"; "min s" is the fastest repeat), microseconds per test and per
commit for that, seconds for a reopen of the finished file, of which
``PRAGMA quick_check`` alone (run on its own connection, file in the page
cache) is the next column, and quick_check again once the file's pages were
dropped from the page cache (as after a reboot): "cold s". Wall-clock seconds (``time.perf_counter``): fsync
is the cost, and it is not CPU time; so other disk traffic on the machine
shows, and each case is the median of ``--repeat`` runs. The budget lines
compare 2,000 tests (begin_run and run, medians) with 5% of a 2.5 s run.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pytest_pexen._state import StateStore  # noqa: E402

RESULT = bytes(range(256)) * 4
BUDGET_TESTS = 2000
BUDGET_SECONDS = 0.1


def file_system(directory: Path) -> str:
    """The type and mount point of the file system *directory* is on, from /proc/mounts."""
    real = os.path.realpath(directory)
    best = ("?", "")
    with open("/proc/mounts") as mounts:
        for line in mounts:
            _, mount_point, kind, *_ = line.split()
            inside = real == mount_point or real.startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) >= len(best[1]):
                best = (kind, mount_point)
    return f"{best[0]} {best[1]}"


def measure(directory: Path, tests: int, every: int) -> dict[str, float]:
    """One case on a fresh file in *directory*: seconds per phase."""
    with tempfile.TemporaryDirectory(dir=directory, prefix="pexen-bench-") as scratch:
        path = Path(scratch, "state.db")
        nodeids = [f"tests/test_m{i // 100}.py::test_{i}" for i in range(tests)]
        store = StateStore.open(path, Path(scratch))
        began = time.perf_counter()
        run_id = store.begin_run(["--pexen"], {"workers": 2}, nodeids)
        looped = time.perf_counter()
        for first in range(0, tests, every):
            batch = nodeids[first : first + every]
            for nodeid in batch:
                store.started(run_id, nodeid, "w0", time.time())
            store.commit()
            for nodeid in batch:
                store.finished(run_id, nodeid, "passed", RESULT, time.time())
            store.commit()
        ended = time.perf_counter()
        store.close()
        reopened = time.perf_counter()
        StateStore.open(path, Path(scratch)).close()
        checked = time.perf_counter()
        megabytes = path.stat().st_size / 1e6
        quick_check(path)
        warm = time.perf_counter()
        forget_cached_pages(path)
        cold = time.perf_counter()
        quick_check(path)
        done = time.perf_counter()
    return {
        "begin": looped - began,
        "run": ended - looped,
        "open": checked - reopened,
        "quick_check": warm - checked,
        "cold": done - cold,
        "megabytes": megabytes,
    }


def quick_check(path: Path) -> None:
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA quick_check").fetchall() == [("ok",)]
    connection.close()


def forget_cached_pages(path: Path) -> None:
    """Drop this file's pages (only) from the page cache, so the next read comes from the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--every", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--dirs", type=Path, nargs="+", default=[Path.cwd(), Path(tempfile.gettempdir())])
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    print(f"sqlite {sqlite3.sqlite_version}, python {sys.version.split()[0]}")
    header = (
        f"{'file system':<16} {'tests':>6} {'every':>5} {'commits':>7} {'begin s':>8} {'run s':>7} {'min s':>7}"
        f" {'us/test':>8} {'us/commit':>9} {'open s':>7} {'qcheck s':>8} {'cold s':>7} {'MB':>5}"
    )
    print(header)
    print("-" * len(header))
    budget = []
    for directory in options.dirs:
        where = file_system(directory)
        for tests in options.tests:
            for every in options.every:
                repeats = [measure(directory, tests, every) for _ in range(options.repeat)]
                seconds = {key: statistics.median(r[key] for r in repeats) for key in repeats[0]}
                fastest = min(r["run"] for r in repeats)
                commits = 2 * -(-tests // every)
                print(
                    f"{where:<16} {tests:>6} {every:>5} {commits:>7} {seconds['begin']:>8.3f} {seconds['run']:>7.3f}"
                    f" {fastest:>7.3f} {seconds['run'] / tests * 1e6:>8.1f} {seconds['run'] / commits * 1e6:>9.1f}"
                    f" {seconds['open']:>7.3f} {seconds['quick_check']:>8.3f} {seconds['cold']:>7.3f}"
                    f" {seconds['megabytes']:>5.1f}",
                    flush=True,
                )
                if tests == BUDGET_TESTS:
                    total = seconds["begin"] + seconds["run"]
                    budget.append(f"{where} every {every}: {total:.3f} s ({100 * total / 2.5:.1f}% of 2.5 s)")
    if budget:
        print(f"Budget: {BUDGET_TESTS} tests, begin_run + run, at most {BUDGET_SECONDS} s:")
        print("\n".join(f"  {line}" for line in budget))
    return 0


if __name__ == "__main__":
    sys.exit(main())
