"""The process pool: workers forked from the controller after collection.

Each worker is two processes: a small *shim*, forked by the controller, that
leads the worker's process group, adopts orphans (child subreaper) and exits
as the worker did; and the *runner* it forks, which runs the tests. The
runner leads nothing, so a test may call ``os.setsid()``; orphans of earlier
tests are the shim's, so a test's ``os.wait()`` sees only its own children;
and a test that signals its parent reaches the shim, never the controller.

Messages, controller to worker: ``("run", [index, ...], {index: inputs} or None)``,
``("stop", drop)``.
Worker to controller: ``("pid", runner_pid, None)`` first, then
``("done", index, payload)``, ``("late", index, payload)``,
``("dropped", None, [index, ...])``. A process that a test forked and that
returned into the runner's code says so on a pipe shared by the pool's
workers (one line, ``worker index pid``), then ends.
"""

from __future__ import annotations

import bisect
import itertools
import os
import selectors
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections import deque
from typing import Any, BinaryIO, Callable, Mapping, Sequence

import psutil

from .. import _forks, _worker_state
from .._channel import Channel
from .._errors import PexenError, Timeout
from .._processes import TOKEN_VARIABLE, Guardian, become_subreaper, end, tree
from .._watchdog import KILL_GRACE
from . import Dropped, Event, Finished, Gone, Late, Lost, Reboot, Stray, WorkerOutput, exit_description

WorkerTarget = Callable[[Channel], None]

#: Worker numbers, unique in the controller process (pools of every group).
_numbers = itertools.count()

#: How often a pool without pidfd support checks for dead workers.
_REAP_INTERVAL = 0.2


class _Worker:
    def __init__(
        self, name: str, pid: int, channel: Channel, pidfd: int | None, token: str, progress: _worker_state.Progress
    ) -> None:
        self.name = name
        #: The shim's pid (the controller's child); the runner's once it says.
        self.pid = pid
        self.runner: int | None = None
        self.channel = channel
        self.pidfd = pidfd
        self.token = token
        self.progress = progress
        self.queue: deque[int] = deque()
        #: The queue position of each task in the queue. Positions count every
        #: task assigned, so once tasks were taken back from the middle of
        #: the queue (from behind a running one) they are not consecutive.
        self.positions: deque[int] = deque()
        #: Tasks assigned so far (the queue position of the next one).
        self.assigned = 0
        self.last: int | None = None
        self.exitcode: int | None = None
        #: The controller ended it (watchdog, Ctrl-C): not a crash.
        self.ended = False
        #: Files the worker named (its capture files), opened here to outlive it.
        self.files: dict[str, BinaryIO] = {}
        #: The worker's workeroutput, once it sent it.
        self.output: dict[str, Any] | None = None
        #: How many tasks there were when it was forked: it knows only those.
        self.known = 0
        #: It finishes its queue and exits; new work goes to its successor.
        self.successor: str | None = None
        #: A test of it called pytest.exit() or raised KeyboardInterrupt: it
        #: stops on its own, as pytest does, without waiting to be told.
        self.leaving = False


