"""Benchmark pytest --pexen against plain pytest and pytest-xdist.

Run from the repository root as ``python bench/run.py``. Four parts, each on
a suite generated in a temporary directory:

1. Trivial tests at each size of ``--sizes`` (default 2,000 and 20,000):
   plain pytest, ``pytest -n W`` (xdist) and ``pytest --pexen
   --pexen-workers=W`` (at the first size also with ``--pexen-timeout=60``,
   with ``--pexen-state=off``, and with what watching a run turns on: the
   status line and the timeline, or the heartbeat and the timeline; target
   at most 1.03x pexen's total without them),
   each timed as a whole command and again with ``--collect-only``, whose
   difference is the run phase; and the peak RSS of the main pytest process,
   which the suite's conftest.py records. Rounds with the order rotated
   each round, after a warm-up round; medians, and ratios to plain pytest.
   Targets: pexen's run phase at most 0.60x plain's at 20,000 tests, its
   total at most 0.85x at 2,000, its controller RSS at most 1.30x at 20,000.
2. Scheduling quality on a DAG of sleeping tests (a chain, diamonds and
   independent tests linked by ``pexen`` marker requires/provides): the
   makespan of a ``--pexen`` run against the lower bound
   max(critical path, total work / workers), target at most 1.05, and a
   check, from the recorded timestamps, that no test started before all
   providers of its requirements had ended.
3. Locks and groups drill: sleeping tests that claim (exclusive) or use
   (shared) resources, in three exclusivity groups with 1, ``--workers`` and
   3 workers. Checks from the timestamps that no claim overlapped another
   claim or a use of its resource, that groups did not interleave and ran in
   dependency-then-configuration order, that no group ran more tests at once
   than its workers, and dependency order; prints each group's makespan
   against max(critical path, work / workers, work on the busiest claimed
   resource), target at most 1.05, and the gaps between groups.
4. Long tests behind short ones: 50 tests that return at once and 4 that
   sleep 2 s, in four file layouts. Per layout, xdist once and pexen twice
   with pytest's cache on (a directory per layout): the first pexen run has
   no recorded durations, the second has the first's. Each run's makespan
   against max(longest test, work / workers), target at most 1.10 for pexen.

Every pytest runs as a subprocess with plugin autoloading off and its
plugins loaded with ``-p``, so other installed plugins do not skew results;
the cache plugin is off except for pexen in part 4. A summary lists every
target with its measured figure and PASS or MISSED. Exit status: 0 when
everything ran (whether targets were met or MISSED), 1 on a violation
(dependency order in part 2; locks, groups, concurrency or dependency order
in part 3), 2 when a pytest run failed or reported unexpected outcomes.
"""

from __future__ import annotations

import argparse
import graphlib
import heapq
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Collection, Mapping, Sequence

PYTEST = (sys.executable, "-m", "pytest", "-q")
#: Added to every pytest command unless the run is given a cache directory.
NO_CACHE = ("-p", "no:cacheprovider")
TIMES_ENV = "PEXEN_BENCH_TIMES"
TESTS_PER_MODULE = 100
#: Makespan over its lower bound, in the DAG (part 2) and the drill (part 3).
BOUND_TARGET = 1.05
IGNORED_COUNTS = frozenset({"warning", "warnings"})
MARKER_LINE = "pexen: pytest-pexen scheduling metadata"

#: Each test's (start, end) time.time(), by test name.
Times = dict[str, tuple[float, float]]
#: (provider, dependent, tag): *dependent* requires *tag*, which *provider* provides.
Link = tuple[str, str, str]


class BenchError(Exception):
    """A pytest run did not do what it must, so its timing means nothing."""


# -- running pytest ------------------------------------------------------


@dataclass(frozen=True)
class Mode:
    """One way of running a suite: a label and the extra pytest arguments."""

    name: str
    args: tuple[str, ...]

    @property
    def collects_only(self) -> bool:
        return "--collect-only" in self.args

    def collecting(self) -> Mode:
        """The same command, stopped after collection."""
        return Mode(f"{self.name} --collect-only", (*self.args, "--collect-only"))


PLAIN = Mode("pytest", ())


def xdist_mode(workers: int) -> Mode:
    return Mode(f"xdist -n {workers}", ("-p", "xdist.plugin", "-n", str(workers)))


def pexen_mode(workers: int) -> Mode:
    args = ("-p", "pytest_pexen._plugin", "--pexen", f"--pexen-workers={workers}")
    return Mode(f"pexen --pexen-workers={workers}", args)


def pexen_timeout_mode(workers: int) -> Mode:
    """pexen with a per-test time limit: every test is watched by the watchdog."""
    base = pexen_mode(workers)
    return Mode(f"{base.name} --pexen-timeout=60", (*base.args, "--pexen-timeout=60"))


def pexen_stateless_mode(workers: int) -> Mode:
    """pexen keeping no state file: what durable state costs is the difference."""
    base = pexen_mode(workers)
    return Mode(f"{base.name} --pexen-state=off", (*base.args, "--pexen-state=off"))


def pexen_watched_modes(workers: int) -> list[Mode]:
    """pexen with what a user watching the run turns on (issue 14): the live
    status line and the HTML timeline (as on a terminal), and the heartbeat
    every second and the timeline (as in a CI log, where no status line is
    drawn). The status line is forced on: the bench's output is no terminal."""
    base = pexen_mode(workers)
    timeline = "--pexen-timeline=pexen-timeline.html"
    terminal = ("--pexen-progress=on", timeline)
    log = ("--pexen-progress=off", "--pexen-heartbeat=1", timeline)
    return [
        Mode(f"{base.name} +status line +timeline", (*base.args, *terminal)),
        Mode(f"{base.name} +heartbeat 1s +timeline", (*base.args, *log)),
    ]


def pytest_env(pycache: Path) -> dict[str, str]:
    """The environment for pytest subprocesses: no autoloaded plugins, no
    addopts, and bytecode written under *pycache* (so that it is reused after
    the first run whatever PYTHONDONTWRITEBYTECODE says, and nothing is written
    outside the benchmark's temporary directory)."""
    unwanted = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in unwanted}
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def outcome_counts(output: str) -> dict[str, int]:
    """The counts on pytest's final summary line, e.g. {"passed": 2000}."""
    lines = [line for line in output.splitlines() if line.strip()]
    if not lines:
        return {}
    return {word: int(count) for count, word in re.findall(r"(\d+) (\w+)", lines[-1])}


