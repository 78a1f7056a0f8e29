"""Other plugins give the same results under --pexen as in a plain run.

Each test builds a tiny suite, runs it with the real plugin loaded, plain and
with ``--pexen --pexen-workers=2``, and compares what the plugin produced:
coverage reports, benchmark files, snapshot files, test databases, exit
codes. A missing plugin skips its tests (CI installs them: the ``test`` extra).
"""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable

import pytest

PEXEN = ("--pexen", "--pexen-workers=2")

# -- running a suite with plugins ------------------------------------------------------


class Suite:
    """A generated suite, run in subprocesses with only the plugins a test names."""

    def __init__(self, pytester: pytest.Pytester) -> None:
        self.pytester = pytester
        self.path = pytester.path

    def write(self, files: dict[str, str]) -> None:
        for name, text in files.items():
            path = self.path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip())

    def pytest(self, *args: str, plugins: tuple[str, ...] = (), timeout: float = 60) -> pytest.RunResult:
        loaded = [arg for plugin in ("pytest_pexen._plugin", *plugins) for arg in ("-p", plugin)]
        return self.pytester.run(sys.executable, "-m", "pytest", *loaded, *args, timeout=timeout)

    def run(self, *argv: str, timeout: float = 60) -> pytest.RunResult:
        return self.pytester.run(sys.executable, "-m", *argv, timeout=timeout)


