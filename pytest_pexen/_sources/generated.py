"""Tasks a conftest generates: its ``pytest_pexen_generate(config, path)`` hook.

A ``conftest.py`` that implements the hook is collected as a file of tests:
pytest calls the hook once, for that conftest's own directory (*path*),
when it collects that directory. Each task it yields is a test with the
node id ``<conftest's path>::<task name>`` (``gen/conftest.py::smart_sda``).
Mistakes in what it yields (not a task, a duplicate name, a body that
cannot run, bad metadata) are usage errors naming the conftest; an
exception the hook raises is a collection error of the conftest, as an
import error is of a test module.
"""

from __future__ import annotations

import inspect
import os
import shlex
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from .. import _api, _data
from .._errors import MetadataError
from .._metadata import check_fields
from . import problem
from .command import CommandItem, use_error_phase
from .task import Task, TaskContext

_EXAMPLE = "pytest_pexen.task(name, func_or_command, **metadata)"


class TaskFile(pytest.File):
    """A conftest.py whose ``pytest_pexen_generate`` yields tasks: its tests."""

    def collect(self) -> Iterator[pytest.Item]:
        config = self.config
        module = config.pluginmanager.get_plugin(str(self.path))
        use_error_phase(config)
        arguments = {"config": config, "path": self.path.parent}
        names: set[str] = set()
        for impl in config.hook.pytest_pexen_generate.get_hookimpls():
            if impl.plugin is not module:
                continue
            produced = impl.function(*[arguments[name] for name in impl.argnames])
            if produced is None:
                continue
            try:
                tasks = iter(produced)
            except TypeError:
                problem(config, f"{self.nodeid}: pytest_pexen_generate must yield or return tasks made "
                        f"with {_EXAMPLE}, got {produced!r}")
                continue
            for task in tasks:
                item = self._item(task, names)
                if item is not None:
                    yield item

    def _item(self, task: Any, names: set[str]) -> GeneratedTask | None:
        """The test of one generated *task*, or None after saying what is wrong with it."""
        try:
            return task_item(self, task, names, f"{self.nodeid}: pytest_pexen_generate")
        except MetadataError as error:
            problem(self.config, str(error))
            return None


def task_item(parent: pytest.Collector, task: Any, names: set[str], where: str, added: bool = False) -> GeneratedTask:
    """The test of *task* under *parent*, its name added to *names* (taken
    there already: an error); MetadataError saying what is wrong, after
    *where*. *added*: a hook returned it during the run (not a generator)."""
    if not isinstance(task, Task):
        gave, give = ("returned", "return") if added else ("yielded", "yield")
        raise MetadataError(f"{where} {gave} {task!r} ({type(task).__name__}); {give} {_EXAMPLE}")
    name = task.name
    if not isinstance(name, str) or not name.strip() or "::" in name or "\n" in name:
        raise MetadataError(f"{where}: task name {name!r} must be a non-empty string without '::' or newlines")
    where = f"{parent.nodeid}: task {name!r}"
    if name in names:
        unique = "for the test that added it" if added else "in a conftest"
        raise MetadataError(f"{where} is {'added' if added else 'generated'} twice; names must be unique {unique}")
    try:
        takes_context = _body_check(task.body)
        fields = check_fields(task.metadata, where)
    except MetadataError as error:
        raise MetadataError(f"{where}: {error}" if not str(error).startswith(where) else str(error)) from None
    names.add(name)
    item = GeneratedTask.from_parent(parent, name=name, task=task, takes_context=takes_context)
    if fields:
        item.add_marker(pytest.mark.pexen(**task.metadata))
    return item


def _body_check(body: Any) -> bool:
    """Whether a callable *body* takes the context; raises if *body* cannot run as a task."""
    if callable(body):
        return _takes_context(body)
    if isinstance(body, str):
        if not body.strip():
            raise MetadataError("the command line is empty")
        return False
    if isinstance(body, (list, tuple)) and body and all(isinstance(a, (str, os.PathLike)) for a in body):
        return False
    raise MetadataError(
        f"the body must be a callable, a command line (str) or a non-empty list of arguments, "
        f"got {body!r} ({type(body).__name__})"
    )


def _takes_context(func: Callable[..., Any]) -> bool:
    """Whether *func* needs one argument (the context); raises if it needs more.

    Parameters with defaults are left alone: ``lambda disk=disk: check(disk)``,
    the usual way to bind a loop variable, is called with no argument.
    """
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return False  # no signature to read (some builtins): call it with none
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    required += [p for p in parameters if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
    if len(required) > 1 or (required and required[0].kind == required[0].KEYWORD_ONLY):
        names = ", ".join(p.name for p in required)
        raise MetadataError(
            f"its callable needs the arguments {names}; a task's callable takes none, "
            "or one: the context (node id, tmp_path, reboot_count)"
        )
    return bool(required)


class GeneratedTask(CommandItem):
    """A test a conftest generated: calls its callable, or runs its command in the conftest's directory."""

    def __init__(self, *, task: Task, takes_context: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task = task
        self._takes_context = takes_context

    def runtest(self) -> None:
        body = self.task.body
        if not callable(body):
            args = body if isinstance(body, str) else [os.fspath(arg) for arg in body]
            shown = args if isinstance(args, str) else shlex.join(args)
            self.run_command(args, self.path.parent, f"command {shown!r}")
        elif self._takes_context:
            context = TaskContext(
                self.nodeid, self.scratch_dir(), _api.reboot_count_of(self.nodeid), inputs=_data.inputs_of(self)
            )
            body(context)
            _data.keep(self, context.data)
        else:
            body()

    def reportinfo(self) -> tuple[os.PathLike[str], int, str]:
        code = getattr(self.task.body, "__code__", None)
        line = code.co_firstlineno - 1 if code is not None and Path(code.co_filename) == self.path else 0
        return self.path, line, f"[task] {self.name}"

