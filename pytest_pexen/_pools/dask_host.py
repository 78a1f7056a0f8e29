"""The host process on a Dask worker's machine: collect the suite, then run a local process pool.

A Dask worker's relay (:class:`~._pools.dask.Relay`) starts pytest with the
controller's arguments in the controller's invocation directory, with this
module as a plugin (``python -m pytest -p pytest_pexen._pools.dask_host
ARGS``, its channel's descriptor and log file in :data:`HOST_VARIABLE`).
The host collects as the controller did (the plugin module sees it is in a
host, see :data:`DASK_HOST_PLUGIN`) and checks that it collected the same
node ids. Then, in place of pytest's test loop, it forks a
:class:`~.process.ProcessPool` of one worker, whose runner runs tests
exactly as a local worker does (the same shim, the same runner code, the
same watchdog signals), and relays between that pool and the controller.
Nothing of Dask is imported here; nothing of pytest-pexen's plugin either
before pytest imports it (a module imported early cannot be
assertion-rewritten, and pytest warns, which ``-W error`` makes fatal).

Messages, controller to host: ``("setup", HostSetup)`` first (the host
reads it once collected), then
``("run", worker, [index, ...])``, ``("revoke", worker)``, ``("stacks",
worker)``, ``("interrupt", worker, message)``, ``("end", worker)``,
``("stop", drop)``, ``("close",)``. Host to controller: ``("workers",
[name, ...])`` when its pool started workers (the first one says it is
ready), ``("events", [event, ...])`` (the pool's events, as they are),
``("reply", value)`` to revoke, stacks and interrupt, ``("mismatch",
text)`` or ``("failed", text)`` instead of becoming ready, ``("closed",)``.
"""

from __future__ import annotations

import atexit
import functools
import gc
import os
import select
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple, Sequence

import pytest

from .._channel import Channel

if TYPE_CHECKING:
    from .._worker import Retry, WorkerSetup
    from .process import ProcessPool

#: This module's name as a plugin: registered, the process is a host.
DASK_HOST_PLUGIN = __name__
#: "FD LOG": the host's end of its channel, and the file its output goes to.
HOST_VARIABLE = "PEXEN_DASK_HOST"

#: What a test's pytest_pexen.reboot() says on a Dask worker.
REBOOT_REFUSAL = (
    "pytest_pexen.reboot() reboots the controller's machine, so it works in tests "
    "of a local process pool, not on Dask workers"
)
#: Most of the host's own output that an error message quotes.
_LOG_TAIL = 4000
#: Most node ids an error message names, of each kind.
_NAMED = 10
#: Environment variables that shape a pytest session: the host has the controller's.
SESSION_VARIABLES = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")


class HostSetup(NamedTuple):
    """What the controller tells each host: how to collect, what to expect, how to run."""

    #: Its name in the run (worker names on it start with it).
    name: str
    #: pytest's arguments and the directory it was started in, in the controller.
    args: tuple[str, ...]
    directory: str
    #: SESSION_VARIABLES as the controller has them (None: not set there).
    environ: Mapping[str, str | None]
    #: The run's node ids, by item index (the indices the controller sends).
    nodeids: tuple[str, ...]
    #: Every node id the controller collected, deselected ones included.
    collected: frozenset[str]
    retries: Mapping[int, Retry]
    testrunuid: str
    reboot_counts: Mapping[str, int] | None
    attempts_before: Mapping[str, int]
    #: The controller's base temporary directory (used where it exists, as on its machine).
    basetemp: str | None
    #: Workers of the group on Dask (``workercount``, ``PYTEST_XDIST_WORKER_COUNT``).
    workers: int = 1


