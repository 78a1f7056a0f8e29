"""--pexen-timeline and --pexen-trace: the run as a picture and as a Perfetto trace."""

from __future__ import annotations

import json
import random
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pytest_pexen import _events as ev
from pytest_pexen._observers.spans import Spans
from pytest_pexen._observers.timeline import COLOURS, MIN_INTERVAL, render
from pytest_pexen._observers.trace import trace
from pytest_pexen._planner import Task

SUITE = '''
import time, pytest

@pytest.mark.pexen(provides=["db"])
def test_db():
    time.sleep(0.4)

@pytest.mark.pexen(requires=["db"], provides=["app"])
def test_app():
    time.sleep(0.4)

@pytest.mark.pexen(requires=["app"])
def test_uses_app():
    time.sleep(0.4)

def test_alone():
    time.sleep(0.2)

def test_fails():
    assert False

@pytest.mark.pexen(provides=["broken"])
def test_broken_provider():
    assert False

@pytest.mark.pexen(requires=["broken"])
def test_blocked():
    pass
'''
LOCKS = '''
import time, pytest

class TestFirst:
    @pytest.mark.pexen(claims=["vm"])
    def test_claims_vm(self):
        time.sleep(0.5)

class TestSecond:
    @pytest.mark.pexen(claims=["vm"])
    def test_claims_vm_too(self):
        time.sleep(0.5)
'''


class _Page(HTMLParser):
    """The parts of the timeline a test looks at: bars, the data, the lists, links."""

    def __init__(self) -> None:
        super().__init__()
        self.bars: list[dict[str, str]] = []
        self.waits: list[dict[str, str]] = []
        self.external: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        classes = found.get("class", "").split()
        if tag == "rect" and "bar" in classes:
            self.bars.append(found)
        if tag == "rect" and "wait" in classes:
            self.waits.append(found)
        for name in ("src", "href"):
            if name in found:
                self.external.append(found[name])
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)

    def data(self) -> dict[str, Any]:
        return json.loads(self.scripts[0].replace("<\\/", "</"))


def read_page(path: Path) -> tuple[str, _Page]:
    text = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    return text, page


def rows_by_nodeid(page: _Page) -> dict[str, dict[str, Any]]:
    data = page.data()
    rows = {}
    for row in data["tests"]:
        row = row + [0] * (8 - len(row))
        rows[row[0]] = {
            "outcome": data["outcomes"][row[1]],
            "start": row[2],
            "duration": row[3],
            "worker": data["workers"][row[4]],
            "locks": row[6],
            "critical": row[7],
        }
    return rows


@pytest.fixture
def ran(pytester: pytest.Pytester) -> tuple[pytest.RunResult, Path, Path]:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest_subprocess(
        "--pexen", "--pexen-workers=3", "--pexen-state=off", "--pexen-affinity=none",
        "--pexen-timeline=out/run.html", "--pexen-trace=out/run.json",
    )
    return result, pytester.path / "out" / "run.html", pytester.path / "out" / "run.json"


def test_the_timeline_has_a_bar_per_test_coloured_by_outcome(ran: tuple[pytest.RunResult, Path, Path]) -> None:
    result, html, _ = ran
    assert result.parseoutcomes() == {"passed": 4, "failed": 2, "blocked": 1}
    result.stdout.fnmatch_lines([f"pexen: timeline of the run: {html}"])
    text, page = read_page(html)
    rows = rows_by_nodeid(page)
    ran_tests = {n: r for n, r in rows.items() if "blocked" not in n}
    assert len(ran_tests) == 6 and len(page.bars) == 6
    by_index = {int(bar["data-t"]): bar for bar in page.bars}
    names = list(rows)
    for number, name in enumerate(names):
        assert by_index[number]["fill"] == COLOURS[rows[name]["outcome"]]
    assert rows["test_suite.py::test_fails"]["outcome"] == "failed"
    assert rows["test_suite.py::test_db"]["outcome"] == "passed"
    assert {r["worker"] for r in rows.values()} <= {"gw0", "gw1", "gw2"}


def test_the_timeline_is_self_contained(ran: tuple[pytest.RunResult, Path, Path]) -> None:
    _, html, _ = ran
    text, page = read_page(html)
    assert page.external == []
    assert not re.search(r"@import|url\(|<link|<iframe|<img", text)
    # The SVG namespace is a name, not a download; nothing else names a server.
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) <= {"http://www.w3.org/2000/svg"}


