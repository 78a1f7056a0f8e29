"""Shared fixtures: run real pytest sessions on small suites made per test."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable

import pytest

pytest_plugins = ["pytester"]

#: Written into each generated suite: lets its tests log timestamped events.
EVENTS_CONFTEST = '''
import os, time

import pytest

EVENTS = os.path.join(os.path.dirname(__file__), "events.log")


def note(event, name):
    line = f"{time.time():.6f} {os.getpid()} {event} {name}\\n"
    fd = os.open(EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, line.encode())
    os.close(fd)


@pytest.fixture(autouse=True)
def _events(request):
    note("start", request.node.name)
    yield
    note("end", request.node.name)
'''


class Events:
    """Timestamps the generated tests wrote: start/end per test name."""

    def __init__(self, path: Path) -> None:
        self.lines = []
        if path.exists():
            for line in path.read_text().splitlines():
                stamp, pid, event, name = line.split(" ", 3)
                self.lines.append((float(stamp), int(pid), event, name))

    def time(self, event: str, name: str) -> float:
        found = [t for t, _, e, n in self.lines if e == event and n == name]
        assert len(found) == 1, (event, name, self.lines)
        return found[0]

    def start(self, name: str) -> float:
        return self.time("start", name)

    def end(self, name: str) -> float:
        return self.time("end", name)

    def names(self, event: str = "start") -> list[str]:
        return [n for _, _, e, n in sorted(self.lines) if e == event]

    def pids(self) -> set[int]:
        return {pid for _, pid, _, _ in self.lines}

    def max_concurrency(self) -> int:
        live = peak = 0
        for _, _, event, _ in sorted(self.lines, key=lambda l: (l[0], l[2] == "start")):
            live += 1 if event == "start" else -1
            peak = max(peak, live)
        return peak


@pytest.fixture
def suite(pytester: pytest.Pytester) -> Callable[..., None]:
    """Write test files (dedented) into a fresh suite with the events conftest."""
    pytester.makeconftest(EVENTS_CONFTEST)
    pytester.makeini("[pytest]\n")

    def write(**files: str) -> None:
        for name, text in files.items():
            path = pytester.path / f"{name}.py"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))

    return write


@pytest.fixture
def events(pytester: pytest.Pytester) -> Callable[[], Events]:
    return lambda: Events(pytester.path / "events.log")


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Callable[..., pytest.RunResult]:
    """Run pytest in a subprocess with only pytester's defaults and our plugin.

    Plugins installed on the machine are not loaded, so results do not depend
    on what else is installed (and startup stays fast).
    """
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)

    def run_pytest(*args: str, timeout: float = 120) -> pytest.RunResult:
        return pytester.runpytest_subprocess("-p", "pytest_pexen._plugin", *args, timeout=timeout)

    return run_pytest


@pytest.fixture
def extend_conftest(pytester: pytest.Pytester) -> Callable[[str], None]:
    """Append code to the generated suite's conftest.py."""
    conftest = pytester.path / "conftest.py"

    def extend(code: str) -> None:
        conftest.write_text(conftest.read_text() + "\n" + textwrap.dedent(code))

    return extend


@pytest.fixture
def start_controller(pytester: pytest.Pytester) -> Callable[..., subprocess.Popen[bytes]]:
    """Start ``pytest --pexen`` in the generated suite as a process of its own."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
        command = [sys.executable, "-m", "pytest", "-p", "pytest_pexen._plugin", "--pexen", *args]
        process = subprocess.Popen(
            command, cwd=pytester.path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.fixture
def wait_for() -> Callable[[Callable[[], bool], float], bool]:
    """Poll a condition until it holds or some seconds pass; its last value."""

    def poll(condition: Callable[[], bool], seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return True
            time.sleep(0.05)
        return condition()

    return poll