class ProcessPool:
    """Workers forked from the controller after collection.

    Forking means workers inherit the collected session and never collect
    again. A worker that dies is replaced by a fresh fork, unless the pool is
    shutting down.
    """

    kind = "process"

    def __init__(
        self,
        size: int,
        target: WorkerTarget,
        scratch_parent: str | None = None,
        worker_signals: Mapping[int, Any] | None = None,
        task_count: Callable[[], int] | None = None,
        name_prefix: str = "",
    ) -> None:
        """*scratch_parent*: where the pool keeps its small files (default: the system's
        temp dir). *worker_signals*: signal handlers the workers run with, in place
        of those the controller set up for itself. *task_count*: how many tasks
        there are now (tasks may be added during the run; a worker forked before
        one was added cannot run it, see :meth:`assign`). *name_prefix*: starts every
        worker's name, to keep names unique in a run whose pools live in several processes."""
        if not hasattr(os, "fork"):
            raise PexenError(
                "the process pool needs os.fork(), which this platform lacks; "
                "pytest-pexen runs on Linux and other POSIX systems"
            )
        self._target = target
        self._task_count = task_count
        self._name_prefix = name_prefix
        #: What wait() also wakes on; closed in workers, like the channels.
        self._wake: list[Any] = []
        self._worker_signals = dict(worker_signals or {})
        self._workers: dict[str, _Worker] = {}
        self._selector = selectors.DefaultSelector()
        self._spawned = 0
        self._stopping = False
        self._has_pidfd = hasattr(os, "pidfd_open")
        self._scratch = tempfile.mkdtemp(prefix="pexen-", dir=scratch_parent)
        self._stray_read, self._stray_write = os.pipe()
        os.set_blocking(self._stray_read, False)
        self._selector.register(self._stray_read, selectors.EVENT_READ, (None, "stray"))
        self._strays: list[Stray] = []
        self._closed = False
        self._guardian = Guardian(grace=KILL_GRACE, scratch=self._scratch)
        self._size = size
        for _ in range(size):
            self._spawn()

    def _spawn(self) -> _Worker:
        name = f"{self._name_prefix}gw{next(_numbers)}"
        self._spawned += 1
        ours, theirs = Channel.pair()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        token = f"{os.getpid()}-{name}"
        progress = _worker_state.Progress()
        pid = os.fork()
        if pid == 0:
            # Our ends of every channel (and the guardian's pipe) must be
            # closed in the child, or end-of-file would not mean "gone".
            ours.close()
            for other in self._workers.values():
                other.channel.close()
                other.progress.close()
                if other.pidfd is not None:
                    os.close(other.pidfd)
            self._selector.close()
            for fileobj in self._wake:
                fileobj.close()
            os.close(self._stray_read)
            self._guardian.close_in_child()
            _become_shim(token)
            _worker_state.name, _worker_state.count, _worker_state.progress = name, self._size, progress
            _worker_state.stray_fd = self._stray_write
            _become_runner(self._file(name, "stacks"), self._file(name, "reason"), self._worker_signals)
            _child_main(self._target, theirs)
        theirs.close()
        pidfd = None
        if self._has_pidfd:
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                self._has_pidfd = False
        self._guardian.watch(pid, token)
        worker = _Worker(name, pid, ours, pidfd, token, progress)
        worker.known = self._task_count() if self._task_count is not None else sys.maxsize
        self._workers[name] = worker
        self._selector.register(ours, selectors.EVENT_READ, (worker, "channel"))
        if pidfd is not None:
            self._selector.register(pidfd, selectors.EVENT_READ, (worker, "exit"))
        return worker

    def wake_on(self, fileobj: Any) -> None:
        """Let :meth:`wait` also return, with what it has, when *fileobj* is readable.

        For a pool driven by messages from elsewhere (a Dask worker's relay):
        its owner waits on both at once.
        """
        self._selector.register(fileobj, selectors.EVENT_READ, (None, "wake"))
        self._wake.append(fileobj)

    def assigned(self) -> dict[str, Sequence[int]]:
        """Each worker's tasks, the running one (if any) first (read-only)."""
        return {name: w.queue for name, w in self._workers.items()}

    def taker(self, worker: str, indices: list[int]) -> str:
        """The worker that runs *indices* when they are handed to *worker*:
        *worker*, or its successor. A worker forked before a task was added
        cannot run it, so a fresh one (started here) takes over from it,
        and it finishes what it has queued, then exits."""
        handle = self._workers[worker]
        while handle.successor is not None:
            handle = self._workers[handle.successor]
        if indices and max(indices) >= handle.known:
            handle = self._take_over(handle)
        return handle.name

    def assign(self, worker: str, indices: list[int], inputs: Mapping[int, bytes] | None = None) -> None:
        """Queue *indices* on *worker*, or on the worker that :meth:`taker` names for them."""
        handle = self._workers[self.taker(worker, indices)]
        handle.queue.extend(indices)
        handle.positions.extend(range(handle.assigned, handle.assigned + len(indices)))
        handle.assigned += len(indices)
        self._send(handle, ("run", indices, inputs or None))

    def _take_over(self, old: _Worker) -> _Worker:
        """A fresh worker in place of *old*, which finishes its queue and exits."""
        self._send(old, ("stop", False))
        new = self._spawn()
        old.successor = new.name
        return new

    def revoke(self, worker: str) -> list[int]:
        """Take back the tasks queued behind the one *worker* runs; they never start there."""
        handle = self._workers.get(worker)
        if handle is None or len(handle.queue) < 2:
            return []
        started = handle.progress.take_back(handle.assigned, timeout=0.05)
        if started is None:
            return []
        # What the worker started (the running task, and one whose end is
        # not read yet) stays; what lies behind it is taken back.
        keep = bisect.bisect_right(handle.positions, started)
        revoked = list(handle.queue)[keep:]
        for _ in revoked:
            handle.queue.pop()
            handle.positions.pop()
        return revoked

    def wait(self, timeout: float | None) -> list[Event]:
        if not self._workers:
            return []
        if not self._has_pidfd:
            timeout = _REAP_INTERVAL if timeout is None else min(timeout, _REAP_INTERVAL)
        events: list[Event] = []
        exited: list[_Worker] = []
        for key, _ in self._selector.select(timeout):
            worker, what = key.data
            if what == "wake":
                continue
            if what == "stray":
                self._read_strays()
            elif what == "channel":
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
        return events + self._settled_strays()

    def _read_strays(self) -> None:
        try:
            data = os.read(self._stray_read, 1 << 16)
        except BlockingIOError:
            return
        for line in data.decode(errors="replace").splitlines():
            name, index, pid = line.split()
            self._strays.append(Stray(name, int(index), int(pid)))

    def _settled_strays(self) -> list[Event]:
        """Stray notices of tasks that are no longer running (so they come after their results)."""
        if not self._strays:
            return []
        settled: list[Event] = []
        waiting = []
        for stray in self._strays:
            worker = self._workers.get(stray.worker)
            if worker is not None and worker.queue and worker.queue[0] == stray.index:
                waiting.append(stray)
            else:
                settled.append(stray)
        self._strays = waiting
        return settled

    def _read(self, worker: _Worker) -> list[Event]:
        events: list[Event] = []
        for kind, index, payload in worker.channel.receive():
            if kind == "pid":
                worker.runner = index
            elif kind == "done":
                assert worker.queue and worker.queue[0] == index, (worker.queue, index)
                worker.queue.popleft()
                worker.positions.popleft()
                worker.last = index
                worker.leaving = worker.leaving or "exit" in payload or "interrupt" in payload
                events.append(Finished(worker.name, index, payload))
            elif kind == "reboot":
                events.append(Reboot(worker.name, index))
            elif kind == "output":
                worker.output = payload
            elif kind == "files":
                worker.files = _open_files_of(worker.runner or worker.pid, payload)
            elif kind == "dropped":
                # Tasks the controller took back are no longer its to drop.
                dropped = tuple(index for index in payload if index in worker.queue)
                for index in dropped:
                    at = worker.queue.index(index)
                    del worker.queue[at]
                    del worker.positions[at]
                events.append(Dropped(worker.name, dropped))
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
        lost = self._lost(worker, worker.ended)
        self._forget(worker)
        self._guardian.forget(worker.pid)
        if worker.leaving and worker.exitcode == 0 and worker.queue:
            # Handed out after its last test, never read: they did not start.
            events.append(Dropped(worker.name, tuple(worker.queue)))
            worker.queue.clear()
            worker.positions.clear()
        stopped = self._stopping or worker.successor is not None or worker.leaving
        if stopped and not worker.queue and worker.exitcode == 0:
            events.append(WorkerOutput(worker.name, worker.output, None))
            events.append(Gone(worker.name))
            return events
        events.append(WorkerOutput(worker.name, worker.output, exit_description(worker.exitcode)))
        if not worker.ended:
            # What the dead worker started may still run: end it.
            end(tree(worker.pid, worker.token), KILL_GRACE)
        events.append(lost)
        if not self._stopping and worker.successor is None:
            replacement = self._spawn()
            for other in self._workers.values():
                if other.successor == worker.name:
                    other.successor = replacement.name
        return events

    @staticmethod
    def _lost(worker: _Worker, ended: bool) -> Lost:
        """What *worker*, whose process has ended, had: read before it is forgotten."""
        queue = tuple(worker.queue)
        running = queue[0] if queue else None
        output = tuple((name, _tail(file)) for name, file in worker.files.items())
        index, phase = worker.progress.get()
        phase = phase if index == running else ""
        return Lost(worker.name, running, queue[1:], worker.exitcode, worker.last, ended, output, phase)

    def _forget(self, worker: _Worker) -> None:
        for fileobj in (worker.channel, worker.pidfd):
            if fileobj is not None:
                try:
                    self._selector.unregister(fileobj)
                except (KeyError, ValueError):
                    pass
        worker.channel.close()
        worker.progress.close()
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
        if handle is None or handle.runner is None:
            return ""
        path = self._file(worker, "stacks")
        with open(path, "w"):
            pass
        try:
            os.kill(handle.runner, signal.SIGUSR1)
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
        if handle is None or handle.runner is None:
            return False
        with open(self._file(worker, "reason"), "w") as file:
            file.write(message)
        try:
            os.kill(handle.runner, signal.SIGUSR2)
        except ProcessLookupError:
            return False
        return True

    def end(self, worker: str) -> None:
        """End *worker* and every process it started; wait() reports it as Lost(ended=True)."""
        handle = self._workers.get(worker)
        if handle is None or handle.ended:
            return  # already gone, or being ended
        handle.ended = True
        self._keep_exit_status(handle, end(tree(handle.pid, handle.token), KILL_GRACE))

    @staticmethod
    def _keep_exit_status(worker: _Worker, ended: list[psutil.Process]) -> None:
        """Ending a tree reaps the shim (our child): keep its exit status for the report."""
        for process in ended:
            code = getattr(process, "returncode", None)
            if process.pid == worker.pid and code is not None:
                worker.exitcode = code

    def _file(self, worker: str, what: str) -> str:
        return os.path.join(self._scratch, f"{worker}.{what}")

    def shutdown(self, drop_queued: bool) -> None:
        """Ask every worker to finish (or drop) its queue and exit."""
        self._stopping = True
        for worker in self._workers.values():
            self._send(worker, ("stop", drop_queued))

    def close(self) -> list[Event]:
        """End every worker and what it started, now (at the end, on errors and interrupts).

        Returns what the workers had sent and was not read yet, and a
        ``Lost(ended=True)`` event for each worker that still had tasks.
        """
        if self._closed:
            return []
        self._closed = True
        victims = []
        for worker in self._workers.values():
            if not self._exited(worker, block=False):
                victims.extend(tree(worker.pid, worker.token))
        ended = end(victims, KILL_GRACE)
        events: list[Event] = []
        for worker in list(self._workers.values()):
            if not worker.channel.closed:
                events.extend(self._read(worker))
            self._keep_exit_status(worker, ended)
            self._exited(worker, block=True)
            events.append(WorkerOutput(worker.name, worker.output, exit_description(worker.exitcode)))
            if worker.queue:
                events.append(self._lost(worker, ended=True))
            self._forget(worker)
        self._selector.close()
        os.close(self._stray_read)
        os.close(self._stray_write)
        self._guardian.release()
        shutil.rmtree(self._scratch, ignore_errors=True)
        return events


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


