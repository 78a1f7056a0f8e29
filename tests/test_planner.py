"""The planner alone: no pytest session, no processes."""

from __future__ import annotations

import pytest

from pytest_pexen import PlanError
from pytest_pexen._planner import Planner, State, Task, pull_in


def drain(planner: Planner, outcomes: dict[str, str] | None = None, workers: int = 1) -> list[str]:
    """Run the plan to its end serially; returns the start order."""
    outcomes = outcomes or {}
    order = []
    while planner.is_active():
        taken = planner.take(workers)
        assert taken, "planner is active but has nothing ready"
        for task_id in taken:
            order.append(task_id)
            planner.done(task_id, outcomes.get(task_id, "passed"))
    return order


def test_requires_runs_providers_first():
    planner = Planner([Task("use", requires=(("x",),)), Task("make", provides=("x",))])
    assert drain(planner) == ["make", "use"]


def test_tag_with_several_providers_waits_for_all():
    planner = Planner(
        [Task("a", provides=("x",)), Task("use", requires=(("x",),)), Task("b", provides=("x",))]
    )
    assert planner.take(5) == ["a", "b"]
    planner.done("a", "passed")
    assert planner.take(5) == []
    planner.done("b", "passed")
    assert planner.take(5) == ["use"]


def test_failed_provider_blocks_dependents_transitively():
    planner = Planner(
        [
            Task("build", provides=("image",)),
            Task("deploy", requires=(("image",),), provides=("service",)),
            Task("check", requires=(("service",),)),
        ]
    )
    assert drain(planner, {"build": "failed"}) == ["build"]
    assert planner.state("deploy") is State.BLOCKED
    assert planner.pop_blocked() == [
        ("deploy", "blocked: requires 'image', provided by build which failed"),
        ("check", "blocked: requires 'service', provided by deploy which was blocked"),
    ]


def test_alternatives_need_only_one():
    planner = Planner(
        [
            Task("a", provides=("x",)),
            Task("b", provides=("y",)),
            Task("either", requires=(("x", "y"),)),
        ]
    )
    assert drain(planner, {"a": "failed"}) == ["a", "b", "either"]
    assert planner.pop_blocked() == []


def test_alternatives_all_failed_block_with_every_reason():
    planner = Planner(
        [Task("a", provides=("x",)), Task("b", provides=("y",)), Task("c", requires=(("x", "y"),))]
    )
    drain(planner, {"a": "failed", "b": "skipped"})
    ((task_id, reason),) = planner.pop_blocked()
    assert task_id == "c"
    assert reason == (
        "blocked: requires one of 'x', 'y', provided by a which failed; provided by b which was skipped"
    )


def test_after_waits_whatever_the_outcome():
    planner = Planner([Task("cleanup", after=("t",)), Task("work", provides=("t",))])
    assert drain(planner, {"work": "failed"}) == ["work", "cleanup"]


def test_priority_before_collection_order():
    planner = Planner([Task("a"), Task("b", priority=-1), Task("c", priority=1)])
    assert drain(planner) == ["b", "a", "c"]


def test_longest_chain_first_among_equal_priority():
    tasks = [
        Task("lone"),
        Task("head", provides=("1",)),
        Task("mid", requires=(("1",),), provides=("2",)),
        Task("tail", requires=(("2",),)),
    ]
    assert Planner(tasks).take(1) == ["head"]


def test_known_durations_shape_the_critical_path():
    tasks = [
        Task("short-head", provides=("s",)),
        Task("short-tail", requires=(("s",),)),
        Task("long-head", provides=("l",)),
        Task("long-tail", requires=(("l",),)),
    ]
    durations = {"short-head": 1.0, "short-tail": 1.0, "long-head": 1.0, "long-tail": 10.0}
    assert Planner(tasks, durations=durations).take(1) == ["long-head"]


def test_independent_tests_keep_collection_order_whatever_their_duration():
    tasks = [Task("quick"), Task("slow"), Task("head", provides=("x",)), Task("tail", requires=(("x",),))]
    planner = Planner(tasks, durations={"quick": 0.1, "slow": 9.0, "head": 0.1, "tail": 0.1})
    assert planner.take(3) == ["head", "quick", "slow"]


