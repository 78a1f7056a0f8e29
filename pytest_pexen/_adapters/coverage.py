"""pytest-cov and coverage.py: the lines workers run reach the report.

A forked worker goes on tracing, but it ends with ``os._exit``, which saves
nothing, so without this adapter a report holds only what the controller
ran (imports and definitions). Two kinds of measurement are adapted:

- **pytest-cov** (``--cov``): its Coverage object writes a data file with a
  host/pid/random suffix, and coverage starts a new one after a fork, so a
  worker's ``save()`` never touches another process's file. The worker stops
  and saves at its finish (also when the watchdog ends it with SIGTERM);
  pytest-cov's ``Central.finish()`` in the controller combines every such file,
  as it does for pytest-xdist's workers.
- **coverage started outside pytest-cov** (``coverage run -m pytest``,
  ``COVERAGE_PROCESS_START``, or the fresh Coverage that ``[run] patch =
  fork`` starts in each forked process): without ``parallel`` its data file
  is the controller's own ``.coverage``, and a forked copy that wrote to it
  would erase it (with ``--append``, the data of earlier runs too). So each
  worker gives it a data file of its own at its start
  (``.coverage.pexen.<controller pid>.<worker id>``) and saves it at its
  finish; the controller merges that file into its own data when the worker
  is done, and coverage's own save at exit writes everything, as after a
  plain run: one data file, the same lines.

The other processes pexen forks from the controller (each worker's shim,
the guardian) must never save: with ``[run] patch = _exit`` they would, over
the controller's data file.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

from ._common import say

#: workeroutput keys (the worker's news for the controller).
SAVED = "pexen_coverage_saved"
PRIVATE_FILE = "pexen_coverage_file"


def make(config: pytest.Config) -> CoverageAdapter | None:
    """An adapter if pytest-cov or a Coverage started outside pytest measures this run."""
    pytest_cov = config.pluginmanager.get_plugin("_cov")
    foreign = _measuring(config)
    if pytest_cov is None and foreign is None:
        return None
    if foreign is not None and not _can_give_private_data(foreign) and not foreign.get_option("run:parallel"):
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(
                "pexen: coverage measures this run, but this version of coverage "
                f"({_coverage_version()}) cannot be given a data file per --pexen worker: the lines "
                "that tests run in workers would be missing from the report. Use pytest-cov "
                "(--cov), or set [run] parallel = true and run `coverage combine` afterwards."
            ),
            stacklevel=2,
        )
        foreign = None
    return CoverageAdapter(config, foreign)


class CoverageAdapter:
    def __init__(self, config: pytest.Config, foreign: Any) -> None:
        self._config = config
        #: The controller's Coverage started outside pytest-cov (``coverage run``), or None.
        self._foreign = foreign
        self._controller_pid = os.getpid()
        #: Where the controller looks for a worker's own data file (its directory).
        self._data_file = os.path.abspath(foreign.config.data_file) if foreign is not None else ""
        #: In a worker: the Coverage measuring it outside pytest-cov, and its own data file.
        self._measuring: Any = None
        self._private: str | None = None
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        """In a process forked by the controller (a worker's shim, the guardian): never save."""
        if os.getppid() != self._controller_pid:
            return  # a worker's runner (it saves at its finish), or a test's child
        coverage = sys.modules.get("coverage")
        for cov in [self._foreign, *getattr(getattr(coverage, "Coverage", None), "_instances", [])]:
            if cov is not None:
                cov._auto_save = False
        _unpatch_exit()

    # -- in a worker ----------------------------------------------------------------

    def pytest_pexen_worker_start(self, config: pytest.Config, workerinput: dict[str, Any]) -> None:
        cov = _pytest_cov_coverage(config)
        if cov is not None:
            _quiet(cov)
        measuring = _measuring(config)
        if measuring is None:
            return
        _quiet(measuring)
        if _can_give_private_data(measuring):
            self._private = _give_private_data(measuring, self._private_suffix(workerinput["workerid"]))
        elif not measuring.get_option("run:parallel"):
            return  # warned about at start-up: not saved, it would erase the controller's data
        # Else parallel: its file gets this process's pid after the fork; `coverage combine` takes it.
        self._measuring = measuring

    def pytest_pexen_worker_finish(self, session: pytest.Session, workeroutput: dict[str, Any]) -> None:
        cov = _pytest_cov_coverage(session.config)
        if cov is not None:
            _stop_and_save(cov)
        if self._measuring is not None:
            _stop_and_save(self._measuring)
            if self._private is not None:
                workeroutput[PRIVATE_FILE] = self._private
        workeroutput[SAVED] = True
        # Saved; [run] patch = _exit would save every Coverage object again at
        # the worker's os._exit, copies whose data file is the controller's too.
        _unpatch_exit()

    # -- in the controller ------------------------------------------------------------

    def pytest_pexen_worker_done(
        self, config: pytest.Config, workerid: str, workeroutput: dict[str, Any], error: str | None
    ) -> None:
        merged = False
        if self._foreign is not None:
            # Also without workeroutput: coverage's own SIGTERM handler
            # ([run] sigterm = true) saves the file without telling us.
            path = workeroutput.get(PRIVATE_FILE) or f"{self._data_file}.{self._private_suffix(workerid)}"
            merged = self._merge(config, workerid, path)
        # With pytest-cov alone, a worker's own file (of a Coverage that
        # [run] patch = fork started) is one of the files Central.finish() combines.
        if error is not None and not workeroutput.get(SAVED) and not merged:
            say(
                config,
                f"worker {workerid} ended before it could save its coverage data ({error}): "
                "lines run by the tests it ran may be missing from the coverage report",
            )

    def _private_suffix(self, workerid: str) -> str:
        return f"pexen.{self._controller_pid}.{workerid}"

    def _merge(self, config: pytest.Config, workerid: str, path: str) -> bool:
        """Add a worker's data file to the controller's data, then remove the file."""
        if not os.path.exists(path):
            return False
        from coverage import CoverageData

        try:
            theirs = CoverageData(basename=path)
            theirs.read()
            self._foreign.get_data().update(theirs)
            theirs.close()
        except Exception as exc:  # coverage's DataError, sqlite errors
            say(config, f"could not add the coverage data of worker {workerid} ({path}): {exc}")
            return False
        os.remove(path)
        return True


def _measuring(config: pytest.Config) -> Any:
    """The Coverage measuring this process that pytest-cov did not start, if any."""
    coverage = sys.modules.get("coverage")
    if coverage is None:
        return None
    ours = _pytest_cov_coverage(config)
    started = getattr(coverage.Coverage, "_instances", None)
    if started is None:
        current = coverage.Coverage.current()
        started = [current] if current is not None else []
    others = [cov for cov in started if cov is not ours]
    return others[-1] if others else None


def _pytest_cov_coverage(config: pytest.Config) -> Any:
    """pytest-cov's measuring Coverage object, while it measures."""
    controller = getattr(config.pluginmanager.get_plugin("_cov"), "cov_controller", None)
    if controller is None or not getattr(controller, "started", False):
        return None
    return getattr(controller, "cov", None)


def _can_give_private_data(cov: Any) -> bool:
    """Whether this coverage version lets a worker switch *cov* to a data file of its own."""
    collector = getattr(cov, "_collector", None)
    return (
        hasattr(cov, "_data")
        and hasattr(cov, "_warn")
        and hasattr(cov, "_debug")
        and hasattr(collector, "use_data")
        and hasattr(getattr(cov, "config", None), "data_file")
        and not getattr(cov, "_no_disk", False)
    )


def _give_private_data(cov: Any, suffix: str) -> str:
    """Make *cov* record into a new data file named with *suffix*; returns its path."""
    from coverage import CoverageData

    data = CoverageData(basename=cov.config.data_file, suffix=suffix, warn=cov._warn, debug=cov._debug)
    _record_into(cov, data)
    return str(data.data_filename())


def _record_into(cov: Any, data: Any) -> None:
    """Make *cov* record into *data* from now on.

    The data object inherited from the controller is left untouched: its
    first use in this process would erase the controller's data file.
    """
    inherited = cov._data
    cov._data = data
    closing = getattr(cov, "_data_to_close", None)
    if isinstance(closing, list):
        if inherited in closing:
            closing.remove(inherited)
        closing.append(data)
    cov._collector.use_data(data, getattr(cov.config, "context", None))


def _quiet(cov: Any) -> None:
    """No "no data collected" or "module never imported" warnings from a worker (the controller gives them)."""
    cov._warn_no_data = False
    cov._warn_unimported_source = False


def _stop_and_save(cov: Any) -> None:
    try:
        cov.stop()
    finally:
        cov.save()
        cov._auto_save = False


def _unpatch_exit() -> None:
    """Undo coverage's ``[run] patch = _exit`` in this process: ``os._exit`` saves nothing."""
    if getattr(os._exit, "__module__", None) == "coverage.patch":
        import posix

        os._exit = posix._exit


def _coverage_version() -> str:
    return getattr(sys.modules.get("coverage"), "__version__", "?")
