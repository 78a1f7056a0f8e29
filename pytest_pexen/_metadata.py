"""Task metadata: the fields of ``@pytest.mark.pexen(...)`` and ``pexen_defaults``.

Everything here is plain data: validation turns user input (lists, sets,
strings) into a frozen :class:`Meta`, and :func:`merge` layers conftest
defaults and markers from the farthest to the nearest.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, fields
from typing import Any, Iterable, Mapping

from ._errors import MetadataError

#: requires entry: one tag, or a tuple of alternative tags (any one of them).
Requirement = tuple[str, ...]
#: In ``requires``: ``any:TAG`` is met once any one test that provides TAG
#: has passed (a virtual tag), where plain ``TAG`` needs all of them.
ANY_PREFIX = "any:"

ON_RESUME_CHOICES = ("rerun", "crash")
#: How tests are kept together on one worker: not at all, by class, by file.
AFFINITY_CHOICES = ("none", "class", "file")
#: Ranges of the number fields (inclusive): beyond them a value is a mistake.
MAX_TIMEOUT = 365 * 24 * 3600.0
MAX_RETRY_DELAY = 24 * 3600.0
MAX_RETRIES = 1000
PRIORITY_RANGE = (-(2**31), 2**31 - 1)


@dataclass(frozen=True)
class Meta:
    """Validated metadata of one test."""

    requires: tuple[Requirement, ...] = ()
    provides: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    claims: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    priority: int = 0
    group: str | None = None
    timeout: float | None = None
    retries: int = 0
    retry_delay: float = 0.0
    on_resume: str = "rerun"
    #: None: as --pexen-affinity says.
    affinity: str | None = None


LIST_FIELDS = ("requires", "provides", "after", "claims", "uses")
FIELD_NAMES = tuple(f.name for f in fields(Meta))
#: The key of conftest ``pexen_defaults`` that makes tags local to its directory tree.
LOCAL_TAGS = "local_tags"
#: Joins a local tag to its directory in its scoped name: ``build@sub/dir``.
SCOPE_MARK = "@"


def any_of(tag: str) -> str:
    """In ``requires``: met once any one test that provides *tag* has passed.

    Plain ``"httpd"`` waits for every test that provides it; ``any_of("httpd")``
    (the string ``"any:httpd"``) for the first one to pass.
    """
    if not isinstance(tag, str) or not tag or tag.startswith(ANY_PREFIX):
        raise MetadataError(f"any_of() takes one tag, a non-empty string, got {tag!r}")
    return ANY_PREFIX + tag


def split_any(tag: str) -> tuple[str, bool]:
    """A tag as named in ``requires``: the tag, and whether one provider is enough (``any:``)."""
    if tag.startswith(ANY_PREFIX):
        return tag[len(ANY_PREFIX) :], True
    return tag, False


def _tags(value: Any, name: str, where: str) -> tuple[str, ...]:
    """A list, set or tuple of tag strings (a lone string is one tag)."""
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise _wrong_type(where, name, "a list or set of strings", value)
    tags = []
    for tag in value:
        if not isinstance(tag, str) or not tag:
            raise _wrong_type(where, name, "a list or set of non-empty strings", tag)
        if tag.startswith(ANY_PREFIX) and (name != "requires" or tag == ANY_PREFIX):
            raise MetadataError(
                f"{where}: pexen field {name!r}: {tag!r}: {ANY_PREFIX!r} (any one provider is "
                "enough) goes before a tag in requires only, as in requires=['any:httpd']"
            )
        tags.append(tag)
    # Sets have no order; sorting keeps plans and messages reproducible.
    if isinstance(value, (set, frozenset)):
        tags.sort()
    return tuple(dict.fromkeys(tags))


def _requirements(value: Any, where: str) -> tuple[Requirement, ...]:
    """requires: tags, where a tuple inside the list means "any one of these"."""
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise _wrong_type(where, "requires", "a list or set of tags", value)
    result: list[Requirement] = []
    for entry in value:
        if isinstance(entry, tuple):
            if not entry:
                raise _wrong_type(where, "requires", "a non-empty tuple of alternatives", entry)
            result.append(_tags(entry, "requires", where))
        elif isinstance(entry, str) and entry:
            result.append(_tags(entry, "requires", where))
        else:
            raise _wrong_type(where, "requires", "tags (strings) or tuples of tags", entry)
    if isinstance(value, (set, frozenset)):
        result.sort()
    return tuple(dict.fromkeys(result))


def _number(value: Any, name: str, where: str, *, minimum: float, maximum: float, strict: bool) -> float:
    """A finite number of seconds in range (*strict*: greater than *minimum*)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _wrong_type(where, name, "a number", value)
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    low_ok = number > minimum if strict else number >= minimum
    if not (math.isfinite(number) and low_ok and number <= maximum):
        bound = "greater than" if strict else "at least"
        raise MetadataError(
            f"{where}: pexen field {name!r} must be a finite number {bound} {minimum:g} "
            f"and at most {maximum:g}, got {value!r}"
        )
    return number


