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
    """The results store cannot be read or written (a full disk, a damaged file)."""


class StoreUnavailableError(StoreError):
    """The results location cannot be opened at all: a bad URI or URI option, a missing bucket,
    wrong credentials, an unreachable endpoint, a path that is no sweep folder, a place that
    cannot be written (a file, /proc, a read-only mount). Bad input, like a bad spec: exit 2,
    nothing was written."""

    exit_code = 2


class ClusterError(SymsweepError):
    """The Ray cluster cannot be joined or cannot run the spec's trials. Nothing was written."""

    exit_code = 2


class ClaimsError(SymsweepError):
    """A claims file (`symsweep reproduce --claims`) cannot be used: one line names the entry."""

    exit_code = 2


class QueryError(SymsweepError):
    """A query over results failed: bad SQL, an unknown table or column, no results found."""

    exit_code = 2


def first_line(exc: BaseException) -> str:
    """The first non-blank line of an error's message, or its type's name when it has none."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0] if lines else type(exc).__name__


def last_line(exc: BaseException) -> str:
    """The last non-blank line of an error's message (a remote traceback's own message, e.g. a
    Ray task error), or its type's name when it has none."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def yaml_error_line(source: str, exc: Exception) -> str:
    """One line for a YAML error: `file:line:column: not valid YAML: problem (context)`."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
    problem = getattr(exc, "problem", None) or first_line(exc)
    context = getattr(exc, "context", None)
    return f"{where}: not valid YAML: {problem}" + (f" ({context})" if context else "")


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (what `scancel`, Kubernetes and `docker stop` send). A KeyboardInterrupt,
    so that every path that cleans up after Ctrl-C (trials stopped, lock released, embedded Ray
    shut down) does the same here; the command then exits 143 (128 + 15) instead of 130."""
