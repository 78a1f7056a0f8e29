"""The thread pool: many light tasks at once inside the controller process.

For tasks whose body needs no pytest fixtures, capture or per-process state
(custom items that declare ``pexen_threadsafe = True``). A worker is a
thread with its own queue; it calls the pool's *run* function with each
index and reports the result. A result that is a dict with a true ``stop``
key makes the thread drop what it has queued (the run is stopping). Threads cannot be killed: a task that never
returns keeps its thread (the watchdog gives up on it and starts another).
What a task's command started can be killed, though: a task that runs a
command registers it (:func:`._processes.command_started`), and the
watchdog's interrupt ends that command's whole process tree, so the task
returns.
"""

from __future__ import annotations

import queue
import sys
import threading
import traceback
from collections import deque
from typing import Any, Callable, Mapping, Sequence

from .._processes import end_commands_of
from .._watchdog import KILL_GRACE
from . import Dropped, Event, Finished, Gone, Lost

#: Runs the task at an index, given its inputs (see :mod:`._data`); returns its payload.
TaskRunner = Callable[[int, "bytes | None"], Any]


class _Thread:
    def __init__(self, name: str) -> None:
        self.name = name
        self.queue: deque[int] = deque()
        self.wakeup = threading.Condition()
        self.stopping = False
        self.drop = False
        self.ident: int | None = None
        #: Given up on (its task ran out of time): whatever it does is ignored.
        self.abandoned = False


