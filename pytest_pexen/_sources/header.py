"""A script's metadata: its ``# pexen:`` header lines.

Grammar: a comment line (``#``) whose text starts with ``pexen:``,
anywhere in the first :data:`HEADER_BYTES` of the file, followed by fields
separated by spaces::

    # pexen: requires=kernel,net|wifi claims=net,disk timeout=30 priority=-1

- each field is ``name=value``, with the names of ``@pytest.mark.pexen``;
- list fields (requires, provides, after, claims, uses) take tags separated
  by commas, an empty value is an empty list; in ``requires``, ``a|b``
  means "any one of a and b" (the marker's tuple);
- priority and retries are integers; timeout and retry_delay numbers of
  seconds; group, on_resume and affinity words;
- a value may be quoted as in a shell (``claims="disk 1"``);
- several header lines add up; a field given twice is an error.

The values are then checked as the marker's are (:func:`.._metadata.check_fields`).
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

from .._errors import MetadataError
from .._metadata import LIST_FIELDS, check_fields

#: How much of a file is searched for header lines.
HEADER_BYTES = 8192
_HEADER = re.compile(rb"^[ \t]*#[ \t]*pexen:(.*)$", re.MULTILINE)
_INTEGERS = ("priority", "retries")
_NUMBERS = ("timeout", "retry_delay")
EXAMPLE = "# pexen: requires=kernel claims=net,disk timeout=30"


def read_header(path: Path, where: str) -> dict[str, Any]:
    """The checked metadata of the script at *path*; *where* names it in errors ("a/b.sh").

    Raises :class:`MetadataError` naming the file and line.
    """
    # One read: a file object would read twice (the data, then the end) and
    # cost more than the read itself, once per script of a big tree.
    fd = os.open(path, os.O_RDONLY)
    try:
        start = os.read(fd, HEADER_BYTES)
    finally:
        os.close(fd)
    if b"pexen:" not in start or b"\0" in start:
        return {}  # no header, or a compiled program
    fields: dict[str, Any] = {}
    lines: dict[str, int] = {}
    for match in _HEADER.finditer(start):
        line = start.count(b"\n", 0, match.start()) + 1
        text = match.group(1).decode("utf-8", "replace").strip()
        here = f"{where}:{line}"
        for name, value in parse_fields(text, here).items():
            if name in fields:
                raise MetadataError(
                    f"{here}: pexen field {name!r} was given on line {lines[name]} already; give it once"
                )
            fields[name] = value
            lines[name] = line
            check_fields({name: value}, here)
    return fields


def parse_fields(text: str, where: str) -> dict[str, Any]:
    """The fields of one header line's text (after ``pexen:``), typed, not yet checked."""
    try:
        words = shlex.split(text)
    except ValueError as error:
        raise MetadataError(f"{where}: cannot read the pexen header ({error}); e.g. {EXAMPLE!r}") from None
    fields: dict[str, Any] = {}
    for word in words:
        name, equals, value = word.partition("=")
        if not equals or not name:
            raise MetadataError(
                f"{where}: pexen header fields are name=value, got {word!r}; e.g. {EXAMPLE!r}"
            )
        if name in fields:
            raise MetadataError(f"{where}: pexen field {name!r} is given twice; give it once")
        fields[name] = _value(name, value, where)
    return fields


def _value(name: str, value: str, where: str) -> Any:
    if name == "requires":
        return [tuple(_tags(entry)) if "|" in entry else entry for entry in _tags(value, ",")]
    if name in LIST_FIELDS:
        return _tags(value, ",")
    if name in _INTEGERS:
        try:
            return int(value)
        except ValueError:
            raise MetadataError(f"{where}: pexen field {name!r} must be an integer, got {value!r}") from None
    if name in _NUMBERS:
        try:
            return float(value)
        except ValueError:
            raise MetadataError(
                f"{where}: pexen field {name!r} must be a number of seconds, got {value!r}"
            ) from None
    return value


def _tags(value: str, separator: str = "|") -> list[str]:
    """Tags separated by *separator*; nothing at all is no tag (an empty one is checked later)."""
    return value.split(separator) if value else []
