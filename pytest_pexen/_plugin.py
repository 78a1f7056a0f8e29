"""The plugin pytest loads: options, the ``pexen`` marker, and what to register.

Kept light: a plain ``pytest`` run with the plugin installed imports only
this, the in-test API and the error types. The ``--pexen`` session
(:mod:`._session`) and the xUnit writer (:mod:`._xunit`) are imported when
asked for. Without ``--pexen`` nothing changes pytest's behaviour, except
that script tests (ini ``pexen_scripts``) and tasks that conftests generate
(:mod:`._sources`) are collected and run, serially, as any test is, and
that ``pexen_data`` reaches ``pexen_inputs`` of the tests after it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

import pytest

from . import _api, _sources
from ._errors import PexenError

#: Name under which the xUnit writer is registered (workers unregister it).
XUNIT_PLUGIN = "pexen-xunit"
#: The plugin that makes a process a Dask worker's host (:mod:`._pools.dask_host`):
#: it collects as the controller does, and the controller plans and runs.
#: Named here, not imported: this module stays light.
DASK_HOST_PLUGIN = "pytest_pexen._pools.dask_host"
#: Options that mean nothing without --pexen: (option, dest).
_PEXEN_ONLY = (
    ("--pexen-dask", "pexen_dask"),
    ("--pexen-resume", "pexen_resume"),
    ("--pexen-resume-anyway", "pexen_resume_anyway"),
    ("--pexen-break", "pexen_break"),
    ("--pexen-reboot-cmd", "pexen_reboot_cmd"),
    ("--pexen-timeline", "pexen_timeline"),
    ("--pexen-trace", "pexen_trace"),
)
#: --pexen-xunit-flavor choices (see :mod:`._xunit`).
FLAVORS = ("junit10", "rich")
MARKER_HELP = (
    "pexen(requires=[], provides=[], after=[], claims=[], uses=[], priority=0, "
    "group=None, timeout=None, retries=0, retry_delay=0, on_resume='rerun', affinity=None): "
    "pytest-pexen scheduling metadata, see the pytest-pexen docs"
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pexen", "pytest-pexen: dependency-aware parallel runs")
    group.addoption(
        "--pexen",
        action="store_true",
        default=False,
        help="run tests with the pexen scheduler: in parallel, in the order "
        "their requires/provides/after metadata allows",
    )
    group.addoption(
        "--pexen-workers",
        metavar="N|auto",
        default=None,
        help="worker processes (default: ini pexen_workers, else auto = CPU count)",
    )
    group.addoption(
        "--pexen-dask",
        metavar="ADDRESS",
        default=None,
        help="the Dask scheduler (tcp://host:8786) that groups with pool=dask and no "
        "address= of their own run on (default: ini pexen_dask, else a local cluster "
        "started for the run); needs pytest-pexen[dask]",
    )
    group.addoption(
        "--pexen-no-pull",
        action="store_true",
        default=False,
        help="when a subset is selected, do not pull in the tests that provide "
        "what it requires (such requirements are then reported as blocked)",
    )
    group.addoption(
        "--pexen-affinity",
        metavar="none|class|file",
        default=None,
        help="keep tests of one class (or one file) on one worker, in collection order "
        "(default: ini pexen_affinity, else class); a test's marker or conftest "
        "pexen_defaults take precedence",
    )
    group.addoption(
        "--pexen-timeout",
        metavar="SECONDS",
        default=None,
        help="time limit of each test (a test's marker or conftest pexen_defaults "
        "take precedence; default: ini pexen_timeout, else none)",
    )
    group.addoption(
        "--pexen-session-timeout",
        metavar="SECONDS",
        default=None,
        help="time limit of the whole run: then running tests are ended as timed "
        "out and the rest reported as not run",
    )
    group.addoption(
        "--pexen-max-crashes",
        metavar="N",
        type=int,
        default=5,
        help="stop the run after N workers crashed in a row (default: 5)",
    )
    group.addoption(
        "--pexen-xunit",
        metavar="PATH",
        default=None,
        help="write a JUnit XML file for CI, kept current during the run (default: ini pexen_xunit)",
    )
    group.addoption(
        "--pexen-xunit-flavor",
        choices=FLAVORS,
        default="junit10",
        help="junit10 (default): valid against the Jenkins JUnit schema; rich: adds "
        "testcase file, line and properties that GitLab and GitHub reporters read",
    )
    group.addoption(
        "--pexen-state",
        metavar="PATH|off",
        default=None,
        help="the state file that lets a run resume (default: ini pexen_state, else "
        "<rootdir>/.pexen/state.db); off: keep no state",
    )
    group.addoption(
        "--pexen-resume",
        action="store_true",
        default=False,
        help="continue the newest unfinished run in the state file: finished tests are "
        "reported from the file, not run again",
    )
    group.addoption(
        "--pexen-resume-anyway",
        action="store_true",
        default=False,
        help="with --pexen-resume: resume even if the selection or the options that "
        "shape it changed since the saved run",
    )
    group.addoption(
        "--pexen-status",
        action="store_true",
        default=False,
        help="show the runs in the state file and whether they can be resumed; run nothing",
    )
    group.addoption(
        "--pexen-break",
        metavar="PATTERN",
        action="append",
        default=[],
        help="stop before the test that matches (a node id glob, or tag:NAME for the test "
        "providing NAME), save the state, and exit; --pexen-resume continues there (repeatable)",
    )
    group.addoption(
        "--pexen-reboot-cmd",
        metavar="CMD",
        default=None,
        help="shell command that reboots the machine when a test calls "
        "pytest_pexen.reboot() (default: ini pexen_reboot_cmd, else none)",
    )
    group.addoption(
        "--pexen-reboot-wait",
        metavar="SECONDS",
        default=None,
        help="how long to wait for the machine to go down once the reboot command "
        "returned, before the run ends saying it did not (default: 300)",
    )
    group.addoption(
        "--pexen-progress",
        choices=("auto", "on", "off"),
        default=None,
        help="a live status line under pytest's output: what runs, for how long, what "
        "waits, the ETA (auto, the default: on a terminal, not with -qq or -s; default: ini pexen_progress)",
    )
    group.addoption(
        "--pexen-heartbeat",
        metavar="SECONDS",
        default=None,
        help="where no status line is drawn (CI logs), a line every SECONDS saying what "
        "runs and for how long (default: ini pexen_heartbeat, else 60; 0: none)",
    )
    group.addoption(
        "--pexen-timeline",
        metavar="PATH.html",
        default=None,
        help="write the run as a self-contained HTML timeline, kept current during the run "
        "(default: ini pexen_timeline)",
    )
    group.addoption(
        "--pexen-trace",
        metavar="PATH.json",
        default=None,
        help="write the run as a Chrome trace (JSON) that Perfetto opens (default: ini pexen_trace)",
    )
    parser.addini("pexen_workers", "worker processes for --pexen (N or auto)", default="auto")
    parser.addini("pexen_dask", "the Dask scheduler for groups with pool=dask (as --pexen-dask)", default="")
    parser.addini("pexen_state", "path of the state file (as --pexen-state)", default="")
    parser.addini("pexen_reboot_cmd", "shell command that reboots the machine (as --pexen-reboot-cmd)", default="")
    parser.addini("pexen_xunit", "path of the JUnit XML file, relative to the rootdir (as --pexen-xunit)", default="")
    parser.addini("pexen_timeout", "time limit of each test in seconds, for --pexen", default="")
    parser.addini("pexen_progress", "the live status line: auto, on or off (as --pexen-progress)", default="")
    parser.addini("pexen_heartbeat", "seconds between heartbeat lines, 0 for none (as --pexen-heartbeat)", default="")
    parser.addini("pexen_timeline", "path of the HTML timeline, relative to the rootdir (as --pexen-timeline)", default="")
    parser.addini("pexen_trace", "path of the Chrome trace, relative to the rootdir (as --pexen-trace)", default="")
    parser.addini("pexen_affinity", "keep tests together on one worker: none, class or file", default="")
    _sources.add_ini(parser)
    parser.addini(
        "pexen_groups",
        "exclusivity groups for --pexen, one per line: 'name: workers=N|auto pool=process|thread|dask [address=tcp://HOST:PORT]'",
        type="linelist",
        default=[],
    )


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import _hookspecs

    pluginmanager.add_hookspecs(_hookspecs)


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    """``--pexen-status``: show the runs in the state file, run nothing. And
    ``--pexen-resume`` with nothing to resume: say so, before any plugin starts
    a session (which would write empty report files over the last run's)."""
    if config.pluginmanager.has_plugin(DASK_HOST_PLUGIN):
        return None
    if config.getoption("pexen") and config.getoption("pexen_resume"):
        from ._resume import nothing_to_resume

        message = nothing_to_resume(config)
        if message is not None:
            print(message)
            return 0
    if not config.getoption("pexen_status"):
        return None
    from ._resume import show_status

    return show_status(config)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
    config.pluginmanager.register(_api, "pexen-api")
    _sources.configure(config)
    # From the command line, relative to the working directory; from the
    # ini file, to the rootdir (as ini pexen_state), wherever pytest runs.
    xunit = config.getoption("pexen_xunit")
    if not xunit and config.getini("pexen_xunit"):
        xunit = str(config.rootpath / config.getini("pexen_xunit"))
    dask_host = config.pluginmanager.has_plugin(DASK_HOST_PLUGIN)
    if xunit and not hasattr(config, "workerinput") and not dask_host:
        from ._xunit import XunitWriter

        config.pluginmanager.register(
            XunitWriter(xunit, config.getoption("pexen_xunit_flavor")), XUNIT_PLUGIN
        )
    if not config.getoption("pexen"):
        given = [name for name, dest in _PEXEN_ONLY if config.getoption(dest)]
        if given:
            raise pytest.UsageError(f"{', '.join(given)} needs --pexen")
        return
    from ._options import read_options

    try:
        options = read_options(config)
    except PexenError as error:
        raise pytest.UsageError(str(error)) from None
    if config.getoption("usepdb", False):
        raise pytest.UsageError(
            "--pdb cannot be used with --pexen: tests run in worker processes "
            "with no terminal attached; run without --pexen to debug a test"
        )
    if config.getoption("numprocesses", None) or config.getoption("dist", "no") != "no":
        raise pytest.UsageError(
            "--pexen and pytest-xdist (-n/--dist) both run tests in parallel; use one of them"
        )
    if not config.getoption("pexen_no_pull"):
        # --lf normally skips collecting tests that passed; the providers that
        # the failed tests require are among them, so collect everything and
        # let --lf deselect instead.
        config.pluginmanager.unregister(name="lfplugin-collwrapper")
    if dask_host:
        return
    from ._session import PexenSession

    # Registered here, after the cache plugin, so that our collection wrapper
    # sees the selection after --lf/--ff have applied theirs.
    config.pluginmanager.register(PexenSession(config, options), "pexen-session")
    from ._adapters import register

    # Other plugins (coverage, benchmarks, snapshots, ...) see the workers' results.
    register(config)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Any:
    """Script tests, and the tasks a conftest generates (see :mod:`._sources`)."""
    return _sources.collect_file(file_path, parent)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config) -> None:
    """A bad script header or generated task stops the run, once all were found."""
    _sources.raise_problems(config)


@pytest.fixture
def pexen_data(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """A dict this test fills with small picklable values for the tests that
    require what it provides: they read them from ``pexen_inputs``.

    Checked when the test ends: values that cannot be pickled, or more than
    64 KiB of them, are an error of this test (in its teardown).
    """
    from . import _data

    if not request.config.getoption("pexen"):
        _data.PlainRun.of(request.config)  # hands it on in this process
    data: dict[str, Any] = {}
    yield data
    _data.keep(request.node, data)


@pytest.fixture
def pexen_inputs(request: pytest.FixtureRequest) -> Mapping[str, Any]:
    """Per tag this test requires: the dict its provider wrote into ``pexen_data`` (read-only).

    A tag nothing wrote for is absent. In a plain ``pytest`` run (no
    ``--pexen``), what the providers that ran before this test wrote.
    """
    from . import _data

    if not request.config.getoption("pexen"):
        return _data.PlainRun.of(request.config).inputs(request.node)
    return _data.inputs_of(request.node)
