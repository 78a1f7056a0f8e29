"""The in-test API: ``pytest_pexen.warn()`` and ``pytest_pexen.subresult()``.

What a test says is kept in its ``user_properties``, so it travels with the
test's reports (from a worker to the controller too) and reaches every
report consumer. Works with and without ``--pexen``.
"""

from __future__ import annotations

from typing import Any, Iterable, NamedTuple

import pytest

from ._errors import PexenError

WARNED = "pexen.warned"
SUBRESULT = "pexen.subresult"
SUBRESULT_OUTCOMES = ("passed", "warned", "failed", "skipped")

_current: pytest.Item | None = None


class Subresult(NamedTuple):
    """A named part of a test's result."""

    name: str
    outcome: str
    message: str = ""


def warn(message: str) -> None:
    """The running test passes as *warned*: it worked, but found problems."""
    _item("warn").user_properties.append((WARNED, str(message)))


def subresult(name: str, outcome: str, message: str = "") -> None:
    """Record a named sub-result of the running test.

    *outcome* is one of passed, warned, failed, skipped. A failed sub-result
    makes the test fail (unless it already failed).
    """
    if outcome not in SUBRESULT_OUTCOMES:
        raise PexenError(
            f"pytest_pexen.subresult({name!r}, {outcome!r}): outcome must be one of "
            f"{', '.join(SUBRESULT_OUTCOMES)}"
        )
    item = _item("subresult")
    item.user_properties.append((SUBRESULT, tuple(Subresult(str(name), outcome, str(message)))))


def _item(function: str) -> pytest.Item:
    if _current is None:
        raise PexenError(f"pytest_pexen.{function}() can only be called while a test runs")
    return _current


def set_current(item: pytest.Item | None) -> None:
    global _current
    _current = item


def warnings_of(properties: Iterable[tuple[str, Any]]) -> list[str]:
    return [value for name, value in properties if name == WARNED]


def subresults_of(properties: Iterable[tuple[str, Any]]) -> list[Subresult]:
    return [Subresult(*value) for name, value in properties if name == SUBRESULT]
