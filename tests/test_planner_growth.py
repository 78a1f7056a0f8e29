"""The planner alone: ``any:`` requirements, providers on standby, and tasks
added while the run goes on (no pytest session, no processes)."""

from __future__ import annotations

import pytest

from pytest_pexen import PlanError
from pytest_pexen._planner import Planner, State, Task, pull_in


def finish(planner: Planner, outcomes: dict[str, str]) -> list[str]:
    """Take and end every ready task, one at a time, until none is ready; returns the start order."""
    order = []
    while True:
        taken = planner.take(1)
        if not taken:
            return order
        order.extend(taken)
        planner.done(taken[0], outcomes.get(taken[0], "passed"))


# -- any: one provider is enough ------------------------------------------------


def test_any_provider_is_met_by_the_first_that_passes():
    planner = Planner(
        [Task("apache", provides=("httpd",)), Task("nginx", provides=("httpd",)), Task("use", requires=(("any:httpd",),))]
    )
    assert planner.take(2) == ["apache", "nginx"]
    planner.done("nginx", "passed")
    assert planner.take(2) == ["use"]


def test_any_provider_waits_while_the_others_may_still_pass():
    planner = Planner(
        [Task("apache", provides=("httpd",)), Task("nginx", provides=("httpd",)), Task("use", requires=(("any:httpd",),))]
    )
    planner.take(2)
    planner.done("apache", "failed")
    assert planner.take(2) == []
    assert planner.pop_blocked() == []
    planner.done("nginx", "passed")
    assert planner.take(2) == ["use"]


def test_any_provider_blocks_once_every_provider_failed_naming_each():
    planner = Planner(
        [Task("apache", provides=("httpd",)), Task("nginx", provides=("httpd",)), Task("use", requires=(("any:httpd",),))]
    )
    assert finish(planner, {"apache": "failed", "nginx": "skipped"}) == ["apache", "nginx"]
    assert planner.pop_blocked() == [
        ("use", "blocked: requires any provider of 'httpd', provided by apache which failed, nginx which was skipped")
    ]


def test_plain_requirement_on_the_same_tag_still_needs_every_provider():
    planner = Planner(
        [
            Task("apache", provides=("httpd",)),
            Task("nginx", provides=("httpd",)),
            Task("any", requires=(("any:httpd",),)),
            Task("all", requires=(("httpd",),)),
        ]
    )
    assert finish(planner, {"nginx": "failed"}) == ["apache", "nginx", "any"]
    assert planner.pop_blocked() == [("all", "blocked: requires 'httpd', provided by nginx which failed")]


def test_any_provider_among_alternatives():
    planner = Planner(
        [
            Task("apache", provides=("httpd",)),
            Task("nginx", provides=("httpd",)),
            Task("mail", provides=("mta",)),
            Task("use", requires=(("any:httpd", "mta"),)),
        ]
    )
    planner.take(3)
    planner.done("mail", "failed")
    planner.done("apache", "failed")
    assert planner.take(1) == []
    planner.done("nginx", "passed")
    assert planner.take(1) == ["use"]


# -- standby --------------------------------------------------------------------


def standby_plan() -> Planner:
    return Planner(
        [
            Task("apache", provides=("httpd",)),
            Task("nginx", provides=("httpd",), standby_for="httpd"),
            Task("use", requires=(("any:httpd",),)),
        ]
    )


def test_a_provider_on_standby_is_dropped_unreported_when_the_chosen_one_passes():
    planner = standby_plan()
    assert finish(planner, {}) == ["apache", "use"]
    assert not planner.is_active()
    assert planner.pop_blocked() == []
    assert planner.state("nginx") is State.FINISHED


def test_a_provider_on_standby_runs_when_the_chosen_one_fails():
    planner = standby_plan()
    assert finish(planner, {"apache": "failed"}) == ["apache", "nginx", "use"]
    assert planner.pop_blocked() == []


def test_when_every_provider_fails_the_dependent_is_blocked_naming_both():
    planner = standby_plan()
    assert finish(planner, {"apache": "failed", "nginx": "failed"}) == ["apache", "nginx"]
    assert planner.pop_blocked() == [
        ("use", "blocked: requires any provider of 'httpd', provided by apache which failed, nginx which failed")
    ]


def test_abandon_drops_standby_providers_without_reporting_them():
    planner = standby_plan()
    planner.abandon("not run: stopped")
    assert planner.pop_blocked() == [("apache", "not run: stopped"), ("use", "not run: stopped")]
    assert not planner.is_active()


# -- tasks added during the run -------------------------------------------------


