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
``any:TAG`` in ``requires`` once any one of them has passed (a virtual
tag: ``httpd`` by apache or nginx); a tuple inside ``requires`` is satisfied
by any one of its alternatives. A task on *standby* for an ``any:`` tag (a
provider that pull-in did not choose) runs only if every other provider of
that tag ended without passing; once one passed, it is dropped unreported.

Tasks may be added while the run goes on (:meth:`Planner.add`): they may
name tags that no test provides yet, and wait until :meth:`stop_waiting`
says none will come.

Groups: only one runs at a time, in :meth:`Planner.groups` order (dependencies
between groups first, then configuration order); :meth:`begin` a group, then
``take`` hands out that group's tasks only.

Locks: a task gets all its ``claims`` (exclusive) and ``uses`` (shared)
resources when it is taken, or is not taken (no hold-and-wait); it keeps them
until it is done. A task waiting for resources keeps tasks of worse
``priority`` from taking those resources first, in the same :meth:`take`.
A ready task that finds only users between it and its claims (nothing it
needs is claimed) becomes a *holder* until it starts: no task of the same or
worse priority may then start using its claims or claim anything it needs
(unless it has the very same claims and uses: it serves as well), so a
stream of users cannot starve it. A task of better priority may; if it
claims something the holder needs, the hold ends.

Affinity: tasks with the same ``unit`` (in one group) are handed to one
*lane* (a worker, as the caller names it): the lane that takes the first of
them gets the rest as they become ready, until they are all done or the lane
is released (:meth:`release_lane`, e.g. its worker died).