def test_the_critical_path_is_the_chain_of_requirements(ran: tuple[pytest.RunResult, Path, Path]) -> None:
    _, html, _ = ran
    text, page = read_page(html)
    rows = rows_by_nodeid(page)
    critical = {name for name, row in rows.items() if row["critical"]}
    assert critical == {"test_suite.py::test_db", "test_suite.py::test_app", "test_suite.py::test_uses_app"}
    assert text.count('class="bar critical"') == 3
    # The chain ran in order: each link started after the one before ended.
    assert rows["test_suite.py::test_app"]["start"] >= rows["test_suite.py::test_db"]["start"] + rows["test_suite.py::test_db"]["duration"] - 1e-3
    bound = re.search(r"lower bound max\(critical path, work / workers\), per group: <b>([\d.]+)s", text)
    took = re.search(r"the run took <b>([\d.]+)×</b> the lower bound", text)
    assert bound and took and float(took.group(1)) >= 0.99


def test_blocked_tests_are_listed_with_the_reason(ran: tuple[pytest.RunResult, Path, Path]) -> None:
    _, html, _ = ran
    text, _ = read_page(html)
    listed = re.search(r"<h2>Blocked and not run \(1\)</h2><ul class='blocked'><li>(.*?)</li>", text)
    assert listed and "test_suite.py::test_blocked" in listed.group(1)
    assert "test_broken_provider which failed" in listed.group(1)


def test_the_trace_has_the_shape_perfetto_reads(ran: tuple[pytest.RunResult, Path, Path]) -> None:
    result, _, path = ran
    result.stdout.fnmatch_lines([f"pexen: trace of the run (open it in ui.perfetto.dev): {path}"])
    document = json.loads(path.read_text())
    assert set(document) >= {"traceEvents", "displayTimeUnit"}
    events = document["traceEvents"]
    for event in events:
        assert event["ph"] in ("X", "M", "i"), event
        assert isinstance(event["name"], str) and isinstance(event["pid"], int) and isinstance(event["tid"], int)
        if event["ph"] == "X":
            assert isinstance(event["ts"], int) and event["ts"] >= 0
            assert isinstance(event["dur"], int) and event["dur"] >= 0
        if event["ph"] == "i":
            assert event["s"] in ("g", "p", "t") and isinstance(event["ts"], int)
        if event["ph"] == "M":
            assert event["name"] in ("process_name", "thread_name", "thread_sort_index") and "args" in event
    named = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    tests = [e for e in events if e["ph"] == "X" and "outcome" in e["args"]]
    assert sorted(e["args"]["nodeid"] for e in tests) == sorted(
        f"test_suite.py::{name}"
        for name in ("test_db", "test_app", "test_uses_app", "test_alone", "test_fails", "test_broken_provider")
    )
    for event in tests:
        assert named[event["tid"]] == f"worker {event['args']['worker']}"
        assert event["cat"] == event["args"]["outcome"]
    (blocked,) = [e for e in events if e.get("cat") == "blocked"]
    assert blocked["args"]["nodeid"] == "test_suite.py::test_blocked"


def test_lock_waits_are_drawn_on_the_lock_lane(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_locks=LOCKS)
    result = pytester.runpytest_subprocess(
        "--pexen", "--pexen-workers=2", "--pexen-state=off", "--pexen-timeline=run.html", "--pexen-trace=run.json"
    )
    result.assert_outcomes(passed=2)
    text, page = read_page(pytester.path / "run.html")
    assert ">lock vm</text>" in text
    assert len(page.waits) == 1
    assert re.search(r"waited \d+s for vm", text)
    assert re.search(r"<h2>Lock waits \(1\)</h2><ul class=''><li>vm: 1 waits", text)
    events = json.loads((pytester.path / "run.json").read_text())["traceEvents"]
    assert [e["args"]["resource"] for e in events if e.get("cat") == "lock wait"] == ["vm"]


