"""The planner alone (no pytest session, no processes), then the same cases
in real sessions where a user would meet them."""

from __future__ import annotations

import textwrap

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


def cycle_message(tasks: list[Task]) -> str:
    with pytest.raises(PlanError, match="dependency cycle") as error:
        Planner(tasks)
    return str(error.value)


def expected_cycle(*lines: str) -> str:
    return "dependency cycle, no test in it can ever start:\n" + "\n".join(f"  {line}" for line in lines)


def test_cycle_is_an_error_printing_the_cycle():
    tasks = [
        Task("a", requires=(("b-done",),), provides=("a-done",)),
        Task("b", requires=(("a-done",),), provides=("b-done",)),
    ]
    assert cycle_message(tasks) == expected_cycle(
        "a requires 'b-done', provided by", "b requires 'a-done', provided by", "a"
    )


def test_self_requirement_is_a_cycle():
    assert cycle_message([Task("a", requires=(("x",),), provides=("x",))]) == expected_cycle(
        "a requires 'x', provided by", "a"
    )


def test_three_test_cycle_prints_each_step():
    tasks = [
        Task("a", requires=(("c-done",),), provides=("a-done",)),
        Task("b", requires=(("a-done",),), provides=("b-done",)),
        Task("c", requires=(("b-done",),), provides=("c-done",)),
    ]
    assert cycle_message(tasks) == expected_cycle(
        "a requires 'c-done', provided by",
        "c requires 'b-done', provided by",
        "b requires 'a-done', provided by",
        "a",
    )


def test_cycle_through_after_prints_after():
    tasks = [
        Task("a", after=("c-done",), provides=("a-done",)),
        Task("b", after=("a-done",), provides=("b-done",)),
        Task("c", after=("b-done",), provides=("c-done",)),
    ]
    assert cycle_message(tasks) == expected_cycle(
        "a after 'c-done', provided by",
        "c after 'b-done', provided by",
        "b after 'a-done', provided by",
        "a",
    )


def test_cycle_mixing_requires_and_after_names_each_link():
    tasks = [
        Task("a", requires=(("d-done",),), provides=("a-done",)),
        Task("b", after=("a-done",), provides=("b-done",)),
        Task("c", requires=(("b-done",),), provides=("c-done",)),
        Task("d", after=("c-done",), provides=("d-done",)),
    ]
    assert cycle_message(tasks) == expected_cycle(
        "a requires 'd-done', provided by",
        "d after 'c-done', provided by",
        "c requires 'b-done', provided by",
        "b after 'a-done', provided by",
        "a",
    )


def test_cycle_through_one_of_several_providers_names_that_provider():
    tasks = [
        Task("a", requires=(("x",),), provides=("a-done",)),
        Task("free", provides=("x",)),
        Task("looped", requires=(("a-done",),), provides=("x",)),
    ]
    assert cycle_message(tasks) == expected_cycle(
        "a requires 'x', provided by", "looped requires 'a-done', provided by", "a"
    )


def test_cycle_through_an_alternative_is_a_cycle():
    tasks = [
        Task("a", requires=(("free", "b-done"),), provides=("a-done",)),
        Task("b", requires=(("a-done",),), provides=("b-done",)),
        Task("f", provides=("free",)),
    ]
    assert cycle_message(tasks) == expected_cycle(
        "a requires 'b-done', provided by", "b requires 'a-done', provided by", "a"
    )


def test_cycle_printed_leaves_out_tests_that_only_lead_into_it():
    tasks = [
        Task("outside", requires=(("a-done",),)),
        Task("a", requires=(("b-done",),), provides=("a-done",)),
        Task("b", requires=(("a-done",),), provides=("b-done",)),
    ]
    assert cycle_message(tasks) == expected_cycle(
        "a requires 'b-done', provided by", "b requires 'a-done', provided by", "a"
    )


def test_long_cycle_is_an_error_not_a_crash():
    size = 5000
    tasks = [Task(f"t{n}", requires=((f"done{(n - 1) % size}",),), provides=(f"done{n}",)) for n in range(size)]
    lines = cycle_message(tasks).splitlines()
    assert len(lines) == size + 2
    assert lines[1] == f"  t0 requires 'done{size - 1}', provided by"
    assert lines[-1] == "  t0"


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


