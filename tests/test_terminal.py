"""The controller's terminal output, held and written once per turn of the loop."""

from __future__ import annotations

import io

import pytest

from pytest_pexen import _terminal
from pytest_pexen._terminal import HeldTerminal


class _Writer:
    def __init__(self, file: io.StringIO) -> None:
        self._file = file


class _Terminal:
    def __init__(self, file: io.StringIO) -> None:
        self._tw = _Writer(file)


class _Config:
    def __init__(self, terminal: object) -> None:
        self.pluginmanager = self
        self._terminal = terminal

    def get_plugin(self, name: str) -> object:
        assert name == "terminalreporter"
        return self._terminal


def test_output_is_held_until_due_then_written_in_order() -> None:
    out = io.StringIO()
    terminal = _Terminal(out)
    held = HeldTerminal(_Config(terminal))  # type: ignore[arg-type]
    for text in (".", "F", "."):
        terminal._tw._file.write(text)
        terminal._tw._file.flush()
    assert out.getvalue() == ""
    held.release_if_due(float("inf"))
    assert out.getvalue() == ".F."
    terminal._tw._file.write("s")
    held.close()
    assert out.getvalue() == ".F.s"
    assert terminal._tw._file is out


def test_a_large_burst_is_written_without_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_terminal, "_LIMIT", 10)
    out = io.StringIO()
    terminal = _Terminal(out)
    held = HeldTerminal(_Config(terminal))  # type: ignore[arg-type]
    terminal._tw._file.write("x" * 11)
    assert out.getvalue() == "x" * 11
    held.close()


def test_without_a_terminal_reporter_nothing_is_held() -> None:
    held = HeldTerminal(_Config(None))  # type: ignore[arg-type]
    held.release_if_due(float("inf"))
    held.close()
