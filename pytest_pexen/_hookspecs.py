"""Hooks that conftest files and plugins may implement for pytest-pexen."""

from __future__ import annotations

from typing import Any, Mapping

import pytest


def pytest_pexen_groups(config: pytest.Config) -> Mapping[str, Any] | None:
    """Configure exclusivity groups, in addition to ini ``pexen_groups``.

    Return a mapping of group name to its settings, either as a string like
    the ini lines (``"workers=1 pool=process"``) or as a dict
    (``{"workers": 50, "pool": "thread"}``). Groups keep the order in which
    they are returned, after the ini groups. Called once, after collection,
    so any collected directory's conftest may implement it.
    """
