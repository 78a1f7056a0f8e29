"""Benchmark pytest --pexen against plain pytest and pytest-xdist.

Run from the repository root as ``python bench/run.py``. Three parts, each on
a suite generated in a temporary directory:

1. Throughput on trivial tests: plain pytest, ``pytest -n W`` (xdist) and
   ``pytest --pexen --pexen-workers=W``, timed as whole commands, repeated
   with the order of modes rotated each round; prints median and min.
2. Scheduling quality on a DAG of sleeping tests (a chain, diamonds and
   independent tests linked by ``pexen`` marker requires/provides): the
   makespan of a ``--pexen`` run against the lower bound
   max(critical path, total work / workers), and a check, from the recorded
   timestamps, that no test started before all providers of its
   requirements had ended.
3. Locks and groups drill: sleeping tests that claim (exclusive) or use
   (shared) resources, in three exclusivity groups with 1, ``--workers`` and
   3 workers. Checks from the timestamps that no claim overlapped another
   claim or a use of its resource, that groups did not interleave and ran in
   dependency-then-configuration order, that no group ran more tests at once
   than its workers, and dependency order; prints each group's makespan
   against max(critical path, work / workers, work on the busiest claimed
   resource), and the gaps between groups.

Every pytest runs as a subprocess with plugin autoloading off and its
plugins loaded with ``-p``, so other installed plugins do not skew results.
Exit status: 0 when everything ran, 1 on a violation (dependency order in
part 2; locks, groups, concurrency or dependency order in part 3), 2 when a
pytest run failed or reported unexpected outcomes.
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
from typing import Mapping, Sequence

PYTEST = (sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider")
TIMES_ENV = "PEXEN_BENCH_TIMES"
TESTS_PER_MODULE = 100
TARGET_RATIO = 1.10
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


def run_pytest(suite: Path, mode: Mode, expected: int, env: Mapping[str, str]) -> float:
    """Run *mode* on *suite*; its wall time in seconds, once checked to pass."""
    command = [*PYTEST, *mode.args]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=suite, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    counts = outcome_counts(proc.stdout)
    outcomes = {word: n for word, n in counts.items() if word not in IGNORED_COUNTS}
    if proc.returncode != 0 or outcomes != {"passed": expected}:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise BenchError(
            f"{mode.name} on {suite}: exit code {proc.returncode}, outcomes {outcomes}, "
            f"expected {{'passed': {expected}}}\n  command: {' '.join(command)}\n{tail}"
        )
    return seconds


def write_ini(root: Path) -> None:
    """A pytest.ini makes *root* the rootdir; the marker is declared for plain runs."""
    (root / "pytest.ini").write_text(f"[pytest]\nmarkers =\n    {MARKER_LINE}\n")


# -- part 1: trivial-test throughput ---------------------------------------


def write_trivial_suite(root: Path, tests: int) -> None:
    write_ini(root)
    for module, first in enumerate(range(0, tests, TESTS_PER_MODULE)):
        count = min(TESTS_PER_MODULE, tests - first)
        body = "".join(f"def test_{i}():\n    pass\n\n\n" for i in range(count))
        (root / f"test_trivial_{module:03d}.py").write_text(body)


def rotated(items: Sequence[Mode], shift: int) -> list[Mode]:
    shift %= len(items)
    return [*items[shift:], *items[:shift]]


def bench_throughput(
    root: Path, env: Mapping[str, str], tests: int, repeat: int, workers: int
) -> dict[str, list[float]]:
    """Wall times of each mode, *repeat* rounds after one untimed warm-up round."""
    all_modes = [PLAIN, xdist_mode(workers), pexen_mode(workers), pexen_timeout_mode(workers)]
    for mode in all_modes:
        run_pytest(root, mode, tests, env)
    times: dict[str, list[float]] = {mode.name: [] for mode in all_modes}
    for round_index in range(repeat):
        spent = []
        for mode in rotated(all_modes, round_index):
            seconds = run_pytest(root, mode, tests, env)
            times[mode.name].append(seconds)
            spent.append(f"{mode.name} {seconds:.2f}s")
        print(f"  round {round_index + 1}/{repeat}: " + ", ".join(spent), flush=True)
    return times


def print_throughput_table(times: dict[str, list[float]]) -> dict[str, float]:
    """Print the table; returns each mode's median relative to plain pytest."""
    baseline = statistics.median(times[PLAIN.name])
    width = max(len(name) for name in times) + 2
    print(f"  {'mode':<{width}}{'median s':>10}{'min s':>10}{'vs plain':>11}")
    ratios = {}
    for name, samples in times.items():
        median = statistics.median(samples)
        ratios[name] = median / baseline
        print(f"  {name:<{width}}{median:>10.3f}{min(samples):>10.3f}{ratios[name]:>10.2f}x")
    return ratios


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
    fields = [f"requires={list(test.requires)!r}", f"provides={list(test.provides)!r}"]
    for name, value in (("claims", test.claims), ("uses", test.uses)):
        if value:
            fields.append(f"{name}={list(value)!r}")
    if test.group is not None:
        fields.append(f"group={test.group!r}")
    marker = f"pexen({', '.join(fields)})"
    return (
        f"\n\n@pytest.mark.{marker}\n"
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


def timed_dag_run(
    root: Path, env: Mapping[str, str], mode: Mode, tests: Sequence[Sleeper]
) -> tuple[float, Times]:
    """Wall time of *mode* on the DAG suite, and each test's (start, end)."""
    label = re.sub(r"\W+", "-", mode.name)
    times_file = root / f"times-{label}.txt"
    seconds = run_pytest(root, mode, len(tests), {**env, TIMES_ENV: str(times_file)})
    times = read_times(times_file)
    if set(times) != {test.name for test in tests}:
        raise BenchError(f"{mode.name}: recorded tests differ from the suite: {sorted(times)}")
    return seconds, times


def bench_dag(
    root: Path, env: Mapping[str, str], tests: Sequence[Sleeper], workers: int
) -> DagResult:
    write_dag_suite(root, tests)
    serial_seconds, _ = timed_dag_run(root, env, PLAIN, tests)
    pexen_seconds, times = timed_dag_run(root, env, pexen_mode(workers), tests)
    links = edges(tests)
    durations = {name: end - start for name, (start, end) in times.items()}
    work = sum(durations.values())
    critical = critical_path(durations, links)
    makespan = max(end for _, end in times.values()) - min(start for start, _ in times.values())
    return DagResult(
        serial_seconds=serial_seconds,
        pexen_seconds=pexen_seconds,
        makespan=makespan,
        work=work,
        critical=critical,
        bound=max(critical, work / workers),
        links=len(links),
        violations=order_violations(times, links),
    )


def verdict(ratio: float) -> str:
    return "met" if ratio <= TARGET_RATIO else "MISSED"


def print_dag(result: DagResult, workers: int) -> None:
    bound = f"lower bound max({result.critical:.2f}, {result.work:.2f}/{workers})"
    target = f"target <= {TARGET_RATIO:.2f}: {verdict(result.ratio)}"
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
    pexen_seconds, times = timed_dag_run(root, env, pexen_mode(default_workers), tests)
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
            f"{g.ratio:.3f} {verdict(g.ratio)}",
        ))
    rows.append((
        "all", str(sum(g.tests for g in result.groups)), "", f"{result.makespan:.2f}",
        "", "", "", f"{result.bound:.2f}", f"{result.ratio:.3f} {verdict(result.ratio)}",
    ))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [
            cell.ljust(width) if i in (0, 6, 8) else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths))
        ]
        print("  " + "  ".join(cells).rstrip())
    gaps = ", ".join(
        f"{a.name} -> {b.name} {b.first_start - a.last_end:.3f} s"
        for a, b in zip(result.groups, result.groups[1:])
    )
    total_gap = sum(b.first_start - a.last_end for a, b in zip(result.groups, result.groups[1:]))
    print("  makespan: first start to last end per group; 'all' sums them (gaps excluded)")
    print("  bound: max(critical path, work/workers, work claiming the busiest resource);")
    print(f"  'all' sums them; target <= {TARGET_RATIO:.2f}")
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
        status = f"{len(problems)} VIOLATIONS" if problems else "OK"
        print(f"  {check + ':':<{width}}{status} ({counts[check]})")
        for problem in problems:
            print(f"    {problem}")


