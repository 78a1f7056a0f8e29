"""The pytest glue of a ``--pexen`` session: metadata, pull-in, the run loop.

Translates between pytest (items, markers, conftests, hooks) and our plain
model (:class:`Meta`, :class:`Task`); holds no scheduling logic. Imported
only when ``--pexen`` is given.
"""

from __future__ import annotations

import fnmatch
import functools
import gc
import sys
import time
import uuid
from typing import TYPE_CHECKING, Any, Generator, Mapping, Sequence

import pytest

from . import _api, _summary
from ._errors import PexenError, PlanError
from ._defaults import ConftestDefaults
from ._events import Bus
from ._groups import DEFAULT_GROUP, GroupSpec, combine, parse_ini_lines, parse_spec, require_dask
from ._metadata import Meta
from ._options import Options
from ._planner import Planner, Task, pull_in
from ._pools import Pool
from ._pools.process import ProcessPool
from ._pools.thread import ThreadPool
from ._reporting import PEXEN_FAILURES, say
from ._runloop import Limits, RunLoop
from ._resume import PAUSED, SessionState
from ._state import StateError
from ._sources import added
from ._worker import Retry, WorkerSetup, run_in_thread, run_worker

if TYPE_CHECKING:
    from ._observers.spans import History

DURATIONS_KEY = "pexen/durations"


