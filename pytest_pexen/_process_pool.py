"""The process pool: workers forked from the controller after collection.

Messages, controller to worker: ``("run", [index, ...])``, ``("stop", drop)``.
Worker to controller: ``("done", index, payload)``, ``("late", index, payload)``,
``("dropped", None, [index, ...])``.
"""

from __future__ import annotations

import os
import selectors
import signal
import sys
import traceback
from collections import deque
from typing import Any, Callable, Sequence

from ._channel import Channel
from ._errors import PexenError
from ._pool import Dropped, Event, Finished, Gone, Late, Lost

WorkerTarget = Callable[[Channel], None]

#: How often a pool without pidfd support checks for dead workers.
_REAP_INTERVAL = 0.2


class _Worker:
    def __init__(self, name: str, pid: int, channel: Channel, pidfd: int | None) -> None:
        self.name = name
        self.pid = pid
        self.channel = channel
        self.pidfd = pidfd
        self.queue: deque[int] = deque()
        self.last: int | None = None
        self.exitcode: int | None = None


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
        self._target = target
        self._workers: dict[str, _Worker] = {}
        self._selector = selectors.DefaultSelector()
        self._spawned = 0
        self._stopping = False
        self._has_pidfd = hasattr(os, "pidfd_open")
        for _ in range(size):
            self._spawn()

    def _spawn(self) -> None:
        name = f"w{self._spawned}"
        self._spawned += 1
        ours, theirs = Channel.pair()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        pid = os.fork()
        if pid == 0:
            # Our ends of every channel must be closed in the child, or a
            # worker would not see end-of-file when the controller dies.
            ours.close()
            for other in self._workers.values():
                other.channel.close()
                if other.pidfd is not None:
                    os.close(other.pidfd)
            self._selector.close()
            _child_main(self._target, theirs)
        theirs.close()
        pidfd = None
        if self._has_pidfd:
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                self._has_pidfd = False
        worker = _Worker(name, pid, ours, pidfd)
        self._workers[name] = worker
        self._selector.register(ours, selectors.EVENT_READ, (worker, "channel"))
        if pidfd is not None:
            self._selector.register(pidfd, selectors.EVENT_READ, (worker, "exit"))

    def assigned(self) -> dict[str, Sequence[int]]:
        """Each worker's tasks, the running one (if any) first (read-only)."""
        return {name: w.queue for name, w in self._workers.items()}

    def assign(self, worker: str, indices: list[int]) -> None:
        handle = self._workers[worker]
        handle.queue.extend(indices)
        self._send(handle, ("run", indices))

    def wait(self, timeout: float | None) -> list[Event]:
        if not self._workers:
            return []
        if not self._has_pidfd:
            timeout = _REAP_INTERVAL if timeout is None else min(timeout, _REAP_INTERVAL)
        events: list[Event] = []
        exited: list[_Worker] = []
        for key, _ in self._selector.select(timeout):
            worker, what = key.data
            if what == "channel":
                events.extend(self._read(worker))
                if worker.channel.closed:
                    self._selector.unregister(worker.channel)
                    if worker.pidfd is None:
                        exited.append(worker)
            elif worker not in exited:
                exited.append(worker)
        if not self._has_pidfd:
            exited.extend(w for w in self._workers.values() if w not in exited and self._exited(w, block=False))
        for worker in exited:
            events.extend(self._reap(worker))
        return events

    def _read(self, worker: _Worker) -> list[Event]:
        events: list[Event] = []
        for kind, index, payload in worker.channel.receive():
            if kind == "done":
                assert worker.queue and worker.queue[0] == index, (worker.queue, index)
                worker.queue.popleft()
                worker.last = index
                events.append(Finished(worker.name, index, payload))
            elif kind == "dropped":
                for dropped in payload:
                    worker.queue.remove(dropped)
                events.append(Dropped(worker.name, tuple(payload)))
            else:
                events.append(Late(worker.name, index, payload))
        return events

    def _exited(self, worker: _Worker, block: bool) -> bool:
        if worker.exitcode is not None:
            return True
        try:
            pid, status = os.waitpid(worker.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            worker.exitcode = None
            return True
        if pid == 0:
            return False
        worker.exitcode = os.waitstatus_to_exitcode(status)
        return True

    def _reap(self, worker: _Worker) -> list[Event]:
        """A worker's process ended: read what it left, then report it."""
        events = [] if worker.channel.closed else self._read(worker)
        self._exited(worker, block=True)
        self._forget(worker)
        queue = tuple(worker.queue)
        if self._stopping and not queue and worker.exitcode == 0:
            events.append(Gone(worker.name))
            return events
        running = queue[0] if queue else None
        events.append(Lost(worker.name, running, queue[1:], worker.exitcode, worker.last))
        if not self._stopping:
            self._spawn()
        return events

    def _forget(self, worker: _Worker) -> None:
        for fileobj in (worker.channel, worker.pidfd):
            if fileobj is not None:
                try:
                    self._selector.unregister(fileobj)
                except (KeyError, ValueError):
                    pass
        worker.channel.close()
        if worker.pidfd is not None:
            os.close(worker.pidfd)
        del self._workers[worker.name]

    def _send(self, worker: _Worker, message: Any) -> None:
        try:
            worker.channel.send(message)
        except OSError:
            pass  # it died; wait() reports it with its tasks

    def shutdown(self, drop_queued: bool) -> None:
        """Ask every worker to finish (or drop) its queue and exit."""
        self._stopping = True
        for worker in self._workers.values():
            self._send(worker, ("stop", drop_queued))

    def close(self) -> None:
        """End every worker now (used on errors and interrupts)."""
        for worker in list(self._workers.values()):
            if not self._exited(worker, block=False):
                try:
                    os.kill(worker.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self._exited(worker, block=True)
            self._forget(worker)
        self._selector.close()

    def __len__(self) -> int:
        return len(self._workers)


def _child_main(target: WorkerTarget, channel: Channel) -> None:
    """Run *target* in a forked child and never return into the parent's code."""
    code = 0
    try:
        target(channel)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 70
    finally:
        os._exit(code)
