"""The process pool: workers forked from the controller after collection.

Messages, controller to worker: ``("run", [index, ...])``, ``("stop", drop)``.
Worker to controller: ``("done", index, payload)``, ``("late", index, payload)``,
``("dropped", None, [index, ...])``.
"""

from __future__ import annotations

import faulthandler
import os
import selectors
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import deque
from typing import Any, BinaryIO, Callable, Sequence

from . import _worker_state
from ._channel import Channel
from ._errors import PexenError, Timeout
from ._pool import Dropped, Event, Finished, Gone, Late, Lost
from ._processes import TOKEN_VARIABLE, Guardian, become_subreaper, end, tree
from ._watchdog import KILL_GRACE

WorkerTarget = Callable[[Channel], None]

#: How often a pool without pidfd support checks for dead workers.
_REAP_INTERVAL = 0.2


class _Worker:
    def __init__(self, name: str, pid: int, channel: Channel, pidfd: int | None, token: str) -> None:
        self.name = name
        self.pid = pid
        self.channel = channel
        self.pidfd = pidfd
        self.token = token
        self.queue: deque[int] = deque()
        self.last: int | None = None
        self.exitcode: int | None = None
        #: The controller ended it (watchdog, Ctrl-C): not a crash.
        self.ended = False
        #: Files the worker named (its capture files), opened here to outlive it.
        self.files: dict[str, BinaryIO] = {}


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
        self._scratch = tempfile.mkdtemp(prefix="pexen-")
        self._guardian = Guardian(grace=KILL_GRACE)
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
        token = f"{os.getpid()}-{name}"
        pid = os.fork()
        if pid == 0:
            # Our ends of every channel (and the guardian's pipe) must be
            # closed in the child, or end-of-file would not mean "gone".
            ours.close()
            for other in self._workers.values():
                other.channel.close()
                if other.pidfd is not None:
                    os.close(other.pidfd)
            self._selector.close()
            self._guardian.close_in_child()
            _become_worker_process(token, self._file(name, "stacks"), self._file(name, "reason"))
            _child_main(self._target, theirs)
        theirs.close()
        pidfd = None
        if self._has_pidfd:
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                self._has_pidfd = False
        self._guardian.watch(pid, token)
        worker = _Worker(name, pid, ours, pidfd, token)
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
            elif kind == "files":
                worker.files = _open_files_of(worker.pid, payload)
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
        output = tuple((name, _tail(file)) for name, file in worker.files.items())
        self._forget(worker)
        self._guardian.forget(worker.pid)
        queue = tuple(worker.queue)
        if self._stopping and not queue and worker.exitcode == 0:
            events.append(Gone(worker.name))
            return events
        if not worker.ended:
            # What the dead worker started may still run: end it.
            end(tree(worker.pid, worker.token), KILL_GRACE)
        running = queue[0] if queue else None
        events.append(
            Lost(worker.name, running, queue[1:], worker.exitcode, worker.last, worker.ended, output)
        )
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
        for file in worker.files.values():
            file.close()
        del self._workers[worker.name]

    def _send(self, worker: _Worker, message: Any) -> None:
        try:
            worker.channel.send(message)
        except OSError:
            pass  # it died; wait() reports it with its tasks

    def stacks(self, worker: str) -> str:
        """The Python stacks of every thread of *worker*, as faulthandler prints them."""
        handle = self._workers.get(worker)
        if handle is None:
            return ""
        path = self._file(worker, "stacks")
        with open(path, "w"):
            pass
        try:
            os.kill(handle.pid, signal.SIGUSR1)
        except ProcessLookupError:
            return ""
        # faulthandler writes from the signal handler itself; wait until
        # the file stops growing.
        size, deadline = -1, time.monotonic() + 1.0
        while time.monotonic() < deadline:
            time.sleep(0.02)
            current = os.path.getsize(path)
            if current and current == size:
                break
            size = current
        with open(path, errors="replace") as file:
            return file.read()

    def interrupt(self, worker: str, message: str) -> bool:
        """Make the running test raise :class:`Timeout` with *message*."""
        handle = self._workers.get(worker)
        if handle is None:
            return False
        with open(self._file(worker, "reason"), "w") as file:
            file.write(message)
        try:
            os.kill(handle.pid, signal.SIGUSR2)
        except ProcessLookupError:
            return False
        return True

    def end(self, worker: str) -> None:
        """End *worker* and every process it started; wait() reports it as Lost(ended=True)."""
        handle = self._workers.get(worker)
        if handle is None or handle.ended:
            return  # already gone, or being ended
        handle.ended = True
        end(tree(handle.pid, handle.token), KILL_GRACE)

    def _file(self, worker: str, what: str) -> str:
        return os.path.join(self._scratch, f"{worker}.{what}")

    def shutdown(self, drop_queued: bool) -> None:
        """Ask every worker to finish (or drop) its queue and exit."""
        self._stopping = True
        for worker in self._workers.values():
            self._send(worker, ("stop", drop_queued))

    def close(self) -> None:
        """End every worker and what it started, now (at the end, on errors and interrupts)."""
        victims = []
        for worker in self._workers.values():
            if not self._exited(worker, block=False):
                victims.extend(tree(worker.pid, worker.token))
        end(victims, KILL_GRACE)
        for worker in list(self._workers.values()):
            self._exited(worker, block=True)
            self._forget(worker)
        self._selector.close()
        self._guardian.release()
        shutil.rmtree(self._scratch, ignore_errors=True)


#: Most of a file's end that a Lost event carries.
_OUTPUT_LIMIT = 64 * 1024


def _open_files_of(pid: int, fds: dict[str, int]) -> dict[str, BinaryIO]:
    """Open another process's file descriptors (Linux /proc), where possible."""
    files: dict[str, BinaryIO] = {}
    for name, fd in fds.items():
        try:
            files[name] = open(f"/proc/{pid}/fd/{fd}", "rb")
        except OSError:
            continue
    return files


def _tail(file: BinaryIO) -> str:
    try:
        file.seek(0, os.SEEK_END)
        size = file.tell()
        file.seek(max(0, size - _OUTPUT_LIMIT))
        data = file.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return text if size <= _OUTPUT_LIMIT else f"[first {size - _OUTPUT_LIMIT} bytes cut]\n{text}"


def _become_worker_process(token: str, stacks_path: str, reason_path: str) -> None:
    """Process-level set-up of a fresh worker (see :mod:`._processes`)."""
    # Our own process group: a Ctrl-C at the terminal goes to the controller,
    # which decides what happens to running tests; and the group is one of
    # the nets that catch what a test started.
    os.setpgid(0, 0)
    become_subreaper()
    os.environ[TOKEN_VARIABLE] = token
    stacks = open(stacks_path, "a")
    faulthandler.register(signal.SIGUSR1, file=stacks, all_threads=True)

    def interrupt(signum: int, frame: object) -> None:
        __tracebackhide__ = True
        if _worker_state.in_test:
            with open(reason_path) as file:
                raise Timeout(file.read())

    signal.signal(signal.SIGUSR2, interrupt)


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
