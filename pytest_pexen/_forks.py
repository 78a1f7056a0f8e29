"""Signals in the processes a test forks: as plain pytest would have left them.

The controller catches SIGINT, SIGTERM and SIGHUP while tests run, and a
worker's runner catches signals plain pytest leaves alone: SIGTERM, to
finish (and keep what coverage measured) before it dies; SIGUSR1 and SIGUSR2,
for the watchdog. A process a test forks (a ``multiprocessing`` worker, a
server it starts) must not inherit those handlers: it would dump stacks on
SIGUSR1 where plain pytest's child dies, and a Python-level handler cannot
be relied on in a fresh fork at all, because CPython drops a signal that
arrives before its after-fork clean-up. ``multiprocessing.Pool.terminate()``
sends SIGTERM to a pool worker that may still be starting; with the signal
dropped, the worker lives on and the test waits for it for ever.

So the signals caught here are held back across every ``os.fork()`` of the
process, and the child gets back what was there before it can see them.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import threading
from typing import Any, TextIO

#: faulthandler's handler, which signal.getsignal() does not show.
_DUMPS_STACKS = object()

#: signum -> (what this process set, what a forked child gets back)
_caught: dict[int, tuple[Any, Any]] = {}
_forking = threading.local()  # a signal mask belongs to a thread
#: Whether the fork hooks are registered in this process (a child inherits them).
_hooked = False


def catch(signum: int, handler: Any) -> None:
    """Set *handler* for *signum* here; processes forked from here get the old one back."""
    plain = signal.signal(signum, handler)
    _remember(signum, handler, plain)


def dump_stacks_on(signum: int, file: TextIO) -> None:
    """Have faulthandler write every thread's stack to *file* on *signum*, here only."""
    faulthandler.register(signum, file=file, all_threads=True)
    _remember(signum, _DUMPS_STACKS, None)


def _remember(signum: int, ours: Any, plain: Any) -> None:
    global _hooked
    if not _hooked:
        os.register_at_fork(before=_hold, after_in_parent=_release, after_in_child=_give_back)
        _hooked = True
    _caught[signum] = (ours, plain)


def _hold() -> None:
    _forking.mask = signal.pthread_sigmask(signal.SIG_BLOCK, set(_caught))


def _release() -> None:
    signal.pthread_sigmask(signal.SIG_SETMASK, _forking.mask)


def _give_back() -> None:
    for signum, (ours, plain) in _caught.items():
        if ours is _DUMPS_STACKS:
            faulthandler.unregister(signum)
        elif signal.getsignal(signum) is ours:  # not one the test set since
            signal.signal(signum, plain)
    _caught.clear()
    _release()
