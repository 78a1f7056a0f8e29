"""Hooks that conftest files and plugins may implement for pytest-pexen."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import pytest


def pytest_pexen_groups(config: pytest.Config) -> Mapping[str, Any] | None:
    """Configure exclusivity groups, in addition to ini ``pexen_groups``.

    Return a mapping of group name to its settings, either as a string like
    the ini lines (``"workers=1 pool=process"``) or as a dict
    (``{"workers": 50, "pool": "thread"}``). Groups keep the order in which
    they are returned, after the ini groups. Called once, after collection,
    so any collected directory's conftest may implement it.
    """


def pytest_pexen_generate(config: pytest.Config, path: Path) -> Iterable[Any] | None:
    """Generate tests: yield (or return a list of) :func:`pytest_pexen.task` objects.

    Implemented in a ``conftest.py``; called once, when pytest collects that
    conftest's directory, with *path* that directory. Each task becomes a
    test with the node id ``<conftest's path>::<task name>``, run with and
    without ``--pexen``. Not called for conftests of other directories, nor
    for plugins.
    """


def pytest_pexen_task_finished(
    task: pytest.Item, report: pytest.TestReport | None, outcome: str, data: Mapping[str, Any]
) -> Any:
    """In the controller of a ``--pexen`` run, when a test has ended: return
    tests to add to the run, or None.

    Called for every outcome: *outcome* is pexen's word for it ("passed",
    "failed", "error", "skipped", "xfailed", "warned", "blocked", "crashed",
    "timeout", ...); *task* is the test's item, *report* the report that
    decided its outcome (a failed one, else the call's, else the last), *data*
    what the test wrote into ``pexen_data``. Only the conftests on the test's
    path answer (and plugins).

    Return a :func:`pytest_pexen.task`, or a list of them: each becomes a test
    named ``<task's node id>::<name>``, scheduled by the same rules as
    collected tests (it may require tags provided already, or that tests
    added later provide). A task list that cannot be added is an error of
    *task*; the run goes on.
    """


def pytest_pexen_worker_start(config: pytest.Config, workerinput: dict[str, Any]) -> None:
    """In a fresh ``--pexen`` worker process, before its first test.

    Workers are forked from the controller after collection, so
    ``pytest_configure`` and ``pytest_sessionstart`` do not run again in
    them: this is where per-worker set-up goes (a per-worker database name,
    a port range). *workerinput* is also ``config.workerinput``, as under
    pytest-xdist: ``workerid`` (``gw0``, ``gw1``, ... unique in the run),
    ``workercount``, ``testrunuid``, ``mainargv`` and ``pexen`` (True).
    """


def pytest_pexen_worker_finish(session: pytest.Session, workeroutput: dict[str, Any]) -> None:
    """In a ``--pexen`` worker, after its last test and teardown, before it exits.

    Also called when the worker is ended by SIGTERM (the watchdog, a second
    Ctrl-C, a cancelled CI job), with about a second to spare. Save what the
    worker measured, or put small picklable values into *workeroutput*
    (also ``config.workeroutput``, as under pytest-xdist): the controller's
    :func:`pytest_pexen_worker_done` receives them.
    """


def pytest_pexen_worker_done(
    config: pytest.Config, workerid: str, workeroutput: dict[str, Any], error: str | None
) -> None:
    """In the controller, when a worker process has ended.

    *workeroutput* is what the worker's :func:`pytest_pexen_worker_finish`
    put there (empty if the worker died first); *error* is None when the
    worker ended normally, else what happened to it ("killed by signal 9
    (SIGKILL)"), in which case what it measured may be incomplete.
    """
