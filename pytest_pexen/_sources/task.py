"""``pytest_pexen.task()``: what a conftest's ``pytest_pexen_generate`` hook yields.

Plain data, checked where the conftest is known (:mod:`.generated`), so
that an error can name it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, Union

#: A task's body: a callable, a shell command line, or a command's arguments.
Body = Union[Callable[..., Any], str, Sequence[str]]


@dataclass(frozen=True)
class TaskContext:
    """What a generated task's callable may take as its one argument."""

    #: The task's node id, as in reports (``gen/conftest.py::smart_sda``).
    nodeid: str
    #: A fresh directory of its own, emptied before each attempt.
    tmp_path: Path
    #: How many times the task asked for a reboot before in this run (0 the first time).
    reboot_count: int
    #: What it hands to the tests that require what it provides (as the ``pexen_data`` fixture).
    data: dict[str, Any] = field(default_factory=dict)
    #: Per tag it requires: what the provider wrote (as the ``pexen_inputs`` fixture).
    inputs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Task:
    """A test that a conftest generated: a name, a body, and pexen metadata."""

    name: str
    body: Body
    metadata: Mapping[str, Any] = field(default_factory=dict)


def task(name: str, func_or_command: Body, **metadata: Any) -> Task:
    """A generated test named *name*, for ``pytest_pexen_generate`` to yield.

    *func_or_command* is a callable (taking no argument, or a
    :class:`TaskContext`): it passes by returning, fails by raising, and may
    call ``pytest.skip()`` or ``pytest_pexen.warn()``. Or it is a command, a
    shell command line (``str``) or a list of arguments, run as a script
    test is. *metadata* are the fields of ``@pytest.mark.pexen(...)``.
    """
    return Task(name, func_or_command, dict(metadata))
