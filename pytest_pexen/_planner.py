"""The planner: what runs next, and what can never run.

Knows tags, dependencies and priorities; knows nothing of pytest, processes
or pools. Driven like :class:`graphlib.TopologicalSorter`::

    planner = Planner(tasks)               # checks tags and cycles
    while planner.is_active():
        for task_id in planner.take(free_workers):
            ...start it...
        planner.done(task_id, "passed")    # when it ends
        for task_id, reason in planner.pop_blocked():
            ...report it as blocked...

Every change of a task's state goes through :meth:`Planner._set_state`, and
from there to the optional *on_change* callback: the one place where a run's
progress can be observed (and, later, made durable).

A tag that several tests provide is available once all of them have passed;
a tuple inside ``requires`` is satisfied by any one of its tags.
"""

from __future__ import annotations

import enum
import graphlib
import heapq
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

from ._errors import PlanError
from ._metadata import Requirement

PASSING_OUTCOMES = frozenset({"passed", "warned"})

_OUTCOME_WORDS = {
    "failed": "failed",
    "error": "had an error",
    "skipped": "was skipped",
    "xfailed": "failed (xfail)",
    "blocked": "was blocked",
    "crashed": "crashed",
    "not run": "did not run",
}


@dataclass(frozen=True)
class Task:
    """What the planner needs to know of one test."""

    id: str
    requires: tuple[Requirement, ...] = ()
    provides: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    priority: int = 0


class State(enum.Enum):
    WAITING = "waiting"
    READY = "ready"
    RUNNING = "running"
    FINISHED = "finished"
    BLOCKED = "blocked"


StateListener = Callable[[str, State, str], None]


def _describe(requirement: Requirement) -> str:
    if len(requirement) == 1:
        return repr(requirement[0])
    return "one of " + ", ".join(map(repr, requirement))


