"""Benchmark the planner alone on big generated dependency graphs.

Run from the repository root as ``python bench/planner.py``. No pytest, no
processes: each size builds a :class:`Planner` from generated tasks and drives
it to the end with simulated workers that finish tasks in the order they took
them. The graphs come from a fixed seed, so every run measures the same ones.

Each graph mixes what big suites have: chains of tests, each requiring the
previous one's tag; hub tags, provided by one or a few tests and required by
thousands; tuples of alternatives; ``after`` edges; a few tests with locks
(exclusive claims and shared uses of a handful of resources); a few
priorities. Each task's tags come from tasks generated before it, so the
graph has no cycle; the collection order is shuffled, so dependents often
come before their providers. An edge is one tag named in ``requires`` (each
alternative counts) or ``after``.

Printed per size: tasks, edges, seconds to build the planner, seconds to
drive it to the end when every task passes, and again when some hub
providers fail (so thousands of tasks are blocked, counted under
"blocked"), microseconds per task (build plus the all-pass drive), the
"floor": seconds to merely list, per tag, the tasks that name it (no
planner does less; it shows how this machine's cost per operation grows
with the size of the data), and at 100,000 tasks PASS or FAIL against the
target: build plus drive under one second, in both variants. Then a second table: many tasks on one
resource (a third claim it, a third use it), built and driven the same way.

Times are CPU seconds of this process (``time.process_time``), so other
load on the machine does not count; each is the best of ``--repeat`` runs.
The first line names the planner module measured: put an older checkout
first on ``PYTHONPATH`` to measure it. Exit status 1 on FAIL.
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, TypeVar

from pytest_pexen import _planner as planner_module
from pytest_pexen._planner import Planner, Task

SIZES = (10_000, 20_000, 100_000)
LOCK_SIZES = (1_000, 4_000, 20_000)
#: The target: at this many tasks, build plus drive under TARGET_SECONDS.
TARGET_TASKS = 100_000
TARGET_SECONDS = 1.0
WORKERS = 8
SEED = 20240611
#: Tests that require one hub tag: "thousands", whatever the size.
HUB_REQUIRERS = 3_000
RESOURCES = ("gpu0", "gpu1", "gpu2", "gpu3")


@dataclass(frozen=True)
class Graph:
    tasks: list[Task]
    edges: int
    #: Outcomes of the failing variant; tasks not named pass.
    failures: dict[str, str]


def generate(size: int, seed: int = SEED) -> Graph:
    """*size* tasks, about two edges per task, hubs required by thousands."""
    rng = random.Random(seed)
    hubs = max(1, size * 3 // (10 * HUB_REQUIRERS))
    # Hub providers come first so that every later task may require a hub;
    # every third hub has three providers.
    hub_providers = {f"hub{h}": [h * 3 + k for k in range(3 if h % 3 == 0 else 1)] for h in range(hubs)}
    hub_tags = list(hub_providers)
    provides_hub = {index: hub for hub, indices in hub_providers.items() for index in indices}
    first_user = hubs * 3
    # Each tag name exists once, like a suite's string literals.
    tag_of = [sys.intern(f"t{index}") for index in range(size)]
    fields: list[dict[str, Any]] = []
    edges = 0
    for index in range(size):
        requires: list[tuple[str, ...]] = []
        after: list[str] = []
        if index >= first_user:
            if rng.random() < 0.3:
                requires.append((rng.choice(hub_tags),))
            if index % 50 and rng.random() < 0.6:
                requires.append((tag_of[index - 1],))
            if rng.random() < 0.2:
                requires.append((tag_of[rng.randrange(index)], tag_of[rng.randrange(index)]))
            if rng.random() < 0.3:
                after.append(tag_of[rng.randrange(index)])
            if rng.random() < 0.4:
                requires.append((tag_of[rng.randrange(index)],))
        provides = (tag_of[index],) + ((provides_hub[index],) if index in provides_hub else ())
        claims: tuple[str, ...] = ()
        uses: tuple[str, ...] = ()
        draw = rng.random()
        if draw < 0.01:
            claims = (rng.choice(RESOURCES),)
        elif draw < 0.02:
            uses = ("db",)
        elif draw < 0.022:
            claims = ("db",)
        priority = rng.choice((-1, 1)) if rng.random() < 0.04 else 0
        edges += sum(len(requirement) for requirement in requires) + len(after)
        fields.append(
            dict(
                index=index,
                requires=tuple(requires),
                provides=provides,
                after=tuple(after),
                priority=priority,
                claims=claims,
                uses=uses,
            )
        )
    # Collection order is not dependency order. The tasks are made in
    # collection order, as a pytest session makes them.
    rng.shuffle(fields)
    tasks = [Task(f"test_{f.pop('index')}", **f) for f in fields]
    failures = {f"test_{hub_providers[hub][0]}": "failed" for hub in hub_tags[: max(1, hubs // 2)]}
    return Graph(tasks, edges, failures)


def drive(planner: Planner, outcomes: Mapping[str, str]) -> int:
    """Run the plan to its end on WORKERS simulated workers; how many were blocked."""
    running: deque[str] = deque()
    blocked = 0
    while planner.is_active():
        running.extend(planner.take(WORKERS - len(running)))
        blocked += len(planner.pop_blocked())
        if not running:
            raise RuntimeError("the planner stalled: active, but nothing to take")
        task_id = running.popleft()
        planner.done(task_id, outcomes.get(task_id, "passed"))
    return blocked + len(planner.pop_blocked())


@dataclass
class Timings:
    """Best seconds of each step, and how many tasks the failing variant blocked."""

    build: float = float("inf")
    drive: float = float("inf")
    drive_failing: float = float("inf")
    blocked: int = 0
    floor: float = float("inf")


T = TypeVar("T")


def timed(action: Callable[[], T]) -> tuple[float, T]:
    """CPU seconds of this process spent in *action*, and what it returned."""
    gc.collect()
    start = time.process_time()
    result = action()
    return time.process_time() - start, result


def index_mentions(tasks: Sequence[Task]) -> dict[str, list[str]]:
    """The least any planner does: note, for each tag, who names it."""
    named: dict[str, list[str]] = {}
    for task in tasks:
        for requirement in task.requires:
            for tag in requirement:
                named.setdefault(tag, []).append(task.id)
        for tag in task.after:
            named.setdefault(tag, []).append(task.id)
    return named


def measure(graph: Graph, repeat: int) -> Timings:
    best = Timings()
    for _ in range(repeat):
        floor, _ = timed(lambda: index_mentions(graph.tasks))
        best.floor = min(best.floor, floor)
        build, _ = timed(lambda: Planner(graph.tasks))
        passing, failing = Planner(graph.tasks), Planner(graph.tasks)
        drive_passing, _ = timed(lambda: drive(passing, {}))
        drive_failing, best.blocked = timed(lambda: drive(failing, graph.failures))
        best.build = min(best.build, build)
        best.drive = min(best.drive, drive_passing)
        best.drive_failing = min(best.drive_failing, drive_failing)
    return best


def report_graphs(sizes: Sequence[int], repeat: int) -> bool:
    """The table of generated graphs; False if the target size missed the target."""
    print(
        f"{'tasks':>8}{'edges':>9}{'build s':>9}{'drive s':>9}{'fail s':>9}{'blocked':>9}{'us/task':>9}"
        f"{'floor s':>9}"
    )
    verdict = True
    for size in sizes:
        graph = generate(size)
        try:
            times = measure(graph, repeat)
        except RecursionError:
            print(f"{size:>8}{graph.edges:>9}  RecursionError", flush=True)
            verdict = False
            continue
        per_task = (times.build + times.drive) / size * 1e6
        print(
            f"{size:>8}{graph.edges:>9}{times.build:>9.3f}{times.drive:>9.3f}"
            f"{times.drive_failing:>9.3f}{times.blocked:>9}{per_task:>9.1f}{times.floor:>9.3f}",
            flush=True,
        )
        if size == TARGET_TASKS:
            worst = times.build + max(times.drive, times.drive_failing)
            passed = worst < TARGET_SECONDS
            verdict = verdict and passed
            print(
                f"{'PASS' if passed else 'FAIL'}: build + drive at {size} tasks: {worst:.3f} s "
                f"(target: under {TARGET_SECONDS} s)"
            )
    return verdict


def report_locks(sizes: Sequence[int], repeat: int) -> None:
    """Many tasks on one resource: a third claim it, a third use it, a third are free."""
    print(f"{'tasks':>8}{'build s':>9}{'drive s':>9}{'us/task':>9}   (one resource: claims, uses, free)")
    for size in sizes:
        tasks = [
            Task(f"test_{n}", claims=("gpu",) if n % 3 == 0 else (), uses=("gpu",) if n % 3 == 1 else ())
            for n in range(size)
        ]
        best_build = best_drive = float("inf")
        for _ in range(repeat):
            build, planner = timed(lambda: Planner(tasks))
            drive_seconds, _ = timed(lambda: drive(planner, {}))
            best_build, best_drive = min(best_build, build), min(best_drive, drive_seconds)
        per_task = (best_build + best_drive) / size * 1e6
        print(f"{size:>8}{best_build:>9.3f}{best_drive:>9.3f}{per_task:>9.1f}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="timings per number, best kept")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), help="task counts of the graphs")
    parser.add_argument(
        "--lock-sizes", type=int, nargs="*", default=list(LOCK_SIZES), help="task counts on one resource"
    )
    args = parser.parse_args(argv)
    print(
        f"planner from {planner_module.__file__}; Python {platform.python_version()}; "
        f"CPU seconds, best of {args.repeat}; {WORKERS} workers; seed {SEED}"
    )
    verdict = report_graphs(args.sizes, args.repeat)
    if args.lock_sizes:
        report_locks(args.lock_sizes, args.repeat)
    return 0 if verdict else 1


if __name__ == "__main__":
    sys.exit(main())
