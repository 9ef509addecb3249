"""symsweep's orchestrator: specs -> runs -> executors -> Parquet store -> aggregates.

The five core objects:
    SweepSpec      a validated sweep spec (load_spec)          orchestrator.spec
    RunSpec/Trial  one run; a packed group of runs              orchestrator.spec
    SweepStore     the Parquet ledger of one sweep              orchestrator.store
    TrialRunner    executes a trial's runs, writes each at once orchestrator.worker
    RayExecutor / InlineExecutor  where trials execute          orchestrator.executors

Afterwards: open_results (SQL and DataFrames, orchestrator.query), comparison_table
(orchestrator.compare), write_report (orchestrator.report).
"""
import importlib

# name -> module: loaded on first use, so that `symsweep status` does not pay for torch,
# Ray, DuckDB or matplotlib (see orchestrator.cli).
_EXPORTS = {
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
        raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"orchestrator.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