class PexenSession:
    """State and hooks of one ``--pexen`` session, in the controller."""

    def __init__(self, config: pytest.Config, options: Options) -> None:
        self._config = config
        self._options = options
        self._loop: RunLoop | None = None
        self._scratch: str | None = None
        #: Names this run to the workers (as pytest-xdist's testrunuid does).
        self._testrunuid = uuid.uuid4().hex
        self._deselected: list[pytest.Item] = []
        self._pulled: list[pytest.Item] = []
        #: Providers that stand by for an any: tag (see pull_in), by the tag;
        #: they join the run's items when it starts, after the selection.
        self._standby: dict[str, list[pytest.Item]] = {}
        #: Per any: tag with providers standing by: the pulled-in providers chosen first.
        self._chosen: dict[str, list[str]] = {}
        self._defaults: ConftestDefaults | None = None
        #: Metadata of tests being added, until they join the run's items.
        self._added_metas: dict[str, Meta] = {}
        self._planner: Planner | None = None
        self._groups: dict[str, GroupSpec] = {}
        #: Time limits by index of the run's items (a test added during the run gets its own).
        self._timeouts: dict[int, float] = {}
        self._growth_limit = 0
        self._retries: dict[int, Retry] = {}
        self._durations: dict[str, float] = {}
        #: Node ids whose on_resume is "crash".
        self._crash_on_resume: frozenset[str] = frozenset()
        #: Node ids a --pexen-break pattern matches, with the pattern.
        self._breakpoints: dict[str, str] = {}
        #: The line that says what pexen does in this run (None: nothing selected).
        self._header: str | None = None
        self._state = SessionState(config, options)
        #: The run's events, for the observers the options ask for (see _observers).
        self._bus = Bus(functools.partial(say, config, red=True))
        #: When this session's run began (epoch seconds): earlier sessions' tests ended before.
        self._began: float | None = None
        # Where reboot() cannot ask for a reboot: the controller's own threads.
        _api.set_rebooter("pytest_pexen.reboot() works in tests of a process pool, not of a thread pool")
        cache = getattr(config, "cache", None)
        if cache is not None:
            self._durations = dict(cache.get(DURATIONS_KEY, {}))

    # -- collection: metadata, pull-in, plan ------------------------------

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self._deselected.extend(items)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
    ) -> Generator[None, None, None]:
        yield
        try:
            self._plan(items)
        except PexenError as error:
            raise pytest.UsageError(str(error)) from None

    def _plan(self, items: list[pytest.Item]) -> None:
        chosen = {id(item) for item in items}
        deselected = [item for item in self._deselected if id(item) not in chosen]
        self._groups = self._configured_groups()
        self._defaults = defaults = ConftestDefaults(self._config)
        metas = {item.nodeid: defaults.meta(item) for item in [*items, *deselected]}
        self._crash_on_resume = frozenset(item.nodeid for item in items if metas[item.nodeid].on_resume == "crash")
        selected = [self._task(item, metas[item.nodeid]) for item in items]
        others = {item.nodeid: (item, self._task(item, metas[item.nodeid])) for item in deselected}

        absent: dict[str, str] = {}
        standby: list[Task] = []
        if not self._config.getoption("pexen_no_pull"):
            pulled_tasks = pull_in(selected, (task for _, task in others.values()))
            standby = [task for task in pulled_tasks if task.standby_for is not None]
            pulled_ids = {t.id for t in pulled_tasks if t.standby_for is None}
            self._pulled = [item for item in deselected if item.nodeid in pulled_ids]
            if self._pulled:
                self._undeselect(self._pulled)
                selected = [others[i.nodeid][1] for i in self._pulled] + selected
                items[:0] = self._pulled
            for task in standby:
                self._standby.setdefault(task.standby_for or "", []).append(others[task.id][0])
            self._chosen = {
                tag: [t.id for t in pulled_tasks if t.standby_for is None and tag in t.provides] for tag in self._standby
            }
        provided = {tag for task in [*selected, *standby] for tag in task.provides}
        pulled = {item.nodeid for item in self._pulled} | {task.id for task in standby}
        for item, task in others.values():
            if item.nodeid in pulled:
                continue
            for tag in task.provides:
                if tag not in provided:
                    absent.setdefault(tag, f"provided by {task.id} which was not selected")
        if not self._config.option.collectonly:
            self._observe(selected)
        try:
            self._planner = Planner(
                [*selected, *standby],
                absent=absent,
                durations=self._durations,
                group_order=list(self._groups),
                on_change=self._bus.ready_listener(frozenset(task.id for task in [*selected, *standby] if task.locks)),
            )
        except PlanError as error:
            hints = defaults.scopes.hints(selected, absent)
            raise PlanError("\n".join([str(error), *hints])) from None
        self._breakpoints = _breakpoints(self._options.breakpoints, selected)
        self._header = _summary.header(self._groups, self._planner.groups(), selected)
        self._timeouts = {}
        self._retries = {}
        for index, item in enumerate([*items, *self._standing_by()]):
            self._limits_of(index, item, metas[item.nodeid])
        self._growth_limit = added.limit_of(self._config)

    def _standing_by(self) -> list[pytest.Item]:
        return [item for standing in self._standby.values() for item in standing]

    def _limits_of(self, index: int, item: pytest.Item, meta: Meta) -> None:
        """Keep the time limit and retries of *item*, at *index* of the run's items."""
        timeout = meta.timeout or self._options.timeout
        if timeout is not None:
            self._timeouts[index] = timeout
        if meta.retries:
            self._retries[index] = Retry(meta.retries, meta.retry_delay)

    def _added_task(self, item: pytest.Item) -> Task:
        """The planner's task for a test that pytest_pexen_task_finished added."""
        assert self._defaults is not None
        meta = self._added_metas[item.nodeid] = self._defaults.meta(item)
        task = self._task(item, meta)
        if self._groups[task.group].pool == "dask":
            raise PexenError(
                f"{item.nodeid}: group {task.group!r} runs on Dask, whose hosts collect the suite "
                "themselves and cannot know a test added during the run; add it to another group"
            )
        # A --pexen-break pattern may name it (the run loop reads this dict).
        self._breakpoints.update(_breakpoints(self._options.breakpoints, [task]))
        return task

    def _register_added(self, index: int, item: pytest.Item) -> None:
        """A test added during the run is the run's item at *index* from now on."""
        self._limits_of(index, item, self._added_metas.pop(item.nodeid))
        item.session.testscollected += 1

    def _observe(self, tasks: Sequence[Task]) -> None:
        """Subscribe the observers the options ask for (progress, heartbeat, timeline, trace)."""
        from ._observers import subscribe

        self._bus.close()  # a second collection in one session starts over
        sizes: dict[str, int] = {}
        for task in tasks:
            sizes[task.group] = sizes.get(task.group, 0) + 1
        workers = {group: max(1, min(self._groups[group].workers, size)) for group, size in sizes.items()}
        subscribe(self._bus, self._config, self._options, tasks, self._durations, workers, self._history)

    def _history(self) -> History | None:
        """What a resumed run's earlier sessions did, from the state file (None: not resumed)."""
        from ._observers.spans import History

        run, store = self._state.resumed, self._state.store
        if run is None or store is None or self._began is None:
            return None
        began = self._began
        tests = tuple(
            (r.nodeid, r.started, r.ended, r.worker or "", r.outcome or "")
            for r in store.records(run.run_id).values()
            if r.status == "done" and r.started is not None and r.ended is not None and r.ended < began
        )
        # The newest resume noted is this session's own (the picture marks it anyway).
        earlier_resumes = store.resumed_at(run.run_id)[:-1]
        return History(sessions=(run.started, *earlier_resumes), tests=tests)

    def _configured_groups(self) -> dict[str, GroupSpec]:
        """Groups from ini ``pexen_groups`` and ``pytest_pexen_groups`` hooks."""
        config = self._config
        specs = parse_ini_lines(config.getini("pexen_groups"), self._options.workers)
        for result in config.hook.pytest_pexen_groups(config=config):
            if not isinstance(result, Mapping):
                raise PexenError(
                    f"pytest_pexen_groups must return a dict of group name to settings, got {result!r}"
                )
            for name, spec in result.items():
                specs.append(parse_spec(name, spec, "pytest_pexen_groups", self._options.workers))
        groups = combine(specs, self._options.workers, self._options.workers_given)
        require_dask(groups.values(), "pexen groups")
        if self._options.dask is not None and all(spec.pool != "dask" for spec in groups.values()):
            raise PexenError(
                f"--pexen-dask {self._options.dask} (or ini pexen_dask) is the Dask scheduler of "
                "groups with pool=dask, and no group has it; say which tests run there in ini "
                "pexen_groups, e.g. 'default: workers=8 pool=dask'"
            )
        return groups

    def _task(self, item: pytest.Item, meta: Meta) -> Task:
        group = meta.group or DEFAULT_GROUP
        spec = self._groups.get(group)
        if spec is None:
            configured = ", ".join(repr(name) for name in self._groups)
            raise PexenError(
                f"{item.nodeid}: group {group!r} is not configured (configured: {configured}); "
                f"add a line '{group}: workers=N pool=process' to ini pexen_groups"
            )
        if spec.pool == "thread" and not _threadsafe(item):
            raise PexenError(
                f"{item.nodeid}: group {group!r} runs in a thread pool, which only takes "
                "tests that need no pytest fixtures (items that set pexen_threadsafe = True, "
                "such as script tests); put this test in a group with pool=process"
            )
        return Task(
            id=item.nodeid,
            requires=meta.requires,
            provides=meta.provides,
            after=meta.after,
            priority=meta.priority,
            claims=meta.claims,
            uses=meta.uses,
            group=group,
            unit=_unit(item, meta.affinity or self._options.affinity),
        )

    def _undeselect(self, pulled: list[pytest.Item]) -> None:
        terminal = self._config.pluginmanager.get_plugin("terminalreporter")
        if terminal is None:
            return
        back = {id(item) for item in pulled}
        stats = terminal.stats.get("deselected", [])
        stats[:] = [item for item in stats if id(item) not in back]
        if not stats:
            terminal.stats.pop("deselected", None)

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_teststatus(self, report: pytest.TestReport) -> tuple[str, str, Any] | None:
        """A timed-out, crashed or interrupted test counts as an error, whatever
        phase it was in; a blocked one as blocked (a skip)."""
        outcome = getattr(report, "pexen_outcome", None)
        if report.failed and outcome in PEXEN_FAILURES:
            return "error", "E", (outcome.upper(), {"red": True})
        return _summary.blocked_status(report)

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> Generator[None, None, None]:
        return (yield from _summary.blocked_in_short_summary(terminalreporter))

    @pytest.hookimpl(trylast=True)
    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        """A test's own KeyboardInterrupt is shown where the test raised it, as plain pytest does."""
        report = self._loop.interrupted_by if self._loop is not None else None
        terminal = self._config.pluginmanager.get_plugin("terminalreporter")
        memo = getattr(report, "longrepr", None)
        if terminal is not None and hasattr(memo, "reprcrash") and hasattr(terminal, "_keyboardinterrupt_memo"):
            terminal._keyboardinterrupt_memo = memo

    def pytest_report_collectionfinish(self, config: pytest.Config) -> list[str]:
        lines = []
        if self._header is not None and config.get_verbosity() >= 0 and not config.getoption("no_header", False):
            lines.append(self._header)
        if self._pulled:
            names = ", ".join(item.nodeid for item in self._pulled)
            count = len(self._pulled)
            lines.append(
                f"pexen: pulled in {count} test{'s' if count != 1 else ''} that the "
                f"selection requires: {names} (--pexen-no-pull turns this off)"
            )
        for tag, standing in self._standby.items():
            chosen = ", ".join(self._chosen.get(tag, ())) or "the selected providers"
            names = ", ".join(item.nodeid for item in standing)
            lines.append(
                f"pexen: any provider of {tag!r} will do: {chosen} runs first; standing by: {names} "
                "(each runs only if every provider before it ends without passing)"
            )
        if self._state.unfinished_note is not None:
            lines.append(f"pexen: {self._state.unfinished_note}")
        unmatched = [p for p in self._options.breakpoints if p not in self._breakpoints.values()]
        if unmatched:
            lines.append(f"pexen: --pexen-break matches no selected test: {', '.join(unmatched)}")
        return lines

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection(self, session: pytest.Session) -> None:
        if self._state.nothing_to_resume is not None:
            pytest.exit(self._state.nothing_to_resume, returncode=0)

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # Now that every report is written (terminal, xUnit files): a run
        # killed before this point resumes, and writes them again.
        try:
            if self._loop is not None and self._loop.ran_to_the_end and self._state.recorder is not None:
                self._state.recorder.end(finished=True)
        except StateError as error:
            sys.stderr.write(f"pexen: the run could not be marked finished in the state file: {error}\n")
        finally:
            self._bus.close()
            self._state.close()

    # -- running ------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if session.testsfailed and not session.config.option.continue_on_collection_errors:
            count = session.testsfailed
            raise session.Interrupted(f"{count} error{'s' if count != 1 else ''} during collection")
        if session.config.option.collectonly:
            return True
        assert self._planner is not None
        items = session.items
        items.extend(self._standing_by())
        tmp_path_factory = getattr(session.config, "_tmp_path_factory", None)
        if tmp_path_factory is not None:
            # Made lazily, it would be made (and emptied) by each worker. The
            # pools' scratch files go there too, so pytest rotates them away
            # even after a run that was killed.
            self._scratch = str(tmp_path_factory.getbasetemp())
        limits = Limits(
            timeouts=self._timeouts,
            session_timeout=self._options.session_timeout,
            max_crashes=self._options.max_crashes,
        )
        # What collection made lives to the end: the collector need not scan
        # it again and again, and workers forked from here share its pages
        # instead of copying those a scan would touch.
        gc.freeze()
        try:
            self._loop = loop = self._new_loop(session, limits)
            try:
                loop.run()
            finally:
                self._bus.close()
                self._save_durations(loop.durations)
        finally:
            gc.unfreeze()
        if loop.exit_request is not None:
            reason, returncode = loop.exit_request
            pytest.exit(reason, returncode)
        self._pause_if_asked(loop)
        if session.shouldfail:
            raise session.Failed(session.shouldfail)
        if session.shouldstop:
            raise session.Interrupted(session.shouldstop)
        if loop.stopped_because:
            raise session.Interrupted(loop.stopped_because)
        return True

    def _new_loop(self, session: pytest.Session, limits: Limits) -> RunLoop:
        """The run loop, once the run is recorded (or what a resume continues is read)."""
        assert self._planner is not None
        saved = self._state.begin(session.items)
        if self._state.store is not None:
            # Workers fork from here and inherit these.
            _api.reboot_counts = dict(saved.reboots) if saved else {}
            _api.attempts_before = dict(saved.attempts) if saved else {}
        if self._state.resume_note is not None:
            say(self._config, self._state.resume_note)
        self._began = time.time()
        growth = added.Growth(
            session.config, self._planner, session.items, self._added_task, self._register_added, self._growth_limit
        )
        return RunLoop(
            session,
            session.items,
            self._planner,
            functools.partial(self._make_pool, session),
            dict(self._durations),
            limits,
            recorder=self._state.recorder,
            saved=saved,
            breakpoints=self._breakpoints,
            # Without a state file nothing is resumed, and nothing need start alone.
            crash_on_resume=self._crash_on_resume if self._state.store is not None else frozenset(),
            growth=growth,
            bus=self._bus,
        )

    def _pause_if_asked(self, loop: RunLoop) -> None:
        """A breakpoint or a reboot stopped the run, its state saved: say how it goes on."""
        if loop.rebooting and self._options.reboot_cmd is not None:
            from ._reboot import reboot

            self._state.close()  # durable and unlocked before the machine goes down
            reboot(self._config, self._options.reboot_cmd, self._options.reboot_wait, loop.paused_because or "")
        if loop.break_at is not None:
            pytest.exit(
                f"pexen: {loop.paused_because}; the state is saved in {self._options.state}. "
                "Continue from that test with: pytest --pexen --pexen-resume",
                PAUSED,
            )

    def _reboot_refusal(self) -> str | None:
        """Why pytest_pexen.reboot() cannot reboot in this run (None: it can)."""
        if self._state.store is None:
            return (
                "pytest_pexen.reboot() needs the state file, so that the run can resume "
                "after the reboot; --pexen-state is off"
            )
        if self._options.reboot_cmd is None:
            return (
                "pytest_pexen.reboot() needs a reboot command: pass --pexen-reboot-cmd CMD "
                "or set ini pexen_reboot_cmd"
            )
        return None

    def _make_pool(self, session: pytest.Session, group: str) -> Pool:
        spec = self._groups[group]
        assert self._planner is not None
        size = max(1, min(spec.workers, self._planner.group_size(group)))
        if spec.pool == "thread":
            return ThreadPool(size, functools.partial(run_in_thread, session.items, self._retries))
        if spec.pool == "dask":
            from ._pools.dask import DaskPool
            from ._pools.dask_host import host_setup

            setup = host_setup(session, self._deselected, self._retries, self._testrunuid, self._scratch)
            where = "address=" if spec.address else "--pexen-dask" if self._options.dask else "a local cluster"
            address = spec.address or self._options.dask
            return DaskPool(size, address, setup, f"group {group!r} (pool=dask, {where})")
        signals = self._loop.signals_before_run if self._loop is not None else {}
        setup = WorkerSetup(self._retries, self._testrunuid, self._reboot_refusal(), self._state.close_after_fork)
        target = functools.partial(run_worker, session, setup)
        return ProcessPool(size, target, self._scratch, signals, task_count=lambda: len(session.items))

    def _save_durations(self, durations: dict[str, float]) -> None:
        cache = getattr(self._config, "cache", None)
        if cache is not None and durations:
            cache.set(DURATIONS_KEY, {k: round(v, 6) for k, v in durations.items()})


def _unit(item: pytest.Item, affinity: str) -> str | None:
    """The tests *item* is kept together with on one worker (a node id), by its affinity."""
    if affinity == "class":
        holder = item.getparent(pytest.Class)
    elif affinity == "file":
        holder = item.getparent(pytest.File)
    else:
        return None
    return holder.nodeid if holder is not None else None


def _threadsafe(item: pytest.Item) -> bool:
    """Whether *item* may run in a thread pool: it says so, and is no pytest function."""
    return getattr(item, "pexen_threadsafe", False) is True and not isinstance(item, pytest.Function)


def _breakpoints(patterns: Sequence[str], tasks: Sequence[Task]) -> dict[str, str]:
    """The node ids --pexen-break *patterns* match (a node id glob, or tag:NAME
    for the tests that provide NAME), each with the first pattern it matched."""
    matched: dict[str, str] = {}
    for pattern in patterns:
        tag = pattern[4:] if pattern.startswith("tag:") else None
        for task in tasks:
            if task.id in matched:
                continue
            if (tag in task.provides) if tag is not None else fnmatch.fnmatchcase(task.id, pattern):
                matched[task.id] = pattern
    return matched
