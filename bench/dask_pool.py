"""Benchmark the Dask pool against the local process pool, on the same machine.

Run from the repository root as ``python bench/dask_pool.py [--workers W]
[--repeat R]``; needs pytest-pexen with its ``dask`` extra. Starts one
local Dask cluster (W single-threaded worker processes, as ``dask worker
--nthreads 1`` would be) for the whole benchmark, so the figures are the
pool's, not the cluster's start. Two suites, in a temporary directory:

- 500 trivial tests (``def test_N(): pass``, 100 per module);
- 50 tests that sleep 0.2 s each.

Each is run with ``pytest --pexen --pexen-workers=W`` (the process pool)
and with ``pytest --pexen --pexen-dask=ADDRESS`` and a ``default:
workers=W pool=dask`` group, alternated, one untimed warm-up round of each
and then R timed rounds. Every test appends its start and end
``time.time()`` to a file, so a run splits into its **start** (command
start to the first test's start: interpreter, collection, and for Dask
connecting and each host's own collection), its **run phase** (first
test's start to last test's end) and its end. Printed per suite: medians
of the whole command's wall time and of the run phase for both pools,
their ratios, and the Dask pool's added time per test: (Dask run phase -
process run phase) / tests, in wall time with W workers. Targets: the
sleeping suite's wall time within 1.10x of the process pool's (checked on
the whole command and on the run phase), and the trivial suite's added
time per test under 2 ms.

pytest runs as a subprocess with plugin autoloading off, the plugin loaded
with ``-p`` and the cache off (``bench/run.py``'s helpers); the Dask
workers inherit this process's environment, so ``PYTHONPATH`` must let
them import the same pytest-pexen. A run that fails or reports other
outcomes stops the benchmark (exit status 2).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from run import NO_CACHE, PYTEST, BenchError, print_header, print_table, pytest_env, verdict, write_ini

TRIVIAL = 500
SLEEPING = 50
SLEEP = 0.2
SLEEPING_TARGET = 1.10
TRIVIAL_TARGET_MS = 2.0
#: The tests' times go next to the conftest: Dask workers' tests do not see
#: the controller's environment, so no variable can say where.
CONFTEST = '''
import os, time

import pytest

TIMES = os.path.join(os.path.dirname(__file__), "times.txt")


@pytest.fixture(autouse=True)
def _times():
    start = time.time()
    yield
    line = f"{start:.6f} {time.time():.6f}\\n"
    fd = os.open(TIMES, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, line.encode())
    os.close(fd)
'''


@dataclass(frozen=True)
class Run:
    """One command: its wall time, and its tests' first start and last end (time.time())."""

    wall: float
    started: float
    first: float
    last: float

    @property
    def run_phase(self) -> float:
        return self.last - self.first

    @property
    def start(self) -> float:
        return self.first - self.started


def write_suite(root: Path, tests: int, sleep: float) -> None:
    root.mkdir()
    write_ini(root)
    (root / "conftest.py").write_text(CONFTEST)
    body = f"def test_{{n}}():\n    time.sleep({sleep})\n\n\n" if sleep else "def test_{n}():\n    pass\n\n\n"
    for module, first in enumerate(range(0, tests, 100)):
        count = min(100, tests - first)
        text = "import time\n\n\n" + "".join(body.format(n=n) for n in range(count))
        (root / f"test_{module:03d}.py").write_text(text)


