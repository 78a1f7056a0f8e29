"""Observers of a ``--pexen`` run: they subscribe to its events (:mod:`.._events`).

- :mod:`.progress`: the live status line on a terminal, the heartbeat in CI logs;
- :mod:`.timeline`: ``--pexen-timeline``, the run as a self-contained HTML picture;
- :mod:`.trace`: ``--pexen-trace``, the run in the Chrome Trace Event format;
- :mod:`.spans`: the record of the run the timeline and the trace share.

:func:`subscribe` makes those the options ask for; the run loop knows none
of them.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Callable, Mapping, Sequence

import pytest

from .._events import Bus
from .._options import Options
from .._planner import Task
from .progress import Progress, ProgressObserver
from .spans import History, Spans
from .timeline import TimelineObserver
from .trace import TraceObserver


def subscribe(
    bus: Bus,
    config: pytest.Config,
    options: Options,
    tasks: Sequence[Task],
    durations: Mapping[str, float],
    workers: Mapping[str, int],
    history: Callable[[], History | None],
    say: Callable[[str], None] | None = None,
) -> None:
    """Subscribe to *bus* what *options* ask for, for a run of *tasks*.

    *workers*: each group's workers; *history*: a resumed run's earlier
    sessions (read when a file is written); *say*: writes a ``pexen:`` line
    (default: on a line of its own in pytest's output).
    """
    say = say or functools.partial(say_line, config)
    by_id = {task.id: task for task in tasks}
    writer = status_writer(config, options.progress)
    heartbeat = options.heartbeat if writer is None else None
    if writer is not None or heartbeat is not None:
        bus.subscribe(ProgressObserver(Progress(len(tasks), by_id, durations), writer, heartbeat, say))
    if options.timeline is None and options.trace is None:
        return
    spans = Spans(by_id, workers)
    bus.subscribe(spans)
    once = _once(history)
    if options.timeline is not None:
        bus.subscribe(TimelineObserver(options.timeline, spans, once, say))
    if options.trace is not None:
        bus.subscribe(TraceObserver(options.trace, spans, once, say))


def say_line(config: pytest.Config, text: str) -> None:
    """``pexen: text`` on a line of its own, also between the dots of ``-q``."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is None:
        sys.stderr.write(f"pexen: {text}\n")
        return
    terminal.ensure_newline()
    if getattr(terminal._tw, "width_of_current_line", 0):
        terminal._tw.line()
    terminal.write_line(f"pexen: {text}")


def status_writer(config: pytest.Config, progress: str) -> object | None:
    """pytest's terminal writer, if the status line is to be drawn on it.

    ``auto``: when pytest writes to a terminal (not a dumb one), not with
    ``-q -q``, and only while pytest captures at the file descriptors (its
    default): with ``-s`` or ``--capture=sys|tee-sys`` what tests print
    reaches the terminal at any moment, and would run into the line.
    ``on``: whenever there is a terminal reporter. ``off``: never.
    """
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    writer = getattr(terminal, "_tw", None)
    stream = getattr(writer, "_file", None)
    if progress == "off" or writer is None or not callable(getattr(stream, "write", None)):
        return None
    if progress == "on":
        return writer
    if config.get_verbosity() <= -2 or config.getoption("capture", "fd") != "fd":
        return None
    try:
        tty = bool(stream.isatty())  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        tty = False
    return writer if tty and os.environ.get("TERM", "") != "dumb" else None


def _once(read: Callable[[], History | None]) -> Callable[[], History | None]:
    """*read*, called at most once (the state file is read when the first file is written)."""
    cache: list[History | None] = []

    def history() -> History | None:
        if not cache:
            try:
                cache.append(read())
            except Exception as error:  # the picture goes on without the earlier sessions
                sys.stderr.write(f"pexen: the earlier sessions of this run cannot be read: {error}\n")
                cache.append(None)
        return cache[0]

    return history
