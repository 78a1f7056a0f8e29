"""Outcome parity of ``pytest --pexen`` on real third-party test suites.

For each project in :data:`PROJECTS` this script downloads the pinned sdist,
builds a throwaway virtualenv under ``.bench-cache/`` (the project, its test
dependencies, pytest and this repository's pytest-pexen, editable), then runs
the project's own suite, each time from a freshly extracted copy of the sdist:
once with plain pytest, then R times (``--repeat R``, default 1) with
``--pexen --pexen-workers=N`` plus any ``--pexen-arg`` arguments. Every run
writes JUnit XML; every test's outcome in each pexen run must be the same as
in the plain run. Some mismatches are intermittent (tests sharing a file in
the working directory, or relying on what an earlier test left in the
process), so each pexen run is compared and reported on its own, with a count
of the runs that mismatched per project. The wall time of every run is
printed, per project and in total.

The sdists are extracted under the system's temporary directory, not under
``.bench-cache/``: inside this repository pytest would take this repository's
``pyproject.toml`` as the configuration of a project that has none of its own.

Usage::

    python bench/parity.py [--workers N] [--repeat R] [--pexen-arg=ARG ...]
                           [--rebuild] [project ...]

``--pexen-arg`` is repeatable and goes to the pexen runs only, e.g.
``--pexen-arg=--pexen-affinity=class`` (write it with ``=``: a value that
starts with ``-`` would otherwise be read as an option of this script).

Exits 1 if any project shows a mismatch, 2 if a project could not be set up
or run at all, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import venv
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".bench-cache"
SOURCES = Path(tempfile.gettempdir()) / "pexen-parity"
PYTEST = "pytest==9.0.3"
RUN_TIMEOUT = 900.0
BASE_ARGS = ("-p", "no:cacheprovider", "-q")
#: pytest's closing line, e.g. "3 failed, 70 passed, 2 subtests passed in 1.20s".
SUMMARY_LINE = re.compile(r"^=*\s*(\d+ [a-z ]+(?:, \d+ [a-z ]+)*) in [\d.]+s\b.*$")
#: Summary counts that may differ between the runs without a test's outcome
#: differing: a warning shown "once" is shown once per process.
NOT_OUTCOMES = frozenset({"warning", "warnings"})
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Project:
    """A pinned project and what its test suite needs."""

    name: str
    version: str
    deps: tuple[str, ...] = ()
    args: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.name}-{self.version}"

    def spec(self) -> str:
        """What the venv was built from; a change means rebuilding it."""
        return json.dumps([self.name, self.version, PYTEST, list(self.deps)])


PROJECTS: dict[str, Project] = {
    p.name: p
    for p in (
        Project("iniconfig", "2.3.1"),
        Project("more-itertools", "11.2.1"),
        Project("six", "1.17.0"),
        Project("toolz", "1.2.0"),
        Project(
            "packaging",
            "26.3",
            deps=("hypothesis==6.170.15", "pretend==1.0.9", "tomli-w==1.2.0"),
            # 51,000 parametrized version cases would take the run past a minute.
            args=("--ignore=tests/test_version.py",),
        ),
        Project(
            "attrs",
            "26.1.0",
            deps=("hypothesis==6.170.15", "cloudpickle==3.1.2", "pympler==1.1"),
        ),
        Project(
            "python-dateutil",
            "4.0.0",
            # Its conftest marks items no_cover, a marker pytest-cov registers.
            deps=(
                "hypothesis==6.170.15",
                "freezegun==1.5.5",
                "attrs==26.1.0",
                "pytest-cov==7.1.0",
            ),
        ),
        # 0.9 adds a C extension whose absence its conftest turns into errors.
        Project(
            "wcwidth",
            "0.8.5",
            deps=("pytest-cov==7.1.0", "coverage==7.17.3"),
        ),
        # Heavy parametrization, conftest fixtures around CliRunner, capsys,
        # monkeypatch, filterwarnings=error; addopts deselects "stress".
        Project("click", "8.5.1"),
        # Class-based tests, async tests (trio via importorskip), tmp_path.
        Project("jinja2", "3.1.6", deps=("trio==0.35.0",)),
        # pytest-asyncio (asyncio_mode=auto), xfail_strict, once::Warning,
        # --import-mode=importlib. Its pytest-randomly is left out on purpose:
        # a shuffled order could not be compared. Its test_output.py holds
        # `from sys import stdout` bound during collection, so it sees a
        # worker that swaps sys.stdout/sys.stderr for new objects.
        Project(
            "structlog",
            "26.1.0",
            deps=(
                "pytest-asyncio==1.5.0",
                "time-machine==3.6.0",
                "simplejson==4.3.0",
                "greenlet==3.5.6",
                "rich==15.0.0",
                "twisted==26.10.0",
            ),
        ),
        # Doctests of the package (as its tox.ini runs them) plus tests/.
        Project("boltons", "26.2.0", args=("--doctest-modules", "boltons", "tests")),
        # pytester-based tests of its own pytest plugin, xfail_strict.
        # tests/mypy runs a mypy subprocess over whole files: slow, and not
        # about pytest.
        Project("typeguard", "4.6.0", args=("--ignore=tests/mypy",)),
        # pytest-mock's mocker, monkeypatch and parametrized fixtures.
        Project(
            "platformdirs",
            "4.14.5",
            deps=("pytest-mock==3.17.0", "appdirs==1.4.4"),
        ),
        # unittest.TestCase classes with self.subTest (pytest's subtests
        # counts) next to plain tests; the matplotlib cases skip themselves
        # without matplotlib. Test03/05/07 switch packrat parsing on for the
        # whole process and Test04/06/08 (the full Test02 class run again)
        # rely on having run after them in the same process: in a worker that
        # did not run the switch, Test04::test_pep8_synonyms runs 7 subtests
        # instead of 3 (plain pytest does the same when run on that test
        # alone). Deselected, which also halves the run time.
        Project(
            "pyparsing",
            "3.3.3",
            deps=("railroad-diagrams==3.0.1", "jinja2==3.1.6"),
            args=(
                "tests",
                *(
                    f"--deselect=tests/test_unit.py::{name}"
                    for name in (
                        "Test03_EnablePackratParsing",
                        "Test04_WithPackrat",
                        "Test05_EnableBoundedPackratParsing",
                        "Test06_WithBoundedPackrat",
                        "Test07_EnableUnboundedPackratParsing",
                        "Test08_WithUnboundedPackrat",
                    )
                ),
            ),
        ),
        # A session-scoped parametrized fixture (converter_cls), hypothesis
        # throughout, xfail. Its "fast" hypothesis profile (10 examples) keeps
        # the run near half a minute instead of four. The serializer libraries
        # are the ones its tests import (tomli-w for TomllibConverter.dumps).
        Project(
            "cattrs",
            "26.2.1",
            deps=(
                "hypothesis==6.170.15",
                "immutables==0.21",
                "pytest-benchmark==5.3.1",
                "pymongo==4.20.0",
                "msgpack==1.2.4",
                "pyyaml==6.0.3",
                "tomlkit==0.15.2",
                "ujson==6.1.0",
                "orjson==3.13.0",
                "msgspec==0.22.0",
                "cbor2==6.2.1",
                "tomli-w==1.2.0",
            ),
            args=("tests", "--hypothesis-profile=fast"),
        ),
        # Its tox.ini addopts measure coverage (--cov-fail-under=99) and write
        # their own junit.xml: coverage is no outcome, so addopts are emptied
        # (pytest-cov is then not needed). pytz and simplejson as its test
        # extra pins them; pytest-mock's mocker throughout.
        Project(
            "arrow",
            "1.4.0",
            deps=(
                "dateparser==1.5.0",
                "pytz==2025.2",
                "simplejson==3.20.2",
                "pytest-mock==3.17.0",
            ),
            args=("-o", "addopts="),
        ),
        # pytest.ini: --doctest-modules over parso/ and test/, filterwarnings =
        # error, and a session-scoped fixture (usefixtures) that points the
        # parser cache at a temporary directory per process.
        Project("parso", "0.8.7"),
        # Plain pytest functions and classes, heavy parametrization.
        # test_invalid_datetime_deserialization is parametrized with
        # datetime.now() formatted to the second at import, so two of its
        # test ids differ from one run to the next and could never match
        # (within a run they agree: workers fork after collection).
        # Deselected, all 11 cases of it.
        Project(
            "marshmallow",
            "4.4.0",
            deps=("simplejson==4.3.0",),
            args=(
                "--deselect=tests/test_deserialization.py::TestFieldDeserialization"
                "::test_invalid_datetime_deserialization",
            ),
        ),
        # A unittest suite (the project runs `unittest discover tests`).
        # tests/test_legacy.py calls warnings.simplefilter("error") at import,
        # which makes pytest's collection warning about unittest.TestSuite
        # (imported into test_md_in_html.py) a collection error: with
        # python_classes empty only TestCase subclasses are collected. pytest
        # ignores the load_tests() of test_md_in_html.py, so the TestHTMLBlocks
        # class it imports runs twice (1275 tests against unittest's 1141).
        # 60 skips are the Pygments tests, which run only when the
        # PYGMENTS_VERSION variable names the installed Pygments (its tox
        # "pygments" env); 5 more are skipped in the source.
        Project(
            "Markdown",
            "3.11.3",
            deps=("pyyaml==6.0.4",),
            args=("-o", "python_classes=", "tests"),
        ),
        # [tool.pytest] (pytest 9's native TOML table): --doctest-modules over
        # src/ and tests/, filterwarnings = error; freezegun; the benchmark
        # fixture from pytest-benchmark (its pytest-codspeed acts only with
        # --codspeed, so it is left out). The .mo catalogues ship in the sdist.
        Project(
            "humanize",
            "4.17.0",
            deps=("freezegun==1.5.5", "pytest-benchmark==5.3.1"),
        ),
        # Parametrized tests, xfail (one non-strict xpass), a CLI test via
        # capsys.
        Project("sqlparse", "0.6.1"),
        # As its tox.ini runs it, with the numpy, pandas and wcwidth of the
        # "-extra" envs its CI uses; one skip is in the source.
        Project(
            "tabulate",
            "0.10.0",
            deps=("numpy==2.4.6", "pandas==3.1.1", "wcwidth==0.9.4"),
            args=("--doctest-modules", "--ignore=benchmark"),
        ),
        # unittest.TestCase classes with many self.subTest (its own runner is
        # test/alltests.py). Pygments, Pillow and the pycmark Markdown parser
        # are its optional test dependencies. Skipped: the 13 tests of
        # test_parsers/test_recommonmark (recommonmark is deprecated and wants
        # Sphinx), test_tex2mathml_extern (external TeX-to-MathML converters,
        # "run stand-alone") and one html4css1 highlighting test written for
        # Pygments < 2.14. Every test of test_dependencies.py's
        # RecordDependenciesTests writes record.rst in the working directory
        # and reads it back.
        Project(
            "docutils",
            "0.23",
            deps=("pygments==2.21.0", "pillow==13.0.0", "pycmark==0.9.6"),
            args=("test",),
        ),
        # maya as its requirements.txt asks for on Python < 3.12. Of the 5
        # skips, two need a da/de/fr UTF-8 locale this system lacks; the
        # others are in the source (time.clock, a known timezone bug).
        Project("freezegun", "1.5.5", deps=("maya==0.6.1",)),
        # Not added: sortedcontainers 2.4.0 (its sdist has no tests);
        # markupsafe (the sdist builds a C extension); werkzeug (its dev-server
        # tests start server processes and need cryptography); pluggy 1.7.0
        # ran with parity but uses no pytest feature the others miss.
    )
}


@dataclass
class RunResult:
    """One pytest run: how it ended and what each test did."""

    returncode: int
    seconds: float
    outcomes: dict[tuple[str, str], str]
    log: Path
    counts: dict[str, int] = field(default_factory=dict)
    problem: str | None = None


@dataclass
class Comparison:
    """A project's plain run and one of its pexen runs side by side."""

    project: Project
    plain: RunResult
    pexen: RunResult
    mismatches: list[str] = field(default_factory=list)


