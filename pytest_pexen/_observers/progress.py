"""Live progress: a status line on a terminal, a heartbeat line in CI logs.

The status line is drawn under pytest's output, at most :data:`REDRAW_SECONDS`
apart, through pytest's own terminal writer: this observer puts a thin
stream between the writer and the terminal, which erases the status line
before anything pytest writes (dots, ``-v`` lines, warnings, failures) and
draws it again after, in the same write. The run loop holds pytest's output
and writes it a few times a second (:mod:`._terminal`), so that costs one
write each time, not one per dot. When pytest's current line is not
finished (the dots of a file), the status line goes on the line below, and
erasing it puts the cursor back at the end of pytest's line.

The heartbeat is one plain ``pexen:`` line every N seconds for logs that are
no terminal: how far the run is, and the tests that have been running the
longest, with their time, so that the log of a hung CI job says what hangs.
It is not written while the status line is shown (which says the same, live).
"""

from __future__ import annotations

import os
import re
import time
from typing import Any, Callable, Mapping, TextIO

from .. import _events as ev
from .._groups import DEFAULT_GROUP
from .._planner import Task

#: The status line is drawn again at most this often (seconds).
REDRAW_SECONDS = 0.25
#: Running tests the heartbeat names.
HEARTBEAT_TESTS = 3
#: Seconds of the run before an ETA is shown, and tests that must have finished.
ETA_AFTER = 2.0
ETA_TESTS = 3

