"""Scoped tags: which tag a name in requires, provides or after means, seen from a directory.

A conftest's ``pexen_defaults = {"local_tags": ["build"]}`` makes ``build``
local to that conftest's directory tree, the way a local variable is local
to its function: a test in that directory or below that names ``build``
means the tag ``build@<dir>`` (``<dir>`` relative to the rootdir, ``/``
between its parts, ``.`` for the rootdir itself); the nearest declaring
directory wins. Everywhere else ``build`` is the global tag, another one.
A test anywhere may also name ``build@<dir>`` itself, to mean that local
tag from outside its tree.

The names are resolved from the test's own directory, whichever layer (a
conftest above, the test's marker) the name came from. The planner sees only
the resolved names: distinct strings, like any other tags.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from ._metadata import ANY_PREFIX, SCOPE_MARK, Meta, Requirement, split_any
from ._planner import Task


class TagScopes:
    """The local tags of directory trees, and the names they have where tests see them."""

    def __init__(self, rootdir: Path, declared: Mapping[Path, Iterable[str]]) -> None:
        """*declared*: per directory, the tags its conftest makes local."""
        self._declared: dict[Path, dict[str, str]] = {}
        #: Per scoped name: the tag's own name, and where it is visible (as said to users).
        self._origin: dict[str, tuple[str, str]] = {}
        for directory, tags in declared.items():
            shown = Path(os.path.relpath(directory, rootdir)).as_posix()
            where = "the rootdir" if shown == "." else f"{shown}/"
            for tag in tags:
                scoped = f"{tag}{SCOPE_MARK}{shown}"
                self._declared.setdefault(directory, {})[tag] = scoped
                self._origin[scoped] = (tag, where)
        self._visible: dict[Path, Mapping[str, str]] = {}

    def visible(self, directory: Path) -> Mapping[str, str]:
        """Per local tag visible in *directory*: its scoped name."""
        names = self._visible.get(directory)
        if names is None:
            parent = directory.parent
            outer = {} if parent == directory else self.visible(parent)
            own = self._declared.get(directory)
            # A directory that declares nothing shares its parent's mapping.
            names = self._visible[directory] = {**outer, **own} if own else outer
        return names

    def resolve(self, meta: Meta, path: Path) -> Meta:
        """*meta* as the test at *path* (its file) means it: its local tags scoped."""
        if not self._declared or not (meta.requires or meta.provides or meta.after):
            return meta
        names = self.visible(Path(path).parent)
        if not names:
            return meta

        def scoped(tags: Sequence[str]) -> tuple[str, ...]:
            return tuple(dict.fromkeys(names.get(tag, tag) for tag in tags))

        def required(tag: str) -> str:
            name, any_provider = split_any(tag)
            return ANY_PREFIX + names.get(name, name) if any_provider else names.get(tag, tag)

        requires: tuple[Requirement, ...] = tuple(
            dict.fromkeys(tuple(dict.fromkeys(map(required, r))) for r in meta.requires)
        )
        return dataclasses.replace(
            meta, requires=requires, provides=scoped(meta.provides), after=scoped(meta.after)
        )

    def hints(self, tasks: Sequence[Task], absent: Iterable[str]) -> list[str]:
        """Why tags that *tasks* name and none of them provides may be missing:
        other tags of the same name are provided, in other scopes."""
        provided = {tag for task in tasks for tag in task.provides}
        provided.update(absent)
        named = {split_any(tag)[0] for task in tasks for requirement in task.requires for tag in requirement}
        named.update(tag for task in tasks for tag in task.after)
        by_name: dict[str, list[str]] = {}
        for tag in sorted(provided):
            by_name.setdefault(self._name(tag), []).append(tag)
        lines = []
        for tag in sorted(named - provided):
            others = by_name.get(self._name(tag))
            if others:  # of one name, and not one tag: one of them is local
                lines.append(f"  needed {self.describe(tag)}; provided " + ", ".join(map(self.describe, others)))
        if lines:
            lines.insert(
                0,
                "note: a tag that a conftest's pexen_defaults make local (local_tags) is another "
                f"tag outside that directory tree; from outside, name it as tag{SCOPE_MARK}dir:",
            )
        return lines

    def describe(self, tag: str) -> str:
        """A tag with where it is visible: ``'build@a' (local to a/)`` or ``'build' (global)``."""
        origin = self._origin.get(tag)
        if origin is None:
            return f"{tag!r} (global)"
        return f"{tag!r} (local to {origin[1]})"

    def _name(self, tag: str) -> str:
        origin = self._origin.get(tag)
        return tag if origin is None else origin[0]