def chain(size: int) -> list[Task]:
    """Each test requires the previous one's tag."""
    tasks = [Task("t0", provides=("done0",))]
    tasks += [Task(f"t{n}", requires=((f"done{n - 1}",),), provides=(f"done{n}",)) for n in range(1, size)]
    return tasks


def test_long_chain_blocked_by_its_first_test():
    planner = Planner(chain(100_000))
    assert planner.take(8) == ["t0"]
    planner.done("t0", "failed")
    blocked = planner.pop_blocked()
    assert not planner.is_active()
    assert len(blocked) == 99_999
    assert blocked[0] == ("t1", "blocked: requires 'done0', provided by t0 which failed")
    assert blocked[-1] == ("t99999", "blocked: requires 'done99998', provided by t99998 which was blocked")


def test_long_chain_runs_in_order():
    assert drain(Planner(chain(100_000)), workers=8) == [f"t{n}" for n in range(100_000)]


def test_blocked_tests_come_out_in_collection_order():
    # The block spreads from the provider back up the file.
    tasks = [
        Task("d", requires=(("c",),)),
        Task("c", requires=(("b",),), provides=("c",)),
        Task("b", requires=(("a",),), provides=("b",)),
        Task("other", requires=(("a",),)),
        Task("a", provides=("a",)),
    ]
    planner = Planner(tasks)
    drain(planner, {"a": "failed"})
    assert [task_id for task_id, _ in planner.pop_blocked()] == ["d", "c", "b", "other"]


def test_a_block_is_reported_after_the_outcome_that_caused_it():
    seen = []
    planner = Planner(chain(4), on_change=lambda task_id, state, detail: seen.append((task_id, state.value)))
    drain(planner, {"t0": "failed"})
    assert seen == [
        ("t0", "ready"),
        ("t0", "running"),
        ("t0", "finished"),
        ("t1", "blocked"),
        ("t2", "blocked"),
        ("t3", "blocked"),
    ]


def test_a_test_blocked_from_the_start_blocks_its_dependents_once():
    seen = []
    planner = Planner(
        [Task("a", requires=(("gone",),), provides=("y",)), Task("b", requires=(("y",),))],
        absent={"gone": "provided by p which was not selected"},
        on_change=lambda task_id, state, detail: seen.append((task_id, state.value)),
    )
    assert seen == [("a", "blocked"), ("b", "blocked")]
    assert planner.pop_blocked() == [
        ("a", "blocked: requires 'gone', provided by p which was not selected"),
        ("b", "blocked: requires 'y', provided by a which was blocked"),
    ]
    assert not planner.is_active()


def test_a_test_after_one_blocked_from_the_start_is_ready_once():
    seen = []
    planner = Planner(
        [Task("a", requires=(("gone",),), provides=("x",)), Task("b", after=("x",))],
        absent={"gone": "provided by p which was not selected"},
        on_change=lambda task_id, state, detail: seen.append((task_id, state.value)),
    )
    assert seen == [("a", "blocked"), ("b", "ready")]
    assert drain(planner, workers=2) == ["b"]


def test_abandon_blocks_every_test_not_started_once_with_the_reason():
    seen = []
    planner = Planner(
        [Task("a", provides=("x",)), Task("b", requires=(("x",),)), Task("c")],
        on_change=lambda task_id, state, detail: seen.append((task_id, state.value)),
    )
    seen.clear()
    planner.abandon("not run: the session timeout of 1s expired")
    assert planner.pop_blocked() == [
        ("a", "not run: the session timeout of 1s expired"),
        ("b", "not run: the session timeout of 1s expired"),
        ("c", "not run: the session timeout of 1s expired"),
    ]
    assert seen == [("a", "blocked"), ("b", "blocked"), ("c", "blocked")]
    assert not planner.is_active()
    assert planner.take(5) == []


def test_abandon_leaves_running_tests_to_finish():
    planner = Planner([Task("a", provides=("x",)), Task("b", after=("x",))])
    assert planner.take(1) == ["a"]
    planner.abandon("not run: stopped")
    assert planner.pop_blocked() == [("b", "not run: stopped")]
    assert planner.is_active()
    planner.done("a", "passed")
    assert not planner.is_active()
    assert planner.pop_blocked() == []


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


def test_a_claimer_kept_only_by_users_holds_its_other_resources_too():
    planner = Planner([Task("reader", uses=("db",)), Task("both", claims=("net", "db")), Task("net", claims=("net",))])
    assert planner.take(1) == ["reader"]
    # "both" waits for the reader only; were "net" to take net now, the
    # readers held back for "both" would wait for nothing.
    assert planner.take(5) == []
    planner.done("reader", "passed")
    assert planner.take(5) == ["both"]
    planner.done("both", "passed")
    assert planner.take(5) == ["net"]


