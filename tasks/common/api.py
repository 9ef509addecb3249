"""The task contract, re-exported from `symsweep.api`, where it lives (kept so that tasks
written against `symsweep.tasks.common.api` keep working; new code imports `symsweep`)."""
from symsweep.api import (  # noqa: F401
    COMPLETED,
    DIVERGED,
    FAILED,
    STATUSES,
    Diverged,
    RunContext,
    RunResult,
    SimpleContext,
    Task,
)
