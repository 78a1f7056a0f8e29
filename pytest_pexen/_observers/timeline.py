"""``--pexen-timeline PATH.html``: the run as one self-contained picture.

One HTML file with its CSS, its script and its data inside (no network, no
fonts, nothing to install): the run's totals at the top (wall time, each
worker's busy share, the lower bound max(critical path, work / workers)
per group, and how close the run came to it), then an SVG drawing: the
groups as bands, a lane per worker with a bar per test coloured by outcome,
the critical path outlined, a lane per lock resource with the time tests
waited for it, boots and resumes as marked lines. Hovering or clicking a
bar shows its node id, outcome, duration, worker, group and locks. Under
the drawing: failed tests, blocked and not-run tests with the reason, the
slowest tests, and lock waits by resource.

Readable at 10,000 tests: the drawing is :data:`PLOT_WIDTH` units wide,
and the bars of a lane that would be narrower than :data:`MIN_BAR` units
are drawn as one aggregate bar, coloured by the worst outcome among them,
whose tooltip counts them by outcome. Every test stays in the data, so
clicking an aggregate lists its tests.

Written at the end, and kept current while the run goes on, like the xUnit
file: rewritten (atomically, see :mod:`._files`) when tests finished, at
most once per :data:`MIN_INTERVAL` seconds and no sooner than
:data:`COST_FACTOR` times what making the last page took, so it costs the
run's loop a bounded share of its time (at most 1/31) whatever the suite's
size; the disk write is done by a thread, so the loop never waits for it.
"""

from __future__ import annotations

import heapq
import html
import json
import threading
import time
from typing import Any, Callable, Sequence

from .. import _files
from .progress import clock
from .spans import FileWriter, History, Spans, TestSpan, lock_waits, totals, worst

MIN_INTERVAL = 2.0
COST_FACTOR = 30
#: Width of the drawing's time axis, in SVG units (it scales with the window).
PLOT_WIDTH = 1200
#: Bars narrower than this (in SVG units) join their neighbours in one aggregate bar.
MIN_BAR = 2.0
#: An aggregate bar is at most this wide: runs of short tests become several.
AGGREGATE_WIDTH = 4 * MIN_BAR
LABEL_WIDTH = 150
LANE_HEIGHT = 22
#: Lock resources drawn, the longest waited for first.
MAX_RESOURCES = 20
#: Entries of each list under the drawing.
MAX_LISTED = 200

COLOURS = {
    "passed": "#3a9d5d",
    "warned": "#d8b43c",
    "failed": "#d9463b",
    "error": "#e8833a",
    "timeout": "#9b3fb5",
    "crashed": "#6d1a1a",
    "interrupted": "#555555",
    "skipped": "#b5b5b5",
    "xfailed": "#9fb8c9",
    "xpassed": "#e3c234",
    "blocked": "#8a8a8a",
    "running": "#3b7dd8",
}
_GROUP_COLOURS = ("#eef3fb", "#fbf3e8", "#eefbf1", "#f6eefb", "#fbeef0")


class TimelineObserver(FileWriter):
    """Keeps the timeline file current during the run; writes it whole at the end.

    During the run the page is made in the run loop's thread (the record of
    the run does not change under it) and written to disk by a thread of
    its own, so the loop never waits for an fsync; a rewrite comes due only
    once the one before is on disk.
    """

    title = "the --pexen-timeline writer"

    def __init__(
        self, path: str, spans: Spans, history: Callable[[], History | None], say: Callable[[str], None]
    ) -> None:
        super().__init__(path, spans, history, say)
        #: The record's count of changes at the last page made.
        self._seen = 0
        self._next_write: float | None = None
        self._done = False
        self._writing: threading.Thread | None = None
        #: What the last write during the run failed with (said once, in the run loop's thread).
        self._trouble: str | None = None
        self._warned = False

    def tick(self, now: float) -> float:
        if self._done or self._spans.began is None:
            return float("inf")
        if self._trouble is not None and not self._warned:
            self._warned = True
            self._say(
                f"WARNING: cannot update the timeline {self._path}: {self._trouble}; "
                "the run goes on, and it is written again at the end"
            )
        if self._next_write is None:
            self._next_write = self._spans.began + MIN_INTERVAL
        changes = self._spans.changes
        if changes != self._seen and now >= self._next_write and not (self._writing and self._writing.is_alive()):
            self._seen = changes
            started = time.monotonic()
            data = self._page(now)
            took = time.monotonic() - started
            self._writing = threading.Thread(target=self._write_during_run, args=(data,), daemon=True)
            self._writing.start()
            self._next_write = time.monotonic() + max(MIN_INTERVAL, COST_FACTOR * took)
        return self._next_write

    def close(self) -> None:
        if self._done or self._spans.began is None:
            return
        self._done = True
        if self._writing is not None:
            self._writing.join()
        self._write_last(self._page(time.monotonic()), "the timeline", f"timeline of the run: {self._path}")

    def _page(self, now: float) -> bytes:
        return render(self._spans, self._history(), now).encode("utf-8")

    def _write_during_run(self, data: bytes) -> None:
        try:
            self._replace(data)
        except Exception as error:  # a failed rewrite never ends the run; the last write tries again
            self._trouble = _files.describe(error)