def expected_counts(mode: Mode, tests: int) -> dict[str, int]:
    """What pytest's summary line must count: passed tests, or collected ones."""
    if mode.collects_only:
        return {"test" if tests == 1 else "tests": tests}
    return {"passed": tests}


def run_pytest(
    suite: Path,
    mode: Mode,
    expected: int,
    env: Mapping[str, str],
    *,
    cache_dir: Path | None = None,
) -> float:
    """Run *mode* on *suite*; its wall time in seconds, once checked to pass
    (or, with --collect-only, to collect) *expected* tests. pytest's cache
    plugin is off unless a *cache_dir* is given."""
    cache = ("-o", f"cache_dir={cache_dir}") if cache_dir else NO_CACHE
    command = [*PYTEST, *cache, *mode.args]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=suite, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    counts = outcome_counts(proc.stdout)
    outcomes = {word: n for word, n in counts.items() if word not in IGNORED_COUNTS}
    wanted = expected_counts(mode, expected)
    if proc.returncode != 0 or outcomes != wanted:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise BenchError(
            f"{mode.name} on {suite}: exit code {proc.returncode}, outcomes {outcomes}, "
            f"expected {wanted}\n  command: {' '.join(command)}\n{tail}"
        )
    return seconds


def write_ini(root: Path) -> None:
    """A pytest.ini makes *root* the rootdir; the marker is declared for plain runs."""
    (root / "pytest.ini").write_text(f"[pytest]\nmarkers =\n    {MARKER_LINE}\n")


def print_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], left: Collection[int] = (0,)
) -> None:
    """Columns as wide as their widest cell; those in *left* aligned left, others right."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [
            cell.ljust(width) if i in left else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths))
        ]
        print("  " + "  ".join(cells).rstrip())


def verdict(ratio: float, limit: float) -> str:
    return "PASS" if ratio <= limit else "MISSED"


def checked(violations: int) -> str:
    return f"{violations} VIOLATIONS" if violations else "OK"


@dataclass(frozen=True)
class Target:
    """A ratio the issue sets an upper limit on; *ratio* is None when this run
    did not measure it, and *why* then says why."""

    what: str
    ratio: float | None
    limit: float
    why: str = ""

    def cells(self) -> tuple[str, str, str]:
        limit = f"<= {self.limit:.2f}"
        if self.ratio is None:
            return self.what, limit, f"not measured ({self.why})"
        return self.what, limit, f"{self.ratio:.3f} {verdict(self.ratio, self.limit)}"


def print_targets(targets: Sequence[Target]) -> None:
    print_table(("target", "limit", "measured"), [t.cells() for t in targets], left=(0, 2))


# -- part 1: trivial tests at several sizes --------------------------------

RSS_ENV = "PEXEN_BENCH_RSS"
#: Suites of at least this many tests get --repeat-large rounds, not --repeat.
LARGE_SUITE = 10_000

#: Records the peak RSS of the main pytest process (KiB on Linux). Workers,
#: xdist's and pexen's, have PYTEST_XDIST_WORKER set and record nothing.
RSS_CONFTEST = f'''import os
import resource


def pytest_unconfigure(config):
    path = os.environ.get("{RSS_ENV}")
    if path and "PYTEST_XDIST_WORKER" not in os.environ:
        with open(path, "w") as file:
            file.write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))
'''


@dataclass(frozen=True)
class SizeTarget:
    """What the issue asks of pexen against plain pytest at one suite size:
    pexen's *figure* (a `ModeResult` attribute) at most *limit* times plain's."""

    tests: int
    figure: str
    label: str
    limit: float


SIZE_TARGETS = (
    SizeTarget(20_000, "run_phase", "run phase", 0.60),
    SizeTarget(2_000, "total", "total wall time", 0.85),
    SizeTarget(20_000, "rss_mib", "controller peak RSS", 1.30),
)


def write_trivial_suite(root: Path, tests: int) -> None:
    write_ini(root)
    for module, first in enumerate(range(0, tests, TESTS_PER_MODULE)):
        count = min(TESTS_PER_MODULE, tests - first)
        body = "".join(f"def test_{i}():\n    pass\n\n\n" for i in range(count))
        (root / f"test_trivial_{module:03d}.py").write_text(body)


def rotated(items: Sequence[Mode], shift: int) -> list[Mode]:
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


@dataclass(frozen=True)
class Sample:
    """One run: its wall time, and the main pytest process's peak RSS."""

    seconds: float
    rss_mib: float


def sampled_run(suite: Path, mode: Mode, tests: int, env: Mapping[str, str]) -> Sample:
    rss_file = suite / "rss.txt"
    rss_file.unlink(missing_ok=True)
    seconds = run_pytest(suite, mode, tests, {**env, RSS_ENV: str(rss_file)})
    if not rss_file.exists():
        raise BenchError(f"{mode.name} on {suite}: conftest.py recorded no peak RSS")
    return Sample(seconds, int(rss_file.read_text()) / 1024)


@dataclass(frozen=True)
class ModeResult:
    """One mode at one size: medians over the timed rounds, in seconds and MiB."""

    name: str
    total: float
    collect: float
    rss_mib: float

    @property
    def run_phase(self) -> float:
        """Wall time beyond collection: the whole run less the --collect-only run."""
        return self.total - self.collect

    @classmethod
    def of(cls, name: str, runs: Sequence[Sample], collections: Sequence[Sample]) -> ModeResult:
        return cls(
            name=name,
            total=statistics.median(sample.seconds for sample in runs),
            collect=statistics.median(sample.seconds for sample in collections),
            rss_mib=statistics.median(sample.rss_mib for sample in runs),
        )


@dataclass(frozen=True)
class SizeResult:
    """Part 1 at one suite size; *modes* by name, plain pytest first."""

    tests: int
    modes: dict[str, ModeResult]

    def vs_plain(self, mode: str, figure: str) -> float:
        """*mode*'s *figure* (a `ModeResult` attribute) over plain pytest's."""
        return getattr(self.modes[mode], figure) / getattr(self.modes[PLAIN.name], figure)


