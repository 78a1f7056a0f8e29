"""pytest-xdist's ``pytest_testnodedown``: plugins that collect workers' output through it get it.

Plugins that support pytest-xdist read a worker's ``workeroutput`` in the
controller's ``pytest_testnodedown(node, error)`` (syrupy does). When that
hook exists (pytest-xdist is loaded), each finished pexen worker is announced
through it, with a stand-in node carrying what such plugins read: ``config``,
``workerinput``, ``workeroutput`` and ``gateway.id``. pytest-cov is left out:
its implementation needs a real xdist node (an execnet gateway), and the
coverage adapter already hands it the workers' data.
"""

from __future__ import annotations

import types
from typing import Any

import pytest

#: Plugins whose pytest_testnodedown needs a real pytest-xdist node.
NOT_ANNOUNCED_TO = ("_cov",)


def make(config: pytest.Config) -> XdistAdapter | None:
    hook = getattr(config.pluginmanager.hook, "pytest_testnodedown", None)
    if hook is None or hook.spec is None:
        return None
    return XdistAdapter()


class WorkerNode:
    """What a controller-side ``pytest_testnodedown`` implementation gets as ``node``."""

    def __init__(self, config: pytest.Config, workerid: str, workeroutput: dict[str, Any]) -> None:
        self.config = config
        self.workerinput = {"workerid": workerid, "pexen": True}
        self.workeroutput = workeroutput
        self.gateway = types.SimpleNamespace(id=workerid)

    def __repr__(self) -> str:
        return f"<pexen worker {self.gateway.id}>"


class XdistAdapter:
    def pytest_pexen_worker_done(
        self, config: pytest.Config, workerid: str, workeroutput: dict[str, Any], error: str | None
    ) -> None:
        manager = config.pluginmanager
        excluded = [plugin for plugin in map(manager.get_plugin, NOT_ANNOUNCED_TO) if plugin is not None]
        announce = manager.subset_hook_caller("pytest_testnodedown", remove_plugins=excluded)
        announce(node=WorkerNode(config, workerid, workeroutput), error=error)