@dataclass
class ProjectResult:
    """A project's plain run and each of its pexen runs compared with it."""

    project: Project
    plain: RunResult
    runs: list[Comparison]

    @property
    def mismatched_runs(self) -> int:
        return sum(1 for run in self.runs if run.mismatches)

    @property
    def pexen_seconds(self) -> list[float]:
        return [run.pexen.seconds for run in self.runs]


class SetupError(Exception):
    """A project could not be downloaded, installed or extracted."""


# -- environment -----------------------------------------------------------


def run_checked(command: list[str], log: Path) -> None:
    """Run a setup command, appending its output to *log*; raise on failure."""
    with log.open("a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=clean_env())
    if done.returncode != 0:
        raise SetupError(f"{' '.join(command[:4])} ... failed (exit {done.returncode}), see {log}")


def clean_env() -> dict[str, str]:
    """The environment minus anything that would change how pytest runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "VIRTUAL_ENV"))}
    env.pop("PYTHONPATH", None)
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def project_dir(project: Project) -> Path:
    return CACHE / project.key


def download_sdist(project: Project) -> Path:
    """The project's sdist, downloaded once into the cache."""
    where = CACHE / "sdists" / project.key
    found = sorted(where.glob("*.tar.gz")) if where.is_dir() else []
    if found:
        return found[0]
    where.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
        "--no-deps", "--dest", str(where), f"{project.name}=={project.version}",
    ]
    run_checked(command, project_dir(project) / "setup.log")
    found = sorted(where.glob("*.tar.gz"))
    if not found:
        raise SetupError(f"no .tar.gz sdist for {project.key} in {where}")
    return found[0]