def timed_rounds(
    suite: Path, env: Mapping[str, str], tests: int, modes: Sequence[Mode], rounds: int
) -> dict[str, list[Sample]]:
    """Samples of each mode and of its --collect-only run, by name: *rounds*
    rounds, the order rotated each round, after one untimed warm-up round."""
    runs = [run for mode in modes for run in (mode, mode.collecting())]
    for mode in runs:
        sampled_run(suite, mode, tests, env)
    samples: dict[str, list[Sample]] = {mode.name: [] for mode in runs}
    for round_index in range(rounds):
        for mode in rotated(runs, round_index):
            samples[mode.name].append(sampled_run(suite, mode, tests, env))
        spent = ", ".join(
            f"{mode.name} {samples[mode.name][-1].seconds:.2f}s "
            f"({samples[mode.collecting().name][-1].seconds:.2f}s)"
            for mode in modes
        )
        print(f"  round {round_index + 1}/{rounds}: {spent}", flush=True)
    return samples


def bench_size(
    root: Path, env: Mapping[str, str], tests: int, modes: Sequence[Mode], rounds: int
) -> SizeResult:
    root.mkdir()
    write_trivial_suite(root, tests)
    (root / "conftest.py").write_text(RSS_CONFTEST)
    samples = timed_rounds(root, env, tests, modes, rounds)
    results = {
        mode.name: ModeResult.of(mode.name, samples[mode.name], samples[mode.collecting().name])
        for mode in modes
    }
    return SizeResult(tests, results)


def print_size(result: SizeResult) -> None:
    header = (
        "mode", "total s", "collect s", "run s", "total/plain", "run/plain", "RSS MiB",
        "RSS/plain",
    )
    rows = [
        (
            name, f"{mode.total:.3f}", f"{mode.collect:.3f}", f"{mode.run_phase:.3f}",
            f"{result.vs_plain(name, 'total'):.2f}x", f"{result.vs_plain(name, 'run_phase'):.2f}x",
            f"{mode.rss_mib:.1f}", f"{result.vs_plain(name, 'rss_mib'):.2f}x",
        )
        for name, mode in result.modes.items()
    ]
    print_table(header, rows)


def size_targets(sizes: Sequence[SizeResult] | None, workers: int) -> list[Target]:
    """Part 1's targets, from the sizes measured (None: part 1 skipped)."""
    by_tests = {size.tests: size for size in sizes or ()}
    pexen = pexen_mode(workers).name
    targets = []
    for target in SIZE_TARGETS:
        what = f"{target.tests} tests: pexen {target.label} / plain's"
        size = by_tests.get(target.tests)
        if size is None:
            why = "part 1 skipped" if sizes is None else f"{target.tests} not in --sizes"
            targets.append(Target(what, None, target.limit, why))
        else:
            targets.append(Target(what, size.vs_plain(pexen, target.figure), target.limit))
    return targets


#: Durable state (the default) may cost this much of a run without it.
STATE_TARGET = 1.05


def state_cost_target(result: SizeResult, workers: int) -> Target:
    """The total with the state file over the total with --pexen-state=off."""
    kept = result.modes[pexen_mode(workers).name].total
    off = result.modes[pexen_stateless_mode(workers).name].total
    return Target(f"{result.tests} tests: pexen with its state file / --pexen-state=off", kept / off, STATE_TARGET)


#: What seeing the run (status line or heartbeat, and the timeline) may cost.
WATCHING_TARGET = 1.03


def watching_cost_targets(result: SizeResult, workers: int) -> list[Target]:
    """Each watched mode's total over pexen's own, on the same suite in the same rounds."""
    unwatched = result.modes[pexen_mode(workers).name].total
    return [
        Target(
            f"{result.tests} tests: pexen {mode.name.split(' +', 1)[1].replace(' +', ' and ')} / without",
            result.modes[mode.name].total / unwatched,
            WATCHING_TARGET,
        )
        for mode in pexen_watched_modes(workers)
    ]


def print_watchdog_cost(result: SizeResult, workers: int) -> None:
    watched = result.modes[pexen_timeout_mode(workers).name].total
    unwatched = result.modes[pexen_mode(workers).name].total
    per_test_ms = (watched - unwatched) / result.tests * 1000
    print(
        f"  watchdog cost with a limit on every test: {per_test_ms:+.4f} ms per test "
        "(median difference; its bookkeeping runs in both pexen modes)"
    )


def bench_throughput(
    root: Path, env: Mapping[str, str], sizes: Sequence[tuple[int, int]], workers: int
) -> list[SizeResult]:
    """Part 1 at each (tests, rounds) of *sizes*; the watchdog mode at the first only."""
    root.mkdir()
    results = []
    for index, (tests, rounds) in enumerate(sizes):
        modes = [PLAIN, xdist_mode(workers), pexen_mode(workers)]
        if index == 0:
            modes += [pexen_timeout_mode(workers), pexen_stateless_mode(workers), *pexen_watched_modes(workers)]
        print(
            f"\n  {tests} tests, {rounds} round{'s' if rounds != 1 else ''} after a warm-up "
            "round (each mode's --collect-only time in parentheses)"
        )
        result = bench_size(root / str(tests), env, tests, modes, rounds)
        print_size(result)
        if index == 0:
            print_watchdog_cost(result, workers)
            print_targets([state_cost_target(result, workers), *watching_cost_targets(result, workers)])
        measured = [t for t in size_targets([result], workers) if t.ratio is not None]
        if measured:
            print_targets(measured)
        results.append(result)
    return results


# -- part 2: a DAG of sleeping tests ---------------------------------------


@dataclass(frozen=True)
class Sleeper:
    """A generated test that sleeps *seconds*, in *module*, with pexen metadata."""

    name: str
    module: str
    seconds: float
    requires: tuple[str, ...] = ()
    provides: tuple[str, ...] = ()
    claims: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    group: str | None = None


def chain(lengths: Sequence[float]) -> list[Sleeper]:
    """chain_1 -> chain_2 -> ..., each providing the tag the next requires."""
    tests = []
    for step, seconds in enumerate(lengths, start=1):
        requires = (f"chain{step - 1}",) if step > 1 else ()
        name = f"test_chain_{step}"
        tests.append(Sleeper(name, "test_3_chain", seconds, requires, (f"chain{step}",)))
    return tests


