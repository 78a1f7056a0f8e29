"""Process trees: finding every process a worker started, and ending them.

A test may start children, grandchildren, daemons that double-fork or call
``setsid``. Three nets catch them:

- each worker is a *child subreaper* (Linux): orphans of its descendants
  are re-parented to it, so they stay among its descendants;
- each worker leads its own process group, which children keep unless they
  leave it on purpose;
- each worker sets ``PEXEN_WORKER`` in its environment; programs it (or its
  descendants) execute carry it, and ``/proc/PID/environ`` shows it.

A *guardian* process, forked before the workers, ends every worker's tree
(and removes the pool's scratch folder) if the controller dies without
saying goodbye, and says so on stderr.

Commands (script tests, generated command tasks) run in a session of their
own and carry a token of their own (``PEXEN_COMMAND``); the thread that
runs one registers it here, so that a thread pool, which cannot kill its
threads, can still end what a timed-out thread started.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Iterable

import psutil

#: Environment variable naming the worker a process descends from.
TOKEN_VARIABLE = "PEXEN_WORKER"
#: Environment variable naming the command a process descends from.
COMMAND_VARIABLE = "PEXEN_COMMAND"

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux only); returns whether it worked."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent(expected_parent: int) -> None:
    """Get SIGKILL when the parent dies (Linux only); exit now if it already has."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != expected_parent:
        os._exit(1)


def tree(pid: int, token: str | None = None, variable: str = TOKEN_VARIABLE) -> list[psutil.Process]:
    """*pid*, its descendants, its process group and processes carrying *token* (in *variable*)."""
    found: dict[int, psutil.Process] = {}
    try:
        root = psutil.Process(pid)
        found[pid] = root
        for child in root.children(recursive=True):
            found[child.pid] = child
    except psutil.Error:
        pass
    for process in psutil.process_iter(["pid"]):
        if process.pid in found or process.pid == os.getpid():
            continue
        try:
            if os.getpgid(process.pid) == pid or (token and _carries(process, token, variable)):
                found[process.pid] = process
        except (OSError, psutil.Error):
            continue
    return list(found.values())


def _carries(process: psutil.Process, token: str, variable: str = TOKEN_VARIABLE) -> bool:
    try:
        return process.environ().get(variable) == token
    except psutil.Error:
        return False


def end(processes: Iterable[psutil.Process], grace: float, *, reap: bool = True) -> list[psutil.Process]:
    """SIGTERM, then SIGKILL what is left after *grace* seconds; returns the processes.

    With *reap*, children among them are reaped here: their exit status is
    their ``returncode`` (as :mod:`subprocess` gives it). Without, nothing is
    reaped: a child whose ``Popen`` must see its real exit status (reaped by
    someone else, it would read 0) is only watched until it is a zombie.
    """
    processes = list(processes)
    for process in processes:
        try:
            process.terminate()
        except psutil.Error:
            pass
    if reap:
        _, alive = psutil.wait_procs(processes, timeout=grace)
    else:
        alive = processes
        deadline = time.monotonic() + grace
        while alive and time.monotonic() < deadline:
            alive = [process for process in alive if _alive(process)]
            if alive:
                time.sleep(0.02)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            pass
    if reap:
        psutil.wait_procs(alive, timeout=grace)
    return processes


@dataclass
class Command:
    """A command a thread runs: its process (a session leader) and its token."""

    pid: int
    token: str
    #: Why it was ended from outside (the watchdog), once it was.
    ended_because: str | None = None


#: The command each thread runs now, by thread ident.
_commands: dict[int, Command] = {}


def command_started(command: Command) -> None:
    """The calling thread runs *command* until :func:`command_finished`."""
    _commands[threading.get_ident()] = command


def command_finished() -> None:
    _commands.pop(threading.get_ident(), None)


def end_commands_of(threads: Iterable[int], reason: str, grace: float) -> bool:
    """End the trees of the commands that *threads* run, saying why; False if they run none."""
    commands = [command for command in map(_commands.get, threads) if command is not None]
    for command in commands:
        command.ended_because = reason
    end_commands(commands, grace)
    return bool(commands)


def end_commands(commands: Iterable[Command], grace: float) -> None:
    """End the commands' trees (see :func:`end`), reaping none: each command's
    own process is the child of a ``Popen`` that reaps it."""
    trees = [tree(command.pid, command.token, COMMAND_VARIABLE) for command in commands]
    end((process for processes in trees for process in processes), grace, reap=False)


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class Guardian:
    """A process that ends the watched workers' trees if the controller dies."""

    def __init__(self, grace: float = 1.0, scratch: str | None = None) -> None:
        """*scratch*: a folder to remove if the controller dies."""
        read_end, self._write_end = os.pipe()
        controller = os.getpid()
        pid = os.fork()
        if pid == 0:
            os.close(self._write_end)
            _guard(read_end, controller, grace, scratch)
        os.close(read_end)
        self.pid = pid

    def close_in_child(self) -> None:
        """In a process forked from the controller: let go of the guardian's pipe."""
        if self._write_end >= 0:
            os.close(self._write_end)

    def watch(self, pid: int, token: str) -> None:
        self._say(f"watch {pid} {token}\n")

    def forget(self, pid: int) -> None:
        self._say(f"forget {pid}\n")

    def release(self) -> None:
        """The controller is done: the guardian exits without ending anything."""
        if self._write_end < 0:
            return
        self._say("bye\n")
        os.close(self._write_end)
        self._write_end = -1
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass

    def _say(self, line: str) -> None:
        try:
            os.write(self._write_end, line.encode())
        except OSError:
            pass


def _guard(read_end: int, controller: int, grace: float, scratch: str | None) -> None:
    """The guardian's life: listen until end-of-file, then clean up unless told bye."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        os.setpgid(0, 0)
        watched: dict[int, str] = {}
        buffer = b""
        while True:
            chunk = os.read(read_end, 4096)
            if not chunk:
                break
            buffer += chunk
            *lines, rest = buffer.split(b"\n")
            buffer = rest
            for line in lines:
                words = line.decode().split()
                if words[0] == "bye":
                    os._exit(0)
                if words[0] == "watch":
                    watched[int(words[1])] = words[2]
                elif words[0] == "forget":
                    watched.pop(int(words[1]), None)
        victims: list[psutil.Process] = []
        for pid, token in watched.items():
            victims.extend(tree(pid, token))
        ended = [process.pid for process in end(victims, grace)]
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
        sys.stderr.write(
            f"pexen: the controller (pid {controller}) died; its guardian ended "
            f"{len(watched)} worker(s) and {max(0, len(ended) - len(watched))} other "
            "process(es) they had started\n"
        )
        sys.stderr.flush()
    except BaseException:
        code = 1
    finally:
        os._exit(code)
