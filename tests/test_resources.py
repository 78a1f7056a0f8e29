"""claims, uses and exclusivity groups in real ``pytest --pexen`` sessions."""

from __future__ import annotations

import itertools

import pytest

SLEEPERS = '''
import time, pytest

@pytest.mark.parametrize("n", range({count}))
@pytest.mark.pexen({meta})
def test_{name}(n):
    time.sleep({seconds})
'''


def sleepers(name: str, count: int, meta: str = "", seconds: float = 0.2) -> str:
    return SLEEPERS.format(name=name, count=count, meta=meta, seconds=seconds)


def intervals(log, prefix: str) -> list[tuple[float, float]]:
    names = sorted({n for n in log.names() if n.startswith(prefix)})
    return [(log.start(n), log.end(n)) for n in names]


def overlapping(first, second) -> bool:
    return first[0] < second[1] and second[0] < first[1]


def test_claims_of_one_resource_never_overlap(suite, run, events):
    suite(test_claims=sleepers("net", 4, "claims=['net']"))
    run("--pexen", "--pexen-workers=4").assert_outcomes(passed=4)
    spans = intervals(events(), "test_net")
    assert len(spans) == 4
    assert not any(overlapping(a, b) for a, b in itertools.combinations(spans, 2))


def test_uses_overlap(suite, run, events):
    suite(test_uses=sleepers("db", 3, "uses=['db']", seconds=0.4))
    run("--pexen", "--pexen-workers=3").assert_outcomes(passed=3)
    assert events().max_concurrency() == 3


def test_a_claim_overlaps_no_use(suite, run, events):
    suite(
        test_users=sleepers("reader", 4, "uses=['db']"),
        test_claimer=sleepers("migrate", 1, "claims=['db']"),
    )
    run("--pexen", "--pexen-workers=3").assert_outcomes(passed=5)
    log = events()
    (claim,) = intervals(log, "test_migrate")
    assert not any(overlapping(claim, use) for use in intervals(log, "test_reader"))


def test_a_test_waiting_for_a_lock_does_not_hold_back_others(suite, run, events):
    suite(
        test_wait=sleepers("locked", 2, "claims=['net'], priority=-1", seconds=0.4),
        test_free=sleepers("free", 1, seconds=0.1),
    )
    run("--pexen", "--pexen-workers=2").assert_outcomes(passed=3)
    log = events()
    first, second = sorted(intervals(log, "test_locked"))
    (free,) = intervals(log, "test_free")
    assert free[1] <= second[0]


def test_heavy_contention_finishes_without_overlap(suite, run, events):
    import random

    rng = random.Random(7)
    files = {}
    plan = {}
    for n in range(24):
        claims = sorted(rng.sample(["a", "b", "c"], rng.randint(0, 2)))
        uses = sorted({rng.choice(["a", "b", "c", "d"])} - set(claims))
        plan[f"test_t{n}"] = (set(claims), set(uses))
        files[f"test_t{n}"] = (
            "import time, pytest\n\n"
            f"@pytest.mark.pexen(claims={claims!r}, uses={uses!r})\n"
            f"def test_t{n}():\n    time.sleep(0.05)\n"
        )
    suite(**files)
    run("--pexen", "--pexen-workers=4").assert_outcomes(passed=24)
    log = events()
    for (x, (xc, xu)), (y, (yc, yu)) in itertools.combinations(plan.items(), 2):
        conflict = xc & (yc | yu) or yc & (xc | xu)
        if conflict:
            spans = (log.start(x), log.end(x)), (log.start(y), log.end(y))
            assert not overlapping(*spans), (x, y, conflict)


GROUPS_INI = """[pytest]
pexen_groups =
    vm: workers=1 pool=process
    wide: workers=3
"""


def test_groups_never_interleave_and_keep_their_worker_counts(pytester, suite, run, events):
    suite(
        test_vm=sleepers("vm", 3, "group='vm'", seconds=0.15),
        test_wide=sleepers("wide", 6, "group='wide'", seconds=0.2),
        test_plain=sleepers("plain", 4, seconds=0.15),
    )
    pytester.makeini(GROUPS_INI)
    run("--pexen", "--pexen-workers=2").assert_outcomes(passed=13)
    log = events()
    spans = {g: intervals(log, f"test_{g}") for g in ("plain", "vm", "wide")}
    # Configuration order: the default group first, then vm, then wide.
    assert max(e for _, e in spans["plain"]) <= min(s for s, _ in spans["vm"])
    assert max(e for _, e in spans["vm"]) <= min(s for s, _ in spans["wide"])
    peak = {g: _peak(spans[g]) for g in spans}
    assert peak == {"plain": 2, "vm": 1, "wide": 3}


def _peak(spans: list[tuple[float, float]]) -> int:
    marks = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    live = best = 0
    for _, step in marks:
        live += step
        best = max(best, live)
    return best


def test_group_order_follows_dependencies(pytester, suite, run, events):
    suite(
        test_order='''
        import pytest

        @pytest.mark.pexen(requires=["image"])
        def test_use():
            pass

        @pytest.mark.pexen(group="vm", provides=["image"])
        def test_build():
            pass
        '''
    )
    pytester.makeini(GROUPS_INI)
    run("--pexen").assert_outcomes(passed=2)
    assert events().names() == ["test_build", "test_use"]