def venv_python(project: Project) -> Path:
    return project_dir(project) / "venv" / "bin" / "python"


def ensure_venv(project: Project, sdist: Path, rebuild: bool) -> Path:
    """A venv with the project, its test deps, pytest and pytest-pexen."""
    home = project_dir(project) / "venv"
    stamp = home / "parity-spec.json"
    if not rebuild and stamp.is_file() and stamp.read_text() == project.spec():
        return venv_python(project)
    shutil.rmtree(home, ignore_errors=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(home)
    python = str(venv_python(project))
    log = project_dir(project) / "setup.log"
    pip = [python, "-m", "pip", "install", "--quiet"]
    run_checked(pip + [PYTEST, *project.deps], log)
    run_checked(pip + [str(sdist)], log)
    run_checked(pip + ["-e", str(REPO)], log)
    stamp.write_text(project.spec())
    return venv_python(project)


def extract_fresh(sdist: Path, project: Project) -> Path:
    """A pristine copy of the sdist's source tree; returns its root."""
    target = SOURCES / project.key
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    with tarfile.open(sdist) as archive:
        archive.extractall(target, filter="data")
    roots = [p for p in target.iterdir() if p.is_dir()]
    if len(roots) != 1:
        raise SetupError(f"{sdist.name}: expected one top-level directory, found {len(roots)}")
    return roots[0]


# -- running and parsing -----------------------------------------------------


def run_suite(
    python: Path, sdist: Path, project: Project, mode: str, extra: tuple[str, ...]
) -> RunResult:
    """Run the suite from a fresh source tree; *extra* selects the mode."""
    source = extract_fresh(sdist, project)
    junit = project_dir(project) / f"{mode}.xml"
    log = project_dir(project) / f"{mode}.log"
    junit.unlink(missing_ok=True)
    command = [
        str(python), "-m", "pytest", *BASE_ARGS, *extra,
        f"--junitxml={junit}", *project.args,
    ]
    started = time.monotonic()
    with log.open("w") as out:
        try:
            done = subprocess.run(
                command, cwd=source, stdout=out, stderr=subprocess.STDOUT,
                env=clean_env(), timeout=RUN_TIMEOUT,
            )
            returncode = done.returncode
        except subprocess.TimeoutExpired:
            seconds = time.monotonic() - started
            return RunResult(-1, seconds, {}, log, problem=f"timed out after {RUN_TIMEOUT:.0f}s")
    seconds = time.monotonic() - started
    counts = parse_summary(log)
    if not junit.is_file():
        return RunResult(returncode, seconds, {}, log, counts, "wrote no JUnit XML")
    try:
        outcomes = parse_junit(junit)
    except ET.ParseError as error:
        return RunResult(returncode, seconds, {}, log, counts, f"unreadable JUnit XML: {error}")
    return RunResult(returncode, seconds, outcomes, log, counts)


def parse_summary(log: Path) -> dict[str, int]:
    """The counts of pytest's closing line ("12 passed, 1 xfailed ...").

    JUnit XML has no subtests; this line counts them.
    """
    counts: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines():
        match = SUMMARY_LINE.match(ANSI_ESCAPE.sub("", line).strip())
        if match:
            counts = {}
            for part in match.group(1).split(", "):
                number, word = part.split(" ", 1)
                counts[word] = int(number)
    return counts


def parse_junit(path: Path) -> dict[tuple[str, str], str]:
    """``{(classname, name): outcome}`` for every test case in a JUnit file.

    pytest may write several ``<testcase>`` elements for one test (a failure
    in the call and an error in teardown), so a test's outcome is read from
    the children of all of its elements together.
    """
    children: dict[tuple[str, str], list[ET.Element]] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        key = (case.get("classname", ""), case.get("name", ""))
        children.setdefault(key, []).extend(case)
    return {key: outcome_of(elements) for key, elements in children.items()}


def outcome_of(elements: list[ET.Element]) -> str:
    """passed, failed, error, skipped or xfailed, plus a teardown error.

    An ``<error>`` saying "failed on teardown" comes on top of the test's
    own outcome (a passed test can have one); any other ``<error>`` is a
    setup or collection error.
    """
    tags = [element.tag for element in elements]
    errors = [e.get("message", "") for e in elements if e.tag == "error"]
    teardown = [m for m in errors if m.startswith("failed on teardown")]
    if "failure" in tags:
        outcome = "failed"
    elif len(errors) > len(teardown):
        outcome = "error"
    elif "skipped" in tags:
        skip = next(e for e in elements if e.tag == "skipped")
        outcome = "xfailed" if skip.get("type") == "pytest.xfail" else "skipped"
    else:
        outcome = "passed"
    return outcome + " + teardown error" if teardown else outcome


# -- comparing and reporting ---------------------------------------------------


def compare(project: Project, plain: RunResult, pexen: RunResult) -> Comparison:
    result = Comparison(project, plain, pexen)
    for label, run in (("plain", plain), ("pexen", pexen)):
        if run.problem:
            result.mismatches.append(
                f"{label} run {run.problem} (exit {run.returncode}), see {run.log}"
            )
    if plain.returncode != pexen.returncode:
        result.mismatches.append(f"exit code: plain {plain.returncode}, pexen {pexen.returncode}")
    for word in sorted(plain.counts.keys() | pexen.counts.keys()):
        in_plain, in_pexen = plain.counts.get(word, 0), pexen.counts.get(word, 0)
        if in_plain != in_pexen and word not in NOT_OUTCOMES:
            result.mismatches.append(f"summary line: {in_plain} {word} plain, {in_pexen} pexen")
    for key in sorted(plain.outcomes.keys() | pexen.outcomes.keys()):
        before = plain.outcomes.get(key, "missing")
        after = pexen.outcomes.get(key, "missing")
        if before != after:
            name = "::".join(filter(None, key))
            result.mismatches.append(f"{name}: plain {before}, pexen {after}")
    return result


def summary(outcomes: dict[tuple[str, str], str]) -> str:
    counts: dict[str, int] = {}
    for outcome in outcomes.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    return ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items())) or "none"