def diamond(
    label: str,
    top: float,
    left: float,
    right: float,
    bottom: float,
    *,
    below: str | None = None,
    shared: bool = False,
) -> list[Sleeper]:
    """top -> (left, right) -> bottom; with *shared*, left and right provide one
    tag (available once both passed); with *below*, top requires that tag."""
    module = "test_2_diamonds"
    top_requires = (below,) if below else ()
    side_tags = (f"{label}_mid", f"{label}_mid") if shared else (f"{label}_left", f"{label}_right")
    return [
        Sleeper(f"test_{label}_top", module, top, top_requires, (f"{label}_top",)),
        Sleeper(f"test_{label}_left", module, left, (f"{label}_top",), (side_tags[0],)),
        Sleeper(f"test_{label}_right", module, right, (f"{label}_top",), (side_tags[1],)),
        Sleeper(f"test_{label}_bottom", module, bottom, tuple(dict.fromkeys(side_tags))),
    ]


def independents(count: int) -> list[Sleeper]:
    pattern = (0.1, 0.3, 0.5, 0.2, 0.4)
    return [
        Sleeper(f"test_free_{i:02d}", "test_1_independent", pattern[i % len(pattern)])
        for i in range(count)
    ]


def dag_suite() -> list[Sleeper]:
    """The DAG. Modules sort so that collection order puts independent tests
    first and every dependent before its providers: a scheduler that ignored
    the metadata, or the critical path, would show it."""
    return [
        *independents(15),
        *diamond("d1", 0.3, 0.4, 0.2, 0.3),
        *diamond("d2", 0.2, 0.3, 0.3, 0.2, shared=True),
        *diamond("d3", 0.2, 0.2, 0.4, 0.3, below="chain4"),
        *chain((0.6, 0.6, 0.6, 0.6)),
    ]


HELPER = f'''import os
import time

import pytest


def _sleep_and_record(name: str, seconds: float) -> None:
    start = time.time()
    time.sleep(seconds)
    end = time.time()
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    fd = os.open(os.environ["{TIMES_ENV}"], flags, 0o644)
    try:
        os.write(fd, f"{{name}} {{start:.6f}} {{end:.6f}}\\n".encode())
    finally:
        os.close(fd)
'''


def sleeper_source(test: Sleeper) -> str:
    """The test's source; a pexen marker only when it has metadata."""
    lists = {
        "requires": test.requires, "provides": test.provides, "claims": test.claims,
        "uses": test.uses,
    }
    fields = [f"{name}={list(value)!r}" for name, value in lists.items() if value]
    if test.group is not None:
        fields.append(f"group={test.group!r}")
    marker = f"@pytest.mark.pexen({', '.join(fields)})\n" if fields else ""
    return (
        f"\n\n{marker}"
        f"def {test.name}():\n"
        f"    _sleep_and_record({test.name!r}, {test.seconds!r})\n"
    )


def write_sleepers(root: Path, tests: Sequence[Sleeper], *, reverse: bool) -> None:
    """One file per module, tests in the given order (or reversed)."""
    modules: dict[str, list[Sleeper]] = {}
    for test in tests:
        modules.setdefault(test.module, []).append(test)
    for module, members in modules.items():
        ordered = reversed(members) if reverse else members
        body = "".join(sleeper_source(test) for test in ordered)
        (root / f"{module}.py").write_text(HELPER + body)


def write_dag_suite(root: Path, tests: Sequence[Sleeper]) -> None:
    """One file per module; within it, tests in reverse dependency order."""
    write_ini(root)
    write_sleepers(root, tests, reverse=True)


def read_times(path: Path) -> Times:
    times: Times = {}
    for line in path.read_text().splitlines():
        name, start, end = line.split()
        if name in times:
            raise BenchError(f"{name} ran twice")
        times[name] = (float(start), float(end))
    return times


def edges(tests: Sequence[Sleeper]) -> list[Link]:
    """(provider, dependent, tag) for every requirement of every test."""
    providers: dict[str, list[str]] = {}
    for test in tests:
        for tag in test.provides:
            providers.setdefault(tag, []).append(test.name)
    return [
        (provider, test.name, tag)
        for test in tests
        for tag in test.requires
        for provider in providers[tag]
    ]


def critical_path(durations: Mapping[str, float], links: Sequence[Link]) -> float:
    """Length of the longest chain of *durations* along the dependency *links*."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for name in durations:
        sorter.add(name)
    for provider, dependent, _ in links:
        sorter.add(dependent, provider)
    finish: dict[str, float] = {}
    needs: dict[str, list[str]] = {}
    for provider, dependent, _ in links:
        needs.setdefault(dependent, []).append(provider)
    for name in sorter.static_order():
        start = max((finish[p] for p in needs.get(name, ())), default=0.0)
        finish[name] = start + durations[name]
    return max(finish.values())


def order_violations(times: Times, links: Sequence[Link]) -> list[str]:
    """Every dependent that started before one of its providers ended."""
    problems = []
    for provider, dependent, tag in links:
        started, ended = times[dependent][0], times[provider][1]
        if started < ended:
            problems.append(
                f"{dependent} started {ended - started:.3f}s before {provider} "
                f"(provides {tag!r}) ended"
            )
    return problems


@dataclass(frozen=True)
class DagResult:
    """What part 2 measured; times in seconds."""

    serial_seconds: float
    pexen_seconds: float
    makespan: float
    work: float
    critical: float
    bound: float
    links: int
    violations: list[str]

    @property
    def ratio(self) -> float:
        return self.makespan / self.bound


def span(times: Times) -> float:
    """Seconds from the first test's start to the last test's end."""
    return max(end for _, end in times.values()) - min(start for start, _ in times.values())


def timed_sleeper_run(
    root: Path,
    env: Mapping[str, str],
    mode: Mode,
    tests: Sequence[Sleeper],
    *,
    cache_dir: Path | None = None,
) -> tuple[float, Times]:
    """Wall time of *mode* on a suite of sleepers, and each test's (start, end)."""
    label = re.sub(r"\W+", "-", mode.name)
    times_file = root / f"times-{label}.txt"
    times_file.unlink(missing_ok=True)
    env = {**env, TIMES_ENV: str(times_file)}
    seconds = run_pytest(root, mode, len(tests), env, cache_dir=cache_dir)
    times = read_times(times_file)
    if set(times) != {test.name for test in tests}:
        raise BenchError(f"{mode.name}: recorded tests differ from the suite: {sorted(times)}")
    return seconds, times