Costs grow with the number of tasks and tag mentions, not their product, and
nothing recurses per task: a chain of any length is fine.
"""

from __future__ import annotations

import dataclasses
import enum
import graphlib
import heapq
from collections import Counter, deque
from itertools import accumulate
from operator import sub
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

from ._errors import PlanError
from ._groups import DEFAULT_GROUP
from ._metadata import ANY_PREFIX, Requirement, split_any

PASSING_OUTCOMES = frozenset({"passed", "warned"})
#: How a task names a tag, in a mention: in ``after``; as a requirement of
#: its own; or (a number from 0) among the alternatives of the requirement
#: with that number (see ``Planner._chances``). Named as ``any:TAG``, the
#: mention is _ALONE_ANY, or _ANY_BASE minus the requirement's number: every
#: mention at or below _ALONE_ANY is met by one provider passing.
_AFTER = -1
_ALONE = -2
_ALONE_ANY = -3
_ANY_BASE = -4
#: Places order ready tasks: a task's priority in the high bits, then its
#: rank among the tasks the planner was built with, or for a task added
#: later, _ADDED_RANK plus the order it came in (after those of its priority).
_PRIORITY_SHIFT = 32
_PRIORITY_OFFSET = 2**31
_ADDED_RANK = 2**31
#: The chances of a requirement with alternatives, once one of them is provided.
_MET = -1

_OUTCOME_WORDS = {
    "failed": "failed",
    "error": "had an error",
    "skipped": "was skipped",
    "xfailed": "failed (xfail)",
    "blocked": "was blocked",
    "crashed": "crashed",
    "timeout": "timed out",
    "not run": "did not run",
    "not needed": "was not needed",
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
    #: Tasks with the same unit (in a group) run in one lane, see :class:`Planner`.
    unit: str | None = None
    #: The tag this task stands by for: it runs only if the tag's other
    #: providers all end without passing (see the module docstring).
    standby_for: str | None = None

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
#: Ready tasks with locks wait in queues of this key: (group, claims, uses).
_LockKey = tuple[str, frozenset[str], frozenset[str]]
#: Tasks kept in one lane: (group, unit).
_UnitKey = tuple[str, str]


def _describe(requirement: Requirement) -> str:
    if len(requirement) == 1:
        return _describe_tag(requirement[0])
    return "one of " + ", ".join(map(_describe_tag, requirement))


def _describe_tag(tag: str) -> str:
    name, any_provider = split_any(tag)
    return f"any provider of {name!r}" if any_provider else repr(tag)



class Planner:
    """Hands out ready tasks in order and tracks what each outcome unblocks.

    Inside, tasks and tags are known by numbers given once, when the planner
    is built: a task's number is its place in collection order, a tag's is
    the order in which tasks first provide or name it. What the planner knows
    of them sits in flat lists indexed by those numbers (see
    :meth:`_index_tasks` and :meth:`_index_tags`): at 100,000 tasks, such
    lists cost much less than dicts keyed by id or tag, or an object per
    task, and an event of the run touches only the entries it concerns.
    """

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
        self._tasks = [_without_shared_claims(task) if task.claims and task.uses else task for task in tasks]
        self._ids = [task.id for task in self._tasks]
        self._number = dict(zip(self._ids, range(len(self._ids))))
        if len(self._number) != len(self._ids):
            raise PlanError("duplicate task ids: " + ", ".join(_duplicates(self._ids)))
        self._absent = dict(absent or {})
        self._on_change = on_change
        self._group_position = {name: index for index, name in enumerate(group_order)}
        self._index_tasks()
        self._index_tags()
        self._check_tags()
        rank = self._critical_path(self._topological_order(), durations or {})
        #: Per task: its place in the order ready tasks are handed out: by
        #: priority, then the longest chain of work first, then collection
        #: order (tasks added later: after those, in the order they came).
        #: The ready heaps hold places.
        self._place = [0] * len(self._tasks)
        by_rank = _best_first(self._priority, rank)
        high = [(self._priority[number] + _PRIORITY_OFFSET) << _PRIORITY_SHIFT for number in by_rank]
        places = [priority | rank_order for rank_order, priority in enumerate(high)]
        for place, number in zip(places, by_rank):
            self._place[number] = place
        #: The task at each place.
        self._by_place = dict(zip(places, by_rank))
        self._added = 0
        self._groups = self._order_groups(group_order)
        #: Where in :attr:`_groups` the current group is (-1: before the first).
        self._group_index = -1

        #: Tasks on standby (see :class:`Task`) not released or dropped yet,
        #: and per tag, those standing by for it, best first.
        self._unreleased = {n for n, task in enumerate(self._tasks) if task.standby_for is not None}
        self._standby_of: dict[int, list[int]] = {}
        for number in sorted(self._unreleased, key=self._place.__getitem__):
            tag = self._tag_number.get(self._tasks[number].standby_for or "")
            if tag is None:
                raise PlanError(f"{self._ids[number]} stands by for a tag that no task here names or provides")
            self._standby_of.setdefault(tag, []).append(number)
            self._open[number] += 1  # the gate: released when needed
        #: Per tag: whether one of its providers has passed (``any:`` is met).
        self._passed_once = [False] * len(self._tag_names)
        #: Tags that tasks added during the run wait for and no task provides yet.
        self._pending: set[int] = set()
        #: Per tag: mentions by tasks added during the run, (task, how).
        self._late_waiters: dict[int, list[tuple[int, int]]] = {}
        self._state = [State.WAITING] * len(self._tasks)
        self._outcome = [""] * len(self._tasks)
        #: Tasks taken and not done or given back, by id.
        self._running: dict[str, int] = {}
        #: Per tag: its providers that have not ended yet.
        self._unfinished_providers = list(self._provider_count)
        #: Per tag: the first of its providers that ended without passing, or None.
        self._failed_provider: list[int | None] = [None] * len(self._tag_names)
        #: Per requirement that can never be met any more: why, as
        #: :meth:`pop_blocked` says it (the same for every task that has it).
        self._reasons: dict[Requirement, str] = {}
        #: Tasks that ended, oldest first, whose dependents have not heard of it.
        self._ended: deque[int] = deque()
        #: Per group, a heap of places: ready tasks without locks, and the
        #: best task of each lock queue of the group.
        self._ready: dict[str, list[int]] = {g: [] for g in self._groups}
        #: Per task without locks or unit: the ready heap of its group; None
        #: for the others, which need a closer look when ready or taken.
        self._home = [
            self._ready[group] if unit is None and not locked else None
            for group, unit, locked in zip(self._group_of, self._unit_of, self._has_locks)
        ]
        #: Places of ready tasks with locks, queued by (group, claims, uses).
        #: When the best of a queue cannot have its locks, the rest cannot
        #: either, so a take looks at one task a queue, not at every one.
        self._lock_queues: dict[_LockKey, list[int]] = {}
        self._blocked: list[tuple[int, str]] = []
        self._active = len(self._tasks) - len(self._unreleased)
        tasks_in_group = Counter(self._group_of)
        tasks_in_group.subtract(self._group_of[n] for n in self._unreleased)
        self._unfinished_in_group = {group: tasks_in_group[group] for group in self._groups}
        self._group = self._groups[0] if self._groups else DEFAULT_GROUP
        self._claimed: dict[str, int] = {}
        self._users: dict[str, int] = {}
        #: Ready tasks that found only users between them and their claims:
        #: they hold their resources until they start (see the module doc).
        self._holders: dict[int, Task] = {}
        #: Affinity: each unit's lane, the units of each lane, the ready
        #: tasks (without locks) of a lane's units, and tasks left per unit.
        self._lane_of_unit: dict[_UnitKey, str] = {}
        self._units_of_lane: dict[str, set[_UnitKey]] = {}
        self._lane_ready: dict[str, list[int]] = {}
        self._unit_left = Counter([unit for unit in self._unit_of if unit is not None])
        # A tag that no task here provides is as good as failed and finished.
        for tag, count in enumerate(self._provider_count):
            if count == 0:
                self._tag_failed(tag)
                self._tag_finished(tag, provided=False)
        for number, waiting in enumerate(self._open):
            if waiting == 0 and self._state[number] is State.WAITING:
                self._make_ready(number)
        self._settle()

    def _index_tasks(self) -> None:
        """Per task number: what the run looks up on events of that task."""
        tasks = self._tasks
        self._priority = [task.priority for task in tasks]
        self._group_of = [task.group for task in tasks]
        #: Per task: whether it claims or uses any resource.
        self._has_locks = [bool(task.claims or task.uses) for task in tasks]
        #: Per task with locks: the queue it waits in when ready.
        self._lock_key_of = {number: _lock_key(task) for number, task in enumerate(tasks) if task.locks}
        #: Per task: the key of its unit's lane, or None.
        self._unit_of: list[_UnitKey | None] = [
            None if task.unit is None else (task.group, task.unit) for task in tasks
        ]

    def _index_tags(self) -> None:
        """Number the tags; list what each task provides, and who names each tag.

        The graph has tasks and tags as nodes: providers lead to a tag, and
        the tag to the tasks that name it. A tag that m tasks provide and n
        tasks name costs m + n, where task-to-task edges would cost m * n.

        Who names a tag is a slice of flat lists, like a row of a sparse
        matrix (a list per tag would cost more to make, and the garbage
        collector more to look at): the mentions of tag ``t``, in task order,
        sit from ``_waiter_start[t]`` to ``_waiter_start[t + 1]`` in
        ``_waiter_task`` (the task that names it) and in ``_waiter_how`` (how
        it names it: _AFTER, _ALONE, or the number of a requirement with
        alternatives).
        """
        tag_number = _Numbering()
        #: Tags that some task requires as ``any:TAG``.
        self._any_tags: set[int] = set()
        #: Per task: the tags it provides.
        self._provided: list[tuple[int, ...]] = []
        # Per mention of a tag in requires or after, in task order: the tag,
        # the task, how. The mentions of task ``n`` end at ``named_end[n]``.
        named_tag: list[int] = []
        named_task: list[int] = []
        named_how: list[int] = []
        named_end: list[int] = []
        #: Per task: while it waits, its requirements not met yet, plus its
        #: ``after`` tags whose providers have not all finished; 0 once it
        #: is ready (or blocked), so that the tags' events pass it by.
        self._open: list[int] = []
        #: Per requirement with alternatives (numbered in task order): how
        #: many of them may still be provided, or _MET. Blocked at 0.
        self._chances: list[int] = []
        chances = self._chances
        number_of = tag_number.__getitem__
        for number, task in enumerate(self._tasks):
            self._provided.append(tuple(map(number_of, task.provides)))
            requires, after = task.requires, task.after
            for requirement in requires:
                if len(requirement) == 1:
                    tag = requirement[0]
                    named_task.append(number)
                    if tag.startswith(ANY_PREFIX):  # inline split_any(): the common case costs one check
                        tag = tag[len(ANY_PREFIX) :]
                        named_how.append(_ALONE_ANY)
                        self._any_tags.add(number_of(tag))
                    else:
                        named_how.append(_ALONE)
                    named_tag.append(number_of(tag))
                    continue
                how = len(chances)
                chances.append(len(requirement))
                for alternative in requirement:
                    tag, any_provider = split_any(alternative)
                    named_tag.append(number_of(tag))
                    named_how.append(_ANY_BASE - how if any_provider else how)
                    if any_provider:
                        self._any_tags.add(number_of(tag))
                named_task.extend([number] * len(requirement))
            if after:
                named_tag.extend(map(number_of, after))
                named_task.extend([number] * len(after))
                named_how.extend([_AFTER] * len(after))
            named_end.append(len(named_tag))
            self._open.append(len(requires) + len(after))
        self._tag_number = tag_number
        #: Per tag number: the tag.
        self._tag_names = list(tag_number)
        #: Per task: how many tags it names (each alternative counts).
        self._mention_count = list(map(sub, named_end, [0, *named_end[:-1]]))
        #: Per tag: how many tasks provide it.
        self._provider_count = [0] * len(tag_number)
        for tags in self._provided:
            for tag in tags:
                self._provider_count[tag] += 1
        self._waiter_start, (self._waiter_task, self._waiter_how) = _rows_by_tag(
            named_tag, len(tag_number), named_task, named_how
        )

    def _waiters_of(self, tag: int) -> list[int]:
        """The tasks that name *tag*, once per mention."""
        return self._waiter_task[self._waiter_start[tag] : self._waiter_start[tag + 1]]

    def _providers_by_tag(self) -> dict[int, list[int]]:
        """Per provided tag, in the order tasks first provide them: its providers.

        Made when asked for, in the rare cases that need it: the run itself
        only counts providers.
        """
        providers: dict[int, list[int]] = {}
        for number, tags in enumerate(self._provided):
            for tag in tags:
                providers.setdefault(tag, []).append(number)
        return providers

    # -- checks made before anything runs -------------------------------

    def _check_tags(self) -> None:
        missing = [
            tag
            for tag, count in enumerate(self._provider_count)
            if count == 0 and self._tag_names[tag] not in self._absent
        ]
        if missing:
            lines = []
            for tag in sorted(missing, key=self._tag_names.__getitem__):
                numbers = sorted(set(self._waiters_of(tag)))
                lines.append(
                    f"  tag {self._tag_names[tag]!r}, needed by: {', '.join(self._ids[n] for n in numbers)}"
                )
            raise PlanError(
                "no test provides these tags (check the spelling, or add "
                "provides=[...] to the test that makes them):\n" + "\n".join(lines)
            )

    def _topological_order(self) -> list[int]:
        """Every task after all providers of the tags it names; PlanError naming a cycle."""
        provided, waiter_start, waiter_task = self._provided, self._waiter_start, self._waiter_task
        unsorted_providers = list(self._provider_count)
        # Per task: mentions of tags that still have an unsorted provider.
        pending = list(self._mention_count)
        for tag, count in enumerate(unsorted_providers):
            if count == 0:
                for number in self._waiters_of(tag):
                    pending[number] -= 1
        order = [number for number, count in enumerate(pending) if count == 0]
        for number in order:  # grows as tasks become sortable
            for tag in provided[number]:
                unsorted_providers[tag] -= 1
                if unsorted_providers[tag] == 0:
                    for waiter in waiter_task[waiter_start[tag] : waiter_start[tag + 1]]:
                        pending[waiter] -= 1
                        if pending[waiter] == 0:
                            order.append(waiter)
        if len(order) < len(self._tasks):
            raise PlanError(self._describe_cycle(set(order), unsorted_providers))
        return order

    def _describe_cycle(self, sorted_numbers: set[int], unsorted_providers: Sequence[int]) -> str:
        """A cycle among the tasks that could not be sorted, one step a line.

        Each unsorted task names a tag with an unsorted provider: following
        those links from any unsorted task must come back to a task seen
        before, and the steps from there on are a cycle.
        """
        providers = self._providers_by_tag()
        number = next(n for n in range(len(self._tasks)) if n not in sorted_numbers)
        steps: list[str] = []
        seen: dict[int, int] = {}
        while number not in seen:
            seen[number] = len(steps)
            kind, tag = next(
                (kind, tag)
                for kind, tag in _named_tags(self._tasks[number])
                if unsorted_providers[self._tag_number[tag]]
            )
            steps.append(f"  {self._ids[number]} {kind} {tag!r}, provided by")
            number = next(n for n in providers[self._tag_number[tag]] if n not in sorted_numbers)
        return (
            "dependency cycle, no test in it can ever start:\n"
            + "\n".join(steps[seen[number] :])
            + f"\n  {self._ids[number]}"
        )

    def _critical_path(self, order: Sequence[int], durations: Mapping[str, float]) -> list[float]:
        """For tasks that others depend on: the longest chain of work they start.

        Tasks nothing depends on rank 0, so they keep collection order among
        themselves, as in a plain pytest run (tests that leak state into the
        next test behave the same).
        """
        provided, waiter_start, waiter_task = self._provided, self._waiter_start, self._waiter_task
        chain = self._durations(durations)
        rank = [0.0] * len(self._tasks)
        # Per tag that some task names: the longest chain among those tasks.
        behind: list[float | None] = [None] * len(self._tag_names)
        for number in reversed(order):
            longest = None
            for tag in provided[number]:
                tail = behind[tag]
                if tail is None:
                    start, end = waiter_start[tag], waiter_start[tag + 1]
                    if start == end:
                        continue
                    tail = behind[tag] = max(map(chain.__getitem__, waiter_task[start:end]))
                if longest is None or tail > longest:
                    longest = tail
            if longest is not None:
                chain[number] += longest
                rank[number] = chain[number]
        return rank

    def _durations(self, durations: Mapping[str, float]) -> list[float]:
        """Per task: its earlier duration, else the mean of the known ones, else 1."""
        known = sorted(self._number[task_id] for task_id in durations if task_id in self._number)
        seconds = [durations[self._ids[number]] for number in known]
        chain = [sum(seconds) / len(seconds) if seconds else 1.0] * len(self._tasks)
        for number, duration in zip(known, seconds):
            chain[number] = duration
        return chain

    def _order_groups(self, configured: Sequence[str]) -> list[str]:
        """Groups with tasks, providers' groups first; PlanError if they would interleave."""
        position = {name: index for index, name in enumerate(configured)}
        used = sorted(set(self._group_of), key=lambda g: (position.get(g, len(position)), g))
        if len(used) < 2:
            return used
        # Per pair (waiting group, providing group): one dependency as an example.
        example: dict[tuple[str, str], str] = {}
        for tag, providers in self._providers_by_tag().items():
            first_provider = self._first_in_each_group(providers)
            first_waiter = self._first_in_each_group(self._waiters_of(tag))
            for target, waiter in first_waiter.items():
                for source, provider in first_provider.items():
                    if source != target and (target, source) not in example:
                        example[(target, source)] = (
                            f"{self._ids[waiter]} (group {target!r}) waits for "
                            f"{self._ids[provider]} (group {source!r})"
                        )
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for group in used:
            sorter.add(group)
        for target, source in example:
            sorter.add(target, source)
        try:
            sorter.prepare()
        except graphlib.CycleError as error:
            # graphlib lists the cycle with each group a predecessor of the
            # next; read backwards, each group waits for the next.
            cycle = error.args[1][::-1]
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
            _, group = heapq.heappop(ready)
            order.append(group)
            sorter.done(group)
        return order

    def _first_in_each_group(self, numbers: Iterable[int]) -> dict[str, int]:
        first: dict[str, int] = {}
        for number in numbers:
            first.setdefault(self._group_of[number], number)
        return first

    # -- driving the run ------------------------------------------------

    def groups(self) -> list[str]:
        """Groups that have tasks, in the order they run."""
        return list(self._groups)

    def begin(self, group: str) -> None:
        """From now on, :meth:`take` hands out tasks of *group* only."""
        self._group = group
        self._group_index = self._groups.index(group) if group in self._groups else self._group_index
        self._holders.clear()

    def next_group(self) -> str | None:
        """:meth:`begin` the next group in order that has tasks left; None when none has.

        Tasks added during the run may bring groups of their own: they run
        in configuration order among the groups not begun yet.
        """
        while self._group_index + 1 < len(self._groups):
            group = self._groups[self._group_index + 1]
            self.begin(group)
            if self.group_is_active():
                return group
        return None

    def group_size(self, group: str) -> int:
        """Tasks of *group* not finished or blocked yet."""
        return self._unfinished_in_group.get(group, 0)

    def group_is_active(self) -> bool:
        """True while some task of the current group has not finished or been blocked."""
        return self._unfinished_in_group.get(self._group, 0) > 0

    def is_active(self) -> bool:
        """True while some task has not finished or been blocked."""
        return self._active > 0

    def take(self, limit: int, *, locks: bool = True, lane: str = "") -> list[str]:
        """Up to *limit* ready tasks of the current group, best first, for *lane*.

        They are running from now on and hold their locks. Tasks whose locks
        are not free (or, with ``locks=False``, that have any) stay ready and
        do not hold back the tasks behind them; nor do tasks of a unit that
        another lane runs.
        """
        heap = self._ready[self._group]
        own = self._lane_ready.get(lane) or []
        taken: list[str] = []
        passed_over: dict[_LockKey, int] = {}
        # Resources that a waiting task of better priority needs, with that
        # priority: tasks of worse priority may not take them in this round.
        reserved: dict[str, int] = {}
        by_place, home, ids, running = self._by_place, self._home, self._ids, self._running
        while (heap or own) and len(taken) < limit:
            place = heapq.heappop(own if own and (not heap or own[0] <= heap[0]) else heap)
            number = by_place[place]
            if home[number] is None:  # it has locks, or a unit
                unit = self._unit_of[number]
                bound = self._lane_of_unit.get(unit) if unit is not None else None
                if bound is not None and bound != lane:
                    if self._has_locks[number]:
                        passed_over.setdefault(self._lock_key_of[number], place)
                    else:
                        heapq.heappush(self._lane_ready.setdefault(bound, []), place)
                    continue
                if self._has_locks[number]:
                    key = self._lock_key_of[number]
                    queue = self._lock_queues[key]
                    if not queue or queue[0] != place or key in passed_over:
                        continue  # not the best of its queue any more, or seen already
                    if not locks or not self._lockable(number, reserved):
                        if locks:
                            self._note_waiting(number, reserved)
                        passed_over[key] = place
                        continue
                    heapq.heappop(queue)
                    if queue:
                        heapq.heappush(heap, queue[0])
                    self._lock(number)
                if unit is not None and bound is None:
                    self._lane_of_unit[unit] = lane
                    self._units_of_lane.setdefault(lane, set()).add(unit)
            self._set_state(number, State.RUNNING)
            task_id = ids[number]
            running[task_id] = number
            taken.append(task_id)
        for place in passed_over.values():
            heapq.heappush(heap, place)
        return taken

    def release_lane(self, lane: str) -> None:
        """*lane* is gone: its units go to whichever lane takes them next."""
        for unit in self._units_of_lane.pop(lane, ()):
            del self._lane_of_unit[unit]
        for place in self._lane_ready.pop(lane, ()):
            heapq.heappush(self._ready[self._group_of[self._by_place[place]]], place)

    def give_back(self, task_id: str) -> None:
        """A taken task did not start after all (its worker went away first)."""
        number = self._taken(task_id)
        assert self._state[number] is State.RUNNING, task_id
        self._unlock(number)
        self._make_ready(number)

    def done(self, task_id: str, outcome: str) -> None:
        """A running task ended; *outcome* is a word like "passed" or "failed"."""
        number = self._taken(task_id)
        assert self._state[number] is State.RUNNING, (task_id, self._state[number])
        self._unlock(number)
        self._end(number, State.FINISHED, outcome, "")
        self._settle()

    def _taken(self, task_id: str) -> int:
        """The number of *task_id*, which is no longer running from now on.

        The few running tasks are found in a small dict, which stays in the
        processor's cache where the dict of every task would not.
        """
        number = self._running.pop(task_id, None)
        return self._number[task_id] if number is None else number

    def abandon(self, reason: str) -> int:
        """The run stops early: block every task not started, in any group, with *reason*; returns how many."""
        for heap in self._ready.values():
            heap.clear()
        self._lane_ready.clear()
        self._lock_queues.clear()
        self._holders.clear()
        for number in sorted(self._unreleased):
            self._drop(number)
        self._pending.clear()
        left = [n for n, state in enumerate(self._state) if state in (State.WAITING, State.READY)]
        for number in left:
            self._end(number, State.BLOCKED, "not run", reason)
        self._settle()
        return len(left)

    def pop_blocked(self) -> list[tuple[str, str]]:
        """Tasks blocked since the last call, with the reason, in collection order."""
        if not self._blocked:
            return []
        blocked, self._blocked = self._blocked, []
        blocked.sort()
        return [(self._ids[number], reason) for number, reason in blocked]

    def state(self, task_id: str) -> State:
        return self._state[self._number[task_id]]

    def task(self, task_id: str) -> Task:
        """The task *task_id*, as the planner knows it."""
        return self._tasks[self._number[task_id]]

    def running_count(self) -> int:
        """Tasks taken and not done or given back."""
        return len(self._running)

    # -- tasks added during the run ------------------------------------------

    def add(self, tasks: Sequence[Task]) -> None:
        """Schedule *tasks*, made while the run goes on, by the same rules.

        A tag they require that is provided already is met at once, one that
        can no longer be is blocked at once; a tag that no task provides yet
        waits for a task added later, until :meth:`stop_waiting`. They may
        join the providers of a tag that some provider has yet to end.
        Raises PlanError, and adds none of them, for a duplicate id, a group
        that ran already, a tag whose providers have all ended, a cycle.
        """
        self._check_added(tasks)
        for task in tasks:
            self._add(_without_shared_claims(task) if task.claims and task.uses else task)
        self._settle()

    def _check_added(self, tasks: Sequence[Task]) -> None:
        ids = [task.id for task in tasks]
        taken = sorted({i for i in ids if i in self._number} | set(_duplicates(ids)))
        if taken:
            raise PlanError("a task with this id exists already: " + ", ".join(taken))
        ran = self._groups[: self._group_index]
        for task in tasks:
            if task.group in ran:
                raise PlanError(f"{task.id}: its group {task.group!r} has run already")
            if task.standby_for is not None:
                raise PlanError(f"{task.id}: a task added during the run cannot stand by")
            for name in task.provides:
                tag = self._tag_number.get(name)
                if tag is not None and not self._unfinished_providers[tag] and tag not in self._pending:
                    raise PlanError(
                        f"{task.id} provides {name!r}, whose providers have all ended: the tests "
                        "waiting for it went on already; provide it from a test that has not ended, or use a new tag"
                    )
        cycle = self._cycle_through(tasks)
        if cycle:
            raise PlanError("dependency cycle, no test in it can ever start:\n" + "\n".join(f"  {c}" for c in cycle))

    def _cycle_through(self, tasks: Sequence[Task]) -> list[str]:
        """A cycle that adding *tasks* would make, as the ids in it (empty: none).

        The tasks of the plan have none, so a cycle goes through an added
        task: from what it provides, follow the tasks still waiting for
        those tags (new ones included) and what they provide, back to it.
        """
        waiting_new: dict[str, list[int]] = {}
        for position, task in enumerate(tasks):
            for _, name in _named_tags(task):
                waiting_new.setdefault(name, []).append(position)
        if not waiting_new:
            return []

        def provides(node: tuple[bool, int]) -> Iterable[str]:
            is_new, number = node
            return tasks[number].provides if is_new else (self._tag_names[t] for t in self._provided[number])

        def waiters(name: str) -> Iterable[tuple[bool, int]]:
            tag = self._tag_number.get(name)
            if tag is not None:
                for number, _ in self._mentions(tag):
                    if self._state[number] is State.WAITING:
                        yield False, number
            for position in waiting_new.get(name, ()):
                yield True, position

        for start, task in enumerate(tasks):
            if not task.provides or not _named_tags(task):
                continue  # a task that provides nothing, or waits for nothing, closes no cycle
            path: dict[tuple[bool, int], tuple[bool, int] | None] = {(True, start): None}
            todo = [(True, start)]
            while todo:
                node = todo.pop()
                for name in provides(node):
                    for waiter in waiters(name):
                        if waiter == (True, start):
                            chain = [node]
                            while path[chain[-1]] is not None:
                                chain.append(path[chain[-1]])  # type: ignore[arg-type]
                            return [tasks[n].id if new else self._ids[n] for new, n in reversed(chain)] + [task.id]
                        if waiter not in path:
                            path[waiter] = node
                            todo.append(waiter)
        return []

    def _add(self, task: Task) -> None:
        number = len(self._tasks)
        self._tasks.append(task)
        self._ids.append(task.id)
        self._number[task.id] = number
        self._priority.append(task.priority)
        self._group_of.append(task.group)
        self._has_locks.append(task.locks)
        if task.locks:
            self._lock_key_of[number] = _lock_key(task)
        unit = None if task.unit is None else (task.group, task.unit)
        self._unit_of.append(unit)
        if unit is not None:
            self._unit_left[unit] += 1
        self._added += 1
        place = ((task.priority + _PRIORITY_OFFSET) << _PRIORITY_SHIFT) | (_ADDED_RANK + self._added)
        self._place.append(place)
        self._by_place[place] = number
        self._add_group(task.group)
        self._home.append(self._ready[task.group] if unit is None and not task.locks else None)
        self._state.append(State.WAITING)
        self._outcome.append("")
        self._mention_count.append(0)
        provided = tuple(map(self._tag, task.provides))
        self._provided.append(provided)
        for tag in provided:
            self._provider_count[tag] += 1
            self._unfinished_providers[tag] += 1
            self._pending.discard(tag)
        self._count_in(number)
        self._open.append(0)
        waits = self._wait_for(number, task)
        if waits is None:
            self._block(number)
        elif waits:
            self._open[number] = waits
        else:
            self._make_ready(number)

    def _tag(self, name: str) -> int:
        """The number of tag *name*, a new one if it is new."""
        tag = self._tag_number.get(name)
        if tag is None:
            tag = self._tag_number[name]
            self._tag_names.append(name)
            self._provider_count.append(0)
            self._unfinished_providers.append(0)
            self._failed_provider.append(None)
            self._passed_once.append(False)
            self._waiter_start.append(self._waiter_start[-1])
        return tag

    def _add_group(self, group: str) -> None:
        """A group an added task brings: after the current one, in configuration order."""
        if group in self._ready:
            return
        self._ready[group] = []
        self._unfinished_in_group.setdefault(group, 0)
        position = self._group_position.get(group, len(self._group_position))
        at = self._group_index + 1
        while at < len(self._groups) and self._group_position.get(self._groups[at], len(self._group_position)) <= position:
            at += 1
        self._groups.insert(at, group)

    def _wait_for(self, number: int, task: Task) -> int | None:
        """What added task *number* waits for: how many mentions, registered
        as it goes; None if a requirement can never be met."""
        waits = 0
        for requirement in task.requires:
            states = [self._mention_state(*split_any(alternative)) for alternative in requirement]
            if "met" in states:
                continue
            if all(state == "never" for state in states):
                return None
            how = _ALONE
            if len(requirement) > 1:
                how = len(self._chances)
                self._chances.append(states.count("waiting"))
            for alternative, state in zip(requirement, states):
                if state == "waiting":
                    name, any_provider = split_any(alternative)
                    mention = how
                    if any_provider:
                        mention = _ALONE_ANY if how == _ALONE else _ANY_BASE - how
                    self._wait_on(self._tag(name), number, mention)
            waits += 1
        for name in task.after:
            tag = self._tag(name)
            if self._unfinished_providers[tag] or (not self._provider_count[tag] and name not in self._absent):
                self._wait_on(tag, number, _AFTER)
                waits += 1
        return waits

    def _mention_state(self, name: str, any_provider: bool) -> str:
        """Whether a requirement on tag *name* is "met", can "never" be, or is "waiting"."""
        tag = self._tag(name)
        if not self._provider_count[tag]:
            # A tag that no task provides yet: one may come, unless the plan
            # said why none will (its providers were not selected).
            return "never" if name in self._absent else "waiting"
        if any_provider:
            if self._passed_once[tag]:
                return "met"
            return "waiting" if self._unfinished_providers[tag] else "never"
        if self._failed_provider[tag] is not None:
            return "never"
        return "waiting" if self._unfinished_providers[tag] else "met"

    def _wait_on(self, tag: int, number: int, how: int) -> None:
        if not self._provider_count[tag]:
            self._pending.add(tag)
        if how <= _ALONE_ANY:
            self._any_tags.add(tag)
        self._late_waiters.setdefault(tag, []).append((number, how))

    def stop_waiting(self) -> None:
        """Nothing of the current group runs, so no task will be added for it:
        what waits for a tag that no task provides yet (and that a task of the
        current group names), or for tasks that cannot run before it, never
        starts (it is blocked, saying why)."""
        group_of, group = self._group_of, self._group
        pending = sorted(
            tag for tag in self._pending if any(group_of[number] == group for number, _ in self._late_waiters[tag])
        )
        self._pending.difference_update(pending)
        for tag in pending:
            self._absent.setdefault(self._tag_names[tag], "no test provided it (none was added during the run)")
            self._tag_failed(tag)
            self._tag_finished(tag, provided=False)
        self._settle()
        in_group = [n for n, g in enumerate(self._group_of) if g == self._group and n not in self._unreleased]
        if any(self._state[n] in (State.READY, State.RUNNING) for n in in_group):
            return  # those may still provide what the others wait for
        for number in in_group:
            if self._state[number] is State.WAITING:
                self._end(number, State.BLOCKED, "blocked", "blocked: it waits for tests that cannot run before it")
        self._settle()

    # -- internals: states ------------------------------------------------

    def _set_state(self, number: int, state: State, detail: str = "") -> None:
        self._state[number] = state
        if self._on_change is not None:
            self._on_change(self._ids[number], state, detail)

    def _make_ready(self, number: int) -> None:
        self._set_state(number, State.READY)
        place = self._place[number]
        home = self._home[number]
        if home is not None:
            heapq.heappush(home, place)
        elif not self._has_locks[number]:
            lane = self._lane_of_unit.get(self._unit_of[number])
            heap = self._ready[self._group_of[number]] if lane is None else self._lane_ready.setdefault(lane, [])
            heapq.heappush(heap, place)
        else:
            queue = self._lock_queues.setdefault(self._lock_key_of[number], [])
            heapq.heappush(queue, place)
            if queue[0] == place:
                heapq.heappush(self._ready[self._group_of[number]], place)

    def _end(self, number: int, state: State, outcome: str, reason: str) -> None:
        """Task *number* finished or was blocked; :meth:`_settle` tells its dependents."""
        self._outcome[number] = outcome
        self._active -= 1
        self._unfinished_in_group[self._group_of[number]] -= 1
        unit = self._unit_of[number]
        if unit is not None:
            self._unit_left[unit] -= 1
            if not self._unit_left[unit] and unit in self._lane_of_unit:
                self._units_of_lane[self._lane_of_unit.pop(unit)].discard(unit)
        self._set_state(number, state, reason or outcome)
        if state is State.BLOCKED:
            self._open[number] = 0
            self._blocked.append((number, reason))
        self._ended.append(number)

    def _block(self, number: int) -> None:
        if number in self._unreleased:
            self._drop(number)  # it was only standing by: nobody waits for it
            return
        self._end(number, State.BLOCKED, "blocked", self._blocking_reason(number))

    def _settle(self) -> None:
        """Tell the dependents of every ended task, oldest first.

        A dependent blocked on the way ends too and joins the work list, so
        a chain of any length settles here without recursion; what one end
        changes (ready or blocked) comes after that end, level by level.
        """
        unfinished_providers, failed_provider = self._unfinished_providers, self._failed_provider
        passed_once, standby_of = self._passed_once, self._standby_of
        while self._ended:
            number = self._ended.popleft()
            provided = self._provided[number]
            if not provided:
                continue
            passed = self._outcome[number] in PASSING_OUTCOMES
            # Count the ending of every tag first, so that a blocked task's
            # reason sees all of them.
            first_passes: list[int] = []
            failed: list[int] = []
            finished: list[int] = []
            for tag in provided:
                unfinished_providers[tag] -= 1
                if passed:
                    if not passed_once[tag]:
                        passed_once[tag] = True
                        first_passes.append(tag)
                elif failed_provider[tag] is None and self._outcome[number] != "not needed":
                    failed_provider[tag] = number  # (one on standby, dropped, failed nothing)
                    failed.append(tag)
                if unfinished_providers[tag] == 0:
                    finished.append(tag)
            for tag in first_passes:
                if tag in self._any_tags or tag in standby_of:
                    self._tag_passed(tag)
            for tag in failed:
                self._tag_failed(tag)
            for tag in finished:
                self._tag_finished(tag, failed_provider[tag] is None)
            if standby_of and not passed:
                for tag in provided:
                    self._release_standby(tag)

    def _mentions(self, tag: int) -> Iterable[tuple[int, int]]:
        """(task, how) for each mention of *tag*, those of added tasks last."""
        start, end = self._waiter_start[tag], self._waiter_start[tag + 1]
        mentions: Iterable[tuple[int, int]] = zip(self._waiter_task[start:end], self._waiter_how[start:end])
        late = self._late_waiters.get(tag)
        return mentions if late is None else [*mentions, *late]

    def _tag_passed(self, tag: int) -> None:
        """A provider of *tag* passed, the first: ``any:`` requirements on it are met."""
        open_, chances = self._open, self._chances
        for number, how in self._mentions(tag):
            if how > _ALONE_ANY or not open_[number]:
                continue  # needs every provider, or the task waits no more
            if how != _ALONE_ANY:
                if chances[_ANY_BASE - how] == _MET:
                    continue  # met by another alternative already
                chances[_ANY_BASE - how] = _MET
            open_[number] -= 1
            if not open_[number]:
                self._make_ready(number)
        for number in self._standby_of.pop(tag, ()):
            self._drop(number)

    def _release_standby(self, tag: int) -> None:
        """When every provider of *tag* that runs has ended without passing, the best one standing by runs."""
        standing = self._standby_of.get(tag)
        if not standing or self._passed_once[tag]:
            return
        if self._unfinished_providers[tag] > len(standing):
            return  # a provider is still on its way
        number = standing.pop(0)
        if not standing:
            del self._standby_of[tag]
        self._unreleased.discard(number)
        self._count_in(number)
        self._open[number] -= 1
        if not self._open[number]:
            self._make_ready(number)

    def _count_in(self, number: int) -> None:
        """Task *number* counts among the tasks the run waits for (a standby released, a task added)."""
        self._active += 1
        group = self._group_of[number]
        self._unfinished_in_group[group] = self._unfinished_in_group.get(group, 0) + 1

    def _drop(self, number: int) -> None:
        """A task on standby is not needed: it ends unreported."""
        if number not in self._unreleased:
            return
        self._unreleased.discard(number)
        for tag, standing in list(self._standby_of.items()):
            if number in standing:
                standing.remove(number)
                if not standing:
                    del self._standby_of[tag]
        self._count_in(number)
        self._end(number, State.FINISHED, "not needed", "")

    def _tag_failed(self, tag: int) -> None:
        """*tag* can no longer be provided: requirements that name it lose a chance."""
        open_, chances = self._open, self._chances
        for number, how in self._mentions(tag):
            if how == _AFTER or how <= _ALONE_ANY or not open_[number]:
                continue  # not a requirement, one that another provider may meet, or the task waits no more
            if how != _ALONE:
                if chances[how] == _MET:
                    continue  # met by another alternative already
                chances[how] -= 1
                if chances[how]:
                    continue
            self._block(number)

    def _tag_finished(self, tag: int, provided: bool) -> None:
        """Every provider of *tag* ended: ``after`` is met, and ``requires`` if *provided*."""
        open_, chances = self._open, self._chances
        for number, how in self._mentions(tag):
            if not open_[number]:
                continue  # the task waits no more
            if how <= _ALONE_ANY:
                if self._passed_once[tag]:
                    continue  # met when the first provider passed
                if how != _ALONE_ANY:
                    if chances[_ANY_BASE - how] == _MET:
                        continue
                    chances[_ANY_BASE - how] -= 1
                    if chances[_ANY_BASE - how]:
                        continue
                self._block(number)
                continue
            if how != _AFTER:
                if not provided:
                    continue
                if how != _ALONE:
                    if chances[how] == _MET:
                        continue  # met by another alternative already
                    chances[how] = _MET
            open_[number] -= 1
            if not open_[number]:
                self._make_ready(number)

    def _blocking_reason(self, number: int) -> str:
        """Why the first requirement of task *number* that can no longer be met is not."""
        for requirement in self._tasks[number].requires:
            reason = self._reasons.get(requirement)
            if reason is None and self._never_met(requirement):
                reasons = [self._why_unavailable(*split_any(tag)) for tag in requirement]
                reason = f"blocked: requires {_describe(requirement)}, " + "; ".join(reasons)
                self._reasons[requirement] = reason
            if reason is not None:
                return reason
        raise AssertionError(f"{self._ids[number]} is not blocked")

    def _never_met(self, requirement: Requirement) -> bool:
        """Whether no tag of *requirement* can be provided any more."""
        for name, any_provider in map(split_any, requirement):
            tag = self._tag_number[name]
            if tag in self._pending:
                return False
            if not self._provider_count[tag]:
                continue
            if any_provider:
                if self._passed_once[tag] or self._unfinished_providers[tag]:
                    return False
            elif self._failed_provider[tag] is None:
                return False
        return True

    def _why_unavailable(self, name: str, any_provider: bool = False) -> str:
        tag = self._tag_number[name]
        if not self._provider_count[tag]:
            return self._absent[name]
        if any_provider:
            providers = self._providers_by_tag()[tag]
            return "provided by " + ", ".join(
                f"{self._ids[n]} which {_OUTCOME_WORDS.get(self._outcome[n], 'ended as ' + self._outcome[n])}"
                for n in providers
                if self._outcome[n] != "not needed"
            )
        provider = self._failed_provider[tag]
        assert provider is not None, self._tag_names[tag]
        outcome = self._outcome[provider]
        words = _OUTCOME_WORDS.get(outcome, "ended as " + outcome)
        return f"provided by {self._ids[provider]} which {words}"

    # -- internals: locks -------------------------------------------------

    def _lockable(self, number: int, reserved: Mapping[str, int]) -> bool:
        task = self._tasks[number]
        for resource in (*task.claims, *task.uses):
            if reserved.get(resource, task.priority) < task.priority:
                return False
        for resource in task.claims:
            if resource in self._claimed or self._users.get(resource):
                return False
        for resource in task.uses:
            if resource in self._claimed:
                return False
        return not self._held_back(number)

    def _held_back(self, number: int) -> bool:
        """Whether a holder of the same or better priority needs what task *number* would lock.

        A task with the very locks of the holder is not held back: it does
        what the hold is for.
        """
        task = self._tasks[number]
        key = _lock_key(task)
        return any(
            holder.priority <= task.priority and _conflict(holder, task) and _lock_key(holder) != key
            for holder in self._holders.values()
        )

    def _note_waiting(self, number: int, reserved: dict[str, int]) -> None:
        """Task *number* could not have its locks: make sure it gets them in time."""
        task = self._tasks[number]
        for resource in (*task.claims, *task.uses):
            reserved[resource] = min(reserved.get(resource, task.priority), task.priority)
        claimed_elsewhere = any(r in self._claimed for r in (*task.claims, *task.uses))
        used = any(self._users.get(r) for r in task.claims)
        # A holder never waits for another holder: two of one priority could
        # otherwise wait for each other for ever.
        if used and not claimed_elsewhere and not self._held_back(number):
            self._holders[number] = task

    def _lock(self, number: int) -> None:
        task = self._tasks[number]
        self._holders.pop(number, None)
        for resource in task.claims:
            self._claimed[resource] = number
        for resource in task.uses:
            self._users[resource] = self._users.get(resource, 0) + 1
        # Only a task of better priority can claim what a holder waits for;
        # the holder then waits for more than users, and its hold ends.
        claims = set(task.claims)
        overtaken = [n for n, h in self._holders.items() if not claims.isdisjoint((*h.claims, *h.uses))]
        for holder_number in overtaken:
            del self._holders[holder_number]

    def _unlock(self, number: int) -> None:
        if not self._has_locks[number]:
            return
        task = self._tasks[number]
        for resource in task.claims:
            del self._claimed[resource]
        for resource in task.uses:
            self._users[resource] -= 1


