"""The ``--pexen`` options and their ini twins, read and checked before collection.

Bad values are usage errors at start-up, before a single test is collected:
a run that would fail an hour later on a typo fails now.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ._errors import PexenError
from ._files import check_new_file
from ._groups import parse_ini_lines, parse_workers, require_dask
from ._metadata import AFFINITY_CHOICES, MAX_TIMEOUT
from ._state import DEFAULT_PATH

#: Affinity of tests whose marker, conftests, option and ini say nothing.
DEFAULT_AFFINITY = "class"
#: The --pexen-state value that keeps no state.
STATE_OFF = "off"
DEFAULT_REBOOT_WAIT = 300.0
#: --pexen-progress values.
PROGRESS_CHOICES = ("auto", "on", "off")
#: Seconds between heartbeat lines when nothing says otherwise.
DEFAULT_HEARTBEAT = 60.0


@dataclass(frozen=True)
class Options:
    """What the command line and the ini file say about a ``--pexen`` run."""

    #: Workers of the default group.
    workers: int
    #: Whether --pexen-workers was given on the command line.
    workers_given: bool
    #: Time limit of each test without a limit of its own.
    timeout: float | None
    session_timeout: float | None
    max_crashes: int
    #: Affinity of tests whose marker and conftests say nothing.
    affinity: str = DEFAULT_AFFINITY
    #: The Dask scheduler of pool=dask groups without an address of their own
    #: (None: a local cluster started for the run).
    dask: str | None = None
    #: The state file (None: --pexen-state=off).
    state: Path | None = None
    resume: bool = False
    resume_anyway: bool = False
    #: --pexen-break patterns: node id globs, or tag:NAME.
    breakpoints: tuple[str, ...] = ()
    #: The shell command pytest_pexen.reboot() runs (None: reboot() fails the test).
    reboot_cmd: str | None = None
    #: Seconds to wait for the machine to go down after the reboot command returned.
    reboot_wait: float = DEFAULT_REBOOT_WAIT
    #: The live status line: auto (on a terminal), on, off.
    progress: str = "auto"
    #: Seconds between heartbeat lines when no status line is drawn (None: none).
    heartbeat: float | None = DEFAULT_HEARTBEAT
    #: Absolute paths of the timeline (HTML) and the trace (JSON), if asked for.
    timeline: str | None = None
    trace: str | None = None


def read_options(config: pytest.Config) -> Options:
    """Every ``--pexen`` option, checked; raises PexenError naming the bad one."""
    given = config.getoption("pexen_workers")
    if given is not None:
        workers = parse_workers(given, "--pexen-workers")
    else:
        workers = parse_workers(config.getini("pexen_workers"), "ini pexen_workers")
    max_crashes = config.getoption("pexen_max_crashes")
    if max_crashes < 1:
        raise PexenError(f"--pexen-max-crashes must be at least 1, got {max_crashes}")
    timeout = seconds(config.getoption("pexen_timeout"), "--pexen-timeout")
    if timeout is None:
        timeout = seconds(config.getini("pexen_timeout") or None, "ini pexen_timeout")
    # The ini groups are checked here too; hooks may add groups after collection.
    require_dask(parse_ini_lines(config.getini("pexen_groups"), workers), "ini pexen_groups")
    affinity = _choice(config.getoption("pexen_affinity"), "--pexen-affinity")
    if affinity is None:
        affinity = _choice(config.getini("pexen_affinity") or None, "ini pexen_affinity")
    reboot_wait = seconds(config.getoption("pexen_reboot_wait"), "--pexen-reboot-wait")
    progress = config.getoption("pexen_progress")
    source = "--pexen-progress"
    if progress is None:
        progress, source = config.getini("pexen_progress") or "auto", "ini pexen_progress"
    if progress not in PROGRESS_CHOICES:
        raise PexenError(f"{source} must be one of {', '.join(PROGRESS_CHOICES)}, got {progress!r}")
    heartbeat = config.getoption("pexen_heartbeat")
    source = "--pexen-heartbeat"
    if heartbeat is None:
        heartbeat, source = config.getini("pexen_heartbeat") or DEFAULT_HEARTBEAT, "ini pexen_heartbeat"
    return Options(
        progress=progress,
        heartbeat=_interval(heartbeat, source),
        timeline=_report_path(config, "timeline", "timeline.html"),
        trace=_report_path(config, "trace", "trace.json"),
        state=state_path(config),
        resume=config.getoption("pexen_resume"),
        resume_anyway=config.getoption("pexen_resume_anyway"),
        breakpoints=tuple(_breakpoints(config.getoption("pexen_break"))),
        reboot_cmd=config.getoption("pexen_reboot_cmd") or config.getini("pexen_reboot_cmd") or None,
        reboot_wait=DEFAULT_REBOOT_WAIT if reboot_wait is None else reboot_wait,
        affinity=affinity or DEFAULT_AFFINITY,
        workers=workers,
        workers_given=given is not None,
        timeout=timeout,
        session_timeout=seconds(config.getoption("pexen_session_timeout"), "--pexen-session-timeout"),
        max_crashes=max_crashes,
        dask=_dask_address(config),
    )


def _dask_address(config: pytest.Config) -> str | None:
    """--pexen-dask, else ini pexen_dask; None if neither is given."""
    given = config.getoption("pexen_dask")
    source = "--pexen-dask"
    if given is None:
        given, source = config.getini("pexen_dask") or None, "ini pexen_dask"
    if given is None:
        return None
    if not given.strip() or any(c.isspace() for c in given.strip()):
        raise PexenError(f"{source} must be a Dask scheduler's address such as tcp://host:8786, got {given!r}")
    return given.strip()


def state_path(config: pytest.Config) -> Path | None:
    """The state file: --pexen-state (from the current directory), else ini
    pexen_state (from the rootdir), else <rootdir>/.pexen/state.db; None for off."""
    given = config.getoption("pexen_state")
    if given is not None:
        if not given.strip():
            raise PexenError("--pexen-state needs a path, or off")
        return None if given == STATE_OFF else Path(config.invocation_params.dir, given)
    ini = config.getini("pexen_state")
    if ini:
        return None if ini == STATE_OFF else Path(config.rootpath, ini)
    return Path(config.rootpath, DEFAULT_PATH)


def _interval(value: Any, source: str) -> float | None:
    """Seconds between heartbeat lines: a number of seconds, 0 for none."""
    try:
        interval = float(value)
    except (TypeError, ValueError, OverflowError):
        interval = math.nan
    if not (math.isfinite(interval) and 0 <= interval <= MAX_TIMEOUT):
        raise PexenError(f"{source} must be a number of seconds (0 turns the heartbeat off), got {value!r}")
    return interval or None


def _report_path(config: pytest.Config, name: str, example: str) -> str | None:
    """--pexen-NAME (from the current directory), else ini pexen_NAME (from the
    rootdir), checked now: a path that cannot take the file is a usage error."""
    given = config.getoption(f"pexen_{name}")
    option, base = f"--pexen-{name}", config.invocation_params.dir
    if given is None and config.getini(f"pexen_{name}"):
        given, option, base = config.getini(f"pexen_{name}"), f"ini pexen_{name}", config.rootpath
    if given is None:
        return None
    if not given.strip():
        raise PexenError(f"{option} needs the path of a file, e.g. {example}")
    return check_new_file(option, given, example, str(base))


def _breakpoints(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        if not pattern or pattern == "tag:":
            raise PexenError(f"--pexen-break needs a node id glob or tag:NAME, got {pattern!r}")
    return patterns


def _choice(value: Any, source: str) -> str | None:
    if value is None:
        return None
    if value not in AFFINITY_CHOICES:
        raise PexenError(f"{source} must be one of {', '.join(AFFINITY_CHOICES)}, got {value!r}")
    return str(value)


def seconds(value: Any, source: str) -> float | None:
    """A time limit: a finite number of seconds, greater than 0 and at most a year."""
    if value is None:
        return None
    try:
        limit = float(value)
    except (TypeError, ValueError, OverflowError):
        limit = math.nan
    if not (math.isfinite(limit) and 0 < limit <= MAX_TIMEOUT):
        raise PexenError(
            f"{source} must be a number of seconds greater than 0 and at most "
            f"{MAX_TIMEOUT:.0f} (a year), got {value!r}"
        )
    return limit
