"""pytest-pexen: a dependency-aware parallel scheduler for pytest (``pytest --pexen``).

Public names are listed in ``__all__``; every other module is private.
"""

from __future__ import annotations

from ._api import reboot, reboot_count, subresult, warn
from ._errors import MetadataError, PexenError, PlanError, Timeout
from ._metadata import any_of
from ._sources.task import TaskContext, task

__version__ = "0.1.0"

__all__ = [
    "MetadataError",
    "PexenError",
    "PlanError",
    "TaskContext",
    "Timeout",
    "__version__",
    "any_of",
    "reboot",
    "reboot_count",
    "subresult",
    "task",
    "warn",
]