def render(spans: Spans, history: History | None, now: float) -> str:
    """The whole HTML document; tests still running are drawn up to *now*."""
    assert spans.began is not None and spans.wall is not None
    spans.add_history(history, spans.began - spans.wall)
    tests = list(spans.tests.values())
    end = spans.ended if spans.ended is not None else now
    drawn = [t for t in tests if t.start is not None and (t.end is not None or t.handed is not None)]
    origin = min([spans.began, *(m.at for m in spans.marks), *(t.start for t in drawn if t.start is not None)])
    end = max([end, *(t.end for t in drawn if t.end is not None)])
    finished = [t for t in drawn if t.end is not None]
    numbers = totals(spans, finished, origin, end)
    on_path = set(numbers.path)
    workers = sorted({t.worker for t in drawn}, key=_worker_order)

    # The data every tooltip reads: one row per drawn test, a lane's rows
    # together in order of start (an aggregate bar names a range of them).
    # Outcomes, workers and groups are numbers into lists of names; a row
    # ends where the rest would be empty (no locks, not on the critical path).
    rows: list[list[Any]] = []
    index: dict[str, int] = {}
    lane_of = {worker: number for number, worker in enumerate(workers)}
    outcome_names: dict[str, int] = {}
    group_names: dict[str, int] = {}
    in_lanes: list[list[TestSpan]] = [[] for _ in workers]
    for test in sorted(drawn, key=lambda t: (lane_of[t.worker], t.start or 0.0, t.nodeid)):
        in_lanes[lane_of[test.worker]].append(test)
        index[test.nodeid] = len(rows)
        stop = test.end if test.end is not None else end
        outcome = outcome_names.setdefault(test.outcome or "running", len(outcome_names))
        row = [
            test.nodeid, outcome, round((test.start or 0.0) - origin, 4), round(stop - (test.start or 0.0), 4),
            lane_of[test.worker], group_names.setdefault(test.group, len(group_names)),
            " ".join([*test.claims, *(f"{u} (shared)" for u in test.uses)]), int(test.nodeid in on_path),
        ]
        while len(row) > 6 and not row[-1]:
            row.pop()
        rows.append(row)
    scale = PLOT_WIDTH / max(end - origin, 1e-6)

    def x(at: float) -> float:
        return LABEL_WIDTH + (at - origin) * scale

    svg: list[str] = []
    y = 24
    # Groups as bands behind the lanes.
    group_spans = []
    for number, (group, began) in enumerate(spans.groups):
        until = spans.groups[number + 1][1] if number + 1 < len(spans.groups) else end
        group_spans.append((group, began, until, _GROUP_COLOURS[number % len(_GROUP_COLOURS)]))
    lanes_top = y + LANE_HEIGHT
    waits = lock_waits(tests, spans)
    resources = _resources(waits, tests)
    height = lanes_top + LANE_HEIGHT * (len(workers) + len(resources)) + 30
    for group, began, until, colour in group_spans:
        svg.append(
            f'<rect class="band" x="{x(began):.1f}" y="{y}" width="{max(0.5, (until - began) * scale):.1f}" '
            f'height="{height - y - 24}" fill="{colour}"><title>group {_e(group)}: {clock(until - began)}</title></rect>'
            f'<text class="band-label" x="{x(began) + 3:.1f}" y="{y + 14}">group {_e(group)}</text>'
        )
    for lane, worker in enumerate(workers):
        top = lanes_top + lane * LANE_HEIGHT
        svg.append(f'<text class="lane" x="4" y="{top + 15}">worker {_e(worker)}</text>')
        svg.extend(_bars(in_lanes[lane], index, x, scale, top, end, on_path))
    for number, resource in enumerate(resources):
        top = lanes_top + (len(workers) + number) * LANE_HEIGHT
        svg.append(f'<text class="lane" x="4" y="{top + 15}">lock {_e(resource)}</text>')
        for test in drawn:
            if resource in test.claims or resource in test.uses:
                start, stop = test.handed or test.start or origin, test.end if test.end is not None else end
                svg.append(
                    f'<rect class="hold" x="{x(start):.1f}" y="{top + 6}" width="{max(0.5, (stop - start) * scale):.1f}" '
                    f'height="10" data-t="{index[test.nodeid]}"/>'
                )
        for test, since, until in waits:
            if resource in test.claims or resource in test.uses:
                svg.append(
                    f'<rect class="wait" x="{x(since):.1f}" y="{top + 3}" width="{max(0.5, (until - since) * scale):.1f}" '
                    f'height="16" data-t="{index.get(test.nodeid, -1)}"><title>{_e(test.nodeid)} waited '
                    f'{clock(until - since)} for {_e(resource)}</title></rect>'
                )
    marks = [*((m.at, m.label) for m in spans.marks), (spans.began, "resumed" if spans.marks else "run began")]
    for at, label in marks:
        svg.append(
            f'<line class="mark" x1="{x(at):.1f}" x2="{x(at):.1f}" y1="{y}" y2="{height - 24}"/>'
            f'<text class="mark-label" x="{x(at) + 3:.1f}" y="{height - 26}">{_e(label)}</text>'
        )
    for worker, at, why in spans.lost:
        svg.append(
            f'<line class="lost" x1="{x(at):.1f}" x2="{x(at):.1f}" y1="{y}" y2="{height - 24}">'
            f'<title>worker {_e(worker)} lost: {_e(why)}</title></line>'
        )
    svg.extend(_axis(origin, end, scale, height))

    head = _totals_html(spans, numbers, workers, tests, history, end)
    lists = _lists_html(tests, waits, numbers.path)
    data = json.dumps(
        {"outcomes": list(outcome_names), "workers": workers, "groups": list(group_names), "tests": rows},
        separators=(",", ":"),
    ).replace("</", "<\\/")
    legend = "".join(
        f'<span class="key"><i style="background:{colour}"></i>{name}</span>' for name, colour in COLOURS.items()
    )
    return _PAGE.format(
        style=_STYLE,
        title=_e(f"pytest-pexen timeline: {len(tests)} tests"),
        head=head,
        legend=legend,
        width=LABEL_WIDTH + PLOT_WIDTH + 10,
        height=height,
        svg="".join(svg),
        lists=lists,
        data=data,
        script=_SCRIPT,
    )


