"""symsweep: reproducible sweeps of many small trainings on Ray Tune, with a Parquet ledger.

The one import name for users and plugin authors:

    from symsweep import Task, RunResult, RunContext, SimpleContext   # write a task
    from symsweep import open_results, comparison_table               # read results
    from symsweep import load_spec, run_sweep, RunOptions             # run a sweep from Python

The five core objects:
    SweepSpec      a validated sweep spec (load_spec)          symsweep.spec
    RunSpec/Trial  one run; a packed group of runs              symsweep.spec
    SweepStore     the Parquet ledger of one sweep              symsweep.store
    TrialRunner    executes a trial's runs, writes each at once symsweep.worker
    RayExecutor / InlineExecutor  where trials execute          symsweep.executors

The task contract (Task, RunResult, RunContext, SimpleContext, the statuses, Diverged) lives
in symsweep.api, the registry in symsweep.registry, the shared statistics in symsweep.stats.
The paper's experiments are the plugin package symsweep.tasks, which this package never
imports: every task is found through the `symsweep.tasks` entry-point group.
"""
import importlib

# name -> module: loaded on first use, so that `symsweep status` does not pay for torch,
# Ray, DuckDB or matplotlib (see symsweep.cli).
_EXPORTS = {
    "COMPLETED": "api", "DIVERGED": "api", "FAILED": "api", "Diverged": "api", "RunContext": "api",
    "RunResult": "api", "SimpleContext": "api", "Task": "api",
    "available_tasks": "registry", "get_task": "registry",
    "aggregate_sweep": "aggregate", "summary_table": "aggregate", "comparison_table": "compare",
    "LockError": "errors", "QueryError": "errors", "SpecChangedError": "errors", "SpecError": "errors",
    "StoreError": "errors", "StoreUnavailableError": "errors", "ClusterError": "errors",
    "SymsweepError": "errors", "UnknownTaskError": "errors",
    "InlineExecutor": "executors", "RayExecutor": "executors",
    "Results": "query", "open_results": "query", "write_report": "report",
    "RunSpec": "spec", "SweepSpec": "spec", "Trial": "spec", "expand": "spec", "load_spec": "spec",
    "pack": "spec", "run_id": "spec", "spec_from_dict": "spec", "SweepStore": "store",
    "RunOptions": "sweep", "make_plan": "sweep", "open_sweep": "sweep", "run_sweep": "sweep",
    "TrialRunner": "worker",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'symsweep' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"symsweep.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
