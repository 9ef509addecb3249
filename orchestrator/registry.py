"""The task registry: tasks are found by name through the `symsweep.tasks` entry-point group.

The framework never imports a task module directly, the paper's own included: each package
(symsweep's `symsweep.tasks`, or a user's) declares `NAME = "module:TASK"` in that group of its
pyproject.toml, and `get_task(NAME)` loads it. Claims files for `symsweep reproduce` are found
the same way, through the `symsweep.claims` group (`NAME = "module:PATH"`, a path to a YAML).
"""
from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

from symsweep.api import Task
from symsweep.errors import ClaimsError, UnknownTaskError, first_line

ENTRY_POINT_GROUP = "symsweep.tasks"
CLAIMS_GROUP = "symsweep.claims"


def available_tasks() -> list[str]:
    """The names of the registered tasks, sorted."""
    return sorted(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))


def get_task(name: str) -> Task:
    """The task registered under `name`; UnknownTaskError names the registered ones."""
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
        raise TypeError(f"entry point {name!r} -> {matches[0].value} is not a symsweep.Task")
    return task


def registered_claims() -> list[tuple[str, Path]]:
    """(name, path) of every registered claims file, by name."""
    found = []
    for ep in sorted(entry_points(group=CLAIMS_GROUP), key=lambda e: e.name):
        try:
            found.append((ep.name, Path(ep.load())))
        except (ImportError, AttributeError, TypeError) as exc:  # a broken plugin names itself
            raise ClaimsError(f"claims {ep.name!r} ({ep.value}) failed to load: {first_line(exc)}") from None
    return found
