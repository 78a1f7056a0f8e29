"""Worker pools: where tasks run, and nothing about what they mean.

Every pool kind is driven through the small :class:`Pool` interface:
:meth:`~Pool.assign` task indices to a worker (with the inputs of those
that have any: what their providers handed on, pickled), :meth:`~Pool.wait` for
events, :meth:`~Pool.shutdown` when no more work is coming,
:meth:`~Pool.close` to end everything now (it returns what was left: results
not read yet, and the tasks the ended workers had). Pools know nothing of tags or
pytest; what a worker does with an index is given to the pool as a function.
:meth:`~Pool.revoke` takes back the tasks queued behind a worker's running
one (a long test) so that other workers can run them.
The kinds: :class:`~pytest_pexen._pools.process.ProcessPool`,
:class:`~pytest_pexen._pools.thread.ThreadPool` and
:class:`~pytest_pexen._pools.dask.DaskPool` (imported only when a group
asks for it: it needs the optional ``distributed`` package).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence, Union


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
class Reboot:
    """The test *index* that *worker* runs asked for a reboot; it waits, never to return."""

    worker: str
    index: int


@dataclass(frozen=True)
class Dropped:
    """A stopping worker dropped these tasks without starting them."""

    worker: str
    indices: tuple[int, ...]


@dataclass(frozen=True)
class Lost:
    """A worker died: *running* was in progress, *queued* never started.

    *last* is the task it finished last: with nothing running, the worker
    died after it (e.g. tearing down fixtures that task left standing).
    """

    worker: str
    running: int | None
    queued: tuple[int, ...]
    exitcode: int | None
    last: int | None
    #: The controller ended it on purpose (watchdog, Ctrl-C): not a crash.
    ended: bool = False
    #: (name, text) of what the running task had written, where known.
    output: tuple[tuple[str, str], ...] = ()
    #: The phase the running task was in ("setup", "call", "teardown"), where known.
    phase: str = ""


@dataclass(frozen=True)
class Stray:
    """A process that task *index* forked returned into the worker's code; it was ended.

    Sent after the task's :class:`Finished` event (or its :class:`Lost`).
    """

    worker: str
    index: int
    pid: int


@dataclass(frozen=True)
class WorkerOutput:
    """A worker process ended: what it left for the controller.

    *data* is the worker's ``workeroutput`` (None if it sent none); *error*
    is None when it ended normally, else what happened to it.
    """

    worker: str
    data: dict[str, Any] | None
    error: str | None


@dataclass(frozen=True)
class Gone:
    """A worker exited after being told to stop."""

    worker: str


Event = Union[Finished, Late, Dropped, Lost, Stray, WorkerOutput, Gone, Reboot]


class Pool(Protocol):
    """What the run loop needs of a pool; every pool kind provides this."""

    def assigned(self) -> dict[str, Sequence[int]]: ...
    def taker(self, worker: str, indices: list[int]) -> str: ...
    def assign(self, worker: str, indices: list[int], inputs: Mapping[int, bytes] | None = None) -> None: ...
    def revoke(self, worker: str) -> list[int]: ...
    def wait(self, timeout: float | None) -> list[Event]: ...
    def stacks(self, worker: str) -> str: ...
    def interrupt(self, worker: str, message: str) -> bool: ...
    def end(self, worker: str) -> None: ...
    def shutdown(self, drop_queued: bool) -> None: ...
    def close(self) -> list[Event]: ...


def exit_description(exitcode: int | None) -> str:
    """Human words for a worker's exit code ("killed by signal 9 (SIGKILL)")."""
    if exitcode is None:
        return "exit status unknown"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            return f"killed by signal {-exitcode}"
        return f"killed by signal {-exitcode} ({name})"
    return f"exited with code {exitcode}"
