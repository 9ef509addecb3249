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
from orchestrator.aggregate import aggregate_sweep, summary_table
from orchestrator.compare import comparison_table
from orchestrator.errors import (
    LockError,
    QueryError,
    SpecChangedError,
    SpecError,
    StoreError,
    SymsweepError,
    UnknownTaskError,
)
from orchestrator.executors import InlineExecutor, RayExecutor
from orchestrator.query import Results, open_results
from orchestrator.report import write_report
from orchestrator.spec import RunSpec, SweepSpec, Trial, expand, load_spec, pack, run_id, spec_from_dict
from orchestrator.store import SweepStore
from orchestrator.sweep import make_plan, open_sweep, run_sweep
from orchestrator.worker import TrialRunner

__all__ = [
    "InlineExecutor", "LockError", "QueryError", "RayExecutor", "Results", "RunSpec", "SpecChangedError",
    "SpecError", "StoreError", "SweepSpec", "SweepStore", "SymsweepError", "Trial", "TrialRunner",
    "UnknownTaskError", "aggregate_sweep", "comparison_table", "expand", "load_spec", "make_plan",
    "open_results", "open_sweep", "pack", "run_id", "run_sweep", "spec_from_dict", "summary_table",
    "write_report",
]