def pull_in(selected: Sequence[Task], available: Iterable[Task]) -> list[Task]:
    """Providers, among *available*, that the *selected* tasks need, transitively.

    For a tuple of alternatives nothing is pulled in if one alternative is
    provided within the selection; otherwise the first alternative that some
    available task provides is pulled in. For ``any:TAG``, one provider is
    pulled in: the best by priority, then the order of *available*; the
    others of its group that need nothing more to be pulled in stand by
    (they come back with ``standby_for`` set, after the pulled ones).
    """
    chosen = {task.id for task in selected}
    offered: dict[str, list[Task]] = {}
    for task in available:
        if task.id not in chosen:
            for tag in task.provides:
                offered.setdefault(tag, []).append(task)
    have = {tag for task in selected for tag in task.provides}
    pulled: list[Task] = []
    standby: dict[str, Task] = {}

    def pull(provider: Task) -> None:
        standby.pop(provider.id, None)
        if provider.id not in chosen:
            chosen.add(provider.id)
            pulled.append(provider)
            have.update(provider.provides)
            todo.append(provider)

    todo = list(selected)
    while todo:
        task = todo.pop()
        for requirement in task.requires:
            if any(split_any(tag)[0] in have for tag in requirement):
                continue
            for tag in requirement:
                name, any_provider = split_any(tag)
                if name not in offered:
                    continue
                providers = offered.pop(name)
                if not any_provider:
                    for provider in providers:
                        pull(provider)
                    break
                best = min(providers, key=lambda t: t.priority)  # the first of the best priority
                pull(best)
                for provider in providers:
                    if provider is not best and provider.id not in chosen and provider.group == best.group:
                        if _needs_nothing_more(provider, have):
                            standby.setdefault(provider.id, dataclasses.replace(provider, standby_for=name))
                break
    return pulled + [task for task in standby.values() if task.id not in chosen]


