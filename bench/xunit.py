"""Benchmark what ``--pexen-xunit`` costs a ``--pexen`` run, at scale.

Run from the repository root as ``python bench/xunit.py [--tests N]``.
Generates a suite of N trivial tests (``def test_N(): pass``, spread over
:data:`FILES` modules) in a temporary directory, and times
``pytest --pexen --pexen-workers=W`` with and without ``--pexen-xunit``,
then the same at 2,000 tests. Each size: one untimed warm-up round of each
mode, then R rounds with the order of the modes alternated; the medians, their
ratio, and PASS or MISSED against :data:`TARGET_RATIO`. The CPU time of
each run (pytest and its workers, user and system) is printed too: on a
machine shared with other jobs it varies much less than the wall time.

Runs go through ``bench/run.py``'s helpers: a subprocess each, plugin
autoloading off, bytecode kept in the temporary directory, and a run that
fails or does not report exactly N passed tests stops the benchmark. After
each run with the report, the file is parsed and must hold N testcases.

Exit status: 0 when everything ran (a ratio above the target is reported as
MISSED but does not fail the run), 2 when a pytest run failed or the report
was wrong.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from run import BenchError, Mode, pexen_mode, print_header, pytest_env, rotated, run_pytest, write_ini

FILES = 40
SMALL = 2_000
TARGET_RATIO = 1.15
REPORT = "report.xml"


def write_suite(root: Path, tests: int, files: int = FILES) -> None:
    """*tests* trivial tests over *files* modules (fewer when there are fewer tests)."""
    write_ini(root)
    files = max(1, min(files, tests))
    per_file, extra = divmod(tests, files)
    first = 0
    for module in range(files):
        count = per_file + (module < extra)
        body = "".join(f"def test_{i}():\n    pass\n\n\n" for i in range(first, first + count))
        (root / f"test_many_{module:02d}.py").write_text(body)
        first += count


def xunit_mode(workers: int, report: Path) -> Mode:
    base = pexen_mode(workers)
    return Mode(f"{base.name} --pexen-xunit", (*base.args, f"--pexen-xunit={report}"))


def check_report(report: Path, tests: int) -> None:
    found = sum(1 for _ in ET.parse(report).getroot().iter("testcase"))
    if found != tests:
        raise BenchError(f"{report}: {found} testcases, expected {tests}")


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_size(
    root: Path, env: Mapping[str, str], tests: int, repeat: int, workers: int
) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds of both modes on *tests* trivial tests, *repeat* rounds after a warm-up."""
    root.mkdir()
    write_suite(root, tests)
    report = root / REPORT
    modes = [pexen_mode(workers), xunit_mode(workers, report)]

    def timed(mode: Mode) -> tuple[float, float]:
        report.unlink(missing_ok=True)
        cpu = children_cpu()
        seconds = run_pytest(root, mode, tests, env)
        cpu = children_cpu() - cpu
        if mode is modes[1]:
            check_report(report, tests)
        return seconds, cpu

    for mode in modes:
        timed(mode)
    times: dict[str, list[tuple[float, float]]] = {mode.name: [] for mode in modes}
    for round_index in range(repeat):
        spent = []
        for mode in rotated(modes, round_index):
            seconds, cpu = timed(mode)
            times[mode.name].append((seconds, cpu))
            spent.append(f"{'with' if mode is modes[1] else 'without'} {seconds:.2f}s (CPU {cpu:.2f}s)")
        print(f"  {tests} tests, round {round_index + 1}/{repeat}: " + ", ".join(spent), flush=True)
    return times


@dataclass(frozen=True)
class Result:
    """Median wall and CPU seconds of one suite size, without and with the report."""

    tests: int
    wall_without: float
    wall_with: float
    cpu_without: float
    cpu_with: float

    @classmethod
    def of(cls, tests: int, without: list[tuple[float, float]], with_xunit: list[tuple[float, float]]) -> Result:
        def median(samples: list[tuple[float, float]], index: int) -> float:
            return statistics.median(sample[index] for sample in samples)

        return cls(tests, median(without, 0), median(with_xunit, 0), median(without, 1), median(with_xunit, 1))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tests", type=int, default=40_000, help="tests in the big suite (default 40000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds per size (default 3)")
    parser.add_argument("--workers", type=int, default=2, help="--pexen-workers (default 2)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print_header()
    sizes = sorted({SMALL, args.tests})
    print(
        f"--pexen --pexen-workers={args.workers} with and without --pexen-xunit, "
        f"{args.repeat} rounds per size after a warm-up round"
    )
    results: list[Result] = []
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="pexen-bench-xunit-") as tmp:
            env = pytest_env(Path(tmp) / "pycache")
            for tests in sizes:
                times = bench_size(Path(tmp) / f"suite-{tests}", env, tests, args.repeat, args.workers)
                results.append(Result.of(tests, *times.values()))
    except BenchError as error:
        print(f"\nbench: FAILED: {error}", file=sys.stderr)
        return 2
    print("\n  medians     wall time (s)                 CPU time (s)")
    print(f"  {'tests':>7}{'without':>10}{'with':>8}{'ratio':>8}{'without':>12}{'with':>8}{'ratio':>8}")
    for r in results:
        ratio = r.wall_with / r.wall_without
        verdict = "PASS" if ratio <= TARGET_RATIO else "MISSED"
        print(
            f"  {r.tests:>7}{r.wall_without:>10.2f}{r.wall_with:>8.2f}{ratio:>7.2f}x"
            f"{r.cpu_without:>12.2f}{r.cpu_with:>8.2f}{r.cpu_with / r.cpu_without:>7.2f}x"
            f"  {verdict} (wall, target {TARGET_RATIO:.2f}x)"
        )
    print(f"\nbench: done in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