def bench_dag(
    root: Path, env: Mapping[str, str], tests: Sequence[Sleeper], workers: int
) -> DagResult:
    write_dag_suite(root, tests)
    serial_seconds, _ = timed_sleeper_run(root, env, PLAIN, tests)
    pexen_seconds, times = timed_sleeper_run(root, env, pexen_mode(workers), tests)
    links = edges(tests)
    durations = {name: end - start for name, (start, end) in times.items()}
    work = sum(durations.values())
    critical = critical_path(durations, links)
    return DagResult(
        serial_seconds=serial_seconds,
        pexen_seconds=pexen_seconds,
        makespan=span(times),
        work=work,
        critical=critical,
        bound=max(critical, work / workers),
        links=len(links),
        violations=order_violations(times, links),
    )


def print_dag(result: DagResult, workers: int) -> None:
    bound = f"lower bound max({result.critical:.2f}, {result.work:.2f}/{workers})"
    target = f"target <= {BOUND_TARGET:.2f}: {verdict(result.ratio, BOUND_TARGET)}"
    order = "VIOLATED" if result.violations else "OK"
    rows = [
        ("plain pytest wall time (serial)", f"{result.serial_seconds:.2f} s"),
        (f"pexen wall time ({workers} workers)", f"{result.pexen_seconds:.2f} s"),
        ("pexen makespan (first start to last end)", f"{result.makespan:.2f} s"),
        (bound, f"{result.bound:.2f} s"),
        ("makespan / lower bound", f"{result.ratio:.3f} ({target})"),
        ("dependency order", f"{order} ({result.links} edges checked)"),
    ]
    width = max(len(label) for label, _ in rows) + 2
    for label, value in rows:
        print(f"  {label:<{width}}{value}")
    for problem in result.violations:
        print(f"    {problem}")


# -- part 3: locks and groups drill ----------------------------------------

DEFAULT_GROUP = "default"
#: Groups configured in the drill's ini, in this order, with their workers.
#: "default" is not listed, so it would come first, but a default test
#: requires a tag that a vm test provides: the expected order is vm, default, wide.
DRILL_GROUPS = (("vm", 1), ("wide", 3))


def group_of(test: Sleeper) -> str:
    return test.group or DEFAULT_GROUP


def drill_module(module: str, group: str | None, rows: Sequence[tuple]) -> list[Sleeper]:
    """Sleepers from (name, seconds, fields) rows, in collection order."""
    tests = []
    for name, seconds, *rest in rows:
        fields = rest[0] if rest else {}
        fields = {key: tuple(value) for key, value in fields.items()}
        tests.append(Sleeper(f"test_{name}", module, seconds, group=group, **fields))
    return tests


def drill_suite() -> list[Sleeper]:
    """Three groups; within each, lock kinds interleaved in collection order.

    Modules sort wide, default, vm: the reverse of the order the groups must
    run in. Resources: "net" and "gpu" are claimed (some tests claim both,
    one claims gpu and uses db), "db" is used by many and claimed by one per
    group (the wide one both claims and uses it, which counts as a claim).
    """
    net, gpu, db = ["net"], ["gpu"], ["db"]
    wide = drill_module("test_1_wide", "wide", [
        ("wide_free_01", 0.3),
        ("wide_net_1", 0.4, {"claims": net}),
        ("wide_db_read_1", 0.5, {"uses": db}),
        ("wide_gpu_1", 0.3, {"claims": gpu, "provides": ["gpu_calibrated"]}),
        ("wide_free_02", 0.2),
        ("wide_netgpu_1", 0.3, {"claims": net + gpu, "requires": ["gpu_calibrated"]}),
        ("wide_db_read_2", 0.4, {"uses": db}),
        ("wide_net_2", 0.3, {"claims": net}),
        ("wide_free_03", 0.5),
        ("wide_db_migrate", 0.4, {"claims": db, "uses": db}),
        ("wide_gpu_2", 0.4, {"claims": gpu}),
        ("wide_db_read_3", 0.3, {"uses": db, "claims": gpu}),
        ("wide_free_04", 0.1),
        ("wide_net_3", 0.2, {"claims": net}),
        ("wide_free_05", 0.4),
        ("wide_db_read_4", 0.5, {"uses": db}),
        ("wide_netgpu_2", 0.2, {"claims": gpu + net}),
        ("wide_free_06", 0.3),
        ("wide_gpu_3", 0.2, {"claims": gpu}),
        ("wide_net_4", 0.5, {"claims": net}),
        ("wide_db_read_5", 0.2, {"uses": db}),
        ("wide_free_07", 0.2),
        ("wide_free_08", 0.5),
        ("wide_db_read_6", 0.4, {"uses": db}),
        ("wide_free_09", 0.1),
        ("wide_free_10", 0.4),
    ])
    default = drill_module("test_2_default", None, [
        ("def_net_1", 0.3, {"claims": net}),
        ("def_db_read_1", 0.3, {"uses": db}),
        ("def_free_1", 0.5),
        ("def_image_check", 0.2, {"requires": ["vm_image"]}),
        ("def_db_migrate", 0.3, {"claims": db}),
        ("def_db_read_2", 0.2, {"uses": db}),
        ("def_free_2", 0.3),
        ("def_net_2", 0.2, {"claims": net}),
        ("def_db_read_3", 0.4, {"uses": db}),
        ("def_free_3", 0.1),
        ("def_free_4", 0.4),
        ("def_free_5", 0.2),
    ])
    vm = drill_module("test_3_vm", "vm", [
        ("vm_shutdown", 0.3, {"requires": ["vm_image"]}),
        ("vm_snapshot", 0.2, {"claims": net}),
        ("vm_migrate", 0.4, {"uses": db}),
        ("vm_boot", 0.3, {"provides": ["vm_image"]}),
    ])
    return [*wide, *default, *vm]


def drill_workers(default_workers: int) -> dict[str, int]:
    """Workers by group, in configuration order (default first, as pexen puts it)."""
    return {DEFAULT_GROUP: default_workers, **dict(DRILL_GROUPS)}