def _become_shim(token: str) -> None:
    """In the controller's fresh child: become the shim, fork the runner, return in the runner.

    The shim leads a process group of its own: a Ctrl-C at the terminal goes
    to the controller, which decides what happens to running tests; and the
    group is one of the nets that catch what a test started (see
    :mod:`._processes`). It adopts orphans, reaps them, and exits as the
    runner did.
    """
    os.setpgid(0, 0)
    become_subreaper()
    os.environ[TOKEN_VARIABLE] = token
    # Not the controller's handlers: a test that signals its parent ends
    # this worker (reported as a crash), never the run.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    runner = os.fork()
    if runner == 0:
        return
    code = 1
    try:
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except InterruptedError:
                continue
            if pid == runner:
                code = os.waitstatus_to_exitcode(status)
                break
        if code < 0:
            # Die of the same signal, so the controller can name it.
            try:
                signal.signal(-code, signal.SIG_DFL)
            except (OSError, ValueError):
                pass  # SIGKILL and SIGSTOP have no handler to reset
            os.kill(os.getpid(), -code)
            code = 128 - code
    finally:
        os._exit(code)


def _become_runner(stacks_path: str, reason_path: str, signals: Mapping[int, Any]) -> None:
    """Process-level set-up of the process that runs the tests."""
    _worker_state.pid = os.getpid()
    for signum, handler in signals.items():
        signal.signal(signum, handler)
    stacks = open(stacks_path, "a")
    _forks.dump_stacks_on(signal.SIGUSR1, stacks)

    def interrupt(signum: int, frame: object) -> None:
        __tracebackhide__ = True
        if _worker_state.in_test:
            with open(reason_path) as file:
                raise Timeout(file.read())

    _forks.catch(signal.SIGUSR2, interrupt)


def _child_main(target: WorkerTarget, channel: Channel) -> None:
    """Run *target* in a forked child and never return into the parent's code."""
    code = 0
    try:
        channel.send(("pid", os.getpid(), None))
        target(channel)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except (BrokenPipeError, ConnectionResetError):
        code = 1  # the controller is gone: nobody reads what we would say
    except BaseException:
        traceback.print_exc()
        code = 70
    finally:
        os._exit(code)
