"""The state file of a ``--pexen`` session: open it, begin a run or resume one.

Opened at configure time, so a file that cannot be used is a usage error
before anything is collected, and locked for the whole session, so two runs
never share it. A fresh run records its tests once collected; a resumed one
(``--pexen-resume``) continues the newest run in the file, if that run is
unfinished: it takes the saved selection when none is given, refuses a
different one (unless ``--pexen-resume-anyway``), says which tests were added
or removed since, and hands the run loop the saved results (:class:`Saved`).
"""

from __future__ import annotations

import datetime
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import pytest

from ._errors import PexenError
from ._options import Options, state_path
from ._record import Recorder, Saved, break_at
from ._state import DEFAULT_PATH, RESUME_COMMAND, RunInfo, StateError, StateStore, format_status, peek_runs

#: Exit status of a run that stopped on purpose, to be resumed: a breakpoint,
#: or a reboot that did not happen (EX_TEMPFAIL: try again later).
PAUSED = 75
#: The options that shape the selection, compared on resume.
_SELECTION = ("args", "keyword", "markexpr", "deselect", "ignore", "no_pull")


class SessionState:
    """The state file of one session (see the module docstring)."""

    def __init__(self, config: pytest.Config, options: Options) -> None:
        self._config = config
        self._options = options
        self.store: StateStore | None = None
        #: The run this session resumes (None: a fresh run, or no state file).
        self.resumed: RunInfo | None = None
        #: Set when --pexen-resume finds nothing to resume: what to say before exiting.
        self.nothing_to_resume: str | None = None
        #: What to say once collection is done: that an unfinished run exists.
        self.unfinished_note: str | None = None
        #: What to say as a resumed run starts: what it found, and what changed.
        self.resume_note: str | None = None
        self.recorder: Recorder | None = None
        if options.state is None and options.resume:
            raise pytest.UsageError("--pexen-resume needs the state file (--pexen-state is off)")
        if options.state is None or config.option.collectonly:
            return  # --collect-only runs nothing: it neither records nor resumes
        directory = options.state.parent
        new_directory = not os.path.lexists(directory)
        try:
            self.store = StateStore.open(options.state, config.rootpath)
        except StateError as error:
            raise pytest.UsageError(str(error)) from None
        if new_directory and options.state == Path(config.rootpath, DEFAULT_PATH):
            _ignore_for_git(directory)
        newest = self.store.newest_run()
        unfinished = newest if newest is not None and newest.status != "finished" else None
        if options.resume:
            if unfinished is None:
                self.nothing_to_resume = _nothing_to_resume(options.state, newest)
            else:
                self.resumed = unfinished
                self._take_selection(unfinished)
        elif unfinished is not None:
            self.unfinished_note = (
                f"run {unfinished.run_id} in {options.state} is unfinished ({_status_of(unfinished)}). "
                f"This is a new run, and --pexen-resume will continue it, not run {unfinished.run_id}. "
                f"To continue run {unfinished.run_id} instead, stop this one now and run: {RESUME_COMMAND}"
            )

    # -- selection ------------------------------------------------------------

    def _take_selection(self, run: RunInfo) -> None:
        """Use the saved run's selection when none is given; refuse another one."""
        option = self._config.option
        given = _selection(self._config)
        saved = {name: run.settings.get(name) for name in _SELECTION}
        chose = self._config.args_source == pytest.Config.ArgsSource.ARGS or any(
            given[name] for name in ("keyword", "markexpr", "deselect")
        )
        if not chose:
            self._config.args = list(saved["args"] or self._config.args)
            option.keyword = saved["keyword"] or ""
            option.markexpr = saved["markexpr"] or ""
            option.deselect = list(saved["deselect"] or [])
            option.ignore = list(saved["ignore"] or [])
            given = _selection(self._config)
        changed = [name for name in _SELECTION if given[name] != saved[name]]
        if changed and not self._options.resume_anyway:
            lines = "\n".join(f"  {name}: saved {saved[name]!r}, now {given[name]!r}" for name in changed)
            raise pytest.UsageError(
                f"--pexen-resume: the selection differs from run {run.run_id}'s in "
                f"{self._options.state}:\n{lines}\nResume with the same selection (or none, "
                "to use the saved one), or add --pexen-resume-anyway to resume with this one."
            )

    # -- the run --------------------------------------------------------------

    def begin(self, items: Sequence[pytest.Item]) -> Saved | None:
        """Record the run about to start; for a resumed run, what was saved."""
        store = self.store
        if store is None:
            return None
        nodeids = [item.nodeid for item in items]
        run = self.resumed
        try:
            if run is None:
                args = list(self._config.invocation_params.args)
                self.recorder = Recorder(store, store.begin_run(args, _selection(self._config), nodeids))
                return None
            records = store.records(run.run_id)
            added = [nodeid for nodeid in nodeids if nodeid not in records]
            current = set(nodeids)
            # Tests that tests of the run added (pytest_pexen_task_finished) are
            # never collected: the hook adds them again as the resume replays.
            removed = [nodeid for nodeid in records if nodeid not in current and nodeid.rpartition("::")[0] not in records]
            if added:
                store.add_tests(run.run_id, added)
            store.resume_run(run.run_id)
        except StateError as error:
            raise pytest.UsageError(f"the run cannot be recorded, so it does not start: {error}") from None
        self.recorder = Recorder(store, run.run_id)
        saved = Saved.from_records(records, break_at(run.reason))
        self.resume_note = _resume_note(run, saved, current, added, removed)
        return saved

    def close(self) -> None:
        store, self.store = self.store, None
        if store is None:
            return
        try:
            store.close()
        except StateError as error:
            sys.stderr.write(f"pexen: the state file could not be closed cleanly: {error}\n")

    def close_after_fork(self) -> None:
        """In a worker: let go of the state file; only the controller writes it."""
        if self.store is not None:
            self.store.close_after_fork()