def expected_group_order(tests: Sequence[Sleeper], configured: Sequence[str]) -> list[str]:
    """Groups in dependency order, ties broken by configuration order."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    group = {test.name: group_of(test) for test in tests}
    for name in dict.fromkeys(group.values()):
        sorter.add(name)
    for provider, dependent, _ in edges(tests):
        if group[provider] != group[dependent]:
            sorter.add(group[dependent], group[provider])
    sorter.prepare()
    order: list[str] = []
    ready: list[tuple[int, str]] = []
    while sorter.is_active():
        for name in sorter.get_ready():
            heapq.heappush(ready, (configured.index(name), name))
        _, name = heapq.heappop(ready)
        order.append(name)
        sorter.done(name)
    return order


def write_drill_suite(root: Path, tests: Sequence[Sleeper]) -> None:
    """pytest.ini with the marker and the groups; tests in collection order."""
    lines = "".join(f"    {name}: workers={n} pool=process\n" for name, n in DRILL_GROUPS)
    (root / "pytest.ini").write_text(
        f"[pytest]\nmarkers =\n    {MARKER_LINE}\npexen_groups =\n{lines}"
    )
    write_sleepers(root, tests, reverse=False)


def overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Seconds during which intervals *a* and *b* both ran (0 if none)."""
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def lock_violations(tests: Sequence[Sleeper], times: Times) -> tuple[list[str], int]:
    """Overlapping claims of one resource, or a claim overlapping a use; and
    how many pairs were checked."""
    claimers: dict[str, list[str]] = {}
    users: dict[str, list[str]] = {}
    for test in tests:
        for resource in test.claims:
            claimers.setdefault(resource, []).append(test.name)
        for resource in test.uses:
            if resource not in test.claims:
                users.setdefault(resource, []).append(test.name)
    problems, pairs = [], 0
    for resource, holders in sorted(claimers.items()):
        for i, claimer in enumerate(holders):
            for other, kind in [(h, "claim") for h in holders[i + 1 :]] + [
                (u, "use") for u in users.get(resource, ())
            ]:
                pairs += 1
                seconds = overlap(times[claimer], times[other])
                if seconds > 0:
                    problems.append(
                        f"{resource!r}: claim by {claimer} overlaps {kind} by {other} "
                        f"for {seconds:.3f}s"
                    )
    return problems, pairs


def max_concurrency(intervals: Sequence[tuple[float, float]]) -> int:
    """Most intervals running at one instant (an end before a start at a tie)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


@dataclass(frozen=True)
class GroupResult:
    """One group of the drill, as measured; times in seconds."""

    name: str
    tests: int
    workers: int
    first_start: float
    last_end: float
    work: float
    critical: float
    busiest: tuple[str, float] | None
    concurrency: int

    @property
    def makespan(self) -> float:
        return self.last_end - self.first_start

    @property
    def bound(self) -> float:
        resource = self.busiest[1] if self.busiest else 0.0
        return max(self.critical, self.work / self.workers, resource)

    @property
    def ratio(self) -> float:
        return self.makespan / self.bound


@dataclass(frozen=True)
class DrillResult:
    """What part 3 measured."""

    pexen_seconds: float
    groups: list[GroupResult]  # in the order they ran
    expected_order: list[str]
    lock_pairs: int
    links: int
    violations: dict[str, list[str]]  # by check

    @property
    def makespan(self) -> float:
        return sum(group.makespan for group in self.groups)

    @property
    def bound(self) -> float:
        return sum(group.bound for group in self.groups)

    @property
    def ratio(self) -> float:
        return self.makespan / self.bound

    @property
    def violation_count(self) -> int:
        return sum(len(problems) for problems in self.violations.values())


def resource_work(tests: Sequence[Sleeper], durations: Mapping[str, float]) -> dict[str, float]:
    """Per claimed resource, the work of the tests that claim it (uses overlap
    one another, so only claims serialise)."""
    work: dict[str, float] = {}
    for test in tests:
        for resource in test.claims:
            work[resource] = work.get(resource, 0.0) + durations[test.name]
    return work


def measure_group(
    name: str, tests: Sequence[Sleeper], times: Times, workers: int, links: Sequence[Link]
) -> GroupResult:
    """*links* are the whole suite's; only those within the group count."""
    durations = {test.name: times[test.name][1] - times[test.name][0] for test in tests}
    links = [link for link in links if link[0] in durations and link[1] in durations]
    resources = resource_work(tests, durations)
    busiest = max(resources.items(), key=lambda item: item[1]) if resources else None
    return GroupResult(
        name=name,
        tests=len(tests),
        workers=workers,
        first_start=min(times[test.name][0] for test in tests),
        last_end=max(times[test.name][1] for test in tests),
        work=sum(durations.values()),
        critical=critical_path(durations, links),
        busiest=busiest,
        concurrency=max_concurrency([times[test.name] for test in tests]),
    )


def group_violations(groups: Sequence[GroupResult], expected: Sequence[str]) -> list[str]:
    """Groups whose spans (first start to last end) overlap, or that ran out of order."""
    problems = []
    for i, first in enumerate(groups):
        for second in groups[i + 1 :]:
            spans = (first.first_start, first.last_end), (second.first_start, second.last_end)
            seconds = overlap(*spans)
            if seconds > 0:
                problems.append(
                    f"groups {first.name!r} and {second.name!r} interleave for {seconds:.3f}s"
                )
    ran = [group.name for group in groups]
    if ran != list(expected):
        problems.append(f"groups ran in order {', '.join(ran)}; expected {', '.join(expected)}")
    return problems


def bench_drill(
    root: Path, env: Mapping[str, str], tests: Sequence[Sleeper], default_workers: int
) -> DrillResult:
    workers = drill_workers(default_workers)
    write_drill_suite(root, tests)
    pexen_seconds, times = timed_sleeper_run(root, env, pexen_mode(default_workers), tests)
    members: dict[str, list[Sleeper]] = {}
    for test in tests:
        members.setdefault(group_of(test), []).append(test)
    links = edges(tests)
    groups = sorted(
        (measure_group(name, members[name], times, workers[name], links) for name in members),
        key=lambda group: group.first_start,
    )
    expected = expected_group_order(tests, list(workers))
    locks, pairs = lock_violations(tests, times)
    return DrillResult(
        pexen_seconds=pexen_seconds,
        groups=groups,
        expected_order=expected,
        lock_pairs=pairs,
        links=len(links),
        violations={
            "locks": locks,
            "groups": group_violations(groups, expected),
            "concurrency": [
                f"group {g.name!r}: {g.concurrency} tests at once, {g.workers} workers"
                for g in groups
                if g.concurrency > g.workers
            ],
            "dependency order": order_violations(times, links),
        },
    )