def test_a_better_priority_user_is_not_kept_waiting_by_a_claimer():
    planner = Planner(
        [
            Task("gate", provides=("g",)),
            Task("reader", uses=("db",)),
            Task("migrate", claims=("db",)),
            Task("urgent", uses=("db",), priority=-1, requires=(("g",),)),
        ]
    )
    assert planner.take(2) == ["gate", "reader"]
    assert planner.take(1) == []
    planner.done("reader", "passed")
    planner.done("gate", "passed")
    # Nothing runs: someone must start (this used to stall for ever).
    assert planner.take(4) == ["urgent"]
    planner.done("urgent", "passed")
    assert planner.take(4) == ["migrate"]


def test_a_given_back_user_does_not_stall_a_waiting_claimer():
    planner = Planner(
        [
            Task("migrate", claims=("db",)),
            Task("free"),
            Task("reader", uses=("db",)),
            Task("urgent", uses=("db",), priority=-1),
        ]
    )
    assert planner.take(2) == ["urgent", "free"]
    planner.give_back("urgent")
    planner.done("free", "passed")
    assert planner.take(2) == ["urgent"]
    planner.done("urgent", "passed")
    assert planner.take(2) == ["migrate"]
    planner.done("migrate", "passed")
    assert planner.take(2) == ["reader"]


def test_a_hold_ends_when_a_better_priority_task_claims_what_the_holder_needs():
    planner = Planner(
        [
            Task("gate", provides=("g",)),
            Task("reader", uses=("db",)),
            Task("both", claims=("db", "net")),
            Task("urgent", claims=("net",), priority=-1, requires=(("g",),)),
            Task("late-reader", uses=("db",)),
        ]
    )
    assert planner.take(2) == ["gate", "reader"]
    assert planner.take(5) == []
    planner.done("gate", "passed")
    # "both" now waits for a claim, not only for users: readers may join.
    assert planner.take(5) == ["urgent", "late-reader"]


def test_a_task_with_the_locks_of_a_holder_may_go_first():
    planner = Planner(
        [
            Task("gate", provides=("g",)),
            Task("reader", uses=("db",)),
            Task("first", claims=("db",), requires=(("g",),)),
            Task("second", claims=("db",)),
        ]
    )
    assert planner.take(2) == ["gate", "reader"]
    assert planner.take(1) == []  # "second" holds db
    planner.done("gate", "passed")
    assert planner.take(1) == []  # "first" is not held back by "second", but the reader still reads
    planner.done("reader", "passed")
    assert planner.take(2) == ["first"]
    planner.done("first", "passed")
    assert planner.take(2) == ["second"]


def test_many_tests_waiting_for_one_resource_cost_little_each():
    claimers = [Task(f"claim{n}", claims=("gpu",)) for n in range(10_000)]
    users = [Task(f"use{n}", uses=("gpu",)) for n in range(10_000)]
    order = drain(Planner(claimers + users), workers=8)
    assert order[:10_000] == [task.id for task in claimers]
    assert sorted(order[10_000:]) == sorted(task.id for task in users)


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


def test_three_groups_that_would_interleave_print_each_step():
    tasks = [
        Task("p1", group="one", provides=("a",)),
        Task("p2", group="two", requires=(("a",),), provides=("b",)),
        Task("p3", group="three", after=("b",), provides=("c",)),
        Task("p4", group="one", requires=(("c",),)),
    ]
    with pytest.raises(PlanError) as error:
        Planner(tasks, group_order=["one", "two", "three"])
    assert str(error.value) == (
        "groups would have to interleave, but only one group runs at a time:\n"
        "  p4 (group 'one') waits for p3 (group 'three')\n"
        "  p3 (group 'three') waits for p2 (group 'two')\n"
        "  p2 (group 'two') waits for p1 (group 'one')\n"
        "move these tests into one group, or drop one of the dependencies"
    )


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


# -- in real sessions ---------------------------------------------------------


