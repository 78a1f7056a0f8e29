"""Test sources beyond Python test files: script trees and tasks generated in conftests.

- :mod:`.scripts`: executable files under ini ``pexen_scripts``, one test each;
  their ``# pexen:`` header lines (:mod:`.header`) give their metadata.
- :mod:`.generated`: tasks a conftest's ``pytest_pexen_generate`` hook makes
  with :func:`pytest_pexen.task` (:mod:`.task`).
- :mod:`.command`: what both share: running a command as a test, and the
  items that do (thread-safe, so a thread pool can run them).

This module is what the light plugin module uses: the ini options, the
choice of collector for a file, and the usage errors found while
collecting. It imports the rest only when a file is one of ours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .._errors import PexenError

#: Exit code of a script that passed with warnings, unless ini pexen_script_warn_code says otherwise.
DEFAULT_WARN_CODE = 78
#: Exit codes with a fixed meaning (automake's skip and hard error), which cannot mean warned.
RESERVED_CODES = (0, 77, 99)


#: Most tests pytest_pexen_task_finished may add in one run (see :mod:`.added`).
ADDED_LIMIT_INI = "pexen_max_added_tasks"
DEFAULT_ADDED_LIMIT = 10_000


def add_ini(parser: pytest.Parser) -> None:
    parser.addini(
        ADDED_LIMIT_INI,
        f"most tests that pytest_pexen_task_finished may add in one --pexen run (default {DEFAULT_ADDED_LIMIT})",
        default=str(DEFAULT_ADDED_LIMIT),
    )
    parser.addini(
        "pexen_scripts",
        "globs (relative to the ini file's directory) of executable files, or directories of "
        "them, to collect as script tests; a glob starting with ! excludes",
        type="args",
        default=[],
    )
    parser.addini(
        "pexen_script_warn_code",
        f"exit code of a script test that passed with warnings (default {DEFAULT_WARN_CODE}; none: no such code)",
        default=str(DEFAULT_WARN_CODE),
    )


class Settings:
    """How this run finds and judges scripts (from the ini file, checked once)."""

    def __init__(self, config: pytest.Config) -> None:
        self.warn_code = _warn_code(config.getini("pexen_script_warn_code"))
        patterns = config.getini("pexen_scripts")
        self.globs = None
        if patterns:
            from .scripts import Globs

            base = config.inipath.parent if config.inipath is not None else config.rootpath
            self.globs = Globs(patterns, base)
            for missing in _missing_paths(patterns, base):
                config.issue_config_time_warning(
                    pytest.PytestConfigWarning(
                        f"ini pexen_scripts names {missing!r}, which does not exist under {base}"
                    ),
                    stacklevel=2,
                )
        #: Usage errors found while collecting: (where, message); raised once collection is done.
        self.problems: list[str] = []


_settings = pytest.StashKey[Settings]()


def configure(config: pytest.Config) -> None:
    """Check the ini options (a bad one is a usage error now, before collection)."""
    try:
        config.stash[_settings] = Settings(config)
    except PexenError as error:
        raise pytest.UsageError(str(error)) from None


def settings(config: pytest.Config) -> Settings:
    return config.stash[_settings]


def _missing_paths(patterns: list[str], base: Path) -> list[str]:
    """The globs (not the ``!`` ones) whose directories before the first
    wildcard do not exist: a misspelt directory would otherwise just
    collect no scripts."""
    missing = []
    for pattern in patterns:
        if pattern.startswith("!"):
            continue
        fixed = []
        for segment in pattern.strip("/").split("/"):
            if any(c in segment for c in "*?["):
                break
            fixed.append(segment)
        if fixed and not base.joinpath(*fixed).exists():
            missing.append(pattern)
    return missing


def _warn_code(text: str) -> int | None:
    text = text.strip()
    if text.lower() == "none":
        return None
    try:
        code = int(text)
    except ValueError:
        code = -1
    if not 0 < code < 256 or code in RESERVED_CODES:
        raise PexenError(
            f"ini pexen_script_warn_code must be an exit code from 1 to 255 other than "
            f"77 (skipped) and 99 (error), or none; got {text!r}"
        )
    return code


def collect_file(file_path: Path, parent: pytest.Collector) -> Any:
    """Our collector for *file_path*, or None: a conftest that generates tasks, or a script."""
    config = parent.config
    if file_path.name == "conftest.py":
        module = config.pluginmanager.get_plugin(str(file_path))
        if module is None or not hasattr(module, "pytest_pexen_generate"):
            return None
        from .generated import TaskFile

        return TaskFile.from_parent(parent, path=file_path)
    globs = settings(config).globs
    if globs is None or not globs.match(file_path):
        return None
    from .scripts import collect_script

    return collect_script(file_path, parent)


def problem(config: pytest.Config, message: str) -> None:
    """A usage error found while collecting; the run stops once collection is done."""
    settings(config).problems.append(message)


def raise_problems(config: pytest.Config) -> None:
    problems = config.stash[_settings].problems if _settings in config.stash else []
    if problems:
        raise pytest.UsageError("\n".join(problems))
