"""The driver: plan a sweep against its ledger, execute what is missing, summarize.

plan   = expand the spec into runs, read the ledger, keep the runs without a final row,
         pack them into trials.
run    = lock the sweep, freeze its spec, execute the plan, release the lock.
status = the same plan, read-only.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import pandas as pd

from orchestrator.errors import SpecChangedError, StoreError
from orchestrator.executors import ExecutionReport, make_executor
from orchestrator.progress import Progress
from orchestrator.spec import RunSpec, SweepSpec, Trial, expand, pack, spec_from_dict
from orchestrator.store import SweepStore
from orchestrator.worker import TrialRunner, git_commit

FINAL = ("completed", "failed", "diverged")


@dataclass
class Plan:
    spec: SweepSpec
    store: SweepStore
    runs: list[RunSpec]
    """Every run the spec defines."""
    status: dict[str, str]
    """run_id -> status in the ledger, for planned runs that have a row."""
    pending: list[RunSpec]
    trials: list[Trial]
    extra_rows: int = 0
    """Rows in the ledger that the current spec does not plan (from an earlier spec)."""
    corrupt: list[tuple[str, str]] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for s in self.status.values() if s == status)

    def counts(self) -> dict[str, int]:
        return {"planned": len(self.runs), "completed": self.count("completed"), "failed": self.count("failed"),
                "diverged": self.count("diverged"), "pending": len(self.runs) - len(self.status)}


def sweep_uri(results: str, name: str) -> str:
    return f"{results.rstrip('/')}/{name}" if "://" in results else os.path.join(os.path.abspath(results), name)


def make_plan(spec: SweepSpec, store: SweepStore, retry_failed: bool = False) -> Plan:
    runs = expand(spec)
    ledger = store.read_ledger(columns=["run_id", "status"])
    recorded = dict(zip(ledger.runs["run_id"], ledger.runs["status"])) if not ledger.runs.empty else {}
    planned_ids = {r.run_id for r in runs}
    status = {rid: s for rid, s in recorded.items() if rid in planned_ids}
    done = ("completed", "diverged") if retry_failed else FINAL
    pending = [r for r in runs if status.get(r.run_id) not in done]
    return Plan(spec=spec, store=store, runs=runs, status=status, pending=pending,
                trials=pack(pending, spec.runs_per_trial),
                extra_rows=len(set(recorded) - planned_ids), corrupt=ledger.corrupt)


def check_frozen_spec(spec: SweepSpec, store: SweepStore, force: bool) -> None:
    """Refuse to resume a sweep folder with a spec that plans other runs, unless forced."""
    if not store.exists():
        return
    frozen = store.read_spec()
    try:
        old = spec_from_dict(frozen, source=f"{store.uri}/spec.yaml").science()
    except Exception as exc:  # noqa: BLE001 - e.g. the task changed its config fields
        old = {"unreadable": str(exc)}
    new = spec.science()
    if old != new and not force:
        diff = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        details = "; ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff)
        raise SpecChangedError(
            f"{store.uri} was started with a different spec ({details}). Runs would mix two sweeps: "
            f"use another --results folder or sweep name, or pass --force to re-plan with the new spec "
            f"(existing rows are kept)."
        )


@dataclass
class SweepOutcome:
    plan: Plan
    report: ExecutionReport
    counts: dict[str, int]
    quarantined: list[str]


def run_sweep(spec: SweepSpec, results: str, executor: str = "ray", address: str | None = None,
              retry_failed: bool = False, force: bool = False, force_unlock: bool = False,
              verbose: bool = False, data_root: str | None = None, max_concurrent: int | None = None,
              num_cpus: int | None = None, echo: Callable[[str], None] = print) -> SweepOutcome:
    store = SweepStore(sweep_uri(results, spec.name))
    check_frozen_spec(spec, store, force)
    stale = store.acquire_lock(force=force_unlock)
    try:
        if stale.get("stale"):
            echo(f"note: took over a stale lock of pid {stale.get('pid')} (that driver is gone)")
        if not store.exists() or force:
            store.write_spec(spec.to_dict())
        ledger = store.read_ledger(columns=["run_id", "status"])
        quarantined = store.quarantine(p for p, _ in ledger.corrupt) if ledger.corrupt else []
        for path, err in ledger.corrupt:
            echo(f"warning: unreadable run file moved to quarantine/, its run runs again: {path} ({err})")
        plan = make_plan(spec, store, retry_failed)
        already = len(plan.runs) - len(plan.pending)
        echo(f"sweep {spec.name!r} (task {spec.task}): {len(plan.runs)} runs planned, {already} already done, "
             f"{len(plan.pending)} to run in {len(plan.trials)} trials -> {store.uri}")
        runner = TrialRunner(store_uri=store.uri, sweep=spec.name, cpus_per_trial=spec.resources.cpus,
                             data_root=data_root or os.environ.get("SYMSWEEP_DATA"),
                             git_commit=git_commit(), retry_failed=retry_failed)
        progress = Progress(spec.name, total=len(plan.runs), already_done=already)
        kwargs = {} if executor == "inline" else dict(
            resources=spec.resources, max_failures=spec.max_failures, address=address,
            max_concurrent=max_concurrent, num_cpus=num_cpus, verbose=verbose, experiment_name=spec.name)
        report = make_executor(executor, **kwargs).execute(plan.trials, runner, progress) if plan.trials \
            else ExecutionReport()
        if plan.trials:
            progress.close()
        after = make_plan(spec, store, retry_failed=False)
        return SweepOutcome(plan=after, report=report, counts=after.counts(), quarantined=quarantined)
    finally:
        store.release_lock()


def open_sweep(path: str) -> tuple[SweepSpec, SweepStore]:
    """The frozen spec and store of an existing sweep folder."""
    store = SweepStore(path)
    if not store.exists():
        raise StoreError(f"{path} is not a sweep folder (no spec.yaml); expected RESULTS/<sweep name>")
    spec = spec_from_dict(store.read_spec(), source=f"{store.uri}/spec.yaml")
    return spec, store


def status_table(plan: Plan, slowest: int = 5) -> tuple[dict[str, int], pd.DataFrame, pd.DataFrame]:
    """(counts, slowest runs, failed runs) of a sweep, read-only."""
    counts = plan.counts()
    runs = plan.store.read_runs()
    if runs.empty:
        empty = pd.DataFrame()
        return counts, empty, empty
    runs = runs[runs["run_id"].isin({r.run_id for r in plan.runs})]
    cols = [c for c in ("run_id", "seed", "status", "duration_s", "device") if c in runs]
    slow = runs.sort_values("duration_s", ascending=False).head(slowest)[cols]
    failed = runs[runs["status"].isin(["failed", "diverged"])][
        [c for c in ("run_id", "seed", "status", "error") if c in runs]]
    return counts, slow, failed