def test_unknown_tag_is_an_error_naming_tag_and_tests():
    with pytest.raises(PlanError, match=r"tag 'imgae', needed by: t1, t2"):
        Planner([Task("t1", requires=(("imgae",),)), Task("t2", after=("imgae",))])


def test_cycle_is_an_error_printing_the_cycle():
    tasks = [
        Task("a", requires=(("b-done",),), provides=("a-done",)),
        Task("b", requires=(("a-done",),), provides=("b-done",)),
    ]
    with pytest.raises(PlanError, match="dependency cycle") as error:
        Planner(tasks)
    message = str(error.value)
    assert "requires 'b-done', provided by" in message
    assert "requires 'a-done', provided by" in message


def test_self_requirement_is_a_cycle():
    with pytest.raises(PlanError, match="dependency cycle"):
        Planner([Task("a", requires=(("x",),), provides=("x",))])


def test_absent_requirement_is_blocked_and_absent_after_is_satisfied():
    planner = Planner(
        [Task("needs", requires=(("x",),)), Task("later", after=("x",))],
        absent={"x": "provided by p which was not selected"},
    )
    assert drain(planner) == ["later"]
    assert planner.pop_blocked() == [
        ("needs", "blocked: requires 'x', provided by p which was not selected")
    ]


def test_give_back_makes_a_task_ready_again():
    planner = Planner([Task("a"), Task("b")])
    assert planner.take(2) == ["a", "b"]
    planner.give_back("b")
    assert planner.state("b") is State.READY
    assert planner.take(2) == ["b"]


def test_every_state_change_reaches_the_listener():
    seen = []
    planner = Planner(
        [Task("a", provides=("x",)), Task("b", requires=(("x",),))],
        on_change=lambda task_id, state, detail: seen.append((task_id, state.value, detail)),
    )
    drain(planner, {"a": "failed"})
    assert seen == [
        ("a", "ready", ""),
        ("a", "running", ""),
        ("a", "finished", "failed"),
        ("b", "blocked", "blocked: requires 'x', provided by a which failed"),
    ]


def test_pull_in_takes_providers_transitively():
    available = [
        Task("base", provides=("b",)),
        Task("mid", requires=(("b",),), provides=("m",)),
        Task("unrelated", provides=("u",)),
    ]
    pulled = pull_in([Task("top", requires=(("m",),))], available)
    assert sorted(t.id for t in pulled) == ["base", "mid"]


def test_pull_in_skips_alternatives_already_selected():
    available = [Task("px", provides=("x",)), Task("py", provides=("y",))]
    selected = [Task("have-y", provides=("y",)), Task("top", requires=(("x", "y"),))]
    assert pull_in(selected, available) == []


# -- locks --------------------------------------------------------------------


def test_claims_are_exclusive():
    planner = Planner([Task("a", claims=("net",)), Task("b", claims=("net",)), Task("c")])
    assert planner.take(3) == ["a", "c"]
    planner.done("a", "passed")
    assert planner.take(3) == ["b"]


def test_uses_are_shared_but_exclude_a_claim():
    planner = Planner([Task("u1", uses=("db",)), Task("u2", uses=("db",)), Task("c", claims=("db",))])
    assert planner.take(3) == ["u1", "u2"]
    planner.done("u1", "passed")
    assert planner.take(3) == []
    planner.done("u2", "passed")
    assert planner.take(3) == ["c"]


def test_a_waiting_claim_is_not_starved_by_new_uses():
    tasks = [Task("u1", uses=("db",)), Task("c", claims=("db",))]
    tasks += [Task(f"later{n}", uses=("db",)) for n in range(3)]
    planner = Planner(tasks)
    assert planner.take(1) == ["u1"]
    # The claimer is ready and waits: no new user may start.
    assert planner.take(5) == []
    planner.done("u1", "passed")
    assert planner.take(5) == ["c"]
    planner.done("c", "passed")
    assert planner.take(5) == ["later0", "later1", "later2"]


def test_all_resources_or_none():
    planner = Planner(
        [Task("hold-b", claims=("b",)), Task("both", claims=("a", "b")), Task("only-a", claims=("a",))]
    )
    assert planner.take(1) == ["hold-b"]
    # "both" cannot have b, so it holds nothing and "only-a" gets a.
    assert planner.take(5) == ["only-a"]