def closing_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {word}" for word, n in counts.items()) or "(no closing line)"


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def ratio(pexen: float, plain: float) -> str:
    return f"{pexen / plain:.2f}x" if plain > 0 else "-"


def report(result: ProjectResult) -> None:
    plain, runs = result.plain, result.runs
    status = "MISMATCH" if result.mismatched_runs else "ok"
    print(
        f"{result.project.key}: {status} "
        f"({result.mismatched_runs} of {len(runs)} pexen runs with mismatches)"
    )
    print(f"  tests: {len(plain.outcomes)} ({summary(plain.outcomes)})")
    print(
        f"  {'plain:':<9} {plain.seconds:6.1f}s  exit {plain.returncode}  "
        f"{closing_line(plain.counts)}"
    )
    for number, run in enumerate(runs, 1):
        label = f"pexen {number}:" if len(runs) > 1 else "pexen:"
        print(
            f"  {label:<9} {run.pexen.seconds:6.1f}s  exit {run.pexen.returncode}  "
            f"{closing_line(run.pexen.counts)}  [{len(run.mismatches)} mismatches]"
        )
    times = result.pexen_seconds
    spread = ""
    if len(times) > 1:
        spread = f" (mean of {len(times)}, {min(times):.1f}-{max(times):.1f}s)"
    print(
        f"  wall time: plain {plain.seconds:.1f}s, pexen {mean(times):.1f}s{spread}, "
        f"pexen/plain {ratio(mean(times), plain.seconds)}"
    )
    for number, run in enumerate(runs, 1):
        if not run.mismatches:
            continue
        where = f" in pexen run {number}" if len(runs) > 1 else ""
        print(f"  mismatches{where}: {len(run.mismatches)}")
        for line in run.mismatches:
            print(f"    {line}")
    sys.stdout.flush()