@pytest.fixture
def plugin_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Suite:
    """A suite directory and a clean environment: only the plugins a run names are loaded."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    for name in list(os.environ):
        # An outer run under pexen, xdist or coverage must not leak into ours.
        if name.startswith(("PYTEST_XDIST_", "COVERAGE_", "PEXEN_")) or name == "PYTEST_ADDOPTS":
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "200")
    return Suite(pytester)


def each_mode(test: Callable[[tuple[str, ...]], object]) -> tuple[object, object]:
    """What *test* found plain, and under --pexen."""
    return test(()), test(PEXEN)


# -- pytest-cov and coverage.py ------------------------------------------------------------

CALC = {
    "pytest.ini": """
        [pytest]
        testpaths = tests
        pythonpath = .
    """,
    ".coveragerc": """
        [run]
        source = calc
    """,
    "calc/__init__.py": """
        from .ops import add, div, mul, sub
    """,
    "calc/ops.py": """
        def add(a, b):
            return a + b


        def sub(a, b):
            return a - b


        def mul(a, b):
            result = 0
            for _ in range(abs(b)):
                result = add(result, a)
            if b < 0:
                result = -result
            return result


        def div(a, b):
            if b == 0:
                raise ZeroDivisionError("b must not be 0")
            return a / b


        def never_called(x):
            if x:
                return "yes"
            return "no"
    """,
    "calc/text.py": """
        def shout(word):
            return word.upper() + "!"


        def whisper(word):
            word = word.lower()
            return "..." + word


        def unused_helper(items):
            out = []
            for item in items:
                out.append(item * 2)
            return out
    """,
    "tests/test_ops.py": """
        import pytest

        from calc import add, div, mul, sub


        def test_add():
            assert add(2, 3) == 5


        def test_sub():
            assert sub(2, 3) == -1


        @pytest.mark.parametrize("a,b,expected", [(2, 3, 6), (2, -3, -6)])
        def test_mul(a, b, expected):
            assert mul(a, b) == expected


        def test_div():
            assert div(6, 3) == 2


        def test_div_zero():
            with pytest.raises(ZeroDivisionError):
                div(1, 0)
    """,
    "tests/test_text.py": """
        from calc.text import shout, whisper


        def test_shout():
            assert shout("hi") == "HI!"


        def test_whisper():
            assert whisper("HI") == "...hi"
    """,
}

COV = ("pytest_cov.plugin",)


@pytest.fixture
def calc(plugin_suite: Suite) -> Suite:
    pytest.importorskip("pytest_cov")
    plugin_suite.write(CALC)
    return plugin_suite


def coverage_table(output: str) -> dict[str, str]:
    """File (and TOTAL) -> "statements missed percent missing-lines", from a term-missing table."""
    rows = {}
    for line in output.splitlines():
        found = re.match(r"^(\S+\.py|TOTAL)\s+(\d+\s+\d+\s+\d+%)\s*(.*)$", line.strip())
        if found:
            name, counts, missing = found.groups()
            rows[name] = f"{' '.join(counts.split())} {missing}".strip()
    return rows


def coverage_xml(path: Path) -> dict[str, str]:
    """File -> "line-rate missed-lines", and the total line-rate, from a Cobertura file."""
    root = ET.parse(path).getroot()
    rows = {"total": root.get("line-rate", "?")}
    for cls in root.iter("class"):
        missed = [line.get("number") for line in cls.iter("line") if line.get("hits") == "0"]
        rows[cls.get("filename", "?")] = f"{cls.get('line-rate')} {','.join(missed)}"
    return rows


def test_pytest_cov_reports_the_same_lines_as_plain(calc: Suite) -> None:
    def report(mode: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str], bool]:
        for leftover in ("cov.xml", "htmlcov"):
            assert not (calc.path / leftover).exists()
        result = calc.pytest(
            "--cov=calc", "--cov-report=term-missing", "--cov-report=xml:cov.xml",
            "--cov-report=html:htmlcov", *mode, plugins=COV,
        )  # fmt: skip
        assert result.ret == 0, result.stdout.str()
        table, xml = coverage_table(result.stdout.str()), coverage_xml(calc.path / "cov.xml")
        html = (calc.path / "htmlcov" / "index.html").is_file()
        (calc.path / "cov.xml").unlink()
        os.rename(calc.path / "htmlcov", calc.path / f"htmlcov{len(mode)}")
        return table, xml, html

    plain, pexen = each_mode(report)
    assert plain[0]["TOTAL"] == "30 7 77%"
    assert pexen == plain


def test_pytest_cov_fail_under_decides_as_in_plain(calc: Suite) -> None:
    def exit_code(mode: tuple[str, ...]) -> int:
        result = calc.pytest("--cov=calc", "--cov-fail-under=75", *mode, plugins=COV)
        return result.ret

    assert each_mode(exit_code) == (0, 0)


def test_pytest_cov_with_xdist_loaded_is_not_sent_testnodedown(calc: Suite) -> None:
    pytest.importorskip("xdist")
    result = calc.pytest("--cov=calc", "--cov-report=term-missing", *PEXEN, plugins=(*COV, "xdist.plugin"))
    assert result.ret == 0, result.stdout.str()
    assert coverage_table(result.stdout.str())["TOTAL"] == "30 7 77%"
    assert "a plugin failed" not in result.stdout.str()


@pytest.mark.parametrize(
    "run_options, settings",
    [((), ""), (("--parallel-mode",), ""), ((), "patch = fork, _exit")],
    ids=["data-file", "parallel", "patch-fork-exit"],
)
def test_coverage_run_reports_the_same_lines_as_plain(calc: Suite, run_options: tuple[str, ...], settings: str) -> None:
    # patch = _exit saves on os._exit in every process forked from the
    # controller, and patch = fork starts a new Coverage in each.
    (calc.path / ".coveragerc").write_text(f"[run]\nsource = calc\n{settings}\n")

    def report(mode: tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
        result = calc.run("coverage", "run", *run_options, "-m", "pytest", "-p", "pytest_pexen._plugin", *mode)
        assert result.ret == 0, result.stdout.str()
        if run_options:
            assert calc.run("coverage", "combine").ret == 0
        files = sorted(path.name for path in calc.path.glob(".coverage*") if path.name != ".coveragerc")
        reported = calc.run("coverage", "report", "-m")
        for path in calc.path.glob(".coverage*"):
            if path.name != ".coveragerc":
                path.unlink()
        return coverage_table(reported.stdout.str()), files

    plain, pexen = each_mode(report)
    assert plain == ({"calc/__init__.py": "1 0 100%", "calc/ops.py": "19 3 84% 25-27",
                      "calc/text.py": "10 4 60% 11-14", "TOTAL": "30 7 77%"}, [".coverage"])  # fmt: skip
    assert pexen == plain


def test_coverage_run_append_keeps_the_earlier_data(calc: Suite) -> None:
    def report(mode: tuple[str, ...]) -> dict[str, str]:
        first = calc.run("coverage", "run", "-m", "pytest", "-p", "pytest_pexen._plugin", "tests/test_text.py")
        assert first.ret == 0, first.stdout.str()
        second = calc.run(
            "coverage", "run", "--append", "-m", "pytest", "-p", "pytest_pexen._plugin", "tests/test_ops.py", *mode
        )
        assert second.ret == 0, second.stdout.str()
        table = coverage_table(calc.run("coverage", "report", "-m").stdout.str())
        (calc.path / ".coverage").unlink()
        return table

    plain, pexen = each_mode(report)
    assert plain["TOTAL"] == "30 7 77%"
    assert pexen == plain


WATCHED = """
    import time

    import pytest

    from calc import add, sub


    def test_add():
        assert add(2, 3) == 5


    @pytest.mark.pexen(timeout=1)
    def test_hangs():
        {hang}


    def test_sub():
        assert sub(2, 3) == -1
