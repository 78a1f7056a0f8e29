"""Metadata of collected tests: conftest ``pexen_defaults`` layered under markers.

Used by the ``--pexen`` session, and by a plain run that hands data from
providers to dependents (:mod:`._data`).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any, Mapping

import pytest

from ._errors import PexenError
from ._metadata import LOCAL_TAGS, Meta, check_fields, check_local_tags, merge
from ._scopes import TagScopes


class ConftestDefaults:
    """``pexen_defaults`` of every loaded conftest, applied by directory,
    with the tags they make local (see :mod:`._scopes`)."""

    def __init__(self, config: pytest.Config) -> None:
        self._by_dir: dict[Path, dict[str, Any]] = {}
        local_tags: dict[Path, tuple[str, ...]] = {}
        for plugin in config.pluginmanager.get_plugins():
            if not isinstance(plugin, ModuleType):
                continue
            file = getattr(plugin, "__file__", None) or ""
            if os.path.basename(file) != "conftest.py" or not hasattr(plugin, "pexen_defaults"):
                continue
            raw = plugin.pexen_defaults
            where = f"{file}: pexen_defaults"
            if not isinstance(raw, Mapping):
                raise PexenError(f"{where} must be a dict, got {type(raw).__name__}")
            if LOCAL_TAGS in raw:
                raw = dict(raw)
                local_tags[Path(file).parent] = check_local_tags(raw.pop(LOCAL_TAGS), where)
            self._by_dir[Path(file).parent] = check_fields(raw, where)
        self.scopes = TagScopes(config.rootpath, local_tags)
        self._layers: dict[Path, list[dict[str, Any]]] = {}

    def _for_dir(self, directory: Path) -> list[dict[str, Any]]:
        layers = self._layers.get(directory)
        if layers is None:
            parent = directory.parent
            layers = [] if parent == directory else list(self._for_dir(parent))
            if directory in self._by_dir:
                layers.append(self._by_dir[directory])
            self._layers[directory] = layers
        return layers

    def meta(self, item: pytest.Item) -> Meta:
        layers = list(self._for_dir(Path(item.path).parent)) if self._by_dir else []
        for marker in reversed(list(item.iter_markers("pexen"))):
            if marker.args:
                raise PexenError(
                    f"{item.nodeid}: the pexen marker takes keyword arguments only, "
                    f"got positional {marker.args!r}"
                )
            layers.append(check_fields(marker.kwargs, item.nodeid))
        return self.scopes.resolve(merge(layers), item.path)