def test_the_timeline_is_kept_current_while_the_run_goes_on(pytester: pytest.Pytester) -> None:
    # The last test waits until the file says the run is still going, and
    # only then ends: it fails if the file is never rewritten during the run.
    pytester.makepyfile(
        test_current=f'''
import pathlib, time

def test_quick():
    pass

def test_waits_for_the_picture():
    path = pathlib.Path({str(pytester.path / "live.html")!r})
    deadline = time.monotonic() + {MIN_INTERVAL * 10}
    while time.monotonic() < deadline:
        if path.exists() and "still running" in path.read_text():
            return
        time.sleep(0.05)
    raise AssertionError("the timeline was not written during the run")
'''
    )
    result = pytester.runpytest_subprocess(
        "--pexen", "--pexen-workers=2", "--pexen-state=off", "--pexen-timeline=live.html"
    )
    result.assert_outcomes(passed=2)
    text, _ = read_page(pytester.path / "live.html")
    assert "still running" not in text and "— finished" in text


def test_a_resumed_run_is_one_timeline_with_its_resumes_marked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_resume="""
import pytest

@pytest.mark.pexen(provides=["first"])
def test_first():
    pass

@pytest.mark.pexen(requires=["first"], provides=["second"])
def test_second():
    pass

@pytest.mark.pexen(requires=["second"])
def test_third():
    pass
"""
    )
    paused = pytester.runpytest_subprocess("--pexen", "--pexen-workers=1", "--pexen-break=*test_second")
    assert paused.ret == 75
    paused = pytester.runpytest_subprocess("--pexen", "--pexen-resume", "--pexen-break=*test_third")
    assert paused.ret == 75
    result = pytester.runpytest_subprocess(
        "--pexen", "--pexen-resume", "--pexen-timeline=run.html", "--pexen-trace=run.json"
    )
    result.assert_outcomes(passed=3)
    text, page = read_page(pytester.path / "run.html")
    rows = rows_by_nodeid(page)
    assert list(rows) == [f"test_resume.py::test_{name}" for name in ("first", "second", "third")]
    starts = [row["start"] for row in rows.values()]
    assert starts == sorted(starts)
    assert text.count(">run began</text>") == 1 and text.count(">resumed</text>") == 2
    assert "resumed run: 2 earlier session(s)" in text
    events = json.loads((pytester.path / "run.json").read_text())["traceEvents"]
    assert [e["name"] for e in events if e.get("cat") == "run"] == ["run began", "resumed", "resumed"]
    earlier = [e["args"]["nodeid"] for e in events if e["ph"] == "X" and e["args"].get("session") == "earlier"]
    assert earlier == ["test_resume.py::test_first", "test_resume.py::test_second"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--pexen-timeline=somewhere/"], "--pexen-timeline: somewhere/ names a directory"),
        (["--pexen-trace=."], "--pexen-trace: . is a directory; give the path of a file, e.g. ./trace.json"),
        (["--pexen-timeline=adir"], "--pexen-timeline: adir is a directory"),
        (["--pexen-trace=afile/x.json"], "is not a directory; give a path in a directory"),
    ],
)
def test_a_path_that_cannot_take_the_file_is_a_usage_error(
    pytester: pytest.Pytester, args: list[str], message: str
) -> None:
    (pytester.path / "adir").mkdir()
    (pytester.path / "afile").write_text("")
    pytester.makepyfile(test_it="def test_it():\n    pass\n")
    result = pytester.runpytest("--pexen", "--pexen-state=off", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_the_timeline_needs_pexen(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_it="def test_it():\n    pass\n")
    result = pytester.runpytest("--pexen-timeline=run.html")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--pexen-timeline needs --pexen*"])


def test_the_files_honour_the_umask_and_keep_an_existing_mode(pytester: pytest.Pytester) -> None:
    import os

    pytester.makepyfile(test_it="def test_it():\n    pass\n")
    existing = pytester.path / "kept.json"
    existing.write_text("{}")
    existing.chmod(0o640)
    previous = os.umask(0o077)
    try:
        result = pytester.runpytest_subprocess(
            "--pexen", "--pexen-state=off", "--pexen-timeline=new.html", "--pexen-trace=kept.json"
        )
    finally:
        os.umask(previous)
    result.assert_outcomes(passed=1)
    assert (pytester.path / "new.html").stat().st_mode & 0o777 == 0o600
    assert existing.stat().st_mode & 0o777 == 0o640
    assert json.loads(existing.read_text())["traceEvents"]


# -- 10,000 tests -------------------------------------------------------------------


def big_run(count: int = 10_000, workers: int = 8) -> Spans:
    """A made-up run of *count* tests, fed through the same events a real run publishes."""
    rng = random.Random(14)
    names = [f"tests/test_module_{i // 100}.py::test_case_{i}" for i in range(count)]
    spans = Spans({name: Task(name) for name in names}, {"default": workers})
    spans.notice(ev.RunBegan(0.0, 1_700_000_000.0))
    spans.notice(ev.GroupBegan("default", 0.0))
    clocks = [0.0] * workers
    for number, name in enumerate(names):
        worker = number % workers
        spans.notice(ev.Handed(f"gw{worker}", (name,), clocks[worker]))
        spans.notice(ev.Started(f"gw{worker}", name, clocks[worker]))
        clocks[worker] += rng.choice([0.001, 0.01, 0.05, 0.5, 2.0, 10.0])
        spans.notice(ev.Finished(name, "failed" if number % 97 == 0 else "passed", clocks[worker]))
    spans.notice(ev.RunEnded("", max(clocks)))
    return spans


def test_ten_thousand_tests_stay_readable_and_small() -> None:
    spans = big_run()
    text = render(spans, None, spans.ended or 0.0)
    page = _Page()
    page.feed(text)
    assert len(page.data()["tests"]) == 10_000
    aggregates = [bar for bar in page.bars if "data-a" in bar]
    assert aggregates and len(page.bars) < 10_000
    # Every test is in exactly one bar: alone, or in an aggregate's range.
    covered = sum(1 for bar in page.bars if "data-t" in bar) + sum(int(bar["data-n"]) for bar in aggregates)
    assert covered == 10_000
    # An aggregate shows the worst outcome among its tests.
    rows = page.data()["tests"]
    outcomes = page.data()["outcomes"]
    for bar in aggregates:
        first, last = map(int, bar["data-a"].split("-"))
        inside = {outcomes[rows[i][1]] for i in range(first, last + 1)}
        assert bar["fill"] == COLOURS["failed" if "failed" in inside else "passed"]
    assert len(text.encode()) < 1_200_000


# -- in a real browser --------------------------------------------------------------


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _pixels(png: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of RGB(A) pixels of a PNG (8-bit RGB or RGBA, as Chromium writes)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat, header = 8, b"", b""
    while position < len(png):
        (length,) = struct.unpack(">I", png[position:position + 4])
        kind = png[position + 4:position + 8]
        body = png[position + 8:position + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and colour_type in (2, 6), (depth, colour_type)
    size = 3 if colour_type == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * size
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            left = line[x - size] if x >= size else 0
            up = previous[x]
            corner = previous[x - size] if x >= size else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                pa, pb, pc = abs(guess - left), abs(guess - up), abs(guess - corner)
                best = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[x] = (line[x] + best) & 0xFF
        rows.append(bytes(line) if size == 3 else bytes(b for i, b in enumerate(line) if i % 4 != 3))
        previous = line
    return width, height, rows


def _count(rows: list[bytes], colour: str) -> int:
    rgb = bytes.fromhex(colour.lstrip("#"))
    return sum(row.count(rgb) for row in rows)


@pytest.mark.slow
def test_a_browser_draws_the_bars(ran: tuple[pytest.RunResult, Path, Path], tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium installed (apt-get install chromium)")
    _, html, _ = ran
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1400,900"]
    dom = subprocess.run([*common, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr
    page = _Page()
    page.feed(dom.stdout)
    assert len(page.bars) == 6
    shot = tmp_path / "timeline.png"
    done = subprocess.run(
        [*common, f"--screenshot={shot}", html.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and shot.exists(), done.stderr
    _, _, rows = _pixels(shot.read_bytes())
    # Bars of passed and failed tests, tens of pixels each (the legend has a few of each too).
    assert _count(rows, COLOURS["passed"]) > 1000
    assert _count(rows, COLOURS["failed"]) > 200


def test_ini_paths_are_taken_from_the_rootdir(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\npexen_timeline = reports/run.html\npexen_trace = reports/run.json\n")
    pytester.makepyfile(test_it="def test_it():\n    pass\n")
    monkeypatch.chdir(pytester.mkdir("elsewhere"))
    result = pytester.runpytest_subprocess("--pexen", "--pexen-state=off", str(pytester.path))
    result.assert_outcomes(passed=1)
    assert (pytester.path / "reports" / "run.html").is_file()
    assert json.loads((pytester.path / "reports" / "run.json").read_text())["traceEvents"]
    assert not (pytester.path / "elsewhere" / "reports").exists()
