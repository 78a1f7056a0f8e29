"""Benchmark pytest --pexen against plain pytest and pytest-xdist.

Run from the repository root as ``python bench/run.py``. Two parts, each on a
suite generated in a temporary directory:

1. Throughput on trivial tests: plain pytest, ``pytest -n W`` (xdist) and
   ``pytest --pexen --pexen-workers=W``, timed as whole commands, repeated
   with the order of modes rotated each round; prints median and min.
2. Scheduling quality on a DAG of sleeping tests (a chain, diamonds and
   independent tests linked by ``pexen`` marker requires/provides): the
   makespan of a ``--pexen`` run against the lower bound
   max(critical path, total work / workers), and a check, from the recorded
   timestamps, that no test started before all providers of its
   requirements had ended.

Every pytest runs as a subprocess with plugin autoloading off and its
plugins loaded with ``-p``, so other installed plugins do not skew results.
Exit status: 0 when everything ran, 1 on a dependency order violation,
2 when a pytest run failed or reported unexpected outcomes.
"""

from __future__ import annotations

import argparse
import graphlib
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
    all_modes = [PLAIN, xdist_mode(workers), pexen_mode(workers)]
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
    marker = f"pexen(requires={list(test.requires)!r}, provides={list(test.provides)!r})"
    return (
        f"\n\n@pytest.mark.{marker}\n"
        f"def {test.name}():\n"
        f"    _sleep_and_record({test.name!r}, {test.seconds!r})\n"
    )


def write_dag_suite(root: Path, tests: Sequence[Sleeper]) -> None:
    """One file per module; within it, tests in reverse dependency order."""
    write_ini(root)
    modules: dict[str, list[Sleeper]] = {}
    for test in tests:
        modules.setdefault(test.module, []).append(test)
    for module, members in modules.items():
        body = "".join(sleeper_source(test) for test in reversed(members))
        (root / f"{module}.py").write_text(HELPER + body)


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
    add("--workers", type=positive, default=2, help="xdist/pexen workers, both parts (default 2)")
    return parser.parse_args(argv)


def print_header() -> None:
    names = ("pytest", "pytest-xdist", "pytest-pexen")
    versions = ", ".join(f"{name} {version(name)}" for name in names)
    print(f"python {platform.python_version()}, {versions}, {os.cpu_count()} CPUs")


def run_parts(args: argparse.Namespace, tmp: Path) -> tuple[dict[str, float], DagResult]:
    trivial, dag = tmp / "trivial", tmp / "dag"
    trivial.mkdir()
    dag.mkdir()
    env = pytest_env(tmp / "pycache")
    rounds = f"{args.repeat} round{'s' if args.repeat != 1 else ''}"
    print(f"\n[1] {args.tests} trivial tests, {rounds} after a warm-up round")
    write_trivial_suite(trivial, args.tests)
    times = bench_throughput(trivial, env, args.tests, args.repeat, args.workers)
    ratios = print_throughput_table(times)
    tests = dag_suite()
    print(f"\n[2] DAG of {len(tests)} sleeping tests, {args.workers} workers")
    result = bench_dag(dag, env, tests, args.workers)
    print_dag(result, args.workers)
    return ratios, result


def print_summary(ratios: Mapping[str, float], result: DagResult) -> None:
    others = {name: ratio for name, ratio in ratios.items() if name != PLAIN.name}
    relative = ", ".join(f"{name} {ratio:.2f}x" for name, ratio in others.items())
    order = f"{len(result.violations)} VIOLATIONS" if result.violations else "OK"
    print(
        f"\nsummary: trivial-test wall time vs plain pytest: {relative}; "
        f"DAG makespan {result.ratio:.3f}x its lower bound "
        f"(target <= {TARGET_RATIO:.2f} {verdict(result.ratio)}); dependency order {order}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print_header()
    try:
        with tempfile.TemporaryDirectory(prefix="pexen-bench-") as tmp:
            ratios, result = run_parts(args, Path(tmp))
    except BenchError as error:
        print(f"\nbench: FAILED: {error}", file=sys.stderr)
        return 2
    print_summary(ratios, result)
    return 1 if result.violations else 0


if __name__ == "__main__":
    sys.exit(main())
