"""Benchmark a thread pool of script tests against ``xargs -P``.

Run from the repository root as ``python bench/scripts.py [--scripts N]
[--workers W] [--repeat R]``. Generates N trivial scripts (``#!/bin/sh``,
``exit 0``; 100 per directory) in a temporary directory, collected through
ini ``pexen_scripts`` and put into a thread-pool group of W workers by the
``pexen_defaults`` of the tree's top conftest.py, and times, in the same
run, with the order alternated each round:

- ``pytest -q --pexen`` on the tree (a whole command: start-up,
  collection, the state file, reports);
- ``find ... -print0 | xargs -0 -P W -n 1 sh``, which runs the same
  scripts W at a time, one ``exec`` each, as the kernel does for a
  ``#!/bin/sh`` file (xargs cannot run the file it reads as its command;
  ``xargs ... env`` would, at the cost of a second ``exec`` per script,
  which would flatter pytest: 2.2 s instead of 1.3 s on the 2-CPU machine
  of ``bench/README.md``).

One untimed warm-up round of each, then R rounds; the medians, their ratio
and PASS or MISSED against :data:`TARGET_RATIO`. Each command's CPU time
(its processes', user and system) is printed too: on a machine shared with
other jobs it varies much less than the wall time.

Runs go through ``bench/run.py``'s helpers (plugin autoloading off, the
plugin loaded with ``-p``, bytecode kept in the temporary directory, pytest's
cache off); a pytest run that fails or does not report exactly N passed
tests, or an xargs run that fails, stops the benchmark.

Exit status: 0 when everything ran (a ratio above the target is reported as
MISSED but does not fail the run), 2 when a run failed.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Mapping, Sequence

from run import BenchError, Mode, print_header, pytest_env, run_pytest

TARGET_RATIO = 1.5
PER_DIRECTORY = 100
GROUP = "scripts"


def write_tree(root: Path, scripts: int, workers: int) -> None:
    """*scripts* trivial scripts under root/sys, in a thread-pool group of *workers*."""
    (root / "pytest.ini").write_text(
        f"[pytest]\npexen_scripts = sys\npexen_groups =\n    {GROUP}: workers={workers} pool=thread\n"
    )
    top = root / "sys"
    top.mkdir()
    (top / "conftest.py").write_text(f"pexen_defaults = {{'group': {GROUP!r}}}\n")
    for n in range(scripts):
        directory = top / f"d{n // PER_DIRECTORY:03d}"
        directory.mkdir(exist_ok=True)
        script = directory / f"t{n:05d}.sh"
        script.write_text("#!/bin/sh\nexit 0\n")
        script.chmod(0o755)


def pexen(workers: int) -> Mode:
    return Mode(f"pytest --pexen ({workers} threads)", ("-p", "pytest_pexen._plugin", "--pexen"))


def xargs_command(workers: int) -> str:
    return f"find sys -type f -perm -u+x -print0 | xargs -0 -P {workers} -n 1 sh"


def run_xargs(root: Path, workers: int) -> float:
    command = xargs_command(workers)
    start = time.perf_counter()
    proc = subprocess.run(command, shell=True, cwd=root, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(f"{command}: exit code {proc.returncode}\n{proc.stderr[-2000:]}")
    return seconds


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(
    root: Path, env: Mapping[str, str], scripts: int, workers: int, repeat: int
) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) seconds of each command, *repeat* rounds after a warm-up."""
    mode = pexen(workers)
    commands: dict[str, Callable[[], float]] = {
        mode.name: lambda: run_pytest(root, mode, scripts, env),
        f"xargs -P {workers}": lambda: run_xargs(root, workers),
    }

    def timed(name: str) -> tuple[float, float]:
        cpu = children_cpu()
        seconds = commands[name]()
        return seconds, children_cpu() - cpu

    for name in commands:
        timed(name)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    names = list(commands)
    for round_index in range(repeat):
        spent = []
        for name in names[round_index % 2 :] + names[: round_index % 2]:
            seconds, cpu = timed(name)
            times[name].append((seconds, cpu))
            spent.append(f"{name} {seconds:.2f}s (CPU {cpu:.2f}s)")
        print(f"  round {round_index + 1}/{repeat}: " + ", ".join(spent), flush=True)
    return times


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scripts", type=int, default=2000, help="trivial scripts (default 2000)")
    parser.add_argument("--workers", type=int, default=32, help="threads of the group and xargs -P (default 32)")
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds (default 5)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print_header()
    print(
        f"{args.scripts} scripts '#!/bin/sh; exit 0': pytest --pexen (a thread-pool group of "
        f"{args.workers}) against {xargs_command(args.workers)!r}, {args.repeat} rounds after a warm-up"
    )
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="pexen-bench-scripts-") as tmp:
            root = Path(tmp) / "tree"
            root.mkdir()
            write_tree(root, args.scripts, args.workers)
            times = measure(root, pytest_env(Path(tmp) / "pycache"), args.scripts, args.workers, args.repeat)
    except BenchError as error:
        print(f"\nbench: FAILED: {error}", file=sys.stderr)
        return 2
    (pexen_name, pexen_times), (xargs_name, xargs_times) = times.items()
    wall = [statistics.median(t[0] for t in samples) for samples in (pexen_times, xargs_times)]
    cpu = [statistics.median(t[1] for t in samples) for samples in (pexen_times, xargs_times)]
    ratio = wall[0] / wall[1]
    print(f"\n  medians{'wall (s)':>32}{'CPU (s)':>10}")
    print(f"  {pexen_name:<30}{wall[0]:>9.2f}{cpu[0]:>10.2f}")
    print(f"  {xargs_name:<30}{wall[1]:>9.2f}{cpu[1]:>10.2f}")
    verdict = "PASS" if ratio <= TARGET_RATIO else "MISSED"
    print(f"  ratio {ratio:.2f}x wall (CPU {cpu[0] / cpu[1]:.2f}x): {verdict} (target at most {TARGET_RATIO:.2f}x)")
    print(f"\nbench: done in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