"""
#: A hang that unwinds when the watchdog interrupts it; its worker is ended right after.
UNWINDS = "time.sleep(30)"
#: One that does not: its worker is ended by SIGTERM in the middle of it.
IGNORES_THE_INTERRUPT = """while True:
            try:
                time.sleep(30)
            except BaseException:
                pass"""


@pytest.mark.parametrize(
    "how, hang", [("pytest-cov", IGNORES_THE_INTERRUPT), ("coverage run", UNWINDS)], ids=["pytest-cov", "coverage-run"]
)
def test_coverage_of_a_worker_ended_by_the_watchdog_is_kept(calc: Suite, how: str, hang: str) -> None:
    calc.write({"tests/test_ops.py": WATCHED.replace("{hang}", hang), "tests/test_text.py": ""})
    args = ("-p", "pytest_pexen._plugin", "--pexen", "--pexen-workers=1")
    if how == "pytest-cov":
        result = calc.run("pytest", *args, "-p", "pytest_cov.plugin", "--cov=calc", "--cov-report=term-missing")
        table = coverage_table(result.stdout.str())
    else:
        result = calc.run("coverage", "run", "-m", "pytest", *args)
        table = coverage_table(calc.run("coverage", "report", "-m").stdout.str())
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["*1 error*"])
    # add() ran only in the worker that was ended; sub() in the one that replaced it.
    assert table["calc/ops.py"] == "19 12 37% 10-15, 19-21, 25-27", result.stdout.str()
    assert "may be missing from the coverage report" not in result.stdout.str()


def test_coverage_lost_with_a_killed_worker_is_announced(calc: Suite) -> None:
    calc.write({"tests/test_killed.py": """
        import os
        import signal


        def test_killed():
            os.kill(os.getpid(), signal.SIGKILL)
    """})  # fmt: skip
    result = calc.pytest("--cov=calc", *PEXEN, plugins=COV)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["pexen: worker gw* ended before it could save its coverage data (killed by signal 9 (SIGKILL)): *"]
    )


# -- pytest-benchmark ----------------------------------------------------------------------------

BENCH = {
    "pytest.ini": """
        [pytest]
        testpaths = tests
        pythonpath = .
        addopts = --benchmark-min-rounds=3 --benchmark-max-time=0.002 --benchmark-min-time=0.00001
                  --benchmark-warmup=off --benchmark-storage=file://./.benchmarks --benchmark-disable-gc
    """,
    "fastmath.py": """
        def fib(n):
            a, b = 0, 1
            for _ in range(n):
                a, b = b, a + b
            return a


        def total(values):
            return sum(values)
    """,
    "tests/test_bench.py": """
        from fastmath import fib, total


        def test_fib(benchmark):
            assert benchmark(fib, 20) == 6765


        def test_total(benchmark):
            assert benchmark(total, list(range(100))) == 4950


        def test_plain():
            assert fib(10) == 55
    """,
}
BENCHMARK = ("pytest_benchmark.plugin",)


@pytest.fixture
def bench(plugin_suite: Suite) -> Suite:
    pytest.importorskip("pytest_benchmark")
    plugin_suite.write(BENCH)
    return plugin_suite


def test_benchmark_results_reach_the_table_json_and_saved_files(bench: Suite) -> None:
    def results(mode: tuple[str, ...]) -> tuple[bool, list[str], list[str], list[str]]:
        result = bench.pytest("--benchmark-json=out.json", "--benchmark-autosave", *mode, plugins=BENCHMARK)
        assert result.ret == 0, result.stdout.str()
        table = bool(re.search(r"benchmark: 2 tests", result.stdout.str()))
        data = json.loads((bench.path / "out.json").read_text())
        saved = sorted((bench.path / ".benchmarks").glob("*/*.json"))
        assert len(saved) == 1, saved
        autosaved = json.loads(saved[0].read_text())
        for path in [bench.path / "out.json", *saved]:
            path.unlink()
        names = sorted(b["name"] for b in data["benchmarks"])
        return table, sorted(data), names, sorted(b["name"] for b in autosaved["benchmarks"])

    plain, pexen = each_mode(results)
    assert plain == (True, ["benchmarks", "commit_info", "datetime", "machine_info", "version"],
                     ["test_fib", "test_total"], ["test_fib", "test_total"])  # fmt: skip
    assert pexen == plain


def test_benchmark_compare_fail_fails_as_in_plain(bench: Suite) -> None:
    baseline = bench.pytest("--benchmark-json=baseline.json", plugins=BENCHMARK)
    assert baseline.ret == 0, baseline.stdout.str()
    data = json.loads((bench.path / "baseline.json").read_text())
    for entry in data["benchmarks"]:  # a baseline a thousand times too fast
        entry["stats"] = {
            key: value / 1000 if isinstance(value, float) else value for key, value in entry["stats"].items()
        }
    (bench.path / "baseline.json").write_text(json.dumps(data))

    def exit_code(mode: tuple[str, ...]) -> int:
        args = ("--benchmark-compare=baseline.json", "--benchmark-compare-fail=min:50%", *mode)
        result = bench.pytest(*args, plugins=BENCHMARK)
        assert "Performance has regressed" in result.stdout.str() + result.stderr.str()
        return result.ret

    assert each_mode(exit_code) == (1, 1)


def test_benchmark_lost_with_its_worker_is_named(bench: Suite) -> None:
    bench.write({"tests/test_crash.py": """
        import os

        from fastmath import fib


        def test_crashes_after_measuring(benchmark):
            benchmark(fib, 5)
            os._exit(3)
    """})  # fmt: skip
    result = bench.pytest("--benchmark-json=out.json", *PEXEN, plugins=BENCHMARK)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["pexen: benchmark results may be missing: *tests/test_crash.py::test_crashes_after_measuring"]
    )
    names = sorted(b["name"] for b in json.loads((bench.path / "out.json").read_text())["benchmarks"])
    assert names == ["test_fib", "test_total"]


def test_benchmark_results_of_retried_attempts_are_kept(bench: Suite) -> None:
    bench.write({"tests/test_retried.py": """
        from pathlib import Path

        import pytest

        from fastmath import fib

        TRIED = Path(__file__).parent / "tried"


        @pytest.mark.pexen(retries=1)
        def test_retried(benchmark):
            benchmark(fib, 5)
            if not TRIED.exists():
                TRIED.write_text("")
                raise AssertionError("the first attempt fails after measuring")
    """})  # fmt: skip
    result = bench.pytest("--benchmark-json=out.json", *PEXEN, plugins=BENCHMARK)
    assert result.ret == 0, result.stdout.str()
    names = sorted(b["name"] for b in json.loads((bench.path / "out.json").read_text())["benchmarks"])
    # As pytest-rerunfailures' reruns in a plain run: each attempt's result is kept.
    assert names == ["test_fib", "test_retried", "test_retried", "test_total"]


# -- syrupy --------------------------------------------------------------------------------------

SHAPES = {
    "pytest.ini": """
        [pytest]
        testpaths = tests
        pythonpath = .
    """,
    "shapes.py": """
        def square(side):
            return {"kind": "square", "side": side, "area": side * side}


        def circle(radius):
            return {"kind": "circle", "radius": radius, "area": round(3.14159 * radius * radius, 3)}
    """,
    "tests/test_shapes.py": """
        from shapes import circle, square


        def test_square(snapshot):
            assert square(2) == snapshot


        def test_circle(snapshot):
            assert circle(1) == snapshot


        def test_two_in_one(snapshot):
            assert square(1) == snapshot
            assert circle(3) == snapshot


        def test_describe(snapshot):
            assert f"area {square(3)['area']}" == snapshot
    """,
    "tests/test_plain.py": """
        from shapes import square


        def test_no_snapshot():
            assert square(1)["area"] == 1
    """,
}
SYRUPY = ("syrupy",)
#: The directory syrupy writes to: one file, five snapshots.
SNAPSHOTS = Path("tests/__snapshots__")


@pytest.fixture
def shapes(plugin_suite: Suite) -> Suite:
    pytest.importorskip("syrupy")
    plugin_suite.write(SHAPES)
    return plugin_suite


def snapshot_files(directory: Path) -> dict[str, int]:
    """Each file in the snapshot directory, with the snapshots it holds (sidecars count as files)."""
    if not directory.is_dir():
        return {}
    return {path.name: path.read_text().count("# name:") for path in sorted(directory.iterdir())}


def snapshot_summary(output: str) -> str:
    """syrupy's closing report ("5 snapshots passed."), one line."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if "snapshot report summary" in line:
            return lines[index + 1].strip()
    return "(no snapshot report)"