class Planner:
    """Hands out ready tasks in order and tracks what each outcome unblocks."""

    def __init__(
        self,
        tasks: Sequence[Task],
        *,
        absent: Mapping[str, str] | None = None,
        durations: Mapping[str, float] | None = None,
        on_change: StateListener | None = None,
    ) -> None:
        """*absent* maps tags that no task here provides to the reason why
        (e.g. their providers were not selected): a requirement on them is
        blocked, an ``after`` on them is satisfied. Any other tag that nothing
        provides is an error. *durations* are earlier runs' times in seconds,
        used to find the critical path."""
        self._tasks = {task.id: task for task in tasks}
        if len(self._tasks) != len(tasks):
            raise PlanError("duplicate task ids: " + ", ".join(_duplicates(t.id for t in tasks)))
        self._order = {task.id: index for index, task in enumerate(tasks)}
        self._absent = dict(absent or {})
        self._on_change = on_change
        self._providers: dict[str, list[str]] = {}
        for task in tasks:
            for tag in task.provides:
                self._providers.setdefault(tag, []).append(task.id)
        self._check_tags()
        self._dependents = self._link()
        self._rank = self._critical_path(durations or {})

        self._state = {task.id: State.WAITING for task in tasks}
        self._outcome: dict[str, str] = {}
        self._unfinished_providers = {tag: len(ids) for tag, ids in self._providers.items()}
        self._failed_provider: dict[str, str] = {}
        self._ready: list[tuple[int, float, int, str]] = []
        self._blocked: list[tuple[str, str]] = []
        self._active = len(tasks)
        for task in tasks:
            self._evaluate(task.id)

    # -- checks made before anything runs -------------------------------

    def _check_tags(self) -> None:
        missing: dict[str, list[str]] = {}
        for task in self._tasks.values():
            wanted = [tag for requirement in task.requires for tag in requirement]
            for tag in wanted + list(task.after):
                if tag not in self._providers and tag not in self._absent:
                    missing.setdefault(tag, []).append(task.id)
        if missing:
            lines = [
                f"  tag {tag!r}, needed by: {', '.join(dict.fromkeys(ids))}"
                for tag, ids in sorted(missing.items())
            ]
            raise PlanError(
                "no test provides these tags (check the spelling, or add "
                "provides=[...] to the test that makes them):\n" + "\n".join(lines)
            )

    def _link(self) -> dict[str, list[str]]:
        """Task-level edges; raises PlanError naming a cycle if there is one."""
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        dependents: dict[str, list[str]] = {task_id: [] for task_id in self._tasks}
        why: dict[tuple[str, str], str] = {}
        for task in self._tasks.values():
            sorter.add(task.id)
            edges = [("requires", tag) for req in task.requires for tag in req]
            edges += [("after", tag) for tag in task.after]
            for kind, tag in edges:
                for provider in self._providers.get(tag, ()):
                    sorter.add(task.id, provider)
                    why.setdefault((task.id, provider), f"{kind} {tag!r}")
                    if task.id not in dependents[provider]:
                        dependents[provider].append(task.id)
        try:
            self._static_order = list(sorter.static_order())
        except graphlib.CycleError as error:
            cycle = error.args[1]
            steps = [
                f"  {cycle[i]} {why[(cycle[i], cycle[i + 1])]}, provided by"
                for i in range(len(cycle) - 1)
            ]
            raise PlanError(
                "dependency cycle, no test in it can ever start:\n"
                + "\n".join(steps)
                + f"\n  {cycle[-1]}"
            ) from None
        return dependents

    def _critical_path(self, durations: Mapping[str, float]) -> dict[str, float]:
        """For tasks that others depend on: the longest chain of work they start.

        Tasks nothing depends on rank 0, so they keep collection order among
        themselves, as in a plain pytest run (tests that leak state into the
        next test behave the same).
        """
        known = [durations[t] for t in self._tasks if t in durations]
        default = sum(known) / len(known) if known else 1.0
        chain: dict[str, float] = {}
        rank: dict[str, float] = {}
        for task_id in reversed(self._static_order):
            dependents = self._dependents[task_id]
            tail = max((chain[d] for d in dependents), default=0.0)
            chain[task_id] = durations.get(task_id, default) + tail
            rank[task_id] = chain[task_id] if dependents else 0.0
        return rank

    # -- driving the run ------------------------------------------------

    def is_active(self) -> bool:
        """True while some task has not finished or been blocked."""
        return self._active > 0

    def ready_count(self) -> int:
        return len(self._ready)

    def take(self, limit: int) -> list[str]:
        """Up to *limit* ready tasks, best first; they are running from now on."""
        taken = []
        while self._ready and len(taken) < limit:
            task_id = heapq.heappop(self._ready)[-1]
            self._set_state(task_id, State.RUNNING)
            taken.append(task_id)
        return taken

    def give_back(self, task_id: str) -> None:
        """A taken task did not start after all (its worker went away first)."""
        assert self._state[task_id] is State.RUNNING, task_id
        self._make_ready(task_id)

    def done(self, task_id: str, outcome: str) -> None:
        """A running task ended; *outcome* is a word like "passed" or "failed"."""
        assert self._state[task_id] is State.RUNNING, (task_id, self._state[task_id])
        self._finish(task_id, State.FINISHED, outcome, "")

    def abandon(self, reason: str) -> list[str]:
        """Block every task not yet started (the run is stopping); returns them."""
        left = [t for t, s in self._state.items() if s in (State.WAITING, State.READY)]
        self._ready.clear()
        for task_id in sorted(left, key=self._order.__getitem__):
            self._finish(task_id, State.BLOCKED, "blocked", reason)
        return left

    def pop_blocked(self) -> list[tuple[str, str]]:
        """Tasks blocked since the last call, with the reason, in collection order."""
        blocked, self._blocked = self._blocked, []
        return blocked

    def state(self, task_id: str) -> State:
        return self._state[task_id]

    def rank(self, task_id: str) -> float:
        return self._rank[task_id]

    # -- internals --------------------------------------------------------

    def _set_state(self, task_id: str, state: State, detail: str = "") -> None:
        self._state[task_id] = state
        if self._on_change is not None:
            self._on_change(task_id, state, detail)

    def _make_ready(self, task_id: str) -> None:
        self._set_state(task_id, State.READY)
        task = self._tasks[task_id]
        heapq.heappush(
            self._ready, (task.priority, -self._rank[task_id], self._order[task_id], task_id)
        )

    def _finish(self, task_id: str, state: State, outcome: str, reason: str) -> None:
        self._outcome[task_id] = outcome
        self._active -= 1
        self._set_state(task_id, state, reason or outcome)
        if state is State.BLOCKED:
            self._blocked.append((task_id, reason))
        for tag in self._tasks[task_id].provides:
            self._unfinished_providers[tag] -= 1
            if outcome not in PASSING_OUTCOMES:
                self._failed_provider.setdefault(tag, task_id)
        for dependent in self._dependents[task_id]:
            if self._state[dependent] is State.WAITING:
                self._evaluate(dependent)

    def _evaluate(self, task_id: str) -> None:
        """Move a waiting task to ready or blocked once its tags allow it."""
        task = self._tasks[task_id]
        waiting = False
        for requirement in task.requires:
            status = [self._tag_status(tag) for tag in requirement]
            if "provided" in status:
                continue
            if "pending" in status:
                waiting = True
                continue
            reasons = [self._why_unavailable(tag) for tag in requirement]
            self._finish(
                task_id,
                State.BLOCKED,
                "blocked",
                f"blocked: requires {_describe(requirement)}, " + "; ".join(reasons),
            )
            return
        for tag in task.after:
            if self._unfinished_providers.get(tag, 0):
                waiting = True
        if not waiting:
            self._make_ready(task_id)

    def _tag_status(self, tag: str) -> str:
        if tag not in self._providers:
            return "absent"
        if tag in self._failed_provider:
            return "failed"
        return "pending" if self._unfinished_providers[tag] else "provided"

    def _why_unavailable(self, tag: str) -> str:
        if tag not in self._providers:
            return self._absent[tag]
        provider = self._failed_provider[tag]
        outcome = self._outcome[provider]
        return f"provided by {provider} which {_OUTCOME_WORDS.get(outcome, 'ended as ' + outcome)}"


def pull_in(selected: Sequence[Task], available: Iterable[Task]) -> list[Task]:
    """Providers, among *available*, that the *selected* tasks need, transitively.

    For a tuple of alternatives nothing is pulled in if one alternative is
    provided within the selection; otherwise the first alternative that some
    available task provides is pulled in.
    """
    chosen = {task.id for task in selected}
    offered: dict[str, list[Task]] = {}
    for task in available:
        if task.id not in chosen:
            for tag in task.provides:
                offered.setdefault(tag, []).append(task)
    have = {tag for task in selected for tag in task.provides}
    pulled: list[Task] = []
    todo = list(selected)
    while todo:
        task = todo.pop()
        for requirement in task.requires:
            if any(tag in have for tag in requirement):
                continue
            for tag in requirement:
                if tag in offered:
                    for provider in offered.pop(tag):
                        if provider.id not in chosen:
                            chosen.add(provider.id)
                            pulled.append(provider)
                            have.update(provider.provides)
                            todo.append(provider)
                    break
    return pulled


def _duplicates(ids: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    return sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