def _bars(
    tests: Sequence[TestSpan], index: dict[str, int], x: Callable[[float], float], scale: float,
    top: int, end: float, on_path: set[str],
) -> list[str]:
    """A lane's bars; runs of bars too narrow to see become one aggregate bar."""
    out: list[str] = []
    pending: list[TestSpan] = []

    def flush() -> None:
        if not pending:
            return
        first, last = pending[0], pending[-1]
        start = min(t.start or 0.0 for t in pending)
        stop = max(t.end if t.end is not None else end for t in pending)
        outcome = worst(t.outcome or "running" for t in pending)
        if len(pending) == 1:
            critical = " critical" if first.nodeid in on_path else ""
            out.append(
                f'<rect class="bar{critical}" x="{x(start):.1f}" y="{top + 3}" width="{max(0.6, (stop - start) * scale):.1f}" '
                f'height="16" fill="{COLOURS.get(outcome, "#444")}" data-t="{index[first.nodeid]}"/>'
            )
        else:
            out.append(
                f'<rect class="bar agg" x="{x(start):.1f}" y="{top + 3}" width="{max(MIN_BAR, (stop - start) * scale):.1f}" '
                f'height="16" fill="{COLOURS.get(outcome, "#444")}" data-a="{index[first.nodeid]}-{index[last.nodeid]}" '
                f'data-n="{len(pending)}"/>'
            )
        pending.clear()

    reach = 0.0  # where the pending bars end
    for test in tests:
        start = test.start or 0.0
        stop = test.end if test.end is not None else end
        narrow = (stop - start) * scale < MIN_BAR
        # An aggregate takes the narrow bars that follow each other closely,
        # up to a few bars' width: a failure among them stays where it was.
        if pending and not (
            narrow
            and (start - reach) * scale < MIN_BAR
            and (stop - (pending[0].start or 0.0)) * scale <= AGGREGATE_WIDTH
        ):
            flush()
        if not pending:
            reach = stop
        pending.append(test)
        reach = max(reach, stop)
        if not narrow:
            flush()
    flush()
    return out