def nothing_to_resume(config: pytest.Config) -> str | None:
    """What to say when --pexen-resume has nothing to resume (None: there is a
    run to resume, or the state file cannot say; the session then checks again)."""
    try:
        path = state_path(config)
        if path is None or not path.is_file():
            return None if path is None else f"pexen: nothing to resume: there is no state file at {path}"
        with StateStore.open(path, config.rootpath) as store:
            newest = store.newest_run()
    except (PexenError, StateError):
        return None  # the session says what is wrong, as a usage error
    if newest is not None and newest.status != "finished":
        return None
    return _nothing_to_resume(path, newest)


def show_status(config: pytest.Config) -> int:
    """``--pexen-status``: print the runs in the state file; the exit status."""
    try:
        path = state_path(config)
        if path is None:
            raise PexenError("--pexen-status needs the state file; --pexen-state is off")
        if not path.exists():
            print(f"pexen: no state file at {path}: no --pexen run has recorded itself there yet")
            return 0
        runs, holder = peek_runs(path, config.rootpath)
    except (PexenError, StateError) as error:
        print(f"ERROR: {error}", file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)
    print(f"pexen: runs in {path}")
    print(format_status(runs, holder))
    return 0


def _ignore_for_git(directory: Path) -> None:
    """The default state directory, which we made: keep it out of version control."""
    try:
        with open(directory / ".gitignore", "x") as file:
            file.write("# Made by pytest-pexen: its state, not for version control.\n*\n")
    except OSError:
        pass


def _selection(config: pytest.Config) -> dict[str, Any]:
    option = config.option
    here = Path(config.invocation_params.dir)
    return {
        "args": [_absolute(here, arg) for arg in config.args],
        "keyword": option.keyword or "",
        "markexpr": option.markexpr or "",
        "deselect": sorted(option.deselect or []),
        "ignore": sorted(_absolute(here, str(path)) for path in option.ignore or []),
        "no_pull": bool(option.pexen_no_pull),
    }


def _absolute(here: Path, arg: str) -> str:
    """A path argument (perhaps with ``::`` parts) from *here*, so a resume from
    another directory compares the same."""
    path, sep, rest = arg.partition("::")
    return str((here / path).resolve()) + sep + rest


def _status_of(run: RunInfo) -> str:
    started = datetime.datetime.fromtimestamp(run.started).strftime("%Y-%m-%d %H:%M:%S")
    state = f"paused: {run.reason}" if run.status == "paused" and run.reason else "stopped on the way"
    return f"started {started}, {state}"


def _nothing_to_resume(path: Path, newest: RunInfo | None) -> str:
    if newest is None:
        return f"pexen: nothing to resume: {path} holds no run yet"
    return f"pexen: nothing to resume: the newest run in {path} (run {newest.run_id}) finished"


def _resume_note(run: RunInfo, saved: Saved, current: set[str], added: list[str], removed: list[str]) -> str:
    replayed = sum(1 for nodeid in saved.results if nodeid in current)
    in_flight = sum(1 for nodeid in saved.in_flight if nodeid in current)
    parts = [
        f"resuming run {run.run_id} ({_status_of(run)}): {_tests(replayed)} finished, reported from "
        f"the state file; {_tests(in_flight)} running when it stopped"
    ]
    if added:
        parts.append(f"{len(added)} added since: {_few(added)}")
    if removed:
        parts.append(f"{len(removed)} no longer collected: {_few(removed)}")
    return "; ".join(parts)


def _tests(count: int) -> str:
    return f"{count} test{'s' if count != 1 else ''}"


def _few(nodeids: Sequence[str], most: int = 5) -> str:
    shown = ", ".join(nodeids[:most])
    return shown + (f" and {len(nodeids) - most} more" if len(nodeids) > most else "")