def test_snapshots_are_written_in_workers_and_then_pass(shapes: Suite) -> None:
    def runs(mode: tuple[str, ...]) -> list[tuple[int, str, dict[str, int]]]:
        seen = []
        for args in (("--snapshot-update",), ()):
            result = shapes.pytest(*args, *mode, plugins=SYRUPY)
            seen.append((result.ret, snapshot_summary(result.stdout.str()), snapshot_files(shapes.path / SNAPSHOTS)))
        (shapes.path / SNAPSHOTS / "test_shapes.ambr").unlink()
        return seen

    plain, pexen = each_mode(runs)
    assert plain == [(0, "5 snapshots generated.", {"test_shapes.ambr": 5}),
                     (0, "5 snapshots passed.", {"test_shapes.ambr": 5})]  # fmt: skip
    assert pexen == plain


@pytest.mark.parametrize("xdist", [False, True], ids=["direct", "through-testnodedown"])
def test_existing_snapshots_pass_and_are_kept(shapes: Suite, xdist: bool) -> None:
    plugins = SYRUPY
    if xdist:
        pytest.importorskip("xdist")
        plugins = (*SYRUPY, "xdist.plugin")
    made = shapes.pytest("--snapshot-update", plugins=SYRUPY)
    assert made.ret == 0, made.stdout.str()
    golden = (shapes.path / SNAPSHOTS / "test_shapes.ambr").read_text()

    def runs(mode: tuple[str, ...]) -> list[tuple[int, str, dict[str, int]]]:
        seen = []
        for args in ((), ("--snapshot-update",)):
            result = shapes.pytest(*args, *mode, plugins=plugins)
            seen.append((result.ret, snapshot_summary(result.stdout.str()), snapshot_files(shapes.path / SNAPSHOTS)))
            assert (shapes.path / SNAPSHOTS / "test_shapes.ambr").read_text() == golden
        return seen

    plain, pexen = each_mode(runs)
    assert plain == [(0, "5 snapshots passed.", {"test_shapes.ambr": 5})] * 2
    assert pexen == plain


