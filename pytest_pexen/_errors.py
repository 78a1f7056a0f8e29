"""Errors pytest-pexen raises, all under one base class."""

from __future__ import annotations


class PexenError(Exception):
    """Base class of every error pytest-pexen raises on purpose."""


class MetadataError(PexenError):
    """A test's pexen metadata is malformed (unknown field, wrong type)."""


class PlanError(PexenError):
    """The suite's metadata cannot be scheduled (missing tag, cycle)."""


class DaskError(PexenError):
    """A Dask cluster cannot run a group with pool=dask (out of reach, no workers, another checkout)."""


class Timeout(BaseException):
    """Raised inside a test that ran past its time limit (pexen watchdog).

    A BaseException, like pytest's own outcomes, so that a test's
    ``except Exception`` does not swallow it; so it stands outside
    :class:`PexenError`.
    """
