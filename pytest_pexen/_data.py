"""Data from providers to dependents: ``pexen_data`` and ``pexen_inputs``.

A test writes small picklable values into its ``pexen_data`` dict (an image
path, a port, an address); once it has passed, every test that requires a
tag it provides reads them from ``pexen_inputs[tag]``. In a worker the
values travel pickled: with the test's payload to the controller, and with
the assignment of a dependent to its worker. The controller keeps them
(:class:`Inputs`), and the state file keeps them with the result, so a
resumed run hands them on as well.

Script tests and commands get the same as files (see :func:`command_files`):
``PEXEN_INPUTS`` names a JSON file of their inputs, and what they write as a
JSON object into the file ``PEXEN_DATA`` names is their data.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from types import MappingProxyType
from typing import Any, Iterable, Mapping

import pytest

from ._errors import PexenError
from ._metadata import SCOPE_MARK, Requirement, split_any

#: Most bytes a test's data may take, pickled.
MAX_DATA_BYTES = 64 * 1024
#: Where a test's data (pickled) and its inputs (a mapping) wait on its item.
DATA_KEY = pytest.StashKey[bytes]()
INPUTS_KEY = pytest.StashKey[Mapping[str, Any]]()
#: Environment variables of a command: its inputs' JSON file, and the file for its data.
INPUTS_VARIABLE = "PEXEN_INPUTS"
DATA_VARIABLE = "PEXEN_DATA"


class DataError(PexenError):
    """What a test wrote to ``pexen_data`` cannot be handed on."""


def keep(item: pytest.Item, data: Any) -> None:
    """Check what *item* wrote and keep it, pickled, for its dependents; DataError if it cannot be."""
    if not isinstance(data, dict):
        raise DataError(f"pexen_data must stay a dict, it is a {type(data).__name__}")
    if not data:
        return
    bad = [key for key in data if not isinstance(key, str)]
    if bad:
        raise DataError(f"the keys of pexen_data must be strings, got {bad[0]!r}")
    try:
        blob = pickle.dumps(data, pickle.HIGHEST_PROTOCOL)
    except Exception as error:
        raise DataError(
            f"pexen_data cannot be pickled, so no dependent could read it: {type(error).__name__}: {error}; "
            "keep plain values there (strings, numbers, lists, dicts, paths)"
        ) from None
    if len(blob) > MAX_DATA_BYTES:
        raise DataError(
            f"pexen_data takes {len(blob)} bytes pickled, more than the {MAX_DATA_BYTES} allowed; "
            "write big things to a file and hand on its path"
        )
    item.stash[DATA_KEY] = blob


def take(item: pytest.Item) -> bytes | None:
    """What *item* kept for its dependents, pickled (None: nothing); it is kept no more."""
    data = item.stash.get(DATA_KEY, None)
    if data is not None:
        del item.stash[DATA_KEY]
    return data


def receive(item: pytest.Item, blob: bytes | None) -> None:
    """The inputs of *item*, as its assignment brought them (None: none)."""
    inputs = pickle.loads(blob) if blob else {}
    item.stash[INPUTS_KEY] = MappingProxyType(inputs)


def inputs_of(item: pytest.Item) -> Mapping[str, Any]:
    """Per tag *item* requires: what its provider wrote (read-only)."""
    return item.stash.get(INPUTS_KEY, None) or MappingProxyType({})


class Inputs:
    """In the controller: what passing providers wrote, and what each dependent gets.

    For ``any:TAG``, a dependent gets what the provider that met it (the
    first to pass) wrote; for a plain ``TAG``, what every provider of it
    wrote, merged in collection order (a key two of them wrote: the later
    one's value).
    """

    def __init__(self) -> None:
        #: Per tag: each passing provider's (collection position, data), in the order they passed.
        self._by_tag: dict[str, list[tuple[int, dict[str, Any]]]] = {}

    def __bool__(self) -> bool:
        """Whether any provider wrote anything."""
        return bool(self._by_tag)

    def provided(self, tags: Iterable[str], position: int, blob: bytes | None) -> None:
        """The test at *position* that provides *tags* passed, with *blob* as its data."""
        if not blob:
            return
        data = pickle.loads(blob)
        for tag in tags:
            self._by_tag.setdefault(tag, []).append((position, data))

    def for_task(self, requires: Iterable[Requirement]) -> bytes | None:
        """The inputs of a task with these requirements, pickled (None: it has none)."""
        inputs: dict[str, dict[str, Any]] = {}
        for requirement in requires:
            for tag in requirement:
                name, any_provider = split_any(tag)
                found = self._by_tag.get(name)
                if not found:
                    continue
                if any_provider:
                    inputs[name] = dict(found[0][1])
                else:
                    merged: dict[str, Any] = {}
                    for _, data in sorted(found, key=lambda entry: entry[0]):
                        merged.update(data)
                    inputs[name] = merged
        for name in list(inputs):
            # A local tag is known as build@drivers/net; the test wrote "build".
            inputs.setdefault(name.partition(SCOPE_MARK)[0], inputs[name])
        return pickle.dumps(inputs, pickle.HIGHEST_PROTOCOL) if inputs else None


class PlainRun:
    """Without ``--pexen``: tests run one after another in this process, and
    what a passing provider wrote reaches the tests that run after it.

    Registered as a plugin the first time a test asks for ``pexen_data`` or
    ``pexen_inputs``, so that a plain run of a suite that uses neither pays
    nothing.
    """

    name = "pexen-plain-data"

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._inputs = Inputs()
        self._order = 0
        self._defaults: Any = None

    @classmethod
    def of(cls, config: pytest.Config) -> PlainRun:
        plugin = config.pluginmanager.get_plugin(cls.name)
        if plugin is None:
            plugin = cls(config)
            config.pluginmanager.register(plugin, cls.name)
        return plugin  # type: ignore[no-any-return]

    def _meta(self, item: pytest.Item) -> Any:
        if self._defaults is None:
            from ._defaults import ConftestDefaults  # imported only when a test hands on data

            self._defaults = ConftestDefaults(self._config)
        return self._defaults.meta(item)

    def inputs(self, item: pytest.Item) -> Mapping[str, Any]:
        if not self._inputs:
            return MappingProxyType({})
        blob = self._inputs.for_task(self._meta(item).requires)
        return MappingProxyType(pickle.loads(blob) if blob else {})

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        if report.failed or (report.skipped and report.when != "teardown"):
            item.stash[_NOT_PASSED] = True
        if report.when == "teardown":
            blob = take(item)
            if blob is not None and not item.stash.get(_NOT_PASSED, False):
                self._order += 1
                self._inputs.provided(self._meta(item).provides, self._order, blob)
        return report


_NOT_PASSED = pytest.StashKey[bool]()


def command_files(item: pytest.Item, directory: Path) -> dict[str, str]:
    """What a command run as *item* finds in its environment: ``PEXEN_DATA``,
    where it may write its data (a file in its fresh *directory*), and, when
    it has inputs, ``PEXEN_INPUTS``, a JSON file of them (values JSON cannot
    hold are written as strings)."""
    environment = {DATA_VARIABLE: str(directory / "pexen-data.json")}
    inputs = inputs_of(item)
    if inputs:
        path = directory / "pexen-inputs.json"
        path.write_text(json.dumps(dict(inputs), default=str), encoding="utf-8")
        environment[INPUTS_VARIABLE] = str(path)
    return environment


def collect_command_data(item: pytest.Item, environment: Mapping[str, str]) -> None:
    """Keep what a command wrote into its ``PEXEN_DATA`` file, if anything; DataError if it is not a JSON object."""
    path = environment[DATA_VARIABLE]
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except FileNotFoundError:
        return
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError as error:
        raise DataError(f"${DATA_VARIABLE} ({path}) must hold a JSON object: {error}") from None
    if not isinstance(data, dict):
        raise DataError(f"${DATA_VARIABLE} ({path}) must hold a JSON object, not {type(data).__name__}")
    keep(item, data)