def no_internal_error(result: pytest.RunResult) -> bool:
    return "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_three_test_cycle_is_a_usage_error_printing_it(suite, run, events):
    suite(
        test_ring='''
        import pytest

        @pytest.mark.pexen(requires=["c"], provides=["a"])
        def test_a():
            pass

        @pytest.mark.pexen(requires=["a"], provides=["b"])
        def test_b():
            pass

        @pytest.mark.pexen(requires=["b"], provides=["c"])
        def test_c():
            pass
        '''
    )
    result = run("--pexen")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [
            "*dependency cycle, no test in it can ever start:",
            "  test_ring.py::test_a requires 'c', provided by",
            "  test_ring.py::test_c requires 'b', provided by",
            "  test_ring.py::test_b requires 'a', provided by",
            "  test_ring.py::test_a",
        ]
    )
    assert no_internal_error(result)
    assert events().names() == []


def test_three_groups_that_would_interleave_are_a_usage_error(pytester, suite, run, events):
    suite(
        test_groups='''
        import pytest

        @pytest.mark.pexen(group="one", provides=["a"])
        def test_first():
            pass

        @pytest.mark.pexen(group="two", requires=["a"], provides=["b"])
        def test_second():
            pass

        @pytest.mark.pexen(group="three", requires=["b"], provides=["c"])
        def test_third():
            pass

        @pytest.mark.pexen(group="one", requires=["c"])
        def test_back_to_one():
            pass
        '''
    )
    pytester.makeini(
        textwrap.dedent(
            """\
            [pytest]
            pexen_groups =
                one: workers=1
                two: workers=1
                three: workers=1
            """
        )
    )
    result = run("--pexen")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [
            "*groups would have to interleave, but only one group runs at a time:",
            "  test_groups.py::test_back_to_one (group 'one') waits for test_groups.py::test_third (group 'three')",
            "  test_groups.py::test_third (group 'three') waits for test_groups.py::test_second (group 'two')",
            "  test_groups.py::test_second (group 'two') waits for test_groups.py::test_first (group 'one')",
            "move these tests into one group, or drop one of the dependencies",
        ]
    )
    assert no_internal_error(result)
    assert events().names() == []


def test_long_chain_blocked_by_its_first_test_in_a_session(suite, run):
    first = "import pytest\n\n@pytest.mark.pexen(provides=['step0'])\ndef test_step0():\n    assert False\n"
    steps = "".join(
        f"\n\n@pytest.mark.pexen(requires=['step{n - 1}'], provides=['step{n}'])\ndef test_step{n}():\n    pass\n"
        for n in range(1, 600)
    )
    suite(test_chain=first + steps)
    result = run("--pexen", "--pexen-workers=2")
    result.assert_outcomes(failed=1)
    assert result.parseoutcomes()["blocked"] == 599
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        [
            "BLOCKED test_chain.py::test_step1 - requires 'step0', provided by test_chain.py::test_step0 which failed",
            "BLOCKED test_chain.py::test_step599 - requires 'step598', "
            "provided by test_chain.py::test_step598 which was blocked",
        ]
    )
    assert no_internal_error(result)


def test_a_unit_runs_in_the_lane_that_took_its_first_task():
    planner = Planner([Task("a1", unit="A"), Task("a2", unit="A"), Task("a3", unit="A"), Task("free")])
    assert planner.take(1, lane="w1") == ["a1"]
    assert planner.take(5, lane="w2") == ["free"]  # a2, a3 wait for w1
    assert planner.take(5, lane="w1") == ["a2", "a3"]


def test_a_released_lane_leaves_its_unit_to_another():
    planner = Planner([Task("a1", unit="A"), Task("a2", unit="A")])
    assert planner.take(1, lane="w1") == ["a1"]
    planner.give_back("a1")  # its worker died
    planner.release_lane("w1")
    assert planner.take(5, lane="w2") == ["a1", "a2"]


def test_a_finished_unit_binds_no_lane_any_more():
    planner = Planner([Task("a1", unit="A"), Task("b1", unit="B")])
    assert planner.take(1, lane="w1") == ["a1"]
    planner.done("a1", "passed")
    assert planner.take(1, lane="w2") == ["b1"]


def test_a_unit_with_locks_still_waits_for_its_lane():
    planner = Planner([Task("a1", unit="A", claims=("db",)), Task("a2", unit="A", claims=("db",)), Task("c")])
    assert planner.take(1, lane="w1") == ["a1"]
    planner.done("a1", "passed")
    assert planner.take(5, lane="w2") == ["c"]
    assert planner.take(5, lane="w1") == ["a2"]