def test_an_added_task_requiring_a_provided_tag_is_ready_at_once():
    planner = Planner([Task("make", provides=("x",))])
    finish(planner, {})
    planner.add([Task("late", requires=(("x",),))])
    assert planner.is_active()
    assert planner.take(1) == ["late"]


def test_an_added_task_requiring_a_failed_tag_is_blocked_at_once():
    planner = Planner([Task("make", provides=("x",))])
    finish(planner, {"make": "failed"})
    planner.add([Task("late", requires=(("x",),))])
    assert planner.pop_blocked() == [("late", "blocked: requires 'x', provided by make which failed")]
    assert not planner.is_active()


def test_an_added_task_may_wait_for_a_tag_that_a_later_task_provides():
    planner = Planner([Task("first")])
    finish(planner, {})
    planner.add([Task("waits", requires=(("later",),))])
    assert planner.take(1) == []
    planner.add([Task("provider", provides=("later",))])
    assert finish(planner, {}) == ["provider", "waits"]


def test_a_tag_nobody_adds_blocks_once_the_planner_stops_waiting():
    planner = Planner([Task("first")])
    finish(planner, {})
    planner.add([Task("waits", requires=(("never",),)), Task("orders", after=("never",))])
    assert planner.take(2) == []
    planner.stop_waiting()
    assert planner.pop_blocked() == [
        ("waits", "blocked: requires 'never', no test provided it (none was added during the run)")
    ]
    assert planner.take(1) == ["orders"]


def test_an_added_provider_joins_a_tag_whose_provider_runs():
    planner = Planner([Task("discover", provides=("checked",)), Task("summary", after=("checked",))])
    assert planner.take(1) == ["discover"]
    planner.add([Task("check_sda", provides=("checked",)), Task("check_sdb", provides=("checked",))])
    planner.done("discover", "passed")
    assert finish(planner, {}) == ["check_sda", "check_sdb", "summary"]


def test_providing_a_tag_whose_providers_all_ended_is_an_error():
    planner = Planner([Task("make", provides=("x",)), Task("use", requires=(("x",),))])
    finish(planner, {})
    with pytest.raises(PlanError, match="late provides 'x', whose providers have all ended"):
        planner.add([Task("late", provides=("x",))])


def test_adding_to_a_group_that_ran_is_an_error_naming_it():
    planner = Planner([Task("a", group="one"), Task("b", group="two")], group_order=("one", "two"))
    assert planner.next_group() == "one"
    finish(planner, {})
    assert planner.next_group() == "two"
    with pytest.raises(PlanError, match="late: its group 'one' has run already"):
        planner.add([Task("late", group="one")])


def test_an_added_task_of_a_new_group_runs_after_the_current_one():
    planner = Planner([Task("a", group="one")], group_order=("one", "two"))
    assert planner.next_group() == "one"
    planner.add([Task("late", group="two")])
    assert finish(planner, {}) == ["a"]
    assert planner.next_group() == "two"
    assert finish(planner, {}) == ["late"]
    assert planner.next_group() is None


def test_an_added_cycle_is_an_error_and_nothing_is_added():
    planner = Planner([Task("start")])
    with pytest.raises(PlanError, match="dependency cycle"):
        planner.add([Task("p", requires=(("b",),), provides=("a",)), Task("q", requires=(("a",),), provides=("b",))])
    finish(planner, {})
    assert not planner.is_active()


def test_an_added_cycle_through_a_waiting_task_is_an_error():
    planner = Planner([Task("runs", provides=("x",)), Task("waits", requires=(("x",),), provides=("y",))])
    assert planner.take(1) == ["runs"]
    with pytest.raises(PlanError, match="dependency cycle"):
        planner.add([Task("late", requires=(("y",),), provides=("x",))])


def test_an_added_task_with_an_id_in_the_plan_is_an_error():
    planner = Planner([Task("a")])
    with pytest.raises(PlanError, match="exists already: a"):
        planner.add([Task("a")])


def test_added_tasks_go_by_priority_then_after_the_planned_ones():
    planner = Planner([Task("blocker", claims=("r",)), Task("x", priority=0), Task("y", priority=5)])
    assert planner.take(1) == ["blocker"]
    planner.add([Task("late0"), Task("late_urgent", priority=-1), Task("late5", priority=5)])
    assert finish(planner, {}) == ["late_urgent", "x", "late0", "y", "late5"]


# -- pull-in of one provider -----------------------------------------------------


def test_pull_in_of_any_takes_the_best_provider_and_keeps_the_others_on_standby():
    use = Task("use", requires=(("any:httpd",),))
    nginx = Task("nginx", provides=("httpd",))
    apache = Task("apache", provides=("httpd",), priority=-1)
    pulled = pull_in([use], [nginx, apache])
    assert pulled == [apache, Task("nginx", provides=("httpd",), standby_for="httpd")]