def _resources(waits: Sequence[tuple[TestSpan, float, float]], tests: Sequence[TestSpan]) -> list[str]:
    """Lock resources to draw: those waited for, the longest waited first, then the others held."""
    waited: dict[str, float] = {}
    for test, since, until in waits:
        for resource in (*test.claims, *test.uses):
            waited[resource] = waited.get(resource, 0.0) + (until - since)
    held = sorted({r for t in tests for r in (*t.claims, *t.uses)} - set(waited))
    return [*sorted(waited, key=lambda r: -waited[r]), *held][:MAX_RESOURCES]


def _axis(origin: float, end: float, scale: float, height: int) -> list[str]:
    span = max(end - origin, 1e-6)
    step = next((s for s in (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600, 7200, 21600)
                 if span / s <= 12), 86400)
    out = []
    tick = 0.0
    while tick <= span + 1e-9:
        left = LABEL_WIDTH + tick * scale
        out.append(
            f'<line class="tick" x1="{left:.1f}" x2="{left:.1f}" y1="20" y2="{height - 20}"/>'
            f'<text class="tick-label" x="{left + 2:.1f}" y="{height - 6}">{_e(_tick(tick, step))}</text>'
        )
        tick += step
    return out


def _tick(seconds: float, step: float) -> str:
    """An axis label: as precise as the step between labels."""
    if step < 1:
        return f"{seconds:.2f}s"
    return f"{seconds:.0f}s" if step < 60 else clock(seconds)


def _totals_html(
    spans: Spans, numbers: Any, workers: Sequence[str], tests: Sequence[TestSpan],
    history: History | None, end: float,
) -> str:
    outcomes: dict[str, int] = {}
    for test in tests:
        if test.outcome:
            outcomes[test.outcome] = outcomes.get(test.outcome, 0) + 1
    running = sum(1 for t in tests if not t.outcome and t.start is not None)
    counts = ", ".join(f"{count} {name}" for name, count in sorted(outcomes.items(), key=lambda i: -i[1]))
    if running:
        counts += f", {running} running"
    ratio = numbers.wall / numbers.bound if numbers.bound > 0 else 0.0
    busy = " ".join(
        f'<span class="busy">{_e(w)} {100 * numbers.busy.get(w, 0.0) / max(numbers.wall, 1e-9):.0f}%</span>'
        for w in workers
    )
    state = "finished" if spans.ended is not None and not spans.why else (
        f"stopped: {_e(spans.why)}" if spans.ended is not None else "still running (this file is kept current)"
    )
    resumed = ""
    if history is not None:
        resumed = f"<li>resumed run: {len(history.sessions)} earlier session(s); boots and resumes are marked</li>"
    return (
        f"<ul class='totals'><li><b>{len(tests)} tests</b>: {_e(counts or 'none finished yet')} — {state}</li>"
        f"<li>wall time <b>{clock(numbers.wall)}</b> ({numbers.wall:.3f}s); work {numbers.work:.3f}s</li>"
        f"<li>busy share per worker: {busy or '—'}</li>"
        f"<li>lower bound max(critical path, work / workers), per group: <b>{numbers.bound:.3f}s</b> "
        f"(critical path {numbers.critical:.3f}s, {len(numbers.path)} tests, outlined in black)</li>"
        f"<li>the run took <b>{ratio:.2f}×</b> the lower bound</li>{resumed}</ul>"
    )


def _lists_html(tests: Sequence[TestSpan], waits: Sequence[tuple[TestSpan, float, float]], path: Sequence[str]) -> str:
    parts = []
    failed = [t for t in tests if t.outcome in ("failed", "error", "timeout", "crashed", "interrupted")]
    parts.append(_list("Failed", [f"{_e(t.outcome)}: {_e(t.nodeid)}" for t in failed]))
    blocked = [t for t in tests if t.blocked]
    parts.append(_list("Blocked and not run", [f"{_e(t.nodeid)} — {_e(t.blocked)}" for t in blocked], "blocked"))
    slowest = heapq.nlargest(20, (t for t in tests if t.end is not None), key=lambda t: t.duration)
    parts.append(_list("Slowest", [f"{t.duration:.3f}s {_e(t.nodeid)} ({_e(t.worker)})" for t in slowest]))
    by_resource: dict[str, list[float]] = {}
    for test, since, until in waits:
        for resource in (*test.claims, *test.uses):
            by_resource.setdefault(resource, []).append(until - since)
    parts.append(_list("Lock waits", [
        f"{_e(r)}: {len(w)} waits, {sum(w):.3f}s in all" for r, w in sorted(by_resource.items(), key=lambda i: -sum(i[1]))
    ]))
    parts.append(_list("Critical path", [_e(nodeid) for nodeid in path]))
    return "".join(parts)