def run(suite: Path, args: Sequence[str], tests: int, env: dict[str, str]) -> Run:
    times = suite / "times.txt"
    times.unlink(missing_ok=True)
    command = [*PYTEST, *NO_CACHE, "-p", "pytest_pexen._plugin", "--pexen", "--pexen-state=off", *args]
    started = time.time()
    begin = time.perf_counter()
    proc = subprocess.run(command, cwd=suite, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - begin
    last_line = (proc.stdout.strip().splitlines() or [""])[-1]
    if proc.returncode != 0 or f"{tests} passed" not in last_line:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise BenchError(f"{' '.join(command)} in {suite}: exit code {proc.returncode}\n{tail}")
    spans = [tuple(map(float, line.split())) for line in times.read_text().splitlines()]
    return Run(wall, started, min(s for s, _ in spans), max(e for _, e in spans))


@dataclass(frozen=True)
class Compared:
    name: str
    tests: int
    process: list[Run]
    dask: list[Run]

    def median(self, pool: str, figure: str) -> float:
        return statistics.median(getattr(run, figure) for run in getattr(self, pool))

    def ratio(self, figure: str) -> float:
        return self.median("dask", figure) / self.median("process", figure)

    def added_ms_per_test(self) -> float:
        return 1000 * (self.median("dask", "run_phase") - self.median("process", "run_phase")) / self.tests


def compare(
    name: str, suite: Path, tests: int, workers: int, address: str, repeat: int, env: dict[str, str]
) -> Compared:
    modes = {
        "process": [f"--pexen-workers={workers}"],
        "dask": [f"--pexen-dask={address}", "-o", f"pexen_groups=default: workers={workers} pool=dask"],
    }
    results: dict[str, list[Run]] = {"process": [], "dask": []}
    for round_ in range(repeat + 1):
        order = ["process", "dask"] if round_ % 2 else ["dask", "process"]
        for pool in order:
            result = run(suite, modes[pool], tests, env)
            if round_:  # the first round warms up (bytecode, page cache)
                results[pool].append(result)
                print(
                    f"  {name}, {pool:7}: wall {result.wall:6.2f}s  start {result.start:5.2f}s  "
                    f"run phase {result.run_phase:6.2f}s"
                )
    return Compared(name, tests, results["process"], results["dask"])


def report(compared: Sequence[Compared]) -> None:
    print()
    header = ("suite", "process wall", "dask wall", "ratio", "process run", "dask run", "ratio", "added/test")
    rows = []
    for c in compared:
        rows.append(
            (
                f"{c.tests} {c.name}",
                f"{c.median('process', 'wall'):.2f}s",
                f"{c.median('dask', 'wall'):.2f}s",
                f"{c.ratio('wall'):.2f}x",
                f"{c.median('process', 'run_phase'):.2f}s",
                f"{c.median('dask', 'run_phase'):.2f}s",
                f"{c.ratio('run_phase'):.2f}x",
                f"{c.added_ms_per_test():+.2f} ms",
            )
        )
    print_table(header, rows)
    trivial, sleeping = compared
    checks = [
        ("sleeping: dask wall / process wall", sleeping.ratio("wall"), SLEEPING_TARGET, "x"),
        ("sleeping: dask run phase / process run phase", sleeping.ratio("run_phase"), SLEEPING_TARGET, "x"),
        ("trivial: added time per test", trivial.added_ms_per_test(), TRIVIAL_TARGET_MS, " ms"),
    ]
    print()
    for label, value, limit, unit in checks:
        print(f"  {label}: {value:.2f}{unit} (target {limit:g}{unit}) {verdict(value, limit)}")
    start = statistics.median(r.start for c in compared for r in c.dask) - statistics.median(
        r.start for c in compared for r in c.process
    )
    print(f"  the Dask pool's start costs {start:.2f}s more than the process pool's (connecting, hosts collecting)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args(argv)
    import distributed

    print_header()
    print(f"distributed {distributed.__version__}; {options.workers} workers; {options.repeat} timed rounds")
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pexen-bench-dask-") as tmp, distributed.LocalCluster(
        n_workers=options.workers,
        threads_per_worker=1,
        processes=True,
        memory_limit=0,
        dashboard_address=":0",
    ) as cluster:
        root = Path(tmp)
        env = pytest_env(root / "pycache")
        trivial, sleeping = root / "trivial", root / "sleeping"
        write_suite(trivial, TRIVIAL, 0.0)
        write_suite(sleeping, SLEEPING, SLEEP)
        address = cluster.scheduler_address
        try:
            compared = [
                compare("trivial", trivial, TRIVIAL, options.workers, address, options.repeat, env),
                compare("sleeping", sleeping, SLEEPING, options.workers, address, options.repeat, env),
            ]
        except BenchError as error:
            print(f"benchmark stopped: {error}", file=sys.stderr)
            return 2
        report(compared)
    print(f"\ntook {time.monotonic() - began:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