class ThreadPool:
    """*size* threads calling *run(index, inputs)*; its return value is the payload."""

    kind = "thread"

    def __init__(self, size: int, run: TaskRunner) -> None:
        self._run = run
        #: Inputs of assigned tasks, by index, until they start.
        self._inputs: dict[int, bytes] = {}
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._threads: dict[str, _Thread] = {}
        self._started = 0
        self._stopping = False
        for _ in range(size):
            self._start()

    def _start(self) -> None:
        worker = _Thread(f"t{self._started}")
        self._started += 1
        self._threads[worker.name] = worker
        threading.Thread(
            target=self._serve, args=(worker,), name=f"pexen-{worker.name}", daemon=True
        ).start()

    def _serve(self, worker: _Thread) -> None:
        worker.ident = threading.get_ident()
        while True:
            with worker.wakeup:
                while not worker.queue and not worker.stopping:
                    worker.wakeup.wait()
                if worker.abandoned:
                    return  # ended after its task came back; the pool forgot it
                if worker.drop and worker.queue:
                    dropped = tuple(worker.queue)
                    worker.queue.clear()
                    self._events.put(Dropped(worker.name, dropped))
                if not worker.queue:
                    self._events.put(Gone(worker.name))
                    return
                index = worker.queue[0]
            try:
                payload = self._run(index, self._inputs.pop(index, None))
            except BaseException:
                # A fault in the task's harness, not in its body: the task
                # is lost (a crash), the thread is replaced, the run goes on.
                self._fail(worker, traceback.format_exc())
                return
            if worker.abandoned:
                return
            with worker.wakeup:
                worker.queue.popleft()
                dropped = tuple(worker.queue) if isinstance(payload, dict) and payload.get("stop") else ()
                if dropped:
                    worker.queue.clear()
            self._events.put(Finished(worker.name, index, payload))
            if dropped:
                self._events.put(Dropped(worker.name, dropped))

    @staticmethod
    def _abandon(thread: _Thread) -> tuple[int, ...] | None:
        """Give up on *thread*: whatever it does is ignored from now on; returns its tasks.

        None if it was given up on already (its tasks were reported then).
        """
        with thread.wakeup:
            if thread.abandoned:
                return None
            thread.abandoned = True
            queue_left = tuple(thread.queue)
            thread.queue.clear()
        return queue_left

    def _fail(self, worker: _Thread, trace: str) -> None:
        queue_left = self._abandon(worker)
        if not queue_left:
            return
        self._events.put(
            Lost(worker.name, queue_left[0], queue_left[1:], None, None, output=(("traceback", trace),))
        )

    def assigned(self) -> dict[str, Sequence[int]]:
        """Each worker's tasks, the running one (if any) first (read-only)."""
        return {name: w.queue for name, w in self._threads.items()}

    def taker(self, worker: str, indices: list[int]) -> str:
        """*worker*: a thread runs any task, added during the run or not."""
        return worker

    def assign(self, worker: str, indices: list[int], inputs: Mapping[int, bytes] | None = None) -> None:
        thread = self._threads[worker]
        if inputs:
            self._inputs.update(inputs)
        with thread.wakeup:
            thread.queue.extend(indices)
            thread.wakeup.notify()

    def revoke(self, worker: str) -> list[int]:
        """Take back the tasks queued behind the one *worker* runs; they never start there."""
        thread = self._threads.get(worker)
        if thread is None:
            return []
        with thread.wakeup:
            revoked = list(thread.queue)[1:]
            for _ in revoked:
                thread.queue.pop()
        return revoked

    def wait(self, timeout: float | None) -> list[Event]:
        if not self._threads:
            return []
        try:
            events = [self._events.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                break
        for event in events:
            if isinstance(event, Gone) or (isinstance(event, Lost) and not event.ended):
                del self._threads[event.worker]
                if isinstance(event, Lost) and not self._stopping:
                    self._start()
        return events

    def stacks(self, worker: str) -> str:
        """The stack of the thread running *worker*'s task."""
        thread = self._threads.get(worker)
        ident = thread.ident if thread is not None else None
        frame = sys._current_frames().get(ident) if ident is not None else None
        if frame is None:
            return ""
        return f"Thread {ident:#x} ({worker}):\n" + "".join(traceback.format_stack(frame))

    def interrupt(self, worker: str, message: str) -> bool:
        """End the process tree of the command *worker*'s task runs, so that it returns.

        False if it runs none (a Python body): threads cannot be interrupted,
        the caller ends the worker instead.
        """
        thread = self._threads.get(worker)
        if thread is None or thread.ident is None:
            return False
        return end_commands_of([thread.ident], message, KILL_GRACE)

    def end(self, worker: str) -> None:
        """Give up on *worker*'s thread (it cannot be killed) and start a fresh one.

        A command its task still runs is ended, with its whole process tree.
        """
        thread = self._threads.pop(worker, None)
        if thread is None:
            return
        queue_left = self._abandon(thread)
        with thread.wakeup:
            thread.stopping = True  # an idle thread exits; a busy one, once its task returns
            thread.wakeup.notify()
        if thread.ident is not None:
            end_commands_of([thread.ident], "its worker was ended", KILL_GRACE)
        if queue_left is None:
            return
        running = queue_left[0] if queue_left else None
        self._events.put(Lost(worker, running, queue_left[1:], None, None, ended=True))
        if not self._stopping:
            self._start()

    def shutdown(self, drop_queued: bool) -> None:
        """Let every thread finish (or drop) its queue, then end."""
        self._stopping = True
        for thread in self._threads.values():
            with thread.wakeup:
                thread.stopping = True
                thread.drop = drop_queued
                thread.wakeup.notify()

    def close(self) -> list[Event]:
        """Stop handing out work; running tasks finish in the background, ignored
        (their commands are ended).

        Returns the events not read yet, and a ``Lost(ended=True)`` event for
        each thread that still had tasks.
        """
        events = self.wait(0) if self._threads else []
        lost: list[Event] = []
        busy = []
        for worker, thread in self._threads.items():
            queue_left = self._abandon(thread)
            if queue_left:
                lost.append(Lost(worker, queue_left[0], queue_left[1:], None, None, ended=True))
                busy.append(thread.ident)
        # What the running tasks' commands started ends with them, as a process pool's workers do.
        end_commands_of([ident for ident in busy if ident is not None], "the run ended it", KILL_GRACE)
        self.shutdown(drop_queued=True)
        self._threads.clear()
        return events + lost
