"""Tasks added while a ``--pexen`` run goes on: the ``pytest_pexen_task_finished`` hook.

When a test ends (whatever its outcome, blocked included), the controller
calls the hook of the conftests on the test's path and of plugins; each may
return :func:`pytest_pexen.task` objects. They become tests named after the
test that ended, ``<its node id>::<task name>``, with the pexen defaults of
their directory (conftest ``pexen_defaults``, the module's own markers),
and the planner schedules them by the same rules as collected tests.

What goes wrong is an error of the test that ended (a hook that raises or
returns something else, a bad task, a cycle): the run goes on. At most
``pexen_max_added_tasks`` tasks are added in a run.
"""

from __future__ import annotations

import pickle
import traceback
from typing import Any, Callable, Iterable, Mapping, Sequence

import pytest

from .._errors import MetadataError, PexenError, PlanError
from .._planner import Planner, Task as PlannedTask
from . import ADDED_LIMIT_INI
from .generated import task_item
from .task import Task


def limit_of(config: pytest.Config) -> int:
    """ini pexen_max_added_tasks; a usage error if it is no whole number."""
    text = str(config.getini(ADDED_LIMIT_INI)).strip()
    try:
        limit = int(text)
    except ValueError:
        limit = -1
    if limit < 0:
        raise pytest.UsageError(f"ini {ADDED_LIMIT_INI} must be a whole number (0 or more), got {text!r}")
    return limit


class _AddedBy(pytest.Collector):
    """Stands for the test that added tasks: their parent, so that their node ids start with its own."""

    def collect(self) -> list[pytest.Item]:
        return []


class Growth:
    """Adds what the hook returns for each test that ends, to *items* and the *planner*.

    *make_task* turns a new item into the planner's task (its metadata,
    checked: a PexenError says what is wrong); *register* is told each new
    item and its index, for what the session keeps by index (time limits,
    retries).
    """

    def __init__(
        self,
        config: pytest.Config,
        planner: Planner,
        items: list[pytest.Item],
        make_task: Callable[[pytest.Item], PlannedTask],
        register: Callable[[int, pytest.Item], None],
        limit: int,
    ) -> None:
        self._planner = planner
        self._items = items
        self._make_task = make_task
        self._register = register
        self._limit = limit
        self.added = 0
        self._wanted = bool(config.hook.pytest_pexen_task_finished.get_hookimpls())

    def after(
        self, item: pytest.Item, reports: Sequence[pytest.TestReport], outcome: str, data: bytes | None
    ) -> tuple[list[int], list[str]]:
        """Call the hook for *item*, which ended with *outcome*; returns the
        indices of the tests it added and what went wrong, to report as errors of *item*."""
        if not self._wanted:
            return [], []
        try:
            results = item.ihook.pytest_pexen_task_finished(
                task=item, report=_deciding(reports), outcome=outcome, data=pickle.loads(data) if data else {}
            )
        except Exception:
            return [], [f"pytest_pexen_task_finished raised, after {item.nodeid}:\n{traceback.format_exc()}"]
        tasks, problems = _tasks_in(results)
        if not tasks:
            return [], problems
        parent = _AddedBy.from_parent(item.parent, name=item.name)
        names: set[str] = set()
        made: list[tuple[pytest.Item, PlannedTask]] = []
        where = f"{item.nodeid}: pytest_pexen_task_finished"
        for task in tasks:
            try:
                new = task_item(parent, task, names, where, added=True)
                made.append((new, self._make_task(new)))
            except (MetadataError, PexenError) as error:
                problems.append(str(error))
        if self.added + len(made) > self._limit:
            tests = f"{len(made)} test{'s' if len(made) != 1 else ''}"
            problems.append(
                f"{where} would add {tests}, but {self.added} were added in this run already and ini "
                f"{ADDED_LIMIT_INI} allows {self._limit}: none of these were added (a loop of tasks adding tasks?)"
            )
            return [], problems
        if not made:
            return [], problems
        try:
            self._planner.add([task for _, task in made])
        except PlanError as error:
            problems.append(f"{where}: none of its tasks were added: {error}")
            return [], problems
        self.added += len(made)
        first = len(self._items)
        for offset, (new, _) in enumerate(made):
            self._items.append(new)
            self._register(first + offset, new)
        return list(range(first, len(self._items))), problems


def _deciding(reports: Sequence[pytest.TestReport]) -> pytest.TestReport | None:
    """The report that decided a test's outcome: a failed one, else its call, else its last."""
    for report in reports:
        if report.failed:
            return report
    for report in reports:
        if report.when == "call":
            return report
    return reports[-1] if reports else None


def _tasks_in(results: Iterable[Any]) -> tuple[list[Any], list[str]]:
    """What the hook's implementations returned, as a list of would-be tasks
    (:func:`task_item` says what is wrong with any that is not one)."""
    tasks: list[Any] = []
    problems: list[str] = []
    for result in results:
        if result is None:
            continue
        if isinstance(result, (Task, str, bytes, Mapping)) or not isinstance(result, Iterable):
            tasks.append(result)
            continue
        try:
            tasks.extend(result)
        except Exception:
            problems.append(f"iterating what pytest_pexen_task_finished returned raised:\n{traceback.format_exc()}")
    return tasks, problems
