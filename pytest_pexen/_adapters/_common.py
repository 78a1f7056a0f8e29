"""What the adapters share: finding a loaded plugin, telling the user, knowing where we run."""

from __future__ import annotations

import sys
from types import ModuleType

import pytest

from .. import _reporting


def loaded_plugin(config: pytest.Config, module_name: str) -> ModuleType | None:
    """The plugin module *module_name*, if this run has it registered (never imports it)."""
    module = sys.modules.get(module_name)
    if module is None or not config.pluginmanager.is_registered(module):
        return None
    return module


def in_worker(config: pytest.Config) -> bool:
    """Whether this process is a ``--pexen`` worker (pexen sets ``workerinput`` only there)."""
    return hasattr(config, "workerinput")


def say(config: pytest.Config, text: str) -> None:
    """Tell the user something about a plugin's results, as a ``pexen:`` line in yellow."""
    _reporting.say(config, text, yellow=True)


class Items:
    """The session's items by node id (the controller replays reports without their items)."""

    def __init__(self) -> None:
        self._session: pytest.Session | None = None
        self._by_nodeid: dict[str, pytest.Item] = {}

    def use(self, session: pytest.Session) -> None:
        self._session = session
        self._by_nodeid = {}

    def get(self, nodeid: str) -> pytest.Item | None:
        if nodeid not in self._by_nodeid and self._session is not None:
            self._by_nodeid = {item.nodeid: item for item in self._session.items}
        return self._by_nodeid.get(nodeid)
