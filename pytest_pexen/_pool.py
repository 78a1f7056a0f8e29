"""Worker pools: where tasks run, and nothing about what they mean.

A pool is driven through four verbs: :meth:`assign` task indices to a
worker, :meth:`wait` for events, :meth:`shutdown` when no more work is
coming, :meth:`close` to end everything now. It knows nothing of tags or
pytest: a worker is a process running the *target* function given to the
pool, speaking a tiny message protocol over a pipe.

Messages, controller to worker: ``("run", [index, ...])``, ``("stop", drop)``.
Worker to controller: ``("done", index, payload)``, ``("late", index, payload)``,
``("dropped", None, [index, ...])``.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import sys
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Union

from ._errors import PexenError

Connection = multiprocessing.connection.Connection
WorkerTarget = Callable[[Connection], None]


@dataclass(frozen=True)
class Finished:
    """A worker ran a task to its end; *payload* is what the worker sent."""

    worker: str
    index: int
    payload: Any


@dataclass(frozen=True)
class Late:
    """Something a worker found about an earlier task after it finished."""

    worker: str
    index: int
    payload: Any


@dataclass(frozen=True)
class Dropped:
    """A stopping worker dropped these tasks without starting them."""

    worker: str
    indices: tuple[int, ...]


@dataclass(frozen=True)
class Lost:
    """A worker died: *running* was in progress, *queued* never started."""

    worker: str
    running: int | None
    queued: tuple[int, ...]
    exitcode: int | None


@dataclass(frozen=True)
class Gone:
    """A worker exited after being told to stop."""

    worker: str


Event = Union[Finished, Late, Dropped, Lost, Gone]


class Pool(Protocol):
    """What the run loop needs of a pool; every pool kind provides this."""

    def assigned(self) -> dict[str, tuple[int, ...]]: ...
    def assign(self, worker: str, indices: list[int]) -> None: ...
    def wait(self, timeout: float | None) -> list[Event]: ...
    def shutdown(self, drop_queued: bool) -> None: ...
    def close(self) -> None: ...


class _Worker:
    def __init__(self, name: str, process: multiprocessing.process.BaseProcess, conn: Connection):
        self.name = name
        self.process = process
        self.conn = conn
        self.queue: deque[int] = deque()


def exit_description(exitcode: int | None) -> str:
    """Human words for a worker's exit code ("killed by signal 9 (SIGKILL)")."""
    if exitcode is None:
        return "exit status unknown"
    if exitcode < 0:
        import signal

        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            return f"killed by signal {-exitcode}"
        return f"killed by signal {-exitcode} ({name})"
    return f"exited with code {exitcode}"


class ProcessPool:
    """Workers forked from the controller after collection.

    Forking means workers inherit the collected session and never collect
    again. A worker that dies is replaced by a fresh fork, unless the pool is
    shutting down.
    """

    kind = "process"

    def __init__(self, size: int, target: WorkerTarget) -> None:
        if not hasattr(os, "fork"):
            raise PexenError(
                "the process pool needs os.fork(), which this platform lacks; "
                "pytest-pexen runs on Linux and other POSIX systems"
            )
        self._context = multiprocessing.get_context("fork")
        self._target = target
        self._workers: dict[str, _Worker] = {}
        self._spawned = 0
        self._stopping = False
        for _ in range(size):
            self._spawn()

    def _spawn(self) -> None:
        name = f"w{self._spawned}"
        self._spawned += 1
        ours, theirs = self._context.Pipe(duplex=True)
        # Our ends of every pipe must be closed in the child, or a worker would
        # not see end-of-file when the controller dies.
        inherited = [w.conn for w in self._workers.values()] + [ours]
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        process = self._context.Process(
            target=_child_main,
            args=(self._target, theirs, inherited),
            name=f"pexen-{name}",
            daemon=True,
        )
        process.start()
        theirs.close()
        self._workers[name] = _Worker(name, process, ours)

    def assigned(self) -> dict[str, tuple[int, ...]]:
        """Each worker's tasks, the running one (if any) first."""
        return {name: tuple(w.queue) for name, w in self._workers.items()}

    def assign(self, worker: str, indices: list[int]) -> None:
        handle = self._workers[worker]
        handle.queue.extend(indices)
        try:
            handle.conn.send(("run", indices))
        except (BrokenPipeError, ConnectionResetError):
            pass  # it died; wait() reports it with these tasks

    def wait(self, timeout: float | None) -> list[Event]:
        if not self._workers:
            return []
        waitables: dict[Any, _Worker] = {}
        for handle in self._workers.values():
            waitables[handle.conn] = handle
            waitables[handle.process.sentinel] = handle
        events: list[Event] = []
        ready = multiprocessing.connection.wait(list(waitables), timeout)
        for handle in dict.fromkeys(waitables[r] for r in ready):
            events.extend(self._drain(handle))
        return events

    def _drain(self, handle: _Worker) -> list[Event]:
        events: list[Event] = []
        try:
            while handle.conn.poll():
                kind, index, payload = handle.conn.recv()
                if kind == "done":
                    assert handle.queue and handle.queue[0] == index, (handle.queue, index)
                    handle.queue.popleft()
                    events.append(Finished(handle.name, index, payload))
                elif kind == "dropped":
                    for dropped in payload:
                        handle.queue.remove(dropped)
                    events.append(Dropped(handle.name, tuple(payload)))
                else:
                    events.append(Late(handle.name, index, payload))
        except (EOFError, OSError):
            pass
        else:
            if handle.process.is_alive():
                return events
        handle.process.join()
        handle.conn.close()
        del self._workers[handle.name]
        queue = tuple(handle.queue)
        if self._stopping and not queue and handle.process.exitcode == 0:
            events.append(Gone(handle.name))
            return events
        events.append(
            Lost(handle.name, queue[0] if queue else None, queue[1:], handle.process.exitcode)
        )
        if not self._stopping:
            self._spawn()
        return events

    def shutdown(self, drop_queued: bool) -> None:
        """Ask every worker to finish (or drop) its queue and exit."""
        self._stopping = True
        for handle in self._workers.values():
            try:
                handle.conn.send(("stop", drop_queued))
            except (BrokenPipeError, ConnectionResetError):
                pass

    def close(self) -> None:
        """End every worker now (used on errors and interrupts)."""
        for handle in self._workers.values():
            if handle.process.is_alive():
                handle.process.kill()
        for handle in self._workers.values():
            handle.process.join()
            handle.conn.close()
        self._workers.clear()

    def __len__(self) -> int:
        return len(self._workers)


def _child_main(target: WorkerTarget, conn: Connection, inherited: list[Connection]) -> None:
    for other in inherited:
        other.close()
    target(conn)
