"""syrupy: snapshots asserted in workers are written, counted and never deleted by mistake.

syrupy already supports pytest-xdist workers, keyed on ``PYTEST_XDIST_WORKER``
and ``config.workeroutput`` (both set in a pexen worker): at the end of a
worker, its ``finish()`` writes the queued snapshots under a file lock and
publishes a report instead of judging unused snapshots. So a worker calls
syrupy's ``pytest_sessionfinish``, and only syrupy's (others would write
partial files), and the controller hands the report to syrupy: through
``pytest_testnodedown`` when pytest-xdist's hook exists (syrupy then listens
to it; see the xdist adapter), else directly. A worker that was lost took
its report with it: its tests' snapshots would look unused, and
``--snapshot-update`` would delete them, so unused-snapshot detection is
turned off for that run, with a message saying why.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Generator

import pytest

from ._common import in_worker, loaded_plugin, say


def make(config: pytest.Config) -> SyrupyAdapter | None:
    module = loaded_plugin(config, "syrupy")
    if module is None:
        return None
    if not hasattr(getattr(module, "SnapshotSession", None), "add_worker_report"):
        # Before 5.5 syrupy judged unused snapshots in each process alone: the
        # controller, which asserts none, would call every snapshot unused.
        raise pytest.UsageError(
            f"--pexen needs syrupy 5.5 or later (this is {_version()}): earlier versions cannot "
            "combine the snapshot reports of several processes, so every snapshot would be "
            "reported unused, and --snapshot-update would delete them. Upgrade syrupy, or run "
            "without --pexen."
        )
    return SyrupyAdapter(module)


def _version() -> str:
    from importlib import metadata

    try:
        return f"syrupy {metadata.version('syrupy')}"
    except metadata.PackageNotFoundError:
        return "an unknown version"


class SyrupyAdapter:
    def __init__(self, syrupy: ModuleType) -> None:
        self._syrupy = syrupy
        #: Workers that ended abnormally, and how.
        self._lost: dict[str, str] = {}
        #: Snapshot files workers wrote under syrupy's file lock (their sidecars are ours to remove).
        self._written: set[str] = set()

    # -- in a worker ---------------------------------------------------------------

    def pytest_pexen_worker_finish(self, session: pytest.Session, workeroutput: dict[str, Any]) -> None:
        manager = session.config.pluginmanager
        others = [plugin for plugin in manager.get_plugins() if plugin is not self._syrupy]
        finish = manager.subset_hook_caller("pytest_sessionfinish", remove_plugins=others)
        finish(session=session, exitstatus=0)

    # -- in the controller -----------------------------------------------------------

    def pytest_pexen_worker_done(
        self, config: pytest.Config, workerid: str, workeroutput: dict[str, Any], error: str | None
    ) -> None:
        if error is not None:
            self._lost[workerid] = error
        self._written.update(workeroutput.get("syrupy_write_sidecars") or ())
        if self._hears_testnodedown(config):
            return
        session = getattr(config, "_syrupy", None)
        if session is None:
            return
        if workeroutput.get("syrupy_report") is not None:
            session.add_worker_report(workeroutput["syrupy_report"])
        if workeroutput.get("syrupy_write_sidecars"):
            session.add_written_snapshot_locations(workeroutput["syrupy_write_sidecars"])

    def _hears_testnodedown(self, config: pytest.Config) -> bool:
        """Whether syrupy gets workers' reports through pytest_testnodedown (pytest-xdist loaded)."""
        manager = config.pluginmanager
        hook = getattr(manager.hook, "pytest_testnodedown", None)
        listener = getattr(self._syrupy, "DeferXDist", None)
        if hook is None or listener is None or manager.get_plugin("pexen-adapter-xdist") is None:
            return False
        return any(isinstance(impl.plugin, listener) for impl in hook.get_hookimpls())

    @pytest.hookimpl(wrapper=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> Generator[None, Any, Any]:
        config = session.config
        if in_worker(config):
            return (yield)
        if self._lost and getattr(config, "_syrupy", None) is not None:
            config.option.disable_unused_snapshots = True
            lost = ", ".join(f"{worker} ({why})" for worker, why in sorted(self._lost.items()))
            workers = "worker" if len(self._lost) == 1 else "workers"
            say(
                config,
                f"{workers} {lost} ended before finishing, so which snapshots their tests used is "
                "unknown: syrupy's unused-snapshot detection is off for this run (no snapshot is "
                "reported unused or deleted)",
            )
        try:
            return (yield)
        finally:
            if self._written:
                # syrupy removes lock sidecars only where it counts xdist workers.
                from syrupy.utils import cleanup_snapshot_write_sidecars

                cleanup_snapshot_write_sidecars(*sorted(self._written))