# -- command line ----------------------------------------------------------


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--tests", type=positive, default=2000, help="trivial tests in part 1 (default 2000)")
    add("--repeat", type=positive, default=5, help="timed rounds per mode in part 1 (default 5)")
    add("--workers", type=positive, default=2,
        help="xdist/pexen workers in parts 1 and 2, and of the default group in part 3 (default 2)")
    add("--skip-throughput", action="store_true", help="skip part 1 (the slowest part)")
    return parser.parse_args(argv)


def print_header() -> None:
    names = ("pytest", "pytest-xdist", "pytest-pexen")
    versions = ", ".join(f"{name} {version(name)}" for name in names)
    print(f"python {platform.python_version()}, {versions}, {os.cpu_count()} CPUs")


def run_parts(
    args: argparse.Namespace, tmp: Path
) -> tuple[dict[str, float] | None, DagResult, DrillResult]:
    env = pytest_env(tmp / "pycache")
    ratios = None
    if not args.skip_throughput:
        trivial = tmp / "trivial"
        trivial.mkdir()
        rounds = f"{args.repeat} round{'s' if args.repeat != 1 else ''}"
        print(f"\n[1] {args.tests} trivial tests, {rounds} after a warm-up round")
        write_trivial_suite(trivial, args.tests)
        times = bench_throughput(trivial, env, args.tests, args.repeat, args.workers)
        ratios = print_throughput_table(times)
        watched = statistics.median(times[pexen_timeout_mode(args.workers).name])
        unwatched = statistics.median(times[pexen_mode(args.workers).name])
        per_test_ms = (watched - unwatched) / args.tests * 1000
        print(
            f"  watchdog cost with a limit on every test: {per_test_ms:+.4f} ms per test "
            "(median difference; its bookkeeping runs in both pexen modes)"
        )
    dag = tmp / "dag"
    dag.mkdir()
    tests = dag_suite()
    print(f"\n[2] DAG of {len(tests)} sleeping tests, {args.workers} workers")
    result = bench_dag(dag, env, tests, args.workers)
    print_dag(result, args.workers)
    drill = tmp / "drill"
    drill.mkdir()
    tests = drill_suite()
    groups = ", ".join(f"{name} {n}" for name, n in drill_workers(args.workers).items())
    print(f"\n[3] locks and groups drill: {len(tests)} sleeping tests, workers by group: {groups}")
    drill_result = bench_drill(drill, env, tests, args.workers)
    print_drill(drill_result)
    return ratios, result, drill_result