def check(
    project: Project, workers: int, rebuild: bool, repeat: int, pexen_args: tuple[str, ...]
) -> ProjectResult:
    project_dir(project).mkdir(parents=True, exist_ok=True)
    (project_dir(project) / "setup.log").unlink(missing_ok=True)
    sdist = download_sdist(project)
    python = ensure_venv(project, sdist, rebuild)
    plain = run_suite(python, sdist, project, "plain", ())
    extra = ("--pexen", f"--pexen-workers={workers}", *pexen_args)
    runs = []
    for number in range(1, repeat + 1):
        mode = f"pexen-{number}" if repeat > 1 else "pexen"
        pexen = run_suite(python, sdist, project, mode, extra)
        runs.append(compare(project, plain, pexen))
    return ProjectResult(project, plain, runs)


def pexen_revision() -> str:
    """The commit of the pytest-pexen under test, marked if it has local changes."""
    command = ["git", "-C", str(REPO), "describe", "--always", "--dirty=+uncommitted changes"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown revision"
    return done.stdout.strip()


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "projects", nargs="*", metavar="project", help=f"default: all of {', '.join(PROJECTS)}"
    )
    parser.add_argument("--workers", type=int, default=2, help="--pexen-workers (default 2)")
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="R",
        help="run each project's pexen run R times, each compared with the plain run (default 1)",
    )
    parser.add_argument(
        "--pexen-arg", action="append", default=[], metavar="ARG", dest="pexen_args",
        help="an extra pytest argument for the pexen runs only; repeatable; "
        "write --pexen-arg=--some-option",
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="rebuild the venvs even if up to date"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    unknown = [name for name in args.projects if name not in PROJECTS]
    if unknown:
        parser.error(f"unknown project(s): {', '.join(unknown)}; known: {', '.join(PROJECTS)}")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    names = args.projects or list(PROJECTS)
    pexen_args = tuple(args.pexen_args)
    print(
        f"pytest-pexen {pexen_revision()}, {PYTEST}, --pexen-workers={args.workers}"
        f"{' ' + ' '.join(pexen_args) if pexen_args else ''}, "
        f"{args.repeat} pexen run(s) per project\n"
    )
    results: list[ProjectResult] = []
    broken: list[str] = []
    for name in names:
        project = PROJECTS[name]
        try:
            result = check(project, args.workers, args.rebuild, args.repeat, pexen_args)
        except SetupError as error:
            print(f"{project.key}: SETUP FAILED: {error}")
            broken.append(project.key)
            continue
        report(result)
        results.append(result)
    mismatched = [r for r in results if r.mismatched_runs]
    print(
        f"\n{len(names)} project(s): {len(mismatched)} with mismatches, "
        f"{len(broken)} not set up"
    )
    for result in mismatched:
        print(
            f"  {result.project.key}: {result.mismatched_runs} of {len(result.runs)} "
            "pexen runs with mismatches"
        )
    if results:
        plain_total = sum(r.plain.seconds for r in results)
        pexen_total = sum(mean(r.pexen_seconds) for r in results)
        per_run = (
            " (sum of each project's mean over its pexen runs)" if args.repeat > 1 else ""
        )
        print(
            f"wall time of {len(results)} project(s): plain {plain_total:.1f}s, "
            f"pexen {pexen_total:.1f}s{per_run}, pexen/plain {ratio(pexen_total, plain_total)}"
        )
    if broken:
        return 2
    return 1 if mismatched else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