def print_drill(result: DrillResult) -> None:
    header = (
        "group", "tests", "workers", "makespan", "critical", "work/wkrs",
        "busiest resource", "bound", "ratio",
    )
    rows = []
    for g in result.groups:
        busiest = f"{g.busiest[0]} {g.busiest[1]:.2f}" if g.busiest else "-"
        rows.append((
            g.name, str(g.tests), str(g.workers), f"{g.makespan:.2f}", f"{g.critical:.2f}",
            f"{g.work:.2f}/{g.workers}", busiest, f"{g.bound:.2f}",
            f"{g.ratio:.3f} {verdict(g.ratio, BOUND_TARGET)}",
        ))
    rows.append((
        "all", str(sum(g.tests for g in result.groups)), "", f"{result.makespan:.2f}",
        "", "", "", f"{result.bound:.2f}",
        f"{result.ratio:.3f} {verdict(result.ratio, BOUND_TARGET)}",
    ))
    print_table(header, rows, left=(0, 6, 8))
    gaps = ", ".join(
        f"{a.name} -> {b.name} {b.first_start - a.last_end:.3f} s"
        for a, b in zip(result.groups, result.groups[1:])
    )
    total_gap = sum(b.first_start - a.last_end for a, b in zip(result.groups, result.groups[1:]))
    print("  makespan: first start to last end per group; 'all' sums them (gaps excluded)")
    print("  bound: max(critical path, work/workers, work claiming the busiest resource);")
    print(f"  'all' sums them; target <= {BOUND_TARGET:.2f}")
    print(f"  gaps between groups (pool start-up): {gaps or 'none'} (total {total_gap:.3f} s)")
    wall = result.pexen_seconds
    print(f"  pexen wall time (startup, collection and gaps included): {wall:.2f} s")
    counts = {
        "locks": f"{result.lock_pairs} claim/claim and claim/use pairs checked",
        "groups": "order " + ", ".join(g.name for g in result.groups)
        + f", expected {', '.join(result.expected_order)}",
        "concurrency": "most at once/workers: "
        + ", ".join(f"{g.name} {g.concurrency}/{g.workers}" for g in result.groups),
        "dependency order": f"{result.links} edges checked",
    }
    width = max(len(name) for name in counts) + 2
    for check, problems in result.violations.items():
        print(f"  {check + ':':<{width}}{checked(len(problems))} ({counts[check]})")
        for problem in problems:
            print(f"    {problem}")


# -- part 4: long tests behind short ones ----------------------------------

FAST_TESTS = 50
FAST_PER_MODULE = 10
SLOW_TESTS = 4
SLOW_SECONDS = 2.0
#: The key under which pexen keeps durations in pytest's cache.
DURATIONS_KEY = "pexen/durations"
#: Makespan over its lower bound, for every pexen run of part 4.
LONG_TARGET = 1.10


def layout_suite(modules: Sequence[Sequence[str]]) -> list[Sleeper]:
    """Sleepers from lists of test names, one list per module, in collection order."""
    return [
        Sleeper(name, f"test_{index:02d}", SLOW_SECONDS if name.startswith("test_slow") else 0.0)
        for index, names in enumerate(modules, start=1)
        for name in names
    ]


def long_test_layouts() -> dict[str, list[Sleeper]]:
    """The suites of part 4 by layout: 50 fast tests in modules of 10, and the
    4 slow ones first, last, in a module of their own in the middle, or one
    after every 10 fast tests."""
    fast = [f"test_fast_{i:02d}" for i in range(FAST_TESTS)]
    slow = [f"test_slow_{i}" for i in range(SLOW_TESTS)]
    chunks = [fast[i : i + FAST_PER_MODULE] for i in range(0, FAST_TESTS, FAST_PER_MODULE)]
    layouts = {
        "first": [slow + chunks[0], *chunks[1:]],
        "last": [*chunks[:-1], chunks[-1] + slow],
        "own module": [*chunks[:2], slow, *chunks[2:]],
        "interleaved": [chunks[0], *([test, *chunk] for test, chunk in zip(slow, chunks[1:]))],
    }
    return {name: layout_suite(modules) for name, modules in layouts.items()}


@dataclass(frozen=True)
class Schedule:
    """One run of a part 4 suite, from its recorded times; seconds."""

    wall: float
    makespan: float
    longest: float
    work: float
    workers: int

    @classmethod
    def of(cls, wall: float, times: Times, workers: int) -> Schedule:
        durations = [end - start for start, end in times.values()]
        return cls(wall, span(times), max(durations), sum(durations), workers)

    @property
    def bound(self) -> float:
        return max(self.longest, self.work / self.workers)

    @property
    def ratio(self) -> float:
        return self.makespan / self.bound


@dataclass(frozen=True)
class LayoutResult:
    """Part 4 on one layout: pexen with no recorded durations, pexen with the
    first run's, and xdist for comparison."""

    name: str
    first: Schedule
    second: Schedule
    xdist: Schedule


def bench_layout(
    root: Path, env: Mapping[str, str], name: str, tests: Sequence[Sleeper], workers: int
) -> LayoutResult:
    """xdist, then pexen twice with a cache directory of its own: the first
    run finds no durations, the second those the first recorded."""
    root.mkdir()
    write_ini(root)
    write_sleepers(root, tests, reverse=False)

    def schedule(mode: Mode, cache_dir: Path | None = None) -> Schedule:
        wall, times = timed_sleeper_run(root, env, mode, tests, cache_dir=cache_dir)
        return Schedule.of(wall, times, workers)

    xdist = schedule(xdist_mode(workers))
    cache = root / ".cache"
    first = schedule(pexen_mode(workers), cache)
    if not (cache / "v" / DURATIONS_KEY).exists():
        raise BenchError(f"layout {name!r}: pexen recorded no durations in {cache}")
    second = schedule(pexen_mode(workers), cache)
    return LayoutResult(name, first, second, xdist)