def _integer(value: Any, name: str, where: str, *, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(where, name, "an integer", value)
    if not minimum <= value <= maximum:
        raise MetadataError(
            f"{where}: pexen field {name!r} must be from {minimum} to {maximum}, got {value!r}"
        )
    return value


def _wrong_type(where: str, name: str, expected: str, value: Any) -> MetadataError:
    return MetadataError(
        f"{where}: pexen field {name!r} must be {expected}, got {value!r} ({type(value).__name__})"
    )


def check_fields(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate and normalise one layer of metadata (a marker or a defaults dict).

    Returns only the fields present in *raw*, normalised; *where* names the
    test or conftest in error messages.
    """
    checked: dict[str, Any] = {}
    for name, value in raw.items():
        if name == LOCAL_TAGS:
            raise MetadataError(
                f"{where}: {LOCAL_TAGS!r} can only be given in a conftest's pexen_defaults, "
                "where it makes tags local to that conftest's directory tree"
            )
        if name not in FIELD_NAMES:
            hint = difflib.get_close_matches(name, FIELD_NAMES, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise MetadataError(
                f"{where}: unknown pexen field {name!r}{suggestion}; "
                f"known fields: {', '.join(FIELD_NAMES)}"
            )
        if name == "requires":
            checked[name] = _requirements(value, where)
        elif name in LIST_FIELDS:
            checked[name] = _tags(value, name, where)
        elif name == "priority":
            checked[name] = _integer(value, name, where, minimum=PRIORITY_RANGE[0], maximum=PRIORITY_RANGE[1])
        elif name == "retries":
            checked[name] = _integer(value, name, where, minimum=0, maximum=MAX_RETRIES)
        elif name == "timeout":
            checked[name] = (
                None
                if value is None
                else _number(value, name, where, minimum=0, maximum=MAX_TIMEOUT, strict=True)
            )
        elif name == "retry_delay":
            checked[name] = _number(value, name, where, minimum=0, maximum=MAX_RETRY_DELAY, strict=False)
        elif name == "group":
            if value is not None and (not isinstance(value, str) or not value):
                raise _wrong_type(where, name, "a non-empty string", value)
            checked[name] = value
        elif name in ("on_resume", "affinity"):
            choices = ON_RESUME_CHOICES if name == "on_resume" else AFFINITY_CHOICES
            if value not in choices:
                raise MetadataError(
                    f"{where}: pexen field {name!r} must be one of "
                    f"{', '.join(map(repr, choices))}, got {value!r}"
                )
            checked[name] = value
    return checked


def check_local_tags(value: Any, where: str) -> tuple[str, ...]:
    """``local_tags`` of a conftest's pexen_defaults: tag names, without the scope mark."""
    tags = _tags(value, LOCAL_TAGS, where)
    for tag in tags:
        if SCOPE_MARK in tag:
            raise MetadataError(
                f"{where}: {LOCAL_TAGS!r} names tags as tests write them, without {SCOPE_MARK!r} "
                f"(which joins a local tag to its directory: build{SCOPE_MARK}sub/dir), got {tag!r}"
            )
    return tags


def merge(layers: Iterable[Mapping[str, Any]]) -> Meta:
    """Combine checked layers, farthest first: lists add up, the nearest scalar wins."""
    combined: dict[str, Any] = {}
    for layer in layers:
        for name, value in layer.items():
            if name in LIST_FIELDS and name in combined:
                combined[name] = tuple(dict.fromkeys(combined[name] + value))
            else:
                combined[name] = value
    return Meta(**combined)