def test_groups_that_would_interleave_are_a_usage_error(pytester, suite, run, events):
    suite(
        test_loop='''
        import pytest

        @pytest.mark.pexen(group="vm", provides=["a"])
        def test_v1():
            pass

        @pytest.mark.pexen(requires=["a"], provides=["b"])
        def test_d():
            pass

        @pytest.mark.pexen(group="vm", requires=["b"])
        def test_v2():
            pass
        '''
    )
    pytester.makeini(GROUPS_INI)
    result = run("--pexen")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        [
            "*groups would have to interleave*",
            "*test_loop.py::test_d (group 'default') waits for test_loop.py::test_v1 (group 'vm')*",
        ]
    )
    assert events().names() == []


def test_unknown_group_is_a_usage_error(suite, run):
    suite(test_g="import pytest\n\n@pytest.mark.pexen(group='gpu')\ndef test_it():\n    pass\n")
    result = run("--pexen")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["*test_g.py::test_it: group 'gpu' is not configured (configured: 'default')*pexen_groups*"]
    )


@pytest.mark.parametrize(
    "line, message",
    [
        ("vm workers=1", "expected 'name: workers=N pool=KIND'"),
        ("vm: workers=0", "workers of group 'vm' must be a whole number from 1 to 1024, or 'auto', got '0'"),
        ("vm: pool=fiber", "pool of group 'vm' must be one of process, thread, dask, got 'fiber'"),
        ("vm: cores=2", "unknown setting 'cores' for group 'vm'; known: workers, pool, address"),
        ("vm: workers", "expected key=value, got 'workers'"),
        (
            "vm: workers=2 address=tcp://lab:8786",
            "address= of group 'vm' is where a Dask scheduler listens, for a group with pool=dask; "
            "this group has pool=process",
        ),
    ],
)
def test_bad_group_configuration_is_a_usage_error(pytester, suite, run, line, message):
    suite(test_g="def test_it():\n    pass\n")
    pytester.makeini(f"[pytest]\npexen_groups =\n    {line}\n")
    result = run("--pexen")
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"*ini pexen_groups line 1*{message}*"])


def test_groups_from_a_conftest_hook(extend_conftest, suite, run, events):
    extend_conftest(
        "\ndef pytest_pexen_groups(config):\n    return {'solo': {'workers': 1}}\n"
    )
    suite(test_solo=sleepers("solo", 3, "group='solo'", seconds=0.1))
    run("--pexen", "--pexen-workers=3").assert_outcomes(passed=3)
    assert events().max_concurrency() == 1


THREADSAFE_ITEMS = '''
import os, time, pytest

class SleepItem(pytest.Item):
    pexen_threadsafe = True

    def __init__(self, *, seconds, **kwargs):
        super().__init__(**kwargs)
        self.seconds = seconds
        self.add_marker(pytest.mark.pexen(group="light"))

    def runtest(self):
        note("start", self.name)
        time.sleep(self.seconds)
        note("end", self.name)
        assert self.name != "bad"

    def reportinfo(self):
        return self.path, 0, self.name


class SleepFile(pytest.File):
    def collect(self):
        for line in self.path.read_text().split():
            name, seconds = line.split("=")
            yield SleepItem.from_parent(self, name=name, seconds=float(seconds))


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".sleep":
        return SleepFile.from_parent(parent, path=file_path)
'''


def test_thread_group_runs_threadsafe_items_many_at_once(pytester, extend_conftest, suite, run, events):
    extend_conftest(
        THREADSAFE_ITEMS
    )
    pytester.path.joinpath("checks.sleep").write_text(
        " ".join(f"s{n}=0.3" for n in range(6)) + " bad=0.1"
    )
    pytester.makeini("[pytest]\npexen_groups =\n    light: workers=6 pool=thread\n")
    result = run("--pexen", "--pexen-workers=1")
    result.assert_outcomes(passed=6, failed=1)
    log = events()
    assert log.max_concurrency() == 6
    assert len(log.pids()) == 1


def test_function_test_in_a_thread_group_is_a_usage_error(pytester, suite, run):
    suite(test_f="import pytest\n\n@pytest.mark.pexen(group='light')\ndef test_it():\n    pass\n")
    pytester.makeini("[pytest]\npexen_groups =\n    light: workers=6 pool=thread\n")
    result = run("--pexen")
    assert result.ret == 4
    result.stderr.fnmatch_lines(
        ["*test_f.py::test_it: group 'light' runs in a thread pool*put this test in a group with pool=process*"]
    )


def test_tests_with_locks_are_not_pushed_behind_a_stream_of_short_tests(suite, run, events):
    # Each test takes a few ms, so that the work a worker holds queued (at
    # most 0.1 s of it, which a test with locks may wait behind) is some 50
    # tests, well short of the 150 the check allows.
    suite(
        test_stream='''
        import time

        import pytest

        @pytest.mark.parametrize("n", range(100))
        def test_a(n):
            time.sleep(0.002)

        @pytest.mark.pexen(claims=["net"])
        def test_claimer():
            pass

        @pytest.mark.parametrize("n", range(200))
        def test_b(n):
            time.sleep(0.002)
        '''
    )
    run("--pexen", "--pexen-workers=2").assert_outcomes(passed=301)
    names = events().names()
    assert names.index("test_claimer") < names.index("test_b[150]")