def test_a_task_waiting_for_a_lock_does_not_hold_back_others():
    planner = Planner([Task("c1", claims=("r",)), Task("c2", claims=("r",)), Task("free")])
    assert planner.take(1) == ["c1"]
    assert planner.take(1) == ["free"]


def test_without_locks_only_lock_free_tasks_are_taken():
    planner = Planner([Task("locked", uses=("r",)), Task("free")])
    assert planner.take(2, locks=False) == ["free"]
    assert planner.take(2) == ["locked"]


def test_give_back_releases_locks():
    planner = Planner([Task("a", claims=("r",)), Task("b", claims=("r",))])
    assert planner.take(1) == ["a"]
    planner.give_back("a")
    assert planner.take(2) == ["a"]


def test_claiming_and_using_one_resource_claims_it():
    planner = Planner([Task("a", claims=("r",), uses=("r",)), Task("b", uses=("r",))])
    assert planner.take(2) == ["a"]
    planner.done("a", "passed")
    assert planner.take(2) == ["b"]


# -- groups -------------------------------------------------------------------


def test_groups_follow_configuration_order_without_dependencies():
    tasks = [Task("v", group="vm"), Task("d"), Task("s", group="sys")]
    assert Planner(tasks, group_order=["default", "sys", "vm"]).groups() == ["default", "sys", "vm"]


def test_groups_follow_dependencies_before_configuration_order():
    tasks = [Task("v", group="vm", provides=("image",)), Task("d", requires=(("image",),))]
    assert Planner(tasks, group_order=["default", "vm"]).groups() == ["vm", "default"]


def test_groups_that_would_interleave_are_an_error():
    tasks = [
        Task("v1", group="vm", provides=("a",)),
        Task("d", requires=(("a",),), provides=("b",)),
        Task("v2", group="vm", requires=(("b",),)),
    ]
    with pytest.raises(PlanError, match="groups would have to interleave") as error:
        Planner(tasks, group_order=["default", "vm"])
    assert "d (group 'default') waits for v1 (group 'vm')" in str(error.value)
    assert "v2 (group 'vm') waits for d (group 'default')" in str(error.value)


def test_take_hands_out_the_current_group_only():
    planner = Planner([Task("v", group="vm"), Task("d")], group_order=["default", "vm"])
    assert planner.take(5) == ["d"]
    assert planner.take(5) == []
    planner.done("d", "passed")
    assert not planner.group_is_active()
    planner.begin("vm")
    assert planner.group_is_active()
    assert planner.take(5) == ["v"]


def test_a_claim_waiting_in_a_later_group_does_not_block_uses_now():
    planner = Planner(
        [Task("later", group="vm", claims=("db",)), Task("u1", uses=("db",)), Task("u2", uses=("db",))],
        group_order=["default", "vm"],
    )
    assert planner.take(1) == ["u1"]
    assert planner.take(5) == ["u2"]


def test_users_are_held_back_only_when_they_are_the_claimers_last_obstacle():
    planner = Planner(
        [
            Task("net-long", claims=("net",)),
            Task("user1", uses=("db",)),
            Task("net-and-db", claims=("net", "db")),
            Task("user2", uses=("db",)),
        ]
    )
    assert planner.take(2) == ["net-long", "user1"]
    # net-and-db waits for net (claimed), so db users may still join.
    assert planner.take(5) == ["user2"]


def test_a_better_priority_claimer_is_not_overtaken_on_its_resources():
    planner = Planner(
        [
            Task("go", provides=("go",)),
            Task("net1", claims=("net",)),
            Task("both", claims=("net", "gpu"), priority=-1, requires=(("go",),)),
            Task("gpu2", claims=("gpu",)),
            Task("free"),
        ]
    )
    assert planner.take(2) == ["go", "net1"]
    planner.done("go", "passed")
    # both waits for net; gpu2 (worse priority) may not take gpu meanwhile.
    assert planner.take(5) == ["free"]
    planner.done("net1", "passed")
    assert planner.take(5) == ["both"]
    planner.done("both", "passed")
    assert planner.take(5) == ["gpu2"]
