"""The controller's event loop: feed the pool from the planner, report results.

Policy lives in the planner (which test next) and mechanism in the pool
(processes, pipes); this loop only moves events between them and pytest's
reporting, and keeps the watchdog's clock. It also decides how far ahead to
feed each worker: short tests are sent in batches so that no worker idles
while the controller answers, long tests one at a time so that no test waits
behind another on a busy worker while a free one could take it. What
happens is published once on a bus (:mod:`._events`) for whoever observes
the run; the loop knows none of them.
"""

from __future__ import annotations

import signal
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import pytest

from ._errors import PexenError
from . import _events as ev
from . import _forks
from ._data import Inputs
from ._planner import PASSING_OUTCOMES, Planner, State
from ._pools import Dropped, Finished, Gone, Late, Lost, Pool, Reboot, Stray, WorkerOutput, exit_description
from ._record import NoRecorder, Recorder, Saved, break_reason, load_payload
from ._reporting import Reporter, busy_of, duration_of, outcome_of
from ._sources.added import Growth
from ._state import StateError
from ._terminal import HeldTerminal
from ._watchdog import UNWIND_SECONDS, Watchdog

#: Work (in seconds of a worker's time) queued on a worker beyond the test
#: it is running. Enough to ride out the controller being busy for a while
#: (a burst of results, a disk sync, a garbage collection of its reports):
#: with less, fast tests leave workers idle. Balance does not suffer: a test
#: that turns out long gives back what is queued behind it (LONG_SECONDS).
PREFETCH_SECONDS = 0.1
MAX_QUEUED = 256
#: A test running this long is a long one: the tests queued behind it go to
#: other workers, and its worker gets no more until it is free.
LONG_SECONDS = 0.1
#: While every worker has this much work queued, the loop sleeps this long
#: before it looks for results: they pile up, and are handled together,
#: instead of each waking the controller (which, on a busy machine, takes
#: the processor from a worker) and being handled alone.
NAP_SECONDS = 0.004
#: Longest a result waits in memory for a commit while no test is handed out
#: (each commit is a disk sync; a turn that hands tests out commits anyway).
RESULTS_WAIT = 0.02
#: Longest wait while a Ctrl-C may need noticing.
_SIGNAL_LATENCY = 0.25
#: Signals that end a run at once (CI runners cancelling a job, a closed terminal).
ENDING_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class Limits:
    """The watchdog's limits for one run."""

    #: Seconds per test, by item index (absent: no limit).
    timeouts: Mapping[int, float]
    session_timeout: float | None = None
    #: Workers that may crash in a row before the run stops.
    max_crashes: int = 5