def test_a_lost_worker_turns_unused_snapshot_detection_off(shapes: Suite) -> None:
    made = shapes.pytest("--snapshot-update", plugins=SYRUPY)
    assert made.ret == 0, made.stdout.str()
    # One worker runs the snapshot tests, then dies; another runs the rest.
    shapes.write({"tests/test_shapes_crash.py": """
        import os


        def test_dies():
            os._exit(3)


        def test_after():
            pass
    """})  # fmt: skip
    result = shapes.pytest("--snapshot-update", "--pexen", "--pexen-workers=1", plugins=SYRUPY)
    assert result.ret == 1, result.stdout.str()
    result.stdout.fnmatch_lines(["pexen: worker gw0 (*) ended before finishing*unused-snapshot detection is off*"])
    assert snapshot_files(shapes.path / SNAPSHOTS) == {"test_shapes.ambr": 5}


def test_a_syrupy_too_old_for_workers_is_a_usage_error(shapes: Suite) -> None:
    shapes.write({"conftest.py": """
        from syrupy.session import SnapshotSession

        del SnapshotSession.add_worker_report  # as in syrupy < 5.5
    """})  # fmt: skip
    result = shapes.pytest("--snapshot-update", *PEXEN, plugins=SYRUPY)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--pexen needs syrupy 5.5 or later*"])
    assert not (shapes.path / SNAPSHOTS).exists()


