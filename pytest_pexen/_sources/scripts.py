"""Script tests: executable files under ini ``pexen_scripts``, one test each.

A file is a script test when it is a regular executable file, its path
(relative to the ini file's directory, or the rootdir without one) or one
of its directories matches a glob of ``pexen_scripts`` and no ``!`` glob,
and it is not a Python file that pytest collects anyway (a test module, a
conftest). Its node id is its path (``tests/sys/net/ping.sh``): a file
collector with one test of the same id.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any, Iterator, Sequence

import pytest
from _pytest.pathlib import fnmatch_ex

from .._errors import MetadataError
from . import problem
from .command import CommandItem, use_error_phase
from .header import read_header


class Globs:
    """The globs of ini ``pexen_scripts``: which paths under *base* are scripts."""

    def __init__(self, patterns: Sequence[str], base: Path) -> None:
        self._prefix = str(base).rstrip(os.sep) + os.sep
        included = [p for p in patterns if not p.startswith("!")]
        excluded = [p[1:] for p in patterns if p.startswith("!")]
        self._include = _regex(included)
        self._exclude = _regex(excluded) if excluded else None

    def match(self, path: Path) -> bool:
        """Whether *path* (absolute) is a script: matched, executable, not Python pytest collects."""
        # As a string: pathlib's relative_to() costs more than the rest of
        # the check, once per file pytest collects.
        text = str(path)
        if not text.startswith(self._prefix):
            return False
        relative = text[len(self._prefix) :].replace(os.sep, "/")
        if not self._matches(self._include, relative) or path.name.startswith("."):
            return False
        if self._exclude is not None and self._matches(self._exclude, relative):
            return False
        try:
            mode = path.stat().st_mode
        except OSError:
            return False
        return stat.S_ISREG(mode) and bool(mode & 0o111)

    @staticmethod
    def _matches(regex: re.Pattern[str], relative: str) -> bool:
        """The path, or one of its directories, matches."""
        path = "/" + relative
        while path:
            if regex.fullmatch(path):
                return True
            path = path[: path.rfind("/")]
        return False


def _regex(patterns: Sequence[str]) -> re.Pattern[str]:
    """One regex matching "/a/b/c" paths that any of the globs (relative, "/"-separated) match.

    ``*`` and ``?`` stay within a path segment, ``[...]`` is a set, a segment
    of ``**`` matches any number of segments (none too).
    """
    alternatives = []
    for pattern in patterns:
        parts = []
        for segment in pattern.strip("/").split("/"):
            if segment == "**":
                parts.append("(?:/[^/]+)*")
            elif segment not in ("", "."):
                parts.append("/" + _segment(segment))
        # "." (or "**"): everything under the base directory.
        alternatives.append("".join(parts) or "(?:/[^/]+)*")
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


def _segment(glob: str) -> str:
    out = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and glob.find("]", i + 2) > 0:
            end = glob.find("]", i + 2)
            inside = glob[i + 1 : end].replace("\\", "\\\\")
            if inside.startswith("!"):
                inside = "^" + inside[1:]
            elif inside.startswith("^"):
                inside = "\\" + inside
            out.append(f"[{inside}]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def collect_script(path: Path, parent: pytest.Collector) -> Any:
    """The collector of a script that the globs matched, unless pytest collects it as Python."""
    if path.suffix == ".py" and (
        path.name in ("conftest.py", "__init__.py")
        or any(fnmatch_ex(glob, path) for glob in parent.config.getini("python_files"))
    ):
        return None
    use_error_phase(parent.config)
    return ScriptFile.from_parent(parent, path=path)


class ScriptFile(pytest.File):
    """An executable file: one script test, its metadata from its header."""

    def collect(self) -> Iterator[pytest.Item]:
        try:
            fields = read_header(self.path, self.nodeid)
        except MetadataError as error:
            problem(self.config, str(error))
            return
        except OSError as error:
            raise self.CollectError(f"{self.nodeid}: cannot read the script: {error}") from None
        script = Script.from_parent(self, name=self.name, nodeid=self.nodeid)
        if fields:
            script.add_marker(pytest.mark.pexen(**fields))
        yield script


class Script(CommandItem):
    """A script test: runs the file in its directory; its exit status is its outcome."""

    def runtest(self) -> None:
        self.run_command([str(self.path)], self.path.parent, self.name)

    def reportinfo(self) -> tuple[os.PathLike[str], int, str]:
        return self.path, 0, f"[script] {self.name}"