def _needs_nothing_more(task: Task, have: set[str]) -> bool:
    """Whether each requirement of *task* is met by a tag in *have*."""
    return all(any(split_any(tag)[0] in have for tag in requirement) for requirement in task.requires)


def _without_shared_claims(task: Task) -> Task:
    """A resource both claimed and used is claimed."""
    if not set(task.claims) & set(task.uses):
        return task
    return dataclasses.replace(task, uses=tuple(r for r in task.uses if r not in task.claims))


def _duplicates(ids: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    return sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]


def _named_tags(task: Task) -> list[tuple[str, str]]:
    """(``"requires"`` or ``"after"``, tag) for every tag *task* waits for, in order."""
    named = [("requires", split_any(tag)[0]) for requirement in task.requires for tag in requirement]
    return named + [("after", tag) for tag in task.after]


def _rows_by_tag(tags: list[int], tag_count: int, *columns: list[int]) -> tuple[list[int], list[list[int]]]:
    """The rows of a table, given as columns, grouped by their tag.

    Returns where the rows of each tag start (one entry more: where the last
    tag's end) and the other *columns*, regrouped; each tag's rows keep
    their order. A counting sort: no comparisons.
    """
    counts = [0] * (tag_count + 1)
    for tag in tags:
        counts[tag + 1] += 1
    starts = list(accumulate(counts))
    free = starts[:-1]  # per tag: where its next row goes
    source = [0] * len(tags)  # per place: the row that goes there
    for row, tag in enumerate(tags):
        source[free[tag]] = row
        free[tag] += 1
    return starts, [list(map(column.__getitem__, source)) for column in columns]


class _Numbering(dict[str, int]):
    """Numbers for tags: a tag not seen before gets the next one."""

    def __missing__(self, tag: str) -> int:
        number = self[tag] = len(self)
        return number


def _best_first(priority: list[int], rank: list[float]) -> list[int]:
    """Task numbers by priority (lowest first), then rank (highest first), then number."""
    negated = [-value for value in rank]
    by_rank = sorted(range(len(rank)), key=negated.__getitem__)
    return sorted(by_rank, key=priority.__getitem__)  # stable: keeps the rank order within a priority


def _lock_key(task: Task) -> _LockKey:
    return (task.group, frozenset(task.claims), frozenset(task.uses))


def _conflict(first: Task, second: Task) -> bool:
    """Whether the two tasks' locks exclude each other."""
    return not set(first.claims).isdisjoint((*second.claims, *second.uses)) or not set(
        first.uses
    ).isdisjoint(second.claims)
