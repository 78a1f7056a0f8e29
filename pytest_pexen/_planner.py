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
from ._metadata import Requirement

PASSING_OUTCOMES = frozenset({"passed", "warned"})
#: How a task names a tag, in a mention: in ``after``; as a requirement of
#: its own; or (a number from 0) among the alternatives of the requirement
#: with that number (see ``Planner._chances``).
_AFTER = -1
_ALONE = -2
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
        return repr(requirement[0])
    return "one of " + ", ".join(map(repr, requirement))


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
        self._index_tasks()
        self._index_tags()
        self._check_tags()
        rank = self._critical_path(self._topological_order(), durations or {})
        #: Task numbers in the order ready tasks are handed out: by priority,
        #: then the longest chain of work first, then collection order.
        self._by_place = _best_first(self._priority, rank)
        #: Per task: its place in that order. The ready heaps hold places.
        self._place = [0] * len(self._tasks)
        for place, number in enumerate(self._by_place):
            self._place[number] = place
        self._groups = self._order_groups(group_order)

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
        self._active = len(self._tasks)
        tasks_in_group = Counter(self._group_of)
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
                    named_tag.append(number_of(requirement[0]))
                    named_task.append(number)
                    named_how.append(_ALONE)
                    continue
                how = len(chances)
                chances.append(len(requirement))
                named_tag.extend(map(number_of, requirement))
                named_task.extend([number] * len(requirement))
                named_how.extend([how] * len(requirement))
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
        self._holders.clear()

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

    def abandon(self, reason: str) -> None:
        """The run stops early: block every task not started, in any group, with *reason*."""
        for heap in self._ready.values():
            heap.clear()
        self._lane_ready.clear()
        self._lock_queues.clear()
        self._holders.clear()
        left = [n for n, state in enumerate(self._state) if state in (State.WAITING, State.READY)]
        for number in left:
            self._end(number, State.BLOCKED, "not run", reason)
        self._settle()

    def pop_blocked(self) -> list[tuple[str, str]]:
        """Tasks blocked since the last call, with the reason, in collection order."""
        if not self._blocked:
            return []
        blocked, self._blocked = self._blocked, []
        blocked.sort()
        return [(self._ids[number], reason) for number, reason in blocked]

    def state(self, task_id: str) -> State:
        return self._state[self._number[task_id]]

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
        self._end(number, State.BLOCKED, "blocked", self._blocking_reason(number))

    def _settle(self) -> None:
        """Tell the dependents of every ended task, oldest first.

        A dependent blocked on the way ends too and joins the work list, so
        a chain of any length settles here without recursion; what one end
        changes (ready or blocked) comes after that end, level by level.
        """
        unfinished_providers, failed_provider = self._unfinished_providers, self._failed_provider
        while self._ended:
            number = self._ended.popleft()
            provided = self._provided[number]
            if not provided:
                continue
            passed = self._outcome[number] in PASSING_OUTCOMES
            # Count the ending of every tag first, so that a blocked task's
            # reason sees all of them.
            failed: list[int] = []
            finished: list[int] = []
            for tag in provided:
                unfinished_providers[tag] -= 1
                if not passed and failed_provider[tag] is None:
                    failed_provider[tag] = number
                    failed.append(tag)
                if unfinished_providers[tag] == 0:
                    finished.append(tag)
            for tag in failed:
                self._tag_failed(tag)
            for tag in finished:
                self._tag_finished(tag, failed_provider[tag] is None)

    def _tag_failed(self, tag: int) -> None:
        """*tag* can no longer be provided: requirements that name it lose a chance."""
        open_, chances, waiter_task, waiter_how = self._open, self._chances, self._waiter_task, self._waiter_how
        for mention in range(self._waiter_start[tag], self._waiter_start[tag + 1]):
            how = waiter_how[mention]
            number = waiter_task[mention]
            if how == _AFTER or not open_[number]:
                continue  # not a requirement, or the task waits no more
            if how != _ALONE:
                if chances[how] == _MET:
                    continue  # met by another alternative already
                chances[how] -= 1
                if chances[how]:
                    continue
            self._block(number)

    def _tag_finished(self, tag: int, provided: bool) -> None:
        """Every provider of *tag* ended: ``after`` is met, and ``requires`` if *provided*."""
        open_, chances, waiter_task, waiter_how = self._open, self._chances, self._waiter_task, self._waiter_how
        for mention in range(self._waiter_start[tag], self._waiter_start[tag + 1]):
            number = waiter_task[mention]
            if not open_[number]:
                continue  # the task waits no more
            how = waiter_how[mention]
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
                reasons = [self._why_unavailable(self._tag_number[tag]) for tag in requirement]
                reason = f"blocked: requires {_describe(requirement)}, " + "; ".join(reasons)
                self._reasons[requirement] = reason
            if reason is not None:
                return reason
        raise AssertionError(f"{self._ids[number]} is not blocked")

    def _never_met(self, requirement: Requirement) -> bool:
        """Whether no tag of *requirement* can be provided any more."""
        return all(
            not self._provider_count[tag] or self._failed_provider[tag] is not None
            for tag in map(self._tag_number.__getitem__, requirement)
        )

    def _why_unavailable(self, tag: int) -> str:
        if not self._provider_count[tag]:
            return self._absent[self._tag_names[tag]]
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


def _named_tags(task: Task) -> list[tuple[str, str]]:
    """(``"requires"`` or ``"after"``, tag) for every tag *task* waits for, in order."""
    named = [("requires", tag) for requirement in task.requires for tag in requirement]
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