class RunLoop:
    """Runs *items* as the *planner* allows, each group on a pool from *make_pool(group)*."""

    def __init__(
        self,
        session: pytest.Session,
        items: Sequence[pytest.Item],
        planner: Planner,
        make_pool: Callable[[str], Pool],
        durations: dict[str, float],
        limits: Limits,
        recorder: Recorder | None = None,
        saved: Saved | None = None,
        breakpoints: Mapping[str, str] | None = None,
        crash_on_resume: frozenset[str] = frozenset(),
        growth: Growth | None = None,
        bus: ev.Bus | None = None,
    ) -> None:
        """*recorder* keeps the state file (None: no state); *saved* is what a
        resumed run found there. *breakpoints*: the pattern of --pexen-break
        that each matching node id matched. *crash_on_resume*: node ids whose
        on_resume is "crash", when there is a state file (they start alone).
        *growth* adds the tests that ``pytest_pexen_task_finished`` returns
        (to *items* and the planner) when a test ends. *bus*: where the run's
        events are published (see :mod:`._events`)."""
        self._session = session
        self._items = items
        self._index = {item.nodeid: index for index, item in enumerate(items)}
        self._planner = planner
        self._make_pool = make_pool
        self._reporter = Reporter(session.config)
        self._limits = limits
        self._watchdog = Watchdog()
        #: Durations measured in this run, by node id (for the next run).
        self.durations = durations
        known = [durations[i.nodeid] for i in items if i.nodeid in durations]
        #: A worker's time per test: a moving average of each test's span,
        #: from its setup's start to its teardown's end (its durations leave
        #: out pytest's own work between phases, most of a fast test's time).
        self._typical = sum(known) / len(known) if known else None
        self.exit_request: tuple[str, int | None] | None = None
        # With -x/--maxfail, a test queued behind a failing one would run
        # before the stop reaches its worker: feed one test at a time.
        self._stop_on_failure = bool(session.config.getoption("maxfail", 0))
        self._session_deadline = (
            None if limits.session_timeout is None else time.monotonic() + limits.session_timeout
        )
        self._crashes_in_a_row = 0
        #: Why the run stops early and reports what did not run (None: it does not).
        self.stopped_because: str | None = None
        #: Ctrl-Cs so far (a test raising KeyboardInterrupt counts as one).
        self._interrupts = 0
        #: Why running tests are ended now (a second Ctrl-C, SIGTERM, SIGHUP).
        self._ending: str | None = None
        self._ending_signal: str | None = None
        #: The report of a test that raised KeyboardInterrupt (it stopped the run).
        self.interrupted_by: pytest.TestReport | None = None
        #: The signal handlers in place before the run; workers run tests with these.
        self.signals_before_run: dict[int, Any] = {}
        self._recorder = recorder or NoRecorder()
        self._saved = saved
        #: Kept, not copied: tests added during the run may join it.
        self._breakpoints = breakpoints if breakpoints is not None else {}
        self._crash_on_resume = crash_on_resume
        #: Why the run stopped on purpose, to be resumed (a breakpoint, a reboot).
        self.paused_because: str | None = None
        #: The test a breakpoint stopped the run before.
        self.break_at: str | None = None
        #: Workers whose test asked for a reboot and waits for it.
        self.rebooting: set[str] = set()
        self._reboot_workers_ended = False
        self.ran_to_the_end = False
        self._state_failed = False
        #: Tests the session timeout ended: not their own result, so a resume runs them again.
        self._cut_by_session: set[int] = set()
        self._growth = growth
        #: What passing providers wrote for their dependents (``pexen_data``).
        self._inputs = Inputs()
        #: The planner was told to stop waiting, and nothing was handed out since.
        self._stopped_waiting = False
        self._bus = bus if bus is not None else ev.Bus(self._reporter.problem)

    # -- the whole run --------------------------------------------------------

    def run(self) -> None:
        """Run every group in turn, each on a pool of its own.

        Raises KeyboardInterrupt after a Ctrl-C (or a test's own
        KeyboardInterrupt), and ``Session.Interrupted`` after SIGTERM or
        SIGHUP, once every selected test has been reported.
        """
        previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, *ENDING_SIGNALS)}
        self.signals_before_run = {s: h for s, h in previous.items() if h is not None}
        _forks.catch(signal.SIGINT, self._on_ctrl_c)
        for signum in ENDING_SIGNALS:
            _forks.catch(signum, self._on_ending_signal)
        self._terminal = HeldTerminal(self._session.config)
        bus = self._bus
        if bus.on:
            bus.publish(ev.RunBegan(time.monotonic(), time.time()))
        try:
            self._report_blocked()
            while not self._must_stop() and (group := self._planner.next_group()) is not None:
                if bus.on:
                    bus.publish(ev.GroupBegan(group, time.monotonic()))
                try:
                    pool = self._make_pool(group)
                except PexenError as error:
                    # A pool that cannot start (a Dask cluster out of reach): what
                    # is left is reported as not run, saying why.
                    self.stopped_because = str(error)
                    break
                self._run_group(pool)
            why = self._ending or self.stopped_because or self._interrupted_because()
            if why is not None and self.paused_because is None:
                # Tests added for the tests reported not run are not run either.
                while self._planner.abandon(f"not run: {why}"):
                    self._report_blocked()
            #: Every test ran: the session marks the run finished once its
            #: reports are written (a kill before then resumes and writes them).
            self.ran_to_the_end = why is None and self.paused_because is None
            self._commit()
            if not self.ran_to_the_end:
                self._state_write(lambda: self._recorder.end(finished=False, reason=self.paused_because or why or ""))
        finally:
            if bus.on:
                why = self.paused_because or self.stopped_because or self._ending or self._interrupted_because()
                bus.publish(ev.RunEnded(why or "", time.monotonic()))
            self._terminal.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if self._ending_signal is not None:
            raise self._session.Interrupted(f"the run was ended by {self._ending_signal}")
        if self._interrupts:
            raise KeyboardInterrupt

    def _interrupted_because(self) -> str | None:
        if self.interrupted_by is not None:
            return f"{self.interrupted_by.nodeid} raised KeyboardInterrupt"
        return "the run was interrupted (Ctrl-C)" if self._interrupts else None

    def _run_group(self, pool: Pool) -> None:
        try:
            self._loop(pool)
        finally:
            pool.close()

    def _on_ctrl_c(self, signum: int, frame: Any) -> None:
        self._interrupts += 1
        if self._interrupts > 1:
            self._ending = "ended by a second Ctrl-C"
            return
        sys.stderr.write(
            "\npexen: Ctrl-C: no more tests start; running tests finish "
            "(Ctrl-C again to end them now)\n"
        )

    def _on_ending_signal(self, signum: int, frame: Any) -> None:
        if self._ending_signal is None:
            self._ending_signal = signal.Signals(signum).name
            self._ending = f"the run was ended by {self._ending_signal}"

    def _end_now(self, pool: Pool) -> None:
        """End every running test and its worker now: report what had finished,
        report what was running as interrupted (with its output), give the rest back."""
        assert self._ending is not None
        for event in pool.close():
            if not isinstance(event, Lost):
                self._handle(event, pool)
                continue
            self._watchdog.ended(event.worker)
            if event.running is not None and event.worker not in self.rebooting:
                item = self._items[event.running]
                self._reporter.crashed(item, self._ending, event.output, event.phase, "interrupted")
                self._conclude(item, event.running, "interrupted")
            self._give_back(event.queued)

    def _loop(self, pool: Pool) -> None:
        stopping = False
        while True:
            if self._ending is not None:
                self._end_now(pool)
                return
            if not stopping and self._must_stop():
                stopping = True
                pool.shutdown(drop_queued=True)
            assignments = [] if stopping else self._dispatch(pool)
            # One commit a turn that hands tests out: the results that came in
            # and the starts about to go out, durable before any of those tests
            # can start. Results alone wait at most RESULTS_WAIT for one.
            if assignments or self._recorder.held_longer_than(RESULTS_WAIT):
                self._commit()
            for worker, indices, inputs in assignments:
                pool.assign(worker, indices, inputs)
            if not stopping and not self._planner.group_is_active():
                stopping = True
                pool.shutdown(drop_queued=False)
            assigned = pool.assigned()
            if not assigned:
                if not stopping:
                    # Every worker is gone and none could be started (Dask workers lost).
                    self.stopped_because = "no worker is left to run tests on"
                return
            if not stopping and not any(assigned.values()) and not self._must_stop():
                self._check_not_stalled()
            self._track_starts(assigned)
            now = time.monotonic()
            self._bus.tick(now)
            self._terminal.release_if_due(now)
            if not stopping:
                self._nap_while_busy(assigned)
            for event in pool.wait(self._wait_time(assigned)):
                self._handle(event, pool)
            self._track_starts(pool.assigned())
            self._check_clocks(pool)
            if not stopping:
                self._take_back_from_long_tests(pool)
            self._end_rebooting_workers(pool)

    def _check_not_stalled(self) -> None:
        """No worker has work: fine while an event about a running test is on its
        way. Else no test of this group can end, so none will be added: what
        waits for a tag no test provides yet never starts."""
        if self._planner.running_count():
            return
        if not self._stopped_waiting:
            self._stopped_waiting = True
            self._planner.stop_waiting()
            self._report_blocked()
            return
        stuck = [i.nodeid for i in self._items if self._planner.state(i.nodeid) is State.READY]
        raise PexenError("scheduler stalled with tests ready but none handed out: " + ", ".join(stuck))

    def _must_stop(self) -> bool:
        session = self._session
        return bool(
            session.shouldfail
            or session.shouldstop
            or self.exit_request
            or self.stopped_because
            or self._interrupts
            or self._ending
            or self.paused_because
        )

    # -- feeding workers --------------------------------------------------------

    def _depth(self) -> int:
        """How many tasks a worker should hold, the running one included."""
        if self._stop_on_failure or self._typical is None or self._typical >= PREFETCH_SECONDS:
            return 1
        return min(MAX_QUEUED, 1 + int(PREFETCH_SECONDS / max(self._typical, 1e-6)))

    def _dispatch(self, pool: Pool) -> list[tuple[str, list[int], dict[int, bytes]]]:
        """What to hand to each worker now: (worker, item indices, inputs of those that have any)."""
        depth = self._depth()
        now = time.monotonic()
        assignments = []
        for worker, queue in pool.assigned().items():
            # Top up in batches: one message per half-emptied queue.
            if len(queue) > depth // 2 or (queue and self._runs_long(worker, now)):
                continue
            # A test with locks holds them from the moment it is handed out:
            # it goes to an idle worker, or behind short tests only (under
            # PREFETCH_SECONDS of work), never behind a long one.
            wanted = depth - len(queue) if depth > 1 else int(not queue)
            indices = self._take(wanted, worker, len(queue))
            if indices:
                taker = pool.taker(worker, indices)  # its successor, for tests added after it started
                self._recorder.started(self._items, indices, taker)
                if self._bus.on:
                    self._bus.publish(ev.Handed(taker, tuple(self._items[i].nodeid for i in indices), now))
                assignments.append((taker, indices, self._inputs_of(indices)))
                self._stopped_waiting = False
        return assignments

    def _inputs_of(self, indices: Sequence[int]) -> dict[int, bytes]:
        """What the providers of these tests wrote for them, where they wrote anything."""
        inputs: dict[int, bytes] = {}
        if not self._inputs:
            return inputs
        for index in indices:
            found = self._inputs.for_task(self._planner.task(self._items[index].nodeid).requires)
            if found is not None:
                inputs[index] = found
        return inputs

    def _take(self, wanted: int, worker: str, queued: int) -> list[int]:
        """Up to *wanted* tests for *worker*, which has *queued* already, to run.

        On the way, tests with a saved result are reported from it, and a
        breakpoint stops the run. A test whose on_resume is "crash" (with a
        state file) goes to an idle worker only, and nothing goes before it:
        handed out, it starts at once, so a resume can tell it was running.
        """
        indices: list[int] = []
        while len(indices) < wanted and not self._must_stop():
            taken = self._planner.take(wanted - len(indices), lane=worker)
            if not taken:
                break
            for position, task_id in enumerate(taken):
                index = self._index[task_id]
                if self._settle_from_saved(index):
                    continue
                waits = task_id in self._crash_on_resume and (queued or indices)
                if waits or self._breaks_before(task_id):
                    for other in taken[position:]:
                        self._planner.give_back(other)
                    return indices
                indices.append(index)
        return indices

    def _settle_from_saved(self, index: int) -> bool:
        """Report *index* from the state file, if a resumed run has its result
        (or it was in flight and its on_resume is "crash"); True if it was."""
        saved = self._saved
        item = self._items[index]
        if saved is None:
            return False
        found = saved.results.get(item.nodeid)
        if found is not None:
            outcome, blob = found
            try:
                payload = load_payload(blob)
            except Exception as error:
                self._reporter.problem(f"the saved result of {item.nodeid} cannot be read ({error}); it runs again")
                return False
            reports = self._reporter.finished(item, payload)
            self._conclude(item, index, outcome, None, reports, payload.get("data"), replay=True)
            return True
        if item.nodeid in saved.in_flight and item.nodeid in self._crash_on_resume:
            reports = self._reporter.died_in_flight(item)
            self._conclude(item, index, "crashed", self._result_of(item, reports), reports)
            return True
        return False

    def _breaks_before(self, nodeid: str) -> bool:
        """Whether a breakpoint stops the run before *nodeid* (not where a resume starts)."""
        pattern = self._breakpoints.get(nodeid)
        if pattern is None or (self._saved is not None and self._saved.break_at == nodeid):
            return False
        self.break_at = nodeid
        self.paused_because = break_reason(pattern, nodeid)
        return True

    def _nap_while_busy(self, assigned: Mapping[str, Sequence[int]]) -> None:
        """Sleep a little, if no worker can run out of work meanwhile (see NAP_SECONDS)."""
        typical = self._typical
        if typical is None or not NAP_SECONDS:
            return
        if all((len(queue) - 1) * typical >= NAP_SECONDS for queue in assigned.values()):
            time.sleep(NAP_SECONDS)

    def _runs_long(self, worker: str, now: float) -> bool:
        running = self._watchdog.current(worker)
        return running is not None and now - running.started >= LONG_SECONDS

    def _take_back_due(self, assigned: Mapping[str, Sequence[int]]) -> float | None:
        """When the first running test with tests queued behind it becomes a long one."""
        due = None
        now = time.monotonic()
        for worker, queue in assigned.items():
            running = self._watchdog.current(worker)
            if len(queue) > 1 and running is not None and running.started + LONG_SECONDS > now:
                becomes_long = running.started + LONG_SECONDS
                due = becomes_long if due is None else min(due, becomes_long)
        return due

    def _take_back_from_long_tests(self, pool: Pool) -> None:
        """Tests queued behind a long one go back to the planner, for free workers."""
        now = time.monotonic()
        for worker, queue in pool.assigned().items():
            if len(queue) > 1 and self._runs_long(worker, now):
                self._give_back(pool.revoke(worker))

    def _give_back(self, indices: Sequence[int]) -> None:
        """Tests handed out that never started: back to the planner, for any worker."""
        for index in indices:
            self._planner.give_back(self._items[index].nodeid)
        self._recorder.unstarted(self._items, indices)
        if indices and self._bus.on:
            self._bus.publish(ev.GivenBack(tuple(self._items[i].nodeid for i in indices), time.monotonic()))

    # -- the watchdog -------------------------------------------------------------

    def _track_starts(self, assigned: Mapping[str, Sequence[int]]) -> None:
        """A worker's first queued task is the one it runs; note when each began."""
        now = time.monotonic()
        for worker in self._watchdog.workers():
            current = self._watchdog.current(worker)
            # A worker being ended leaves the pool before its Lost event comes.
            if worker not in assigned and current is not None and not current.expired_because:
                self._watchdog.ended(worker)
        for worker, queue in assigned.items():
            if worker in self.rebooting:
                continue  # waits to be ended, on no clock
            current = self._watchdog.current(worker)
            head = queue[0] if queue else None
            if current is not None and (current.index == head or current.expired_because):
                continue  # still running, or out of time and about to be ended
            if current is not None:
                self._watchdog.ended(worker)
            if head is not None:
                self._watchdog.started(worker, head, now, self._limits.timeouts.get(head))
                if self._bus.on:
                    self._bus.publish(ev.Started(worker, self._items[head].nodeid, now))

    def _wait_time(self, assigned: Mapping[str, Sequence[int]]) -> float | None:
        deadlines = [self._watchdog.next_deadline(), self._session_deadline, self._take_back_due(assigned)]
        known = [d for d in deadlines if d is not None]
        timeout = max(0.0, min(known) - time.monotonic()) if known else None
        if timeout is None or timeout > _SIGNAL_LATENCY:
            timeout = _SIGNAL_LATENCY
        return timeout

    def _check_clocks(self, pool: Pool) -> None:
        now = time.monotonic()
        if self._session_deadline is not None and now >= self._session_deadline:
            self._session_deadline = None
            limit = self._limits.session_timeout
            self.stopped_because = f"the session timeout of {limit:g}s expired"
            for worker in self._watchdog.workers():
                running = self._watchdog.current(worker)
                if running is not None:
                    self._cut_by_session.add(running.index)
                self._expire(pool, worker, f"{self.stopped_because} while it ran (pexen watchdog)")
        for worker, running in self._watchdog.due(now):
            if running.expired_because is None:
                self._expire(
                    pool, worker, f"test exceeded its time limit of {running.limit:g}s (pexen watchdog)"
                )
            else:
                # It had its chance to unwind: end it and all it started.
                running.deadline = None
                pool.end(worker)

    def _expire(self, pool: Pool, worker: str, reason: str) -> None:
        running = self._watchdog.current(worker)
        if running is None or running.expired_because is not None:
            return
        stacks = pool.stacks(worker)
        unwind = UNWIND_SECONDS if pool.interrupt(worker, reason) else 0.0
        self._watchdog.expire(worker, reason, stacks, time.monotonic(), unwind)

    # -- events -------------------------------------------------------------------

    def _handle(self, event: object, pool: Pool) -> None:
        if isinstance(event, Finished):
            self._finished(event, pool)
        elif isinstance(event, Late):
            item = self._items[event.index]
            report = self._reporter.late(item, event.payload)
            self._recorder.amend(self._session.config, item, event.index, report)
        elif isinstance(event, Dropped):
            self._give_back(event.indices)
        elif isinstance(event, Lost):
            self._lost(event)
        elif isinstance(event, Stray):
            item = self._items[event.index]
            report = self._reporter.stray(item, event.pid)
            self._recorder.amend(self._session.config, item, event.index, report)
        elif isinstance(event, WorkerOutput):
            self._worker_done(event)
        elif isinstance(event, Reboot):
            self._reboot_asked(event)
        else:
            assert isinstance(event, Gone), event
            self._planner.release_lane(event.worker)
            if self._bus.on:
                self._bus.publish(ev.WorkerLeft(event.worker, "stopped", time.monotonic()))

    def _finished(self, event: Finished, pool: Pool) -> None:
        item = self._items[event.index]
        running = self._watchdog.current(event.worker)
        expired = running is not None and running.index == event.index and running.expired_because
        # As it came: pytest's loader turns the serialized reports in it into objects.
        result = None if expired or "calls" in event.payload else self._recorder.snapshot(event.payload)
        reports = self._reporter.finished(item, event.payload, running if expired else None)
        outcome = "timeout" if expired else outcome_of(reports)
        self._learn(item.nodeid, duration_of(reports), busy_of(reports))
        if result is None:
            # A timeout's reports got the watchdog's notes here; a thread's were made here.
            result = self._result_of(item, reports, event.payload.get("data"))
        self._conclude(item, event.index, outcome, result, reports, event.payload.get("data"))
        self._crashes_in_a_row = 0
        if "exit" in event.payload:
            self.exit_request = tuple(event.payload["exit"])
        if "interrupt" in event.payload:
            self._interrupted(reports)
        if expired:
            # It unwound in time; still, end what it started and its worker.
            self._watchdog.ended(event.worker)
            pool.end(event.worker)

    def _worker_done(self, event: WorkerOutput) -> None:
        """Hand a worker's workeroutput to the plugins; a failing one is reported, never fatal."""
        config = self._session.config
        data = dict(event.data or {})
        problems = [data.pop("pexen_error")] if "pexen_error" in data else []
        try:
            config.hook.pytest_pexen_worker_done(
                config=config, workerid=event.worker, workeroutput=data, error=event.error
            )
        except Exception:
            problems.append(traceback.format_exc())
        for problem in problems:
            self._reporter.problem(f"a plugin failed while worker {event.worker} finished:\n{problem}")

    def _interrupted(self, reports: Sequence[pytest.TestReport]) -> None:
        """A test raised KeyboardInterrupt: stop as after a Ctrl-C."""
        found = [r for r in reports if getattr(r, "pexen_outcome", None) == "interrupted"]
        self.interrupted_by = found[-1] if found else None
        self._interrupts = max(self._interrupts, 1)
        sys.stderr.write(
            f"\npexen: {found[-1].nodeid if found else 'a test'} raised KeyboardInterrupt: "
            "no more tests start; running tests finish (Ctrl-C to end them now)\n"
        )

    def _lost(self, event: Lost) -> None:
        self._planner.release_lane(event.worker)
        if self._bus.on:
            why = "ended" if event.ended else exit_description(event.exitcode)
            self._bus.publish(ev.WorkerLeft(event.worker, why, time.monotonic()))
        running = self._watchdog.ended(event.worker)
        self._give_back(event.queued)
        if event.worker in self.rebooting:
            return  # ended on purpose: its test runs again after the reboot
        what = f"worker {event.worker} {exit_description(event.exitcode)}"
        if event.ended:
            if event.running is None:
                return
            item = self._items[event.running]
            if running is not None and running.index == event.running and running.expired_because:
                reports = self._reporter.timed_out(item, running.expired_because, running.stacks)
                self._conclude(item, event.running, "timeout", self._result_of(item, reports), reports)
            else:
                # Started behind a timed-out test just before its worker was ended.
                self._planner.give_back(item.nodeid)
        elif event.running is not None:
            item = self._items[event.running]
            reports = self._reporter.crashed(item, what, event.output, event.phase)
            self._conclude(item, event.running, "crashed", self._result_of(item, reports), reports)
            self._crashes_in_a_row += 1
            if self._crashes_in_a_row >= self._limits.max_crashes:
                self.stopped_because = (
                    f"{self._crashes_in_a_row} workers crashed in a row "
                    "(--pexen-max-crashes); the run stopped"
                )
        elif event.last is not None:
            item = self._items[event.last]
            report = self._reporter.crashed_after(item, what)
            self._recorder.amend(self._session.config, item, event.last, report)

    def _conclude(
        self,
        item: pytest.Item,
        index: int,
        outcome: str,
        result: bytes | None = None,
        reports: Sequence[pytest.TestReport] = (),
        data: bytes | None = None,
        replay: bool = False,
    ) -> None:
        """Tell the planner how *item* ended, and report what that blocks.

        First the tests it adds (``pytest_pexen_task_finished``) join the run,
        so that they may provide what it provides. What it wrote for its
        dependents (*data*) is kept once it passed. The *result* (the
        recorder's snapshot of what it was reported from) goes to the state
        file, unless the test was interrupted or cut off by the session
        timeout: then it did not finish on its own, and a resume treats it as
        in flight. *replay*: a resumed run reports it from the state file,
        where any error the hook made is kept already.
        """
        errors = self._grow(item, reports, outcome, data)
        if errors and not replay and outcome in PASSING_OUTCOMES:
            outcome = "error"
        self._planner.done(item.nodeid, outcome)
        if self._bus.on:
            event = ev.Replayed if replay else ev.Finished
            self._bus.publish(event(item.nodeid, outcome, time.monotonic()))
        if data is not None and outcome in PASSING_OUTCOMES:
            self._inputs.provided(self._planner.task(item.nodeid).provides, index, data)
        if replay:
            self._report_blocked()
            return
        if outcome != "interrupted" and index not in self._cut_by_session:
            self._recorder.finished(item, index, outcome, result)
        for error in errors:
            self._recorder.amend(self._session.config, item, index, error)
        self._report_blocked()

    def _grow(
        self, item: pytest.Item, reports: Sequence[pytest.TestReport], outcome: str, data: bytes | None
    ) -> list[pytest.TestReport]:
        """Add the tests the hook returns now that *item* ended; returns the
        error reports of what went wrong there (reported as errors of *item*)."""
        if self._growth is None:
            return []
        indices, problems = self._growth.after(item, reports, outcome, data)
        for index in indices:
            self._index[self._items[index].nodeid] = index
        if indices:
            self._recorder.added(self._items, indices)
            if self._bus.on:
                tasks = tuple(self._planner.task(self._items[index].nodeid) for index in indices)
                self._bus.publish(ev.Added(tasks, time.monotonic()))
        return [self._reporter.hook_failed(item, problem) for problem in problems]

    def _commit(self) -> None:
        """Make what the recorder holds durable (see :meth:`_state_write`)."""
        self._state_write(self._recorder.commit)

    def _state_write(self, write: Callable[[], None]) -> None:
        """A write to the state file; one that fails is said once, and the run
        goes on (the store keeps what it could not write, for the next try)."""
        try:
            write()
        except StateError as error:
            if not self._state_failed:
                self._state_failed = True
                self._reporter.problem(f"the state file cannot be written; the run goes on, but a resume may miss results: {error}")

    def _result_of(
        self, item: pytest.Item, reports: Sequence[pytest.TestReport], data: bytes | None = None
    ) -> bytes | None:
        """What the state file keeps of a result the controller made (a crash, a timeout)."""
        return self._recorder.snapshot_reports(self._session.config, item, reports, data)

    # -- reboots ------------------------------------------------------------------

    def _reboot_asked(self, event: Reboot) -> None:
        """A test asked for a reboot: no test starts any more; the running ones finish."""
        item = self._items[event.index]
        self.rebooting.add(event.worker)
        self._recorder.rebooting(item)
        self._watchdog.ended(event.worker)
        if self.paused_because is None:
            self.paused_because = f"{item.nodeid} asked for a reboot"

    def _end_rebooting_workers(self, pool: Pool) -> None:
        """Once only tests waiting for the reboot are left, end their workers."""
        if not self.rebooting or self._reboot_workers_ended:
            return
        if any(queue for worker, queue in pool.assigned().items() if worker not in self.rebooting):
            return
        self._reboot_workers_ended = True
        for worker in self.rebooting:
            pool.end(worker)

    def _learn(self, nodeid: str, seconds: float, busy: float) -> None:
        self.durations[nodeid] = seconds
        if self._typical is None:
            self._typical = busy
        else:
            self._typical += 0.1 * (busy - self._typical)

    def _report_blocked(self) -> None:
        """Report what the planner blocked, and add what the hook returns for
        those tests (which may block more, reported in turn)."""
        while blocked := self._planner.pop_blocked():
            for task_id, reason in blocked:
                item = self._items[self._index[task_id]]
                reports = self._reporter.blocked(item, reason)
                if self._bus.on:
                    self._bus.publish(ev.Blocked(task_id, reason, time.monotonic()))
                self._grow(item, reports, "blocked", None)
