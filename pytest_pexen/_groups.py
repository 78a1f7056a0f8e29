"""Exclusivity groups: their configuration (ini lines, hook results) as plain data.

Only one group runs at a time; each has its own worker count and pool kind.
Tests with no ``group`` belong to the group named :data:`DEFAULT_GROUP`.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping

from ._errors import PexenError

DEFAULT_GROUP = "default"
POOL_KINDS = ("process", "thread", "dask")
#: The most workers a group may have.
MAX_WORKERS = 1024
_KEYS = ("workers", "pool", "address")
#: What a user without the optional Dask dependency installs.
DASK_EXTRA = "pip install 'pytest-pexen[dask]'"


class GroupError(PexenError):
    """A group's configuration is malformed or a test names an unknown group."""


@dataclass(frozen=True)
class GroupSpec:
    """How one group runs."""

    name: str
    workers: int
    pool: str = "process"
    #: Whether the worker count was given explicitly (not a default).
    explicit_workers: bool = True
    #: The Dask scheduler of a ``pool=dask`` group (None: --pexen-dask, else a
    #: local cluster started for the run).
    address: str | None = None


def cpu_count() -> int:
    """CPUs this process may run on ("auto" workers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def parse_workers(value: Any, where: str) -> int:
    """A worker count: an integer from 1 to MAX_WORKERS, or "auto"."""
    text = str(value).strip().lower()
    if text == "auto":
        return cpu_count()
    try:
        workers = int(text)
    except ValueError:
        workers = 0
    if not 1 <= workers <= MAX_WORKERS or isinstance(value, bool):
        raise GroupError(
            f"{where} must be a whole number from 1 to {MAX_WORKERS}, or 'auto', got {value!r}"
        )
    return workers


def parse_spec(name: str, spec: Any, where: str, default_workers: int) -> GroupSpec:
    """One group from ``"workers=2 pool=thread"`` or ``{"workers": 2, "pool": "thread"}``."""
    if not name or not isinstance(name, str) or any(c.isspace() for c in name) or ":" in name:
        raise GroupError(f"{where}: a group name must be a non-empty word, got {name!r}")
    if isinstance(spec, str):
        fields: dict[str, Any] = {}
        for word in spec.split():
            key, sep, value = word.partition("=")
            if not sep:
                raise GroupError(f"{where}: expected key=value, got {word!r}")
            fields[key] = value
    elif isinstance(spec, Mapping):
        fields = dict(spec)
    else:
        raise GroupError(
            f"{where}: group {name!r} must be given as 'workers=N pool=KIND' or a dict, got {spec!r}"
        )
    unknown = sorted(set(fields) - set(_KEYS))
    if unknown:
        raise GroupError(
            f"{where}: unknown setting {unknown[0]!r} for group {name!r}; known: {', '.join(_KEYS)}"
        )
    pool = fields.get("pool", "process")
    if pool not in POOL_KINDS:
        raise GroupError(
            f"{where}: pool of group {name!r} must be one of {', '.join(POOL_KINDS)}, got {pool!r}"
        )
    address = fields.get("address")
    if address is not None:
        if pool != "dask":
            raise GroupError(
                f"{where}: address= of group {name!r} is where a Dask scheduler listens, "
                f"for a group with pool=dask; this group has pool={pool}"
            )
        if not isinstance(address, str) or not address.strip() or any(c.isspace() for c in address):
            raise GroupError(
                f"{where}: address of group {name!r} must be a Dask scheduler's address "
                f"such as tcp://host:8786, got {address!r}"
            )
    if "workers" in fields:
        workers = parse_workers(fields["workers"], f"{where}: workers of group {name!r}")
        return GroupSpec(name, workers, pool, address=address)
    return GroupSpec(name, default_workers, pool, explicit_workers=False, address=address)


def parse_ini_lines(lines: Iterable[str], default_workers: int) -> list[GroupSpec]:
    """``pexen_groups`` lines, ``name: workers=N pool=KIND``, in order."""
    specs = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, rest = line.partition(":")
        where = f"ini pexen_groups line {number} ({line!r})"
        if not sep:
            raise GroupError(f"{where}: expected 'name: workers=N pool=KIND'")
        specs.append(parse_spec(name.strip(), rest, where, default_workers))
    return specs


def combine(
    configured: Iterable[GroupSpec], default_workers: int, default_workers_given: bool
) -> dict[str, GroupSpec]:
    """All groups by name, in configuration order, the default group included.

    The default group comes first unless configured elsewhere; its worker
    count comes from the command line when given there.
    """
    groups: dict[str, GroupSpec] = {}
    for spec in configured:
        if spec.name in groups:
            raise GroupError(f"group {spec.name!r} is configured twice")
        groups[spec.name] = spec
    default = groups.get(DEFAULT_GROUP)
    if default is None:
        return {DEFAULT_GROUP: GroupSpec(DEFAULT_GROUP, default_workers)} | groups
    if default_workers_given or not default.explicit_workers:
        groups[DEFAULT_GROUP] = replace(default, workers=default_workers, explicit_workers=True)
    return groups


def require_dask(groups: Iterable[GroupSpec], where: str) -> None:
    """A usage error if a group runs on Dask and the distributed package is missing.

    Looked up, not imported: importing it takes a while, and only the pool
    that runs on Dask needs it.
    """
    dask = [spec.name for spec in groups if spec.pool == "dask"]
    if not dask:
        return
    try:
        found = importlib.util.find_spec("distributed") is not None
    except (ImportError, ValueError):  # ValueError: set to None in sys.modules
        found = False
    if not found:
        names = ", ".join(repr(name) for name in dask)
        raise GroupError(
            f"{where}: group {names} runs on Dask (pool=dask), which needs the "
            f"distributed package; install it with: {DASK_EXTRA}"
        )