def host_setup(
    session: pytest.Session,
    deselected: Sequence[pytest.Item],
    retries: Mapping[int, Retry],
    testrunuid: str,
    basetemp: str | None,
) -> HostSetup:
    """The setup of a run's hosts, from the controller's session (after collection)."""
    from .. import _api

    config = session.config
    environ = {name: os.environ.get(name) for name in SESSION_VARIABLES}
    nodeids = tuple(item.nodeid for item in session.items)
    args = tuple(config.invocation_params.args)
    if config.pluginmanager.has_plugin("_cov"):
        # pytest-cov in a host would erase the data files at its start (those
        # that local workers of earlier groups saved, on the same machine),
        # and nothing would save what the host's worker measured.
        args += ("--no-cov",)
    return HostSetup(
        name="",
        args=args,
        directory=str(config.invocation_params.dir),
        environ=environ,
        nodeids=nodeids,
        collected=frozenset(nodeids) | {item.nodeid for item in deselected},
        retries=dict(retries),
        testrunuid=testrunuid,
        reboot_counts=dict(_api.reboot_counts) if _api.reboot_counts is not None else None,
        attempts_before=dict(_api.attempts_before),
        basetemp=basetemp,
    )


class _Host:
    """What the plugin knows in this process, once it knows it is a host."""

    def __init__(self, channel: Channel, log: str) -> None:
        self.channel = channel
        self.log = log
        self.deselected: list[pytest.Item] = []
        #: Whether it got as far as its test loop (else it says why it could not).
        self.reached_loop = False


def _this_host() -> _Host | None:
    """The host this process is, as its relay said (None: pytest was not started by one).

    Read when pytest imports this module, before anything can fail, so that
    a host whose pytest ends early (a usage error, a conftest that cannot be
    imported) can say why. Taken out of the environment: its tests must not
    see it.
    """
    fd, _, log = os.environ.pop(HOST_VARIABLE, "").partition(" ")
    if not fd:
        return None
    host = _Host(Channel(socket.socket(fileno=int(fd))), log)
    atexit.register(_say_why_not, host)
    return host


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if _host is None:
        raise pytest.UsageError(
            f"-p {DASK_HOST_PLUGIN} is how pytest-pexen runs tests on a Dask worker; do not give it yourself"
        )


def pytest_deselected(items: Sequence[pytest.Item]) -> None:
    if _host is not None:
        _host.deselected.extend(items)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool:
    from .. import _api
    from .._worker import WorkerSetup
    from .process import ProcessPool

    host = _host
    assert host is not None
    host.reached_loop = True
    try:
        first, *early = host.channel.receive(wait=True)
    except EOFError:
        os._exit(1)  # the controller is gone
    setup: HostSetup = first[1]
    items, problem = _match(session, host.deselected, setup)
    if problem is not None:
        errors = session.testsfailed
        if errors:
            problem += f"; its collection had {errors} error(s):\n{_tail(host.log)}"
        _leave(host.channel, ("mismatch", problem), 0)
    session.items = items
    _api.reboot_counts = dict(setup.reboot_counts) if setup.reboot_counts is not None else None
    _api.attempts_before = dict(setup.attempts_before)
    _use_basetemp(session.config, setup.basetemp)
    # As in the controller: what collection made lives to the end, and the
    # runner forked from here shares its pages.
    gc.freeze()
    worker_setup = WorkerSetup(setup.retries, setup.testrunuid, REBOOT_REFUSAL, lambda: None)
    target = functools.partial(_run_worker, session, worker_setup, setup.workers)
    pool = ProcessPool(1, target, name_prefix=f"{setup.name}-")
    pool.wake_on(host.channel)
    _serve(pool, host.channel, early)
    return True  # not reached: _serve ends the process


def _run_worker(session: pytest.Session, setup: WorkerSetup, workers: int, channel: Channel) -> None:
    """The local pool's runner, counting the group's workers on every host, not this pool's one."""
    from .. import _worker_state
    from .._worker import run_worker

    _worker_state.count = workers
    run_worker(session, setup, channel)


def _say_why_not(host: _Host) -> None:
    """At the exit of a host that never reached its test loop: tell the controller why."""
    if host.reached_loop:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        host.channel.send(("failed", f"pytest ended before running tests; its output:\n{_tail(host.log)}"))
    except OSError:
        pass