# -- pytest-django -----------------------------------------------------------------------------------

NOTES = {
    "pytest.ini": """
        [pytest]
        testpaths = tests
        pythonpath = .
        DJANGO_SETTINGS_MODULE = proj.settings
    """,
    "proj/__init__.py": "",
    "proj/settings.py": """
        from pathlib import Path

        BASE_DIR = Path(__file__).resolve().parent.parent
        SECRET_KEY = "not-secret"
        USE_TZ = True
        INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "notes"]
        DATABASES = {
            "default": {
                "ENGINE": "django.db.backends.sqlite3",
                "NAME": BASE_DIR / "db.sqlite3",
                # On disk: processes that set up the test database share it unless it is named per worker.
                "TEST": {"NAME": str(BASE_DIR / "test_db.sqlite3")},
            }
        }
        DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
    """,
    "notes/__init__.py": "",
    "notes/models.py": """
        from django.db import models


        class Note(models.Model):
            title = models.CharField(max_length=100)
    """,
    "notes/migrations/__init__.py": "",
    "notes/migrations/0001_initial.py": """
        from django.db import migrations, models


        class Migration(migrations.Migration):
            initial = True
            dependencies = []
            operations = [
                migrations.CreateModel(
                    name="Note",
                    fields=[
                        ("id", models.AutoField(auto_created=True, primary_key=True, serialize=False)),
                        ("title", models.CharField(max_length=100)),
                    ],
                ),
            ]
    """,
    "tests/conftest.py": """
        import os
        from pathlib import Path

        import pytest

        LOG = Path(__file__).resolve().parent.parent / "dbnames.log"


        @pytest.fixture(autouse=True)
        def _record_db_name(request):
            if "db" in request.fixturenames:
                from django.db import connection

                with open(LOG, "a") as log:
                    log.write(os.path.basename(connection.settings_dict["NAME"]) + "\\n")
            yield
    """,
    "tests/test_notes.py": """
        import pytest
        from django.contrib.auth.models import User

        from notes.models import Note


        def test_create(db):
            Note.objects.create(title="a")
            assert Note.objects.count() == 1


        def test_user(db):
            User.objects.create_user("alice")
            assert User.objects.filter(username="alice").exists()


        @pytest.mark.parametrize("n", [1, 2, 3, 4])
        def test_many(db, n):
            for i in range(n):
                Note.objects.create(title=str(i))
            assert Note.objects.count() == n


        def test_no_db():
            assert Note(title="y").title == "y"
    """,
}


