"""The Dask pool: workers on the machines of a Dask cluster.

The pool places a :class:`Relay` (a Dask actor) on each Dask worker it
uses. The relay starts a *host* process on that machine
(:mod:`.dask_host`), which collects the suite itself and runs a local
process pool of one worker: the same shim, runner, watchdog signals and
process-tree ending as on the controller's machine. The relay only passes
bytes between the host and the controller: our channel's messages, which
the pool reads as it reads a local worker's::

    DaskPool --socket pair-- pumps (the Dask client's event loop)
        --actor calls-- Relay (in the Dask worker) --socket pair-- host --channel-- runner

A host, a relay and its Dask worker live and die together: a Dask worker
that dies (its relay's call fails within milliseconds; the scheduler
forgets it soon after) costs the test its runner was running (reported
as crashed) and gives its queued tests back; the pool then starts a host
on a Dask worker that has none (a restarted one, or one the cluster added),
up to its size. A runner that dies is replaced by its host, at once.

Imported only for a group with ``pool=dask``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from typing import Any, Mapping, Sequence

from .._channel import Channel
from .._errors import DaskError, PexenError
from .._groups import DASK_EXTRA
from .._watchdog import KILL_GRACE
from . import Dropped, Event, Finished, Gone, Lost, WorkerOutput
from .dask_host import DASK_HOST_PLUGIN, HOST_VARIABLE, HostSetup

try:
    import dask
    import distributed
except ImportError as error:  # checked before the run; this is a broken install
    raise PexenError(f"pool=dask needs the distributed package ({error}); install it with: {DASK_EXTRA}") from None

#: Seconds to reach the scheduler, and to wait for its first worker.
CONNECT_SECONDS = 10.0
#: Seconds a host may take to collect the suite and say it is ready.
READY_SECONDS = 300.0
#: Seconds to wait for a host's answer to a request (stacks take up to 1 s,
#: ending a process tree KILL_GRACE), or for its goodbye at the end.
ANSWER_SECONDS = 5.0 + 2 * KILL_GRACE
#: How often the pool looks for Dask workers that left, or came (for new hosts):
#: each look is a round trip to the scheduler, in the run loop.
LOOK_SECONDS = 1.0
#: Seconds to place a relay on a Dask worker.
PLACE_SECONDS = 10.0
#: Seconds the pool waits for a new worker once it has none left (a nanny
#: restarts a Dask worker in one or two); the run loop, and a Ctrl-C, wait too.
REPLACE_SECONDS = 10.0
#: Most of a host's output that the pool fetches when the host ended by itself.
_OUTPUT_TAIL = 4000
#: Loggers of Dask that would speak in the controller's terminal.
_LOGGERS = ("distributed", "tornado")

_numbers = itertools.count()


class Relay:
    """The actor on a Dask worker: starts the host process there and passes bytes both ways.

    Its methods are coroutines, so they run on the Dask worker's event loop
    and never wait for its task threads.
    """

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._log = ""

    async def start(
        self, directory: str, args: Sequence[str], environ: Mapping[str, str | None], own_cluster: bool
    ) -> int:
        """Start the host: pytest with the controller's *args* and *environ* (None: unset)
        in its *directory*; returns its pid.

        *own_cluster*: the Dask worker belongs to a local cluster the pool
        started. It is then in the controller's process group, and what the
        terminal or a CI runner sends to that group (Ctrl-C, SIGTERM, SIGHUP)
        is for the controller, which decides what happens to running tests
        (its nanny stops it with a message, and SIGKILL if need be). Its
        event loop runs in the main thread, where that can be said.
        """
        if own_cluster and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)
        if not os.path.isdir(directory):
            raise DaskError(
                f"the Dask worker on {socket.gethostname()} has no directory {directory}: "
                "run Dask workers on a shared checkout, or the same checkout at the same path"
            )
        ours, theirs = socket.socketpair()
        fd, self._log = tempfile.mkstemp(prefix="pexen-dask-host-", suffix=".log")
        env = {**os.environ, HOST_VARIABLE: f"{theirs.fileno()} {self._log}"}
        for name, value in environ.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        try:
            self._process = subprocess.Popen(
                # The host plugin first: it is then imported before pytest-pexen's own.
                [sys.executable, "-m", "pytest", "-p", DASK_HOST_PLUGIN, *args],
                cwd=directory,
                env=env,
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=subprocess.STDOUT,
                # Signals for the terminal's process group are the controller's.
                start_new_session=True,
            )
        finally:
            os.close(fd)
            theirs.close()
        self._reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        return self._process.pid

    async def send(self, data: bytes) -> None:
        assert self._writer is not None
        self._writer.write(data)
        await self._writer.drain()

    async def receive(self) -> bytes:
        """What the host said since the last call; waits for something. b"": it is gone.

        So a call that fails means that this relay is out of reach.
        """
        assert self._reader is not None
        try:
            return await self._reader.read(1 << 20)
        except ConnectionError:  # it ended with our bytes unread
            return b""

    async def output(self) -> str:
        """The end of what the host wrote (its pytest's errors, if it failed)."""
        try:
            with open(self._log, "rb") as file:
                file.seek(0, os.SEEK_END)
                file.seek(max(0, file.tell() - _OUTPUT_TAIL))
                return file.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    async def stop(self) -> None:
        """End the host if it is still there (it ends its runner's process tree itself)."""
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            for _ in range(int(KILL_GRACE / 0.05)):
                if process.poll() is not None:
                    break
                await asyncio.sleep(0.05)
            else:
                process.kill()
                process.wait()
        if self._writer is not None:
            self._writer.close()
        if self._log:
            try:
                os.unlink(self._log)
            except OSError:
                pass


class _Remote:
    """A runner on a host, as the controller sees it: its tasks, the running one first."""

    def __init__(self) -> None:
        self.queue: deque[int] = deque()
        self.last: int | None = None
        #: The controller ended it (watchdog, Ctrl-C): not a crash.
        self.ended = False


class _Host:
    """A host on one Dask worker, and the controller's end of its channel."""

    def __init__(self, name: str, address: str, channel: Channel, future: Any) -> None:
        self.name = name
        #: The Dask worker's address.
        self.address = address
        self.channel = channel
        #: The Dask future of its relay (keeps the actor alive), and the actor.
        self.future = future
        self.actor: Any = None
        self.workers: dict[str, _Remote] = {}
        self.ready = False
        #: Why it cannot run tests (it collected something else, its pytest failed).
        self.problem: str | None = None
        self.replies: deque[Any] = deque()
        #: It said goodbye (after "close"): its channel's end is no loss.
        self.closed = False
        #: Why its pump stopped, set (in the client's event loop) before the
        #: channel ends: the relay's call failed (its Dask worker is gone), or
        #: the relay said the host ended (None: it did not say).
        self.cut_off: str | None = None


class DaskPool:
    """Up to *size* workers on the Dask cluster at *address* (None: a local cluster, started here)."""

    kind = "dask"

    def __init__(self, size: int, address: str | None, setup: HostSetup, where: str) -> None:
        """*where* names the group and the setting the address came from, for errors."""
        self._size = size
        self._setup = setup
        self._where = where
        self._hosts: dict[str, _Host] = {}
        self._selector = selectors.DefaultSelector()
        self._pending: list[Event] = []
        self._stopping = False
        self._closed = False
        self._next_look = 0.0
        #: Dask workers that could not take a host, and why (not tried again).
        self._refused: dict[str, str] = {}
        self._loggers = {name: logging.getLogger(name).level for name in _LOGGERS}
        for name in _LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        # Tests may start processes of their own (multiprocessing refuses in daemons).
        dask.config.set({"distributed.worker.daemon": False})
        self._cluster: Any = None
        self._client: Any = None
        #: Whether the hosts first started are ready (later problems do not stop the run).
        self._running = False
        try:
            self._connect(address)
            self._start_hosts()
        except BaseException:
            self.close()
            raise
        self._running = True

    # -- the cluster ----------------------------------------------------------------

    def _connect(self, address: str | None) -> None:
        if address is None:
            try:
                self._cluster = distributed.LocalCluster(
                    n_workers=self._size,
                    threads_per_worker=1,
                    processes=True,
                    memory_limit=0,
                    dashboard_address=":0",
                    silence_logs=logging.ERROR,
                )
            except Exception as error:
                raise DaskError(f"{self._where}: a local Dask cluster could not be started: {error}") from None
            address = self._cluster.scheduler_address
        self._address = address
        try:
            self._client = distributed.Client(
                address, timeout=CONNECT_SECONDS, direct_to_workers=True, set_as_default=False
            )
        except (OSError, TimeoutError) as error:
            raise DaskError(
                f"{self._where}: cannot reach the Dask scheduler at {address} ({error}); start "
                f"one with `dask scheduler` and workers with `dask worker {address} --nthreads 1`, "
                "or give no address to start a local cluster"
            ) from None
        try:
            self._client.wait_for_workers(1, timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError):
            raise DaskError(
                f"{self._where}: the Dask scheduler at {address} has no workers (waited "
                f"{CONNECT_SECONDS:g}s); start some with `dask worker {address} --nthreads 1`"
            ) from None

    def _start_hosts(self) -> None:
        """Hosts on as many Dask workers as there are (up to the size); wait until they are ready."""
        self._place()
        deadline = time.monotonic() + READY_SECONDS
        while any(not host.ready for host in self._hosts.values()):
            if time.monotonic() > deadline:
                raise DaskError(
                    f"{self._where}: the hosts on the Dask workers did not collect the suite "
                    f"in {READY_SECONDS:g}s"
                )
            self._pending.extend(self._read_all(0.5))
        if self._refused or not self._hosts:
            raise DaskError(
                f"{self._where}: the Dask cluster at {self._address} cannot run these tests: {self._refusals()}"
            )

    def _refusals(self) -> str:
        """Why Dask workers were refused, each reason once, with the workers it holds for."""
        by_reason: dict[str, list[str]] = {}
        for address, reason in self._refused.items():
            by_reason.setdefault(reason, []).append(address)
        if not by_reason:
            return "no Dask worker was free"
        return "; ".join(
            f"the Dask worker(s) at {', '.join(addresses)}: {reason}" for reason, addresses in by_reason.items()
        )

    def _free_workers(self) -> list[str]:
        """Dask workers with no host of this pool (nor a refusal)."""
        try:
            workers = self._client.scheduler_info()["workers"]
        except Exception:
            return []
        taken = {host.address for host in self._hosts.values()}
        return [address for address in workers if address not in taken and address not in self._refused]

    def _place(self) -> None:
        """Start hosts on free Dask workers until the pool has its size."""
        for address in self._free_workers()[: self._size - len(self._hosts)]:
            self._start_host(address)

    def _start_host(self, address: str) -> None:
        name = f"dask{next(_numbers)}"
        key = f"pexen-relay-{name}-{uuid.uuid4().hex}"
        future = self._client.submit(Relay, actor=True, workers=[address], allow_other_workers=False, key=key)
        try:
            # The actor handle binds to the client that is current when it is made.
            with self._client.as_current():
                actor = future.result(timeout=PLACE_SECONDS)
            setup = self._setup
            started = actor.start(setup.directory, setup.args, setup.environ, self._cluster is not None)
            started.result(timeout=PLACE_SECONDS)
        except Exception as error:
            self._client.cancel([future])
            self._refuse(address, str(error) or type(error).__name__)
            return
        ours, theirs = socket.socketpair()
        theirs.setblocking(False)
        host = _Host(name, address, Channel(ours), future)
        host.actor = actor
        self._hosts[name] = host
        self._selector.register(host.channel, selectors.EVENT_READ, host)
        asyncio.run_coroutine_threadsafe(_pump(host, theirs), self._client.loop.asyncio_loop)
        self._send(host, ("setup", self._setup._replace(name=name, workers=self._size)))

    # -- the Pool interface ----------------------------------------------------------------

    def assigned(self) -> dict[str, Sequence[int]]:
        """Each ready worker's tasks, the running one (if any) first (read-only)."""
        return {
            name: remote.queue
            for host in self._hosts.values()
            if host.ready
            for name, remote in host.workers.items()
        }

    def taker(self, worker: str, indices: list[int]) -> str:
        """*worker*: tasks added during the run do not go to Dask groups."""
        return worker

    def assign(self, worker: str, indices: list[int], inputs: Mapping[int, bytes] | None = None) -> None:
        host = self._host_of(worker)
        host.workers[worker].queue.extend(indices)
        self._send(host, ("run", worker, indices, inputs))

    def revoke(self, worker: str) -> list[int]:
        """Take back the tasks queued behind the one *worker* runs; they never start there."""
        host = self._host_of(worker, None)
        if host is None or len(host.workers[worker].queue) < 2:
            return []
        revoked = self._ask(host, ("revoke", worker), [])
        remote = host.workers.get(worker)
        if remote is None:
            return []  # it died meanwhile: its Lost event gives back its queue
        return [index for index in revoked if _remove(remote.queue, index)]

    def wait(self, timeout: float | None) -> list[Event]:
        if self._pending:
            timeout = 0.0
        if not self._stopping and time.monotonic() >= self._next_look:
            self._look_around()
            self._next_look = time.monotonic() + LOOK_SECONDS
        if timeout is None or timeout > LOOK_SECONDS:
            timeout = LOOK_SECONDS
        events = self._pending + self._read_all(timeout)
        self._pending = []
        if not self._stopping and not self.assigned():
            events.extend(self._wait_for_a_worker())
        return events

    def _wait_for_a_worker(self) -> list[Event]:
        """Every worker was lost: wait a while for a Dask worker to take a host.

        With none, the pool has no workers, and the run loop stops the run.
        """
        events: list[Event] = []
        deadline = time.monotonic() + REPLACE_SECONDS
        while not self.assigned() and time.monotonic() < deadline:
            self._look_around()
            events.extend(self._read_all(LOOK_SECONDS))
        return events

    def stacks(self, worker: str) -> str:
        host = self._host_of(worker, None)
        return "" if host is None else self._ask(host, ("stacks", worker), "")

    def interrupt(self, worker: str, message: str) -> bool:
        host = self._host_of(worker, None)
        return False if host is None else bool(self._ask(host, ("interrupt", worker, message), False))

    def end(self, worker: str) -> None:
        """End *worker* and every process it started; wait() reports it as Lost(ended=True)."""
        host = self._host_of(worker, None)
        if host is None or host.workers[worker].ended:
            return
        host.workers[worker].ended = True
        self._send(host, ("end", worker))

    def shutdown(self, drop_queued: bool) -> None:
        """Ask every worker to finish (or drop) its queue and exit; start no more hosts."""
        self._stopping = True
        for host in list(self._hosts.values()):
            if host.ready:
                self._send(host, ("stop", drop_queued))
            else:
                self._pending.extend(self._lose(host, "the run stopped while it collected"))

    def close(self) -> list[Event]:
        """End every host and what it runs, now; close the client (and the local cluster).

        Returns what the hosts had sent and was not read yet, and a
        ``Lost(ended=True)`` event for each worker that still had tasks.
        """
        if self._closed:
            return []
        self._closed = True
        self._stopping = True
        events = self._pending
        self._pending = []
        for host in list(self._hosts.values()):
            if host.ready:
                self._send(host, ("close",))
            else:  # still collecting: it would answer only once done
                events.extend(self._lose(host, "the run ended it", ended=True))
        deadline = time.monotonic() + ANSWER_SECONDS
        while any(not host.closed for host in self._hosts.values()) and time.monotonic() < deadline:
            events.extend(self._read_all(max(0.0, deadline - time.monotonic())))
        for host in list(self._hosts.values()):
            for event in self._lose(host, "the run ended it", ended=True):
                if not isinstance(event, Lost) or event.running is not None or event.queued:
                    events.append(event)
        self._selector.close()
        try:
            if self._client is not None:
                self._client.close()
            if self._cluster is not None:
                self._cluster.close()
        finally:
            for name, level in self._loggers.items():
                logging.getLogger(name).setLevel(level)
        return events

    # -- talking to hosts ----------------------------------------------------------------

    def _host_of(self, worker: str, default: Any = KeyError) -> Any:
        for host in self._hosts.values():
            if worker in host.workers:
                return host
        if default is KeyError:
            raise KeyError(worker)
        return default

    def _send(self, host: _Host, message: Any) -> None:
        try:
            host.channel.send(message)
        except OSError:
            pass  # its pumps are gone; wait() reports it with its tasks

    def _ask(self, host: _Host, message: Any, default: Any) -> Any:
        """Send a request to *host* and wait for its reply; what comes meanwhile waits for wait()."""
        self._send(host, message)
        deadline = time.monotonic() + ANSWER_SECONDS
        while not host.replies and host.name in self._hosts and time.monotonic() < deadline:
            self._pending.extend(self._read_all(max(0.0, deadline - time.monotonic())))
        return host.replies.popleft() if host.replies else default

    def _read_all(self, timeout: float) -> list[Event]:
        events: list[Event] = []
        if not self._hosts:
            time.sleep(timeout)
            return events
        for key, _ in self._selector.select(timeout):
            events.extend(self._read(key.data))
        return events

    def _read(self, host: _Host) -> list[Event]:
        events: list[Event] = []
        for message in host.channel.receive():
            kind = message[0]
            if kind == "events":
                events.extend(self._mirror(host, event) for event in message[1])
            elif kind == "workers":
                for name in message[1]:
                    host.workers[name] = _Remote()
                host.ready = True
            elif kind == "reply":
                host.replies.append(message[1])
            elif kind == "closed":
                host.closed = True
            else:  # "mismatch", "failed": this Dask worker cannot run the suite
                host.problem = message[1]
        if host.channel.closed:
            if not host.ready and host.problem is None and not self._stopping:
                host.problem = (
                    "its host process ended before it had collected the suite "
                    "(its Dask worker died, or see the worker's log)"
                )
            if host.problem is not None:
                self._refuse(host.address, host.problem)
            why = self._why_gone(host) if host.workers and not host.closed else "it ended"
            events.extend(self._lose(host, why, ended=host.closed))
        return events

    def _why_gone(self, host: _Host) -> str:
        if host.cut_off is not None:
            return f"its Dask worker at {host.address} was lost ({host.cut_off})"
        # The relay is there and says the host ended: a fault of the host
        # (ours); what it wrote says which.
        try:
            output = host.actor.output().result(timeout=ANSWER_SECONDS)
        except Exception:
            output = ""
        said = f", its output:\n{output}" if output.strip() else " (it wrote nothing)"
        return f"its host process on the Dask worker at {host.address} ended{said}"

    def _refuse(self, address: str, problem: str) -> None:
        """*address* cannot run this suite: not tried again; said at once once the run is on."""
        self._refused[address] = problem
        if self._running:
            sys.stderr.write(
                f"\npexen: {self._where}: the Dask worker at {address}: {problem}; the run goes on without it\n"
            )

    def _mirror(self, host: _Host, event: Event) -> Event:
        """Follow a host's event in the controller's view of its workers' queues."""
        remote = host.workers.get(getattr(event, "worker", ""))
        if remote is None:
            return event
        if isinstance(event, Finished):
            assert remote.queue and remote.queue[0] == event.index, (remote.queue, event.index)
            remote.queue.popleft()
            remote.last = event.index
        elif isinstance(event, Dropped):
            event = Dropped(event.worker, tuple(index for index in event.indices if _remove(remote.queue, index)))
        elif isinstance(event, Lost):
            # Tasks assigned after the host saw its worker die never reached it.
            del host.workers[event.worker]
            queue = tuple(remote.queue)
            if event.running is None:
                return _replace_lost(event, None, queue, remote.ended)
            return _replace_lost(event, queue[0], queue[1:], remote.ended)
        elif isinstance(event, Gone):
            del host.workers[event.worker]
        return event

    def _lose(self, host: _Host, why: str, ended: bool = False) -> list[Event]:
        """*host* is gone (or given up): its workers' tasks come back as Lost events."""
        events: list[Event] = []
        for name, remote in host.workers.items():
            queue = tuple(remote.queue)
            running = queue[0] if queue else None
            events.append(WorkerOutput(name, None, why))
            # No last task: with nothing running, losing the machine is not
            # the doing of the test that ran last (as a worker's death is).
            events.append(Lost(name, running, queue[1:], None, None, ended or remote.ended, (("dask", why),)))
        host.workers.clear()
        del self._hosts[host.name]
        try:
            self._selector.unregister(host.channel)
        except (KeyError, ValueError):
            pass
        host.channel.close()
        self._forget_relay(host)
        return events

    def _forget_relay(self, host: _Host) -> None:
        """Stop the relay's host if it still runs, and let Dask forget the actor."""
        try:
            if host.actor is not None and not self._client.status == "closed":
                host.actor.stop()
            self._client.cancel([host.future])
        except Exception:
            pass  # its Dask worker is gone, and the actor with it

    def _look_around(self) -> None:
        """Hosts whose Dask worker left are lost; free Dask workers get hosts, up to the size."""
        try:
            present = set(self._client.scheduler_info()["workers"])
        except Exception:
            return
        for host in list(self._hosts.values()):
            if host.address not in present:
                self._pending.extend(self._lose(host, f"its Dask worker at {host.address} left the cluster"))
        for address in list(self._refused):
            if address not in present:
                del self._refused[address]
        if len(self._hosts) < self._size:
            self._place()


def _remove(queue: deque[int], index: int) -> bool:
    try:
        queue.remove(index)
    except ValueError:
        return False
    return True


def _replace_lost(event: Lost, running: int | None, queued: tuple[int, ...], ended: bool) -> Lost:
    return Lost(
        event.worker, running, queued, event.exitcode, event.last, event.ended or ended, event.output, event.phase
    )


async def _pump(host: _Host, sock: socket.socket) -> None:
    """Pass bytes between the pool's end of a socket pair and a host's relay, both ways, until either ends."""
    loop = asyncio.get_running_loop()
    actor = host.actor

    async def out() -> None:
        try:
            while True:
                data = await loop.sock_recv(sock, 1 << 20)
                if not data:
                    return
                await actor.send(data)
        except Exception:
            return  # the relay's Dask worker is gone: the loop below ends too

    sending = asyncio.ensure_future(out())
    try:
        while True:
            data = await actor.receive()
            if not data:
                break
            await loop.sock_sendall(sock, data)
    except Exception as error:
        # The relay's Dask worker is gone (OSError), or the pool closed its end.
        host.cut_off = f"{type(error).__name__}: {error}"
    finally:
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        sock.close()
