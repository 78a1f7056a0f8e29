"""Adapters that make other pytest plugins give the same results under ``--pexen`` as without.

Each module adapts one plugin family, using only pexen's public worker hooks
(``pytest_pexen_worker_start``, ``pytest_pexen_worker_finish``,
``pytest_pexen_worker_done``) and pytest's own hooks. An adapter is
registered only if its plugin is loaded in this run; finding out imports
nothing from the plugin.
"""

from __future__ import annotations

import pytest

from . import benchmark, coverage, rerunfailures, syrupy, xdist

#: name -> make(config): the adapter for this run, or None when its plugin is absent.
_ADAPTERS = {
    "coverage": coverage.make,
    "benchmark": benchmark.make,
    "syrupy": syrupy.make,
    "rerunfailures": rerunfailures.make,
    "xdist": xdist.make,
}


def register(config: pytest.Config) -> None:
    """Register the adapters this run needs (in the controller; the workers fork with them)."""
    for name, make in _ADAPTERS.items():
        adapter = make(config)
        if adapter is not None:
            config.pluginmanager.register(adapter, f"pexen-adapter-{name}")