def _match(
    session: pytest.Session, deselected: Sequence[pytest.Item], setup: HostSetup
) -> tuple[list[pytest.Item], str | None]:
    """The items in the controller's order, or what differs from the controller's collection."""
    found: dict[str, list[pytest.Item]] = {}
    for item in [*session.items, *deselected]:
        found.setdefault(item.nodeid, []).append(item)
    missing = sorted(setup.collected - found.keys())
    extra = sorted(found.keys() - setup.collected)
    if not missing and not extra:
        try:
            return [found[nodeid].pop(0) for nodeid in setup.nodeids], None
        except IndexError:
            pass  # a node id the controller collected more often than this host
    parts = []
    if missing:
        parts.append(f"{len(missing)} test(s) the controller collected are missing here: {_names(missing)}")
    if extra:
        parts.append(f"{len(extra)} test(s) were collected here only: {_names(extra)}")
    if not parts:
        parts.append("some node ids were collected a different number of times")
    where = f"{socket.gethostname()}:{setup.directory}"
    return [], f"it collected other tests than the controller in {where}: " + "; ".join(parts)


def _names(nodeids: Sequence[str]) -> str:
    named = ", ".join(nodeids[:_NAMED])
    return named if len(nodeids) <= _NAMED else f"{named}, and {len(nodeids) - _NAMED} more"


def _use_basetemp(config: pytest.Config, basetemp: str | None) -> None:
    """Give tests the controller's base temporary directory where it exists here.

    Made by the host as pytest would (with ``--basetemp``: emptied first),
    it would empty the controller's, and its other workers', on the same
    machine. Elsewhere, the host makes its own, as pytest does.
    """
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None:
        return
    if basetemp is not None and os.path.isdir(basetemp):
        factory._basetemp = Path(basetemp)
    else:
        factory._given_basetemp = None
        factory.getbasetemp()


def _serve(pool: ProcessPool, channel: Channel, early: list[Any]) -> None:
    """Relay between the controller and *pool* until told to close, or the controller is gone.

    *early*: messages that came with the setup, before there was a pool.
    """
    known: set[str] = set()
    while True:
        names = [name for name in pool.assigned() if name not in known]
        if names:
            known.update(names)
            channel.send(("workers", names))
        if pool.assigned():
            events = pool.wait(None)
        else:
            events = []
            select.select([channel], [], [])  # no worker left (stopped): only the controller speaks
        if events:
            channel.send(("events", events))
        messages = early + channel.receive()
        early = []
        for message in messages:
            _handle(pool, channel, message)
        if channel.closed:
            # The relay is gone (its Dask worker died): end the tests, then us.
            pool.close()
            os._exit(0)


def _handle(pool: ProcessPool, channel: Channel, message: tuple[Any, ...]) -> None:
    kind = message[0]
    known = message[1] in pool.assigned() if len(message) > 1 else False
    if kind == "run":
        if known:
            pool.assign(message[1], message[2], message[3])
        # Else the worker died meanwhile: the controller gives these back
        # when it reads the Lost event already on its way.
    elif kind == "revoke":
        channel.send(("reply", pool.revoke(message[1]) if known else []))
    elif kind == "stacks":
        channel.send(("reply", pool.stacks(message[1]) if known else ""))
    elif kind == "interrupt":
        channel.send(("reply", pool.interrupt(message[1], message[2]) if known else False))
    elif kind == "end":
        if known:
            pool.end(message[1])
    elif kind == "stop":
        pool.shutdown(drop_queued=message[1])
    elif kind == "close":
        channel.send(("events", pool.close()))
        _leave(channel, ("closed",), 0)


def _leave(channel: Channel, message: Any, code: int) -> None:
    """Say *message* and end this process, with nothing of pytest's ending run.

    pytest's session end would write what the controller writes (the cache,
    ``--junitxml``) from here too.
    """
    try:
        channel.send(message)
        channel.close()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _tail(path: str) -> str:
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - _LOG_TAIL))
            return file.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


_host = _this_host()