def test_pull_in_of_any_takes_collection_order_among_equal_priorities():
    use = Task("use", requires=(("any:httpd",),))
    pulled = pull_in([use], [Task("nginx", provides=("httpd",)), Task("apache", provides=("httpd",))])
    assert [(t.id, t.standby_for) for t in pulled] == [("nginx", None), ("apache", "httpd")]


def test_a_provider_that_needs_more_does_not_stand_by():
    use = Task("use", requires=(("any:httpd",),))
    nginx = Task("nginx", provides=("httpd",), requires=(("nginx-package",),))
    pulled = pull_in([use], [Task("apache", provides=("httpd",)), nginx, Task("pkg", provides=("nginx-package",))])
    assert [t.id for t in pulled] == ["apache"]


def test_a_plain_requirement_is_met_by_the_selected_providers_while_another_stands_by():
    any_user = Task("any", requires=(("any:httpd",),))
    all_user = Task("all", requires=(("httpd",),))
    apache, nginx = Task("apache", provides=("httpd",)), Task("nginx", provides=("httpd",))
    pulled = pull_in([all_user, any_user], [apache, nginx])
    assert [(t.id, t.standby_for) for t in pulled] == [("apache", None), ("nginx", "httpd")]
    planner = Planner([*pulled, all_user, any_user])
    assert finish(planner, {}) == ["apache", "all", "any"]
    assert planner.pop_blocked() == []


# -- random runs ------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

TAGS = ("a", "b", "c", "d")


def requirement(draw: st.DrawFn, tags: list[str]) -> tuple[str, ...]:
    chosen = draw(st.lists(st.sampled_from(tags), min_size=1, max_size=2, unique=True))
    return tuple(f"any:{tag}" if draw(st.booleans()) else tag for tag in chosen)


@given(st.data())
@settings(max_examples=300, deadline=None, derandomize=True, database=None)
def test_random_runs_with_any_and_added_tasks_keep_the_rules(data):
    """Plans with any: requirements, driven with random outcomes, with tasks added
    now and then (requiring tags that exist or come later): a task starts only
    when each requirement is met (plain: every provider known then passed;
    any: one did), and the run always ends with every task ended."""
    draw = data.draw
    # Acyclic: a task of level L provides the tag of level L, and requires lower ones.
    levels = [draw(st.integers(0, len(TAGS) - 1)) for _ in range(draw(st.integers(1, 7)))]
    provides = [(TAGS[level],) if draw(st.booleans()) else () for level in levels]
    providers: dict[str, list[str]] = {}
    for index, tags in enumerate(provides):
        for tag in tags:
            providers.setdefault(tag, []).append(f"t{index}")
    tasks = []
    for index, level in enumerate(levels):
        known = [tag for tag in TAGS[:level] if tag in providers]
        requires = tuple(requirement(draw, known) for _ in range(draw(st.integers(0, 2)))) if known else ()
        tasks.append(Task(f"t{index}", requires=requires, provides=provides[index]))
    planner = Planner(tasks)
    outcome_of: dict[str, str] = {}
    added = 0
    for _ in range(60):
        if not planner.is_active():
            break
        taken = planner.take(draw(st.integers(1, 3)))
        for task_id in taken:
            for required in planner.task(task_id).requires:
                met = []
                for tag in required:
                    ended = [outcome_of.get(p) for p in providers.get(tag.removeprefix("any:"), [])]
                    if tag.startswith("any:"):
                        met.append("passed" in ended)
                    else:
                        met.append(bool(ended) and all(o == "passed" for o in ended))
                assert any(met), (task_id, required, outcome_of)
            outcome = draw(st.sampled_from(["passed", "passed", "failed"]))
            if draw(st.booleans()) and added < 6:
                # A task added as this one ends: requiring what exists, or a tag that comes later.
                name = f"n{added}"
                added += 1
                pending = [f"late{added - 1}"] if draw(st.booleans()) else []
                known = [tag for tag in (*TAGS, *pending) if tag in providers or tag in pending]
                new = Task(
                    name,
                    requires=(requirement(draw, known),) if known else (),
                    provides=(f"late{added}",) if draw(st.booleans()) else (),
                )
                try:
                    planner.add([new])
                except Exception as error:  # a cycle cannot happen here: nothing may raise
                    raise AssertionError(error) from None
                for tag in new.provides:
                    providers.setdefault(tag, []).append(name)
            planner.done(task_id, outcome)
            outcome_of[task_id] = outcome
        if not taken and not planner.running_count():
            planner.stop_waiting()  # as the run loop does when no worker has work
        planner.pop_blocked()
    assert not planner.is_active()
