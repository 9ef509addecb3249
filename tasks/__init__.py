"""symsweep tasks: the paper's experiments, found by name through entry points.

The orchestrator never imports a task module directly: it asks `get_task(name)`, which
looks the name up in the `symsweep.tasks` entry-point group (pyproject.toml). A user's
own package adds a task by declaring an entry point in that group.
"""
from __future__ import annotations

from importlib.metadata import entry_points

from tasks.common.api import (
    COMPLETED,
    DIVERGED,
    FAILED,
    Diverged,
    RunContext,
    RunResult,
    SimpleContext,
    Task,
)

ENTRY_POINT_GROUP = "symsweep.tasks"

__all__ = [
    "COMPLETED", "DIVERGED", "FAILED", "Diverged", "RunContext", "RunResult",
    "SimpleContext", "Task", "available_tasks", "get_task",
]


class UnknownTaskError(LookupError):
    """No task of that name is registered."""


def available_tasks() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def get_task(name: str) -> Task:
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not matches:
        raise UnknownTaskError(
            f"unknown task {name!r}; registered tasks: {', '.join(available_tasks()) or '(none)'}"
        )
    try:
        task = matches[0].load()
    except ImportError as exc:  # a broken plugin names itself instead of a bare traceback
        raise UnknownTaskError(f"task {name!r} ({matches[0].value}) failed to import: {exc}") from exc
    if not isinstance(task, Task):
        raise TypeError(f"entry point {name!r} -> {matches[0].value} is not a tasks.Task")
    return task
