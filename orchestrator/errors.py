"""symsweep's exception family: one base class, a few specific errors.

The CLI maps SymsweepError to a one-line message and an exit code (UsageError family:
2, the rest: 1); anything else is a bug and shows its traceback.
"""
from __future__ import annotations


class SymsweepError(Exception):
    """Base of every error symsweep raises on purpose."""

    exit_code = 1


class SpecError(SymsweepError):
    """A sweep spec or a --set override is invalid. Raised before anything runs."""

    exit_code = 2


class UnknownTaskError(SpecError):
    """The spec names a task that no installed package registers."""


class SpecChangedError(SymsweepError):
    """The sweep folder was started with a different spec; resuming would mix two sweeps."""

    exit_code = 2


class LockError(SymsweepError):
    """Another live driver holds the sweep's lock."""

    exit_code = 3


class StoreError(SymsweepError):
    """The results store cannot be opened, read or written."""


class QueryError(SymsweepError):
    """A query over results failed: bad SQL, an unknown table or column, no results found."""

    exit_code = 2