def long_test_runs(result: LayoutResult, workers: int) -> list[tuple[str, Schedule, bool]]:
    """(run, schedule, whether the target applies) in the order printed."""
    return [
        ("pexen 1st run", result.first, True),
        ("pexen 2nd run", result.second, True),
        (xdist_mode(workers).name, result.xdist, False),
    ]


def print_layouts(results: Sequence[LayoutResult], workers: int) -> None:
    header = ("layout", "run", "wall s", "makespan s", "bound s", "makespan/bound")
    rows = []
    for result in results:
        for index, (run, schedule, targeted) in enumerate(long_test_runs(result, workers)):
            ratio = f"{schedule.ratio:.3f}"
            if targeted:
                ratio += f" {verdict(schedule.ratio, LONG_TARGET)}"
            rows.append((
                result.name if index == 0 else "", run, f"{schedule.wall:.2f}",
                f"{schedule.makespan:.2f}", f"{schedule.bound:.2f}", ratio,
            ))
    print_table(header, rows, left=(0, 1, 5))
    print("  makespan: first test start to last test end; bound: max(longest test, work/workers)")
    print(f"  from the run's own durations; target for pexen <= {LONG_TARGET:.2f}")


def layout_targets(results: Sequence[LayoutResult], workers: int) -> list[Target]:
    return [
        Target(f"long tests {result.name}, {run}: makespan / bound", schedule.ratio, LONG_TARGET)
        for result in results
        for run, schedule, targeted in long_test_runs(result, workers)
        if targeted
    ]


def bench_long_tests(root: Path, env: Mapping[str, str], workers: int) -> list[LayoutResult]:
    root.mkdir()
    return [
        bench_layout(root / re.sub(r"\W+", "-", name), env, name, tests, workers)
        for name, tests in long_test_layouts().items()
    ]


# -- command line ----------------------------------------------------------


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def sizes(text: str) -> list[int]:
    return [positive(item) for item in text.split(",")]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--sizes", type=sizes, default=[2_000, 20_000],
        help="comma-separated trivial-suite sizes for part 1 (default 2000,20000)")
    add("--repeat", type=positive, default=5,
        help=f"timed rounds in part 1 for sizes under {LARGE_SUITE} (default 5)")
    add("--repeat-large", type=positive, default=3,
        help=f"timed rounds in part 1 for sizes of {LARGE_SUITE} or more (default 3)")
    add("--workers", type=positive, default=2,
        help="xdist/pexen workers in parts 1, 2 and 4, and of the default group in part 3 "
        "(default 2)")
    add("--skip-throughput", action="store_true", help="skip part 1 (the slowest part)")
    return parser.parse_args(argv)


def print_header() -> None:
    names = ("pytest", "pytest-xdist", "pytest-pexen")
    versions = ", ".join(f"{name} {version(name)}" for name in names)
    print(f"python {platform.python_version()}, {versions}, {os.cpu_count()} CPUs")


@dataclass(frozen=True)
class Results:
    """Everything measured; *sizes* is None when part 1 was skipped."""

    sizes: list[SizeResult] | None
    dag: DagResult
    drill: DrillResult
    layouts: list[LayoutResult]

    def targets(self, workers: int) -> list[Target]:
        return [
            *size_targets(self.sizes, workers),
            *[state_cost_target(size, workers) for size in (self.sizes or ())[:1]],
            *[t for size in (self.sizes or ())[:1] for t in watching_cost_targets(size, workers)],
            Target("DAG: makespan / lower bound", self.dag.ratio, BOUND_TARGET),
            Target("drill: makespan / lower bound", self.drill.ratio, BOUND_TARGET),
            *layout_targets(self.layouts, workers),
        ]

    @property
    def violations(self) -> int:
        return len(self.dag.violations) + self.drill.violation_count


def run_parts(args: argparse.Namespace, tmp: Path) -> Results:
    env = pytest_env(tmp / "pycache")
    size_results = None
    if not args.skip_throughput:
        print(f"\n[1] trivial tests, {args.workers} workers, at {len(args.sizes)} sizes")
        rounds = [
            (tests, args.repeat_large if tests >= LARGE_SUITE else args.repeat)
            for tests in args.sizes
        ]
        size_results = bench_throughput(tmp / "trivial", env, rounds, args.workers)
    dag = tmp / "dag"
    dag.mkdir()
    tests = dag_suite()
    print(f"\n[2] DAG of {len(tests)} sleeping tests, {args.workers} workers")
    dag_result = bench_dag(dag, env, tests, args.workers)
    print_dag(dag_result, args.workers)
    drill = tmp / "drill"
    drill.mkdir()
    tests = drill_suite()
    groups = ", ".join(f"{name} {n}" for name, n in drill_workers(args.workers).items())
    print(f"\n[3] locks and groups drill: {len(tests)} sleeping tests, workers by group: {groups}")
    drill_result = bench_drill(drill, env, tests, args.workers)
    print_drill(drill_result)
    print(
        f"\n[4] long tests behind short ones: {FAST_TESTS} tests of ~0 s and {SLOW_TESTS} of "
        f"{SLOW_SECONDS:g} s, {args.workers} workers"
    )
    layouts = bench_long_tests(tmp / "long", env, args.workers)
    print_layouts(layouts, args.workers)
    return Results(size_results, dag_result, drill_result, layouts)


def print_summary(results: Results, workers: int, seconds: float) -> None:
    print("\nsummary (a MISSED target does not change the exit status):")
    print_targets(results.targets(workers))
    print(f"  DAG dependency order: {checked(len(results.dag.violations))}")
    print(f"  drill locks, groups, concurrency and order: {checked(results.drill.violation_count)}")
    print(f"  took {seconds / 60:.1f} min")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print_header()
    start = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="pexen-bench-") as tmp:
            results = run_parts(args, Path(tmp))
    except BenchError as error:
        print(f"\nbench: FAILED: {error}", file=sys.stderr)
        return 2
    print_summary(results, args.workers, time.perf_counter() - start)
    return 1 if results.violations else 0


if __name__ == "__main__":
    sys.exit(main())