_ERASE = "\r\x1b[K"
#: ANSI escape sequences: they take no room on the screen.
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def clock(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h04m``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """What the run has done and does now, from its events; the text of both lines."""

    def __init__(self, total: int, tasks: dict[str, Task], durations: Mapping[str, float]) -> None:
        self.total = total
        self._tasks = tasks
        self._known = set(tasks)
        self.outcomes: dict[str, int] = {}
        self.done = 0
        #: Per worker: the tests handed to it and not ended, in order (the first runs).
        self._queues: dict[str, list[str]] = {}
        #: Per worker: since when its first test runs.
        self._since: dict[str, float] = {}
        #: Tests with locks that are ready, not handed out: they wait for a lock.
        self._lock_ready: set[str] = set()
        self.group = ""
        self.began: float | None = None
        # The ETA weighs each test by its duration in earlier runs (the mean
        # of those known for the others); with none known, every test is one.
        known = [durations[n] for n in tasks if n in durations]
        mean = sum(known) / len(known) if known else 1.0
        self._weight = {n: durations.get(n, mean) for n in tasks} if known else {}
        self._default_weight = mean if known else 1.0
        self._work_total = sum(self._weight.values()) if known else float(total)
        self._work_done = 0.0
        self._handlers: dict[type, Callable[[Any], None]] = {
            ev.Finished: self._finished,
            ev.Replayed: self._finished,
            ev.Blocked: self._blocked,
            ev.Handed: self._handed,
            ev.Started: self._started,
            ev.Ready: self._ready,
            ev.GivenBack: self._given_back,
            ev.GroupBegan: self._group_began,
            ev.RunBegan: self._run_began,
            ev.WorkerLeft: self._worker_left,
            ev.Added: self._added,
        }

    def notice(self, event: ev.Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(event)

    def _finished(self, event: ev.Finished | ev.Replayed) -> None:
        self._ended(event.nodeid, event.outcome, event.at)

    def _blocked(self, event: ev.Blocked) -> None:
        self._ended(event.nodeid, "blocked", event.at)

    def _handed(self, event: ev.Handed) -> None:
        queue = self._queues.setdefault(event.worker, [])
        if not queue:
            self._since[event.worker] = event.at
        queue.extend(event.nodeids)
        for nodeid in event.nodeids:
            if nodeid not in self._known:
                self._count(nodeid)
        if self._lock_ready:
            self._lock_ready.difference_update(event.nodeids)

    def _started(self, event: ev.Started) -> None:
        queue = self._queues.get(event.worker)
        if queue and queue[0] == event.nodeid:
            self._since[event.worker] = event.at

    def _ready(self, event: ev.Ready) -> None:
        task = self._tasks.get(event.nodeid)
        if task is not None and task.locks:
            self._lock_ready.add(event.nodeid)

    def _given_back(self, event: ev.GivenBack) -> None:
        back = set(event.nodeids)
        for worker, queue in self._queues.items():
            head = queue[0] if queue else None
            queue[:] = [n for n in queue if n not in back]
            if queue and queue[0] != head:
                self._since[worker] = event.at

    def _group_began(self, event: ev.GroupBegan) -> None:
        self.group = event.group

    def _run_began(self, event: ev.RunBegan) -> None:
        self.began = event.at

    def _worker_left(self, event: ev.WorkerLeft) -> None:
        self._queues.pop(event.worker, None)

    def _added(self, event: ev.Added) -> None:
        for task in event.tasks:
            self._tasks[task.id] = task
            self._count(task.id)

    def _count(self, nodeid: str) -> None:
        """A test added while the run goes on counts from when it is first seen."""
        if nodeid not in self._known:
            self._known.add(nodeid)
            self.total += 1
            self._work_total += self._default_weight

    def _ended(self, nodeid: str, outcome: str, at: float) -> None:
        if nodeid not in self._known:
            self._count(nodeid)
        self.done += 1
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        self._work_done += self._weight.get(nodeid, self._default_weight)
        if self._lock_ready:
            self._lock_ready.discard(nodeid)
        # Nearly always the test at the head of its worker's queue.
        for worker, queue in self._queues.items():
            if queue and queue[0] == nodeid:
                del queue[0]
                self._since[worker] = at
                return
        for queue in self._queues.values():
            if nodeid in queue:
                queue.remove(nodeid)
                return

    def running(self, now: float) -> list[tuple[float, str, str]]:
        """(seconds, node id, worker) of each running test, the longest first."""
        found = [(now - self._since.get(w, now), q[0], w) for w, q in self._queues.items() if q]
        found.sort(key=lambda entry: -entry[0])
        return found

    def eta(self, now: float) -> float | None:
        """Seconds left, from the share of the expected work done so far; None without a basis.

        The basis is earlier runs' durations: counting tests alone, a run
        whose long tests come last would show an ETA of seconds for minutes.
        """
        if not self._weight or self.began is None or self.done < ETA_TESTS or now - self.began < ETA_AFTER:
            return None
        if self._work_done <= 0:
            return None
        rate = self._work_done / (now - self.began)
        return max(0.0, self._work_total - self._work_done) / rate

    def counts(self) -> str:
        order = ("passed", "failed", "error", "timeout", "crashed", "skipped", "blocked")
        names = sorted(self.outcomes, key=lambda name: (order.index(name) if name in order else len(order), name))
        return ", ".join(f"{self.outcomes[name]} {name}" for name in names)

    def status(self, now: float, width: int) -> str:
        """The status line, at most *width* characters."""
        head = f"pexen [{self.done}/{self.total}]"
        counts = self.counts()
        if counts:
            head += f" {counts}"
        tail = []
        if self._lock_ready:
            tail.append(_waiting(len(self._lock_ready)))
        if self.group and self.group != DEFAULT_GROUP:
            tail.append(f"group {self.group}")
        eta = self.eta(now)
        if eta is not None:
            tail.append(f"ETA {clock(eta)}")
        end = "".join(f" | {part}" for part in tail)
        running = self.running(now)
        room = width - len(head) - len(end)
        middle = f" | {len(running)} running" if running else ""
        shown = 0
        for seconds, nodeid, _ in running:
            # The file and name if they fit, else the name alone; the longest first.
            for label in (_short(nodeid), nodeid.rpartition("::")[2]):
                piece = f"{':' if not shown else ','} {label} {clock(seconds)}"
                if len(middle) + len(piece) <= room:
                    middle += piece
                    shown += 1
                    break
            else:
                if shown and len(middle) + 5 <= room:
                    middle += ", ..."
                break
        return (head + middle + end)[:width]

    def heartbeat(self, now: float) -> str:
        """The heartbeat line (without the ``pexen:`` prefix)."""
        elapsed = clock(now - self.began) if self.began is not None else "0s"
        line = f"heartbeat at {time.strftime('%H:%M:%S')}, {elapsed} into the run: {self.done}/{self.total} done"
        counts = self.counts()
        if counts:
            line += f" ({counts})"
        running = self.running(now)
        if running:
            longest = ", ".join(
                f"{nodeid} {clock(seconds)} on {worker}" for seconds, nodeid, worker in running[:HEARTBEAT_TESTS]
            )
            more = f" and {len(running) - HEARTBEAT_TESTS} more" if len(running) > HEARTBEAT_TESTS else ""
            line += f"; running longest: {longest}{more}"
        if self._lock_ready:
            line += f"; {_waiting(len(self._lock_ready))}"
        return line


def _waiting(count: int) -> str:
    return f"{count} {'waits' if count == 1 else 'wait'} for a lock"


def _short(nodeid: str) -> str:
    """A node id without its directories: what fits on a status line."""
    path, sep, rest = nodeid.partition("::")
    return path.rsplit("/", 1)[-1] + sep + rest


class StatusStream:
    """Stands between pytest's terminal writer and the terminal; keeps the status line under its output."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        #: The status line as drawn ("": none is shown).
        self._shown = ""
        self._erase = ""
        #: What pytest's current (unfinished) line holds, for where the cursor goes back to.
        self._partial = 0
        self.width = 80
        #: Workers are forked with this stream in place: in them, it only passes text on.
        self._pid = os.getpid()

    def write(self, text: str) -> int:
        erase = self._erase
        line = self._shown if self._shown and os.getpid() == self._pid else ""
        self._follow(text)
        # One write: erase the status line, pytest's text, the status line again.
        self.stream.write(erase + text + self._draw(line) if line else text)
        return len(text)

    def _follow(self, text: str) -> None:
        """Keep the width of pytest's unfinished line, where the cursor goes back to."""
        last = max(text.rfind("\n"), text.rfind("\r"))
        plain = len(_ESCAPES.sub("", text if last < 0 else text[last + 1:]))
        self._partial = self._partial + plain if last < 0 else plain

    def _draw(self, line: str) -> str:
        """The text that draws *line* (and remembers how to erase it); "" when it cannot be drawn now."""
        partial = self._partial
        if not line or partial >= self.width - 1:
            self._shown = self._erase = ""
            return ""
        self._shown = line
        if partial == 0:
            self._erase = _ERASE
            return "\r" + line
        # Below pytest's unfinished line; erasing goes back to its end.
        self._erase = f"{_ERASE}\x1b[A\x1b[{partial + 1}G"
        return "\n" + line

    def show(self, line: str) -> None:
        """Draw *line* in place of the status line shown, if any."""
        text = self._erase + self._draw(line[: max(0, self.width - 1)])
        if text:
            self.stream.write(text)
            self.stream.flush()

    def hide(self) -> None:
        if self._shown:
            self.stream.write(self._erase)
            self.stream.flush()
            self._shown = self._erase = ""

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class ProgressObserver:
    """The live status line on a terminal, or, where there is none, the heartbeat."""

    title = "pexen's progress display"

    def __init__(
        self,
        progress: Progress,
        writer: Any | None,
        heartbeat: float | None,
        say: Callable[[str], None],
    ) -> None:
        """*writer*: pytest's terminal writer, to draw a status line on (None: none).
        *say*: writes a ``pexen:`` line for the user (the heartbeat)."""
        self._progress = progress
        self._writer = writer
        self._heartbeat = heartbeat
        self._say = say
        self._stream: StatusStream | None = None
        if writer is not None:
            self._stream = StatusStream(writer._file)
            writer._file = self._stream
        self._drawn = 0.0
        self._beat: float | None = None
        self._running = False

    def notice(self, event: ev.Event) -> None:
        self._progress.notice(event)
        kind = type(event)
        if kind is ev.RunBegan:
            assert isinstance(event, ev.RunBegan)
            self._running = True
            if self._heartbeat is not None:
                self._beat = event.at + self._heartbeat
        elif kind is ev.RunEnded:
            self._running = False
            self._beat = None
            self._unwrap()

    def tick(self, now: float) -> float:
        due = float("inf")
        if not self._running:
            return due
        if self._stream is not None:
            if now - self._drawn >= REDRAW_SECONDS:
                self._drawn = now
                self._stream.width = self._writer.fullwidth if self._writer is not None else 80
                self._stream.show(self._progress.status(now, self._stream.width - 1))
            due = self._drawn + REDRAW_SECONDS
        elif self._beat is not None and self._heartbeat is not None:
            if now >= self._beat:
                self._beat = now + self._heartbeat
                self._say(self._progress.heartbeat(now))
            due = self._beat
        return due

    def _unwrap(self) -> None:
        """Erase the status line; from now on pytest's output goes straight to the terminal."""
        stream, self._stream = self._stream, None
        if stream is None:
            return
        stream.hide()
        writer = self._writer
        # Wrapped meanwhile (the run loop's held output), it stays, passing text through.
        if writer is not None and writer._file is stream:
            writer._file = stream.stream

    def close(self) -> None:
        self._running = False
        self._unwrap()
