"""What a ``--pexen`` run says about itself in the terminal, beyond pytest's own lines.

A header line after collection (the groups with their workers and pools,
how many tests wait for others, how many lock resources), and blocked
tests counted as such: ``2 blocked`` in the closing line, and a
``BLOCKED`` line each, with the reason, in the short test summary. Blocked
tests stay *skipped* reports, so the exit status, ``--junitxml`` and the
xUnit file treat them as before.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Generator, Mapping, Sequence

import pytest

from ._groups import GroupSpec
from ._planner import Task

#: The title of pytest's short test summary section.
SHORT_SUMMARY = "short test summary info"
#: A blocked test's reason, as the planner says it, starts so.
_REASON_PREFIXES = ("Skipped: ", "blocked: ")


def header(groups: Mapping[str, GroupSpec], order: Sequence[str], tasks: Sequence[Task]) -> str | None:
    """``pexen: 2 workers (default, process), 1 (vm, process); 12 tests with
    dependencies, 3 with locks``; None when no test is selected.

    *order*: the groups that have tests, in the order they run. A group gets
    at most one worker per test, so that is the count shown.
    """
    if not order:
        return None
    sizes = Counter(task.group for task in tasks)
    pools = []
    for name in order:
        spec = groups[name]
        workers = max(1, min(spec.workers, sizes[name]))
        noun = f" worker{'s' if workers != 1 else ''}" if not pools else ""
        pools.append(f"{workers}{noun} ({name}, {spec.pool})")
    waiting = sum(1 for task in tasks if task.requires or task.after)
    locking = sum(1 for task in tasks if task.locks)
    return (
        f"pexen: {', '.join(pools)}; {waiting} test{'s' if waiting != 1 else ''} "
        f"with dependencies, {locking} with locks"
    )


def blocked_status(report: pytest.TestReport) -> tuple[str, str, tuple[str, Mapping[str, bool]]] | None:
    """A blocked test's category, letter and word (``BLOCKED``); None for any other report."""
    if getattr(report, "pexen_outcome", None) == "blocked" and report.skipped:
        return "blocked", "b", ("BLOCKED", {"yellow": True})
    return None


def blocked_in_short_summary(terminal: Any) -> Generator[None, None, None]:
    """Wraps pytest's terminal summary (from outside, so it runs after pytest's
    short test summary): one ``BLOCKED nodeid - reason`` line per blocked test,
    at the end of that section, which is begun here if pytest wrote none."""
    config = terminal.config
    lines = [] if _summary_off(config) else _blocked_lines(terminal)
    if not lines:
        return (yield)
    titles: list[str | None] = []
    write_sep = terminal.write_sep

    def noting_write_sep(sep: str, title: str | None = None, **markup: Any) -> None:
        titles.append(title)
        write_sep(sep, title, **markup)

    terminal.write_sep = noting_write_sep
    try:
        return (yield)
    finally:
        del terminal.write_sep  # the class's method again
        if not titles or titles[-1] != SHORT_SUMMARY:
            terminal.write_sep("=", SHORT_SUMMARY, cyan=True, bold=True)
        for line in lines:
            terminal.write_line(line)


def _summary_off(config: pytest.Config) -> bool:
    """``--no-summary``, or ``-r`` whose last ``N`` turned the short summary off."""
    chars = config.getoption("reportchars", "") or ""
    return bool(config.getoption("no_summary", False)) or ("N" in chars and not chars.rpartition("N")[2])


def _blocked_lines(terminal: Any) -> list[str]:
    lines = []
    word = terminal._tw.markup("BLOCKED", yellow=True)
    for report in terminal.stats.get("blocked", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        for prefix in _REASON_PREFIXES:
            reason = reason.removeprefix(prefix)
        lines.append(f"{word} {report.nodeid} - {reason}")
    return lines
