"""pytest-rerunfailures: reruns are shown, and ``--fail-on-flaky`` sees them.

Reruns happen inside the worker's run of a test, and every attempt's report
reaches the controller with rerunfailures' ``rerun`` number. Two things need
help:

- ``--fail-on-flaky`` reads ``item.execution_count`` on the controller's
  items at session end; only the worker's copies had it. The controller sets
  it from the reports: ``rerun + 1``, the most any attempt reached.
- In a process with ``config.workerinput`` (which pexen sets, as pytest-xdist
  does) rerunfailures logs a rerun's report only if pytest-xdist >= 1.20 is
  *installed* (a guard for old xdist versions); without pytest-xdist the
  "rerun" reports would vanish. pexen relays every report, so a worker says
  yes to that check.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest

from ._common import Items, in_worker, loaded_plugin


def make(config: pytest.Config) -> RerunfailuresAdapter | None:
    module = loaded_plugin(config, "pytest_rerunfailures")
    return RerunfailuresAdapter(config, module) if module is not None else None


class RerunfailuresAdapter:
    def __init__(self, config: pytest.Config, module: ModuleType) -> None:
        self._config = config
        self._module = module
        self._items = Items()

    def pytest_pexen_worker_start(self, config: pytest.Config, workerinput: dict[str, Any]) -> None:
        check = getattr(self._module, "works_with_current_xdist", None)
        if check is not None and not check():
            self._module.works_with_current_xdist = lambda: True

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self._items.use(session)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        rerun = getattr(report, "rerun", None)
        if not isinstance(rerun, int) or in_worker(self._config):
            return
        item = self._items.get(report.nodeid)
        if item is not None:
            item.execution_count = max(getattr(item, "execution_count", 0) or 0, rerun + 1)  # type: ignore[attr-defined]
