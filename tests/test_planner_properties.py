"""Properties of the planner on random plans, checked against a model of our own.

Hypothesis makes small task sets (requires with alternatives, after, tags
with one or several providers or none, claims and uses, groups, priorities)
and drives each through a simulated run: a random number of free workers a
round, random outcomes, random give-backs, now and then an early stop. The
model below watches every state change and says, from the plan alone, what
the planner may and may not do.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_pexen import PlanError
from pytest_pexen._planner import _OUTCOME_WORDS, PASSING_OUTCOMES, Planner, State, StateListener, Task

TAGS = ("x0", "x1", "x2", "x3", "x4", "x5")
#: What a task claims, and uses: contended, to make tasks wait for each other.
CLAIMS = ((), (), ("r0",), ("r1",), ("r0", "r1"), ("r1", "r2"))
USES = ((), ("r0",), ("r0",), ("r1",), ("r2",), ("r0", "r2"))
GROUPS = ("default", "g1", "g2")
#: "passed" first: what Hypothesis shrinks towards.
OUTCOMES = ("passed", "passed", "warned", "failed", "error", "skipped", "xfailed", "crashed", "timeout", "odd")
STOPPED = "not run: the run stopped"
SETTINGS = settings(max_examples=400, deadline=None, derandomize=True, database=None)

#: Changes of state the planner may make (a task starts out waiting).
MOVES = {
    (State.WAITING, State.READY),
    (State.WAITING, State.BLOCKED),
    (State.READY, State.RUNNING),
    (State.READY, State.BLOCKED),  # the run stopped
    (State.RUNNING, State.READY),  # given back
    (State.RUNNING, State.FINISHED),
}


@dataclass
class Plan:
    tasks: list[Task]
    absent: dict[str, str]
    group_order: list[str]

    def build(self, on_change: StateListener | None = None) -> Planner:
        return Planner(self.tasks, absent=self.absent, group_order=self.group_order, on_change=on_change)


# -- making plans ----------------------------------------------------------------


ALL_SHAPES = ("acyclic", "acyclic", "ring", "ring", "group ring", "group ring", "anything")

# Strategies made once: making them anew for every draw costs more than the test.
TAG = st.sampled_from(TAGS)
REQUIRES = st.lists(st.one_of(st.tuples(TAG), st.lists(TAG, min_size=2, max_size=3).map(tuple)), max_size=2)
SOME_TAGS = st.lists(TAG, max_size=2)
PRIORITY = st.sampled_from([0, 0, -1, 1])
CLAIM = st.sampled_from(CLAIMS)
USE = st.sampled_from(USES)
GROUP = st.sampled_from(GROUPS)
RARELY = st.sampled_from([False] * 7 + [True])
WAY = st.sampled_from(["requires", "alternative", "after"])
SMALL = st.integers(0, 8)


@st.composite
def plans(draw: st.DrawFn, shapes: tuple[str, ...] = ALL_SHAPES) -> Plan:
    """Tasks in a random collection order; usually without cycles.

    Without cycles, a task names only tags whose providers all come before
    it in a hidden order (or that nothing provides). Tags that nothing
    provides are usually declared absent, else they are unknown (an error).
    On top of that, some plans get a ring of tasks (a cycle of any length,
    through requires, alternatives or after), or a chain of tasks that
    leaves a group and comes back to it through others.
    """
    size = draw(st.integers(1, 9))
    shape = draw(st.sampled_from(shapes))
    grouped = shape == "group ring" or draw(st.booleans())
    provides = [tuple(draw(SOME_TAGS)) for _ in range(size)]
    last_provider = {tag: index for index, tags in enumerate(provides) for tag in tags}
    unprovided = [tag for tag in TAGS if tag not in last_provider]
    known = [tag for tag in draw(SOME_TAGS) if tag in unprovided] if draw(RARELY) else unprovided
    absent = {tag: f"provided by gone::{tag} which was not selected" for tag in known}
    fields = []
    for index in range(size):

        def nameable(tag: str) -> bool:
            return shape == "anything" or last_provider.get(tag, -1) < index

        requires = [r for r in (tuple(filter(nameable, r)) for r in draw(REQUIRES)) if r]
        fields.append(
            dict(
                id=f"t{index}",
                requires=tuple(requires),
                provides=provides[index],
                after=tuple(filter(nameable, draw(SOME_TAGS))),
                priority=draw(PRIORITY),
                claims=draw(CLAIM),
                uses=draw(USE),
                group=draw(GROUP) if grouped else "default",
            )
        )
    known_tags = [*last_provider, *absent]
    if shape == "ring":
        members = draw(st.permutations(range(size)))[: 1 + (1 + draw(SMALL)) % size]
        link(draw, fields, [fields[m] for m in members] + [fields[members[0]]], known_tags)
    elif shape == "group ring" and size >= 3:
        members = sorted(draw(st.permutations(range(size)))[: 3 + draw(SMALL) % min(size - 2, 2)])
        groups = draw(st.permutations(GROUPS))
        for place, member in enumerate(members):
            fields[member]["group"] = groups[place % (len(members) - 1)]
        link(draw, fields, [fields[m] for m in members], known_tags)
    order = draw(st.permutations(range(size)))
    tasks = [Task(**fields[index]) for index in order]
    return Plan(tasks, absent, list(draw(st.permutations(GROUPS))))


def link(draw: st.DrawFn, everyone: list[dict], chain: list[dict], known_tags: list[str]) -> None:
    """Each task in *chain* but the first waits for the one before it, in some way."""
    for number, (provider, waiter) in enumerate(zip(chain, chain[1:])):
        tag = f"link{number}"
        provider["provides"] += (tag,)
        outside = [task for task in everyone if all(task is not member for member in chain)]
        if outside and draw(st.booleans()):
            # A second provider of the tag: the chain also waits for it.
            outside[draw(SMALL) % len(outside)]["provides"] += (tag,)
        way = draw(WAY)
        if way == "after":
            waiter["after"] += (tag,)
        elif way == "alternative" and known_tags:
            waiter["requires"] += ((tag, known_tags[draw(SMALL) % len(known_tags)]),)
        else:
            waiter["requires"] += ((tag,),)


# -- what the plan says, worked out independently ---------------------------------


def named_tags(task: Task) -> list[str]:
    return [tag for requirement in task.requires for tag in requirement] + list(task.after)


def providers_of(plan: Plan) -> dict[str, list[str]]:
    providers: dict[str, list[str]] = {}
    for task in plan.tasks:
        for tag in task.provides:
            providers.setdefault(tag, []).append(task.id)
    return providers


def has_cycle(edges: dict[str, set[str]]) -> bool:
    """Depth-first search for a back edge."""
    done: set[str] = set()
    on_path: set[str] = set()

    def visit(node: str) -> bool:
        on_path.add(node)
        for nxt in edges.get(node, ()):
            if nxt in on_path or (nxt not in done and visit(nxt)):
                return True
        on_path.discard(node)
        done.add(node)
        return False

    return any(node not in done and visit(node) for node in list(edges))


def task_edges(plan: Plan) -> dict[str, set[str]]:
    """Each task to the providers of every tag it names (alternatives too)."""
    providers = providers_of(plan)
    return {t.id: {p for tag in named_tags(t) for p in providers.get(tag, ())} for t in plan.tasks}


def group_edges(plan: Plan) -> dict[str, set[str]]:
    group = {t.id: t.group for t in plan.tasks}
    edges: dict[str, set[str]] = {}
    for task_id, targets in task_edges(plan).items():
        for target in targets:
            if group[task_id] != group[target]:
                edges.setdefault(group[task_id], set()).add(group[target])
    return edges


def check_printed_cycle(plan: Plan, message: str) -> None:
    """Each step names its test and the tag that leads to the next; it closes."""
    tasks = {t.id: t for t in plan.tasks}
    lines = message.splitlines()
    assert lines[0] == "dependency cycle, no test in it can ever start:"
    steps = [re.fullmatch(r"  (\S+) (requires|after) (.+), provided by", line) for line in lines[1:-1]]
    assert steps and all(steps), message
    ids = [step[1] for step in steps]
    assert len(set(ids)) == len(ids), message
    assert lines[-1] == f"  {ids[0]}", message
    for index, step in enumerate(steps):
        task, kind, tag = tasks[step[1]], step[2], ast.literal_eval(step[3])
        if kind == "requires":
            assert any(tag in requirement for requirement in task.requires), message
        else:
            assert tag in task.after, message
        assert tag in tasks[ids[(index + 1) % len(ids)]].provides, message


def check_printed_group_cycle(plan: Plan, message: str) -> None:
    tasks = {t.id: t for t in plan.tasks}
    lines = message.splitlines()
    assert lines[0] == "groups would have to interleave, but only one group runs at a time:"
    assert lines[-1] == "move these tests into one group, or drop one of the dependencies"
    pattern = r"  (\S+) \(group '(\w+)'\) waits for (\S+) \(group '(\w+)'\)"
    steps = [re.fullmatch(pattern, line) for line in lines[1:-1]]
    assert len(steps) >= 2 and all(steps), message
    for index, step in enumerate(steps):
        waiter, provider = tasks[step[1]], tasks[step[3]]
        assert (waiter.group, provider.group) == (step[2], step[4]) and step[2] != step[4], message
        assert set(named_tags(waiter)) & set(provider.provides), message
        assert step[4] == steps[(index + 1) % len(steps)][2], message


@given(plans())
@SETTINGS
def test_a_plan_is_refused_only_for_a_real_reason(plan):
    providers = providers_of(plan)
    missing = {tag for t in plan.tasks for tag in named_tags(t) if tag not in providers and tag not in plan.absent}
    try:
        plan.build()
    except PlanError as error:
        message = str(error)
        if missing:
            assert message.startswith("no test provides these tags")
            assert all(f"tag {tag!r}, needed by" in message for tag in missing)
        elif has_cycle(task_edges(plan)):
            check_printed_cycle(plan, message)
        else:
            assert has_cycle(group_edges(plan)), message
            check_printed_group_cycle(plan, message)
    else:
        assert not missing
        assert not has_cycle(task_edges(plan))
        assert not has_cycle(group_edges(plan))


# -- a simulated run ---------------------------------------------------------------


def conflict(first: Task, second: Task) -> bool:
    return bool(set(first.claims) & {*second.claims, *second.uses} or set(first.uses) & set(second.claims))


def resources(task: Task) -> set[str]:
    return {*task.claims, *task.uses}


def locks_of(task: Task) -> tuple[frozenset[str], frozenset[str]]:
    return frozenset(task.claims), frozenset(task.uses)


@dataclass
class Run:
    """The model: every state the planner reported, and what we told it."""

    plan: Plan
    tasks: dict[str, Task] = field(init=False)
    providers: dict[str, list[str]] = field(init=False)
    state: dict[str, State] = field(init=False)
    #: How each task ended: its outcome, "blocked", or "not run".
    ended: dict[str, str] = field(default_factory=dict)
    #: Per tag: the first provider that ended without passing, and how.
    first_failure: dict[str, tuple[str, str]] = field(default_factory=dict)
    blocked_reported: dict[str, str] = field(default_factory=dict)
    running: list[str] = field(default_factory=list)
    group: str = ""
    stopping: bool = False
    #: Every claimer that may be a holder (see update_holders).
    holders: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        # A resource both claimed and used is claimed.
        self.tasks = {
            t.id: dataclasses.replace(t, uses=tuple(r for r in t.uses if r not in t.claims)) for t in self.plan.tasks
        }
        self.providers = providers_of(self.plan)
        self.state = {task_id: State.WAITING for task_id in self.tasks}

    # -- the planner's reports ------------------------------------------------

    def on_change(self, task_id: str, state: State, detail: str) -> None:
        assert (self.state[task_id], state) in MOVES, (task_id, self.state[task_id], state)
        self.state[task_id] = state
        if state is State.BLOCKED:
            if self.stopping:
                assert detail == STOPPED
                self.end(task_id, "not run")
            else:
                assert detail in self.possible_reasons(task_id), (task_id, detail)
                self.end(task_id, "blocked")
        elif state is State.FINISHED:
            self.end(task_id, detail)

    def end(self, task_id: str, how: str) -> None:
        assert task_id not in self.ended, task_id
        self.ended[task_id] = how
        if how not in PASSING_OUTCOMES:
            for tag in self.tasks[task_id].provides:
                self.first_failure.setdefault(tag, (task_id, how))

    def unavailable(self, tag: str) -> bool:
        return tag not in self.providers or tag in self.first_failure

    def why(self, tag: str) -> str:
        if tag not in self.providers:
            return self.plan.absent[tag]
        provider, how = self.first_failure[tag]
        return f"provided by {provider} which {_OUTCOME_WORDS.get(how, 'ended as ' + how)}"

    def possible_reasons(self, task_id: str) -> set[str]:
        """One per requirement that can no longer be met: the planner names one."""
        reasons = set()
        for requirement in self.tasks[task_id].requires:
            if all(self.unavailable(tag) for tag in requirement):
                wanted = repr(requirement[0])
                if len(requirement) > 1:
                    wanted = "one of " + ", ".join(map(repr, requirement))
                reasons.add(f"blocked: requires {wanted}, " + "; ".join(self.why(tag) for tag in requirement))
        return reasons

    def pop_blocked(self, planner: Planner) -> None:
        batch = planner.pop_blocked()
        order = [t.id for t in self.plan.tasks]
        assert [task_id for task_id, _ in batch] == sorted((i for i, _ in batch), key=order.index)
        for task_id, reason in batch:
            assert task_id not in self.blocked_reported and reason
            assert self.state[task_id] is State.BLOCKED
            self.blocked_reported[task_id] = reason

    # -- what a take may do -------------------------------------------------------

    def may_start(self, task: Task) -> bool:
        def provided(tag: str) -> bool:
            ids = self.providers.get(tag, ())
            return bool(ids) and all(self.ended.get(p) in PASSING_OUTCOMES for p in ids)

        requires_met = all(any(provided(tag) for tag in requirement) for requirement in task.requires)
        after_met = all(p in self.ended for tag in task.after for p in self.providers.get(tag, ()))
        return requires_met and after_met

    def ready_here(self) -> list[Task]:
        return [t for t in self.tasks.values() if self.state[t.id] is State.READY and t.group == self.group]

    def check_take(self, planner: Planner, taken: list[str], limit: int, locks: bool) -> None:
        assert len(taken) <= limit
        for task_id in taken:
            task = self.tasks[task_id]
            assert self.state[task_id] is State.RUNNING and task.group == self.group
            assert self.may_start(task), task_id
            assert locks or not task.locks
        self.running += taken
        self.check_locks()
        self.check_reservations(taken)
        self.update_holders(locks)
        if len(taken) < limit:
            for task in self.ready_here():
                assert task.locks, task.id
                if locks:
                    assert self.held_back(task), task.id

    def check_locks(self) -> None:
        running = [self.tasks[task_id] for task_id in self.running]
        assert all(t.group == self.group for t in running)
        for index, first in enumerate(running):
            for second in running[index + 1 :]:
                assert not conflict(first, second), (first.id, second.id)

    def claimed(self) -> set[str]:
        return {r for task_id in self.running for r in self.tasks[task_id].claims}

    def used(self) -> set[str]:
        return {r for task_id in self.running for r in self.tasks[task_id].uses}

    def check_reservations(self, taken: list[str]) -> None:
        """No task is taken past a better-priority ready task that waits for one of its resources."""
        for task_id in taken:
            task = self.tasks[task_id]
            for waiting in self.ready_here():
                assert not (waiting.priority < task.priority and resources(waiting) & resources(task)), (
                    task_id,
                    waiting.id,
                )

    def update_holders(self, locks: bool) -> None:
        """Every claimer the planner may have made a holder, and perhaps a few more.

        The planner makes a ready task a holder when a take finds it kept
        from its claims by users only (nothing it needs is claimed); it stays
        one until it starts, its group ends, or something it needs is claimed.
        Seen after each take, such a task still has users on a claim and
        nothing it needs claimed (no one of its priority or worse can claim
        its resources while it holds, and users do not leave during a take).
        """
        claimed = self.claimed()
        ready = {t.id for t in self.ready_here()}
        self.holders = {h for h in self.holders if h in ready and not resources(self.tasks[h]) & claimed}
        if locks:
            used = self.used()
            for task in self.ready_here():
                if set(task.claims) & used and not resources(task) & claimed:
                    self.holders.add(task.id)

    def held_back(self, task: Task) -> bool:
        """Why a ready task with locks may stay behind while a worker is free.

        Exactly as the planner defines it: its locks are not free (a claim
        claimed or used, a use claimed); or a ready task of better priority
        waits for one of its resources (priority reservation); or a holder of
        the same or better priority, with other locks, needs what it would lock.
        """
        claimed, used = self.claimed(), self.used()
        if set(task.claims) & (claimed | used) or set(task.uses) & claimed:
            return True
        if any(w.priority < task.priority and resources(w) & resources(task) for w in self.ready_here()):
            return True
        return any(
            holder.priority <= task.priority and conflict(holder, task) and locks_of(holder) != locks_of(task)
            for holder in map(self.tasks.__getitem__, self.holders)
        )

    def check_states(self, planner: Planner) -> None:
        for task_id, state in self.state.items():
            assert planner.state(task_id) is state, task_id


STOP = st.sampled_from([False] * 24 + [True])
GIVE_BACK = st.sampled_from([False, False, True])
FULL_TAKE = st.sampled_from([True, True, True, False])
LOCKS_ON_TAKE = st.sampled_from([True, True, False])
OUTCOME = st.sampled_from(OUTCOMES)
WORKERS = st.integers(1, 4)


def simulate(plan: Plan, data: st.DataObject) -> Run:
    run = Run(plan)
    planner = plan.build(on_change=run.on_change)
    run.pop_blocked(planner)
    workers = data.draw(WORKERS, label="workers")
    for group in planner.groups():
        if run.stopping:
            break
        planner.begin(group)
        run.group, run.holders = group, set()
        rounds = 0
        while planner.group_is_active():
            rounds += 1
            assert rounds <= 3 * len(plan.tasks) + 3, "the run does not end"
            if not run.stopping and data.draw(STOP, label="stop"):
                run.stopping = True
                planner.abandon(STOPPED)
                run.pop_blocked(planner)
                continue
            free = workers - len(run.running)
            if free:
                # Usually all free workers ask; one always does when nothing runs.
                asked = free if data.draw(FULL_TAKE, label="all free workers") else data.draw(SMALL) % (free + 1)
                limit = max(asked, 0 if run.running else 1)
                locks = not run.running or data.draw(LOCKS_ON_TAKE, label="locks")
                taken = planner.take(limit, locks=locks)
                if run.stopping:
                    assert taken == []
                run.check_take(planner, taken, limit, locks)
                assert run.running, "ready tasks, a free worker, nothing running, nothing taken"
                run.pop_blocked(planner)
                for task_id in taken:
                    if len(run.running) > 1 and data.draw(GIVE_BACK, label="give back"):
                        planner.give_back(task_id)
                        run.running.remove(task_id)
                        assert run.state[task_id] is State.READY
            # At least one running task ends each round, so the run ends.
            finishing = [t for t in run.running if data.draw(st.booleans(), label="ends")] or run.running[:1]
            for task_id in finishing:
                run.running.remove(task_id)
                outcome = data.draw(OUTCOME, label="outcome")
                planner.done(task_id, outcome)
                assert run.ended[task_id] == outcome
                run.pop_blocked(planner)
            run.check_states(planner)
        assert not run.running
    assert not planner.is_active()
    return run


@given(plans(shapes=("acyclic", "acyclic", "acyclic", "anything")), st.data())
@SETTINGS
def test_a_run_keeps_every_promise(plan, data):
    try:
        plan.build()
    except PlanError:
        return
    run = simulate(plan, data)
    # Every task ended exactly once: finished by us, or blocked with a reason.
    assert set(run.ended) == set(run.tasks)
    blocked = {task_id for task_id, how in run.ended.items() if how in ("blocked", "not run")}
    assert set(run.blocked_reported) == blocked
    assert all(run.state[task_id] is State.FINISHED for task_id in set(run.tasks) - blocked)
