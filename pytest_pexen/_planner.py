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

Groups: only one runs at a time, in :meth:`Planner.groups` order (dependencies
between groups first, then configuration order); :meth:`begin` a group, then
``take`` hands out that group's tasks only.

Locks: a task gets all its ``claims`` (exclusive) and ``uses`` (shared)
resources when it is taken, or is not taken (no hold-and-wait); it keeps them
until it is done. Once a ready task finds that only users stand between it
and its claims, no new task may start using them, so a stream of users
cannot starve a claimer; and a task waiting for resources keeps tasks of
worse ``priority`` from taking those resources first.
"""

from __future__ import annotations

import dataclasses
import enum
import graphlib
import heapq
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

from ._errors import PlanError
from ._groups import DEFAULT_GROUP
from ._metadata import Requirement

PASSING_OUTCOMES = frozenset({"passed", "warned"})

_OUTCOME_WORDS = {
    "failed": "failed",
    "error": "had an error",
    "skipped": "was skipped",
    "xfailed": "failed (xfail)",
    "blocked": "was blocked",
    "crashed": "crashed",
    "timeout": "timed out",
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
    claims: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    group: str = DEFAULT_GROUP

    @property
    def locks(self) -> bool:
        return bool(self.claims or self.uses)


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
        group_order: Sequence[str] = (DEFAULT_GROUP,),
    ) -> None:
        """*absent* maps tags that no task here provides to the reason why
        (e.g. their providers were not selected): a requirement on them is
        blocked, an ``after`` on them is satisfied. Any other tag that nothing
        provides is an error. *durations* are earlier runs' times in seconds,
        used to find the critical path. *group_order* is the configuration
        order of groups, used where dependencies leave the order open."""
        tasks = [_without_shared_claims(task) for task in tasks]
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
        self._groups = self._order_groups(group_order)

        self._state = {task.id: State.WAITING for task in tasks}
        self._outcome: dict[str, str] = {}
        self._unfinished_providers = {tag: len(ids) for tag, ids in self._providers.items()}
        self._failed_provider: dict[str, str] = {}
        self._ready: dict[str, list[tuple[int, float, int, str]]] = {g: [] for g in self._groups}
        self._blocked: list[tuple[str, str]] = []
        self._active = len(tasks)
        self._unfinished_in_group = {g: 0 for g in self._groups}
        for task in tasks:
            self._unfinished_in_group[task.group] += 1
        self._group = self._groups[0] if self._groups else DEFAULT_GROUP
        self._claimed: dict[str, str] = {}
        self._users: dict[str, int] = {}
        #: Resources that a ready task failed to claim because of users.
        self._starving: set[str] = set()
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

    def _order_groups(self, configured: Sequence[str]) -> list[str]:
        """Groups with tasks, providers' groups first; PlanError if they would interleave."""
        position = {name: index for index, name in enumerate(configured)}
        used = sorted({t.group for t in self._tasks.values()}, key=lambda g: (position.get(g, len(position)), g))
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        example: dict[tuple[str, str], str] = {}
        for group in used:
            sorter.add(group)
        for provider, dependents in self._dependents.items():
            source = self._tasks[provider].group
            for dependent in dependents:
                target = self._tasks[dependent].group
                if source != target:
                    sorter.add(target, source)
                    example.setdefault((target, source), f"{dependent} (group {target!r}) waits for {provider} (group {source!r})")
        try:
            sorter.prepare()
        except graphlib.CycleError as error:
            cycle = error.args[1]
            steps = [f"  {example[(cycle[i], cycle[i + 1])]}" for i in range(len(cycle) - 1)]
            raise PlanError(
                "groups would have to interleave, but only one group runs at a time:\n"
                + "\n".join(steps)
                + "\nmove these tests into one group, or drop one of the dependencies"
            ) from None
        order: list[str] = []
        ready: list[tuple[int, str]] = []
        while sorter.is_active():
            for group in sorter.get_ready():
                heapq.heappush(ready, (position.get(group, len(position)), group))
            rank, group = heapq.heappop(ready)
            order.append(group)
            sorter.done(group)
        return order

    # -- driving the run ------------------------------------------------

    def groups(self) -> list[str]:
        """Groups that have tasks, in the order they run."""
        return list(self._groups)

    def begin(self, group: str) -> None:
        """From now on, :meth:`take` hands out tasks of *group* only."""
        self._group = group
        self._starving.clear()

    def group_size(self, group: str) -> int:
        """Tasks of *group* not finished or blocked yet."""
        return self._unfinished_in_group.get(group, 0)

    def group_is_active(self) -> bool:
        """True while some task of the current group has not finished or been blocked."""
        return self._unfinished_in_group.get(self._group, 0) > 0

    def is_active(self) -> bool:
        """True while some task has not finished or been blocked."""
        return self._active > 0

    def take(self, limit: int, *, locks: bool = True) -> list[str]:
        """Up to *limit* ready tasks of the current group, best first.

        They are running from now on and hold their locks. Tasks whose locks
        are not free (or, with ``locks=False``, that have any) stay ready and
        do not hold back the tasks behind them.
        """
        heap = self._ready[self._group]
        taken: list[str] = []
        passed_over = []
        # Resources that a waiting task of better priority needs, with that
        # priority: tasks of worse priority may not take them in this round.
        reserved: dict[str, int] = {}
        while heap and len(taken) < limit:
            entry = heapq.heappop(heap)
            task = self._tasks[entry[-1]]
            if task.locks:
                if not locks or not self._lockable(task, reserved):
                    if locks:
                        self._note_waiting(task, reserved)
                    passed_over.append(entry)
                    continue
                self._lock(task)
            self._set_state(task.id, State.RUNNING)
            taken.append(task.id)
        for entry in passed_over:
            heapq.heappush(heap, entry)
        return taken

    def give_back(self, task_id: str) -> None:
        """A taken task did not start after all (its worker went away first)."""
        assert self._state[task_id] is State.RUNNING, task_id
        self._unlock(self._tasks[task_id])
        self._make_ready(task_id)

    def done(self, task_id: str, outcome: str) -> None:
        """A running task ended; *outcome* is a word like "passed" or "failed"."""
        assert self._state[task_id] is State.RUNNING, (task_id, self._state[task_id])
        self._unlock(self._tasks[task_id])
        self._finish(task_id, State.FINISHED, outcome, "")

    def abandon(self, reason: str) -> None:
        """The run stops early: block every task not started, in any group, with *reason*."""
        for heap in self._ready.values():
            heap.clear()
        left = [t for t, s in self._state.items() if s in (State.WAITING, State.READY)]
        for task_id in sorted(left, key=self._order.__getitem__):
            self._finish(task_id, State.BLOCKED, "not run", reason)

    def pop_blocked(self) -> list[tuple[str, str]]:
        """Tasks blocked since the last call, with the reason, in collection order."""
        blocked, self._blocked = self._blocked, []
        return blocked

    def state(self, task_id: str) -> State:
        return self._state[task_id]

    # -- internals --------------------------------------------------------

    def _set_state(self, task_id: str, state: State, detail: str = "") -> None:
        self._state[task_id] = state
        if self._on_change is not None:
            self._on_change(task_id, state, detail)

    def _make_ready(self, task_id: str) -> None:
        self._set_state(task_id, State.READY)
        task = self._tasks[task_id]
        heapq.heappush(
            self._ready[task.group], (task.priority, -self._rank[task_id], self._order[task_id], task_id)
        )

    def _lockable(self, task: Task, reserved: Mapping[str, int]) -> bool:
        for resource in (*task.claims, *task.uses):
            if reserved.get(resource, task.priority) < task.priority:
                return False
        for resource in task.claims:
            if resource in self._claimed or self._users.get(resource):
                return False
        for resource in task.uses:
            if resource in self._claimed or resource in self._starving:
                return False
        return True

    def _note_waiting(self, task: Task, reserved: dict[str, int]) -> None:
        """*task* could not have its locks: make sure it gets them in time."""
        for resource in (*task.claims, *task.uses):
            reserved[resource] = min(reserved.get(resource, task.priority), task.priority)
        claimed_elsewhere = any(r in self._claimed for r in (*task.claims, *task.uses))
        if not claimed_elsewhere:
            # Only users stand in its way: let no new user join them.
            self._starving.update(r for r in task.claims if self._users.get(r))

    def _lock(self, task: Task) -> None:
        for resource in task.claims:
            self._claimed[resource] = task.id
            self._starving.discard(resource)
        for resource in task.uses:
            self._users[resource] = self._users.get(resource, 0) + 1

    def _unlock(self, task: Task) -> None:
        for resource in task.claims:
            del self._claimed[resource]
        for resource in task.uses:
            self._users[resource] -= 1

    def _finish(self, task_id: str, state: State, outcome: str, reason: str) -> None:
        self._outcome[task_id] = outcome
        self._active -= 1
        self._unfinished_in_group[self._tasks[task_id].group] -= 1
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


def _without_shared_claims(task: Task) -> Task:
    """A resource both claimed and used is claimed."""
    if not set(task.claims) & set(task.uses):
        return task
    return dataclasses.replace(task, uses=tuple(r for r in task.uses if r not in task.claims))


def _duplicates(ids: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    return sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