def test_django_workers_get_a_test_database_each(plugin_suite: Suite) -> None:
    pytest.importorskip("pytest_django")
    plugin_suite.write(NOTES)
    log = plugin_suite.path / "dbnames.log"

    def run(mode: tuple[str, ...]) -> tuple[int, list[str]]:
        result = plugin_suite.pytest(*mode, plugins=("pytest_django.plugin",))
        assert result.ret == 0, result.stdout.str()
        result.assert_outcomes(passed=7)
        names = sorted(set(log.read_text().split()))
        log.unlink()
        assert not list(plugin_suite.path.glob("test_db*")), "a test database was left behind"
        return result.ret, names

    plain, pexen = each_mode(run)
    assert plain == (0, ["test_db.sqlite3"])
    assert pexen == (0, ["test_db.sqlite3_gw0", "test_db.sqlite3_gw1"])


# -- pytest-rerunfailures ---------------------------------------------------------------------------

FLAKY = {
    "pytest.ini": """
        [pytest]
        testpaths = tests
    """,
    "tests/test_flaky.py": """
        from pathlib import Path

        import pytest

        SEEN = Path(__file__).parent / "seen"


        @pytest.mark.flaky(reruns=2)
        def test_fails_once():
            if not SEEN.exists():
                SEEN.write_text("")
                raise ConnectionError("first attempt fails")


        def test_stable():
            pass
    """,
}
RERUNFAILURES = ("pytest_rerunfailures",)


@pytest.fixture
def flaky(plugin_suite: Suite) -> Suite:
    pytest.importorskip("pytest_rerunfailures")
    plugin_suite.write(FLAKY)
    return plugin_suite


def test_fail_on_flaky_and_reruns_as_in_plain(flaky: Suite) -> None:
    def run(mode: tuple[str, ...]) -> tuple[int, int, str]:
        result = flaky.pytest("--fail-on-flaky", "-rR", *mode, plugins=RERUNFAILURES)
        (flaky.path / "tests" / "seen").unlink()
        rerun_lines = len(re.findall(r"^RERUN ", result.stdout.str(), re.M))
        return result.ret, rerun_lines, result.parseoutcomes().get("rerun", 0)

    assert each_mode(run) == ((7, 1, 1), (7, 1, 1))


def test_rerun_reports_are_shown_when_xdist_is_not_installed(flaky: Suite) -> None:
    flaky.write({"tests/conftest.py": """
        import pytest_rerunfailures

        # As if pytest-xdist were not installed: the version check answers None.
        pytest_rerunfailures.works_with_current_xdist = lambda: None
    """})  # fmt: skip
    result = flaky.pytest("-rR", *PEXEN, plugins=RERUNFAILURES)
    assert result.ret == 0, result.stdout.str()
    assert result.parseoutcomes() == {"passed": 2, "rerun": 1}


def test_pexen_retries_and_reruns_show_every_run_that_failed(flaky: Suite) -> None:
    flaky.write({"tests/test_flaky.py": """
        from pathlib import Path

        import pytest

        RUNS = Path(__file__).parent / "runs"


        @pytest.mark.pexen(retries=1)
        @pytest.mark.flaky(reruns=1)
        def test_always_fails():
            with open(RUNS, "a") as runs:
                runs.write("run\\n")
            raise AssertionError("fails every time")
    """})  # fmt: skip
    result = flaky.pytest("-rR", *PEXEN, plugins=RERUNFAILURES)
    runs = len((flaky.path / "tests" / "runs").read_text().split())
    assert runs == 4  # each of pexen's 2 attempts runs it twice
    assert result.parseoutcomes() == {"failed": 1, "rerun": runs - 1}