def print_summary(
    ratios: Mapping[str, float] | None, result: DagResult, drill: DrillResult
) -> None:
    parts = []
    if ratios is not None:
        others = {name: ratio for name, ratio in ratios.items() if name != PLAIN.name}
        relative = ", ".join(f"{name} {ratio:.2f}x" for name, ratio in others.items())
        parts.append(f"trivial-test wall time vs plain pytest: {relative}")
    order = f"{len(result.violations)} VIOLATIONS" if result.violations else "OK"
    parts.append(
        f"DAG makespan {result.ratio:.3f}x its lower bound "
        f"(target <= {TARGET_RATIO:.2f} {verdict(result.ratio)}); dependency order {order}"
    )
    checks = f"{drill.violation_count} VIOLATIONS" if drill.violation_count else "OK"
    parts.append(
        f"drill makespan {drill.ratio:.3f}x its lower bound "
        f"(target <= {TARGET_RATIO:.2f} {verdict(drill.ratio)}); locks, groups, concurrency "
        f"and order {checks}"
    )
    print("\nsummary: " + "; ".join(parts))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print_header()
    try:
        with tempfile.TemporaryDirectory(prefix="pexen-bench-") as tmp:
            ratios, result, drill = run_parts(args, Path(tmp))
    except BenchError as error:
        print(f"\nbench: FAILED: {error}", file=sys.stderr)
        return 2
    print_summary(ratios, result, drill)
    return 1 if result.violations or drill.violation_count else 0


if __name__ == "__main__":
    sys.exit(main())