def _list(title: str, entries: Sequence[str], css: str = "") -> str:
    if not entries:
        return f"<h2>{title}</h2><p class='none'>none</p>"
    shown = "".join(f"<li>{entry}</li>" for entry in entries[:MAX_LISTED])
    more = f"<li>and {len(entries) - MAX_LISTED} more</li>" if len(entries) > MAX_LISTED else ""
    return f"<h2>{title} ({len(entries)})</h2><ul class='{css}'>{shown}{more}</ul>"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _worker_order(worker: str) -> tuple[str, int, str]:
    head = worker.rstrip("0123456789")
    tail = worker[len(head):]
    return (head, int(tail) if tail else -1, worker)


_STYLE = """
body{font:13px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:16px;color:#222;background:#fff}
h1{font-size:18px;margin:0 0 8px}h2{font-size:15px;margin:18px 0 4px}
.totals{margin:0 0 8px;padding-left:18px}.busy{margin-right:10px;white-space:nowrap}
.legend .key{margin-right:12px;white-space:nowrap}.legend i{display:inline-block;width:12px;height:12px;
margin-right:4px;vertical-align:-2px;border-radius:2px}
svg{width:100%;height:auto;border:1px solid #ddd;background:#fff}
.lane,.band-label,.mark-label,.tick-label{font-size:11px;fill:#333}
.band-label{fill:#667}.tick{stroke:#eee}.mark{stroke:#333;stroke-dasharray:4 3}.lost{stroke:#b00;stroke-width:1.5}
.bar{cursor:pointer}.bar:hover,.bar.sel{stroke:#000;stroke-width:1}.critical{stroke:#000;stroke-width:1.5}
.agg{opacity:.85}.hold{fill:#9aa7b8}.wait{fill:none;stroke:#c33;stroke-width:1;stroke-dasharray:3 2}
#tip{position:fixed;display:none;background:#fffff0;border:1px solid #999;padding:6px 8px;max-width:60ch;
font-size:12px;box-shadow:0 2px 6px rgba(0,0,0,.2);pointer-events:none;white-space:pre-wrap}
#picked{white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:12px;background:#f7f7f7;padding:6px}
ul.blocked li{color:#555}.none{color:#888}
"""

_SCRIPT = r"""
(function(){
var all=JSON.parse(document.getElementById('pexen-data').textContent);
var data=all.tests.map(function(r){return [r[0],all.outcomes[r[1]],r[2],r[3],all.workers[r[4]],
 all.groups[r[5]]||'',r[6]||'',r[7]||0];});
var tip=document.getElementById('tip'),picked=document.getElementById('picked');
function one(i){var t=data[i];return t[0]+'\n'+t[1]+', '+t[3].toFixed(3)+'s on '+t[4]+
 (t[5]?', group '+t[5]:'')+(t[6]?'\nlocks: '+t[6]:'')+(t[7]?'\non the critical path':'')+
 '\nstarted at '+t[2].toFixed(3)+'s';}
function many(a,b){var n={},i;for(i=a;i<=b;i++){n[data[i][1]]=(n[data[i][1]]||0)+1;}
 var s=[];for(var k in n)s.push(n[k]+' '+k);return (b-a+1)+' tests (too short to draw one by one): '+s.join(', ');}
function text(el){var t=el.getAttribute('data-t'),a=el.getAttribute('data-a');
 if(t!==null&&t>=0)return one(+t);if(a){var r=a.split('-');return many(+r[0],+r[1]);}return null;}
var svg=document.getElementById('lanes');
svg.addEventListener('mousemove',function(e){var s=text(e.target);if(!s){tip.style.display='none';return;}
 tip.textContent=s;tip.style.display='block';tip.style.left=Math.min(e.clientX+12,innerWidth-420)+'px';
 tip.style.top=(e.clientY+12)+'px';});
svg.addEventListener('mouseleave',function(){tip.style.display='none';});
svg.addEventListener('click',function(e){var el=e.target,a=el.getAttribute('data-a'),s=text(el);if(!s)return;
 if(a){var r=a.split('-'),lines=[];
  for(var i=+r[0];i<=+r[1]&&lines.length<500;i++)lines.push(data[i][1]+'  '+data[i][3].toFixed(3)+'s  '+data[i][0]);
  s+='\n'+lines.join('\n');}
 picked.textContent=s;});
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{style}</style></head>
<body><h1>{title}</h1>
{head}
<div class="legend">{legend}</div>
<svg id="lanes" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">{svg}</svg>
<p>Hover over a bar for its test; click it to keep the details here:</p>
<div id="picked">(nothing picked)</div>
{lists}
<div id="tip"></div>
<script type="application/json" id="pexen-data">{data}</script>
<script>{script}</script>
</body></html>
"""
