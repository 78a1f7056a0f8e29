"""One stream of run events, many observers.

The run loop (and the planner, through its ``on_change`` listener) publish
what happens in a run once, as small frozen dataclasses, on a :class:`Bus`.
Observers (the live status line, the heartbeat, the timeline, the trace:
:mod:`._observers`) subscribe; the run loop knows none of them by name.

Times are ``time.monotonic()`` seconds; :class:`RunBegan` carries the
matching wall-clock time, so an observer can turn one into the other.
Tests are named by node id, so a test added while the run goes on is named
the same way as one collected.

Publishing is cheap: the run loop tests :attr:`Bus.on` before it makes an
event, so a run nobody watches makes none; an event is one small object
handed to each observer in turn. An observer that raises is reported once
(through the *problem* callback) and dropped; the run goes on.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Union

from ._planner import State, Task


@dataclass(frozen=True, slots=True)
class RunBegan:
    """The run loop starts: *at* (monotonic) is *wall* (epoch seconds)."""

    at: float
    wall: float


@dataclass(frozen=True, slots=True)
class GroupBegan:
    """An exclusivity group's tests may be handed out from now on."""

    group: str
    at: float


@dataclass(frozen=True, slots=True)
class Ready:
    """Every requirement of a test with locks is met: it waits only for a worker, a lock or its group."""

    nodeid: str
    at: float


@dataclass(frozen=True, slots=True)
class Handed:
    """Tests handed to *worker*, queued in this order (the first may start at once)."""

    worker: str
    nodeids: tuple[str, ...]
    at: float


@dataclass(frozen=True, slots=True)
class Started:
    """The controller saw *nodeid* reach the head of *worker*'s queue: it runs.

    A short test may start and finish between two looks: then no Started
    comes, and it began when the test before it on its worker ended.
    """

    worker: str
    nodeid: str
    at: float


@dataclass(frozen=True, slots=True)
class GivenBack:
    """Tests handed out that never started (taken back, dropped, their worker died)."""

    nodeids: tuple[str, ...]
    at: float


@dataclass(frozen=True, slots=True)
class Finished:
    """A test ended with *outcome* (passed, failed, error, timeout, crashed, ...)."""

    nodeid: str
    outcome: str
    at: float


@dataclass(frozen=True, slots=True)
class Replayed:
    """A resumed run reported *nodeid* from the state file without running it."""

    nodeid: str
    outcome: str
    at: float


@dataclass(frozen=True, slots=True)
class Blocked:
    """A test will never run: a requirement failed, or the run stopped before it."""

    nodeid: str
    reason: str
    at: float


@dataclass(frozen=True, slots=True)
class WorkerLeft:
    """A worker is gone: it stopped when told to, or died (*why*)."""

    worker: str
    why: str
    at: float


@dataclass(frozen=True, slots=True)
class Added:
    """Tests joined the run while it goes on (``pytest_pexen_task_finished``), as the planner knows them."""

    tasks: tuple[Task, ...]
    at: float


@dataclass(frozen=True, slots=True)
class RunEnded:
    """The run loop is done; *why* it stopped early ("" when it ran to its end)."""

    why: str
    at: float


Event = Union[
    RunBegan, GroupBegan, Ready, Handed, Started, GivenBack, Finished, Replayed, Blocked, WorkerLeft, Added, RunEnded
]


class Observer(Protocol):
    """What subscribes to a :class:`Bus`.

    One that sets ``listens = False`` gets no events, only ticks and the
    close (it reads what another observer folded): the bus skips it when
    publishing.
    """

    def notice(self, event: Event) -> None:
        """One event of the run, in the order they happened."""

    def tick(self, now: float) -> float:
        """Time passes (*now*, monotonic); returns when it wants the next tick."""

    def close(self) -> None:
        """The session is over: write what is left (called once, also after a failure)."""


class Bus:
    """Hands each published event to every observer; drops one that fails."""

    def __init__(self, problem: Callable[[str], None]) -> None:
        self._problem = problem
        self._observers: list[Observer] = []
        #: Those that take events.
        self._listeners: list[Observer] = []
        #: Whether anyone listens: the run loop makes no event otherwise.
        self.on = False
        self._next_tick = float("inf")

    def subscribe(self, observer: Observer) -> None:
        self._observers.append(observer)
        if getattr(observer, "listens", True):
            self._listeners.append(observer)
        self.on = True
        self._next_tick = 0.0

    def publish(self, event: Event) -> None:
        for observer in self._listeners:
            try:
                observer.notice(event)
            except Exception:
                self._drop(observer)

    def tick(self, now: float) -> None:
        """Called each turn of the run loop; cheap unless an observer asked for this moment."""
        if now < self._next_tick:
            return
        due = float("inf")
        for observer in self._observers:
            try:
                due = min(due, observer.tick(now))
            except Exception:
                self._drop(observer)
        self._next_tick = due

    def ready_listener(self, watched: frozenset[str]) -> Callable[[str, Any, str], None] | None:
        """A listener for the planner's ``on_change`` that publishes :class:`Ready`
        for the tests in *watched* (those with locks: what waits for a lock is
        all the observers look at); None when nobody listens or nothing is watched,
        so that a run without locks pays nothing for it."""
        if not self.on or not watched:
            return None
        ready = State.READY

        def changed(task_id: str, state: Any, detail: str) -> None:
            if state is ready and task_id in watched and self.on:
                self.publish(Ready(task_id, time.monotonic()))

        return changed

    def close(self) -> None:
        """The session is over: every observer writes what it has left."""
        observers, self._observers, self._listeners = self._observers, [], []
        self.on = False
        for observer in observers:
            try:
                observer.close()
            except Exception:
                self._problem(f"{_name(observer)} failed at the end of the run:\n{traceback.format_exc()}")

    def _drop(self, observer: Observer) -> None:
        if observer not in self._observers:
            return
        self._problem(
            f"{_name(observer)} failed and is turned off for the rest of the run; the run goes on:\n"
            f"{traceback.format_exc()}"
        )
        self._observers = [other for other in self._observers if other is not observer]
        self._listeners = [other for other in self._listeners if other is not observer]
        self.on = bool(self._observers)
        try:
            observer.close()
        except Exception:
            pass


def _name(observer: object) -> str:
    return getattr(observer, "title", type(observer).__name__)
