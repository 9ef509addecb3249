"""The driver: plan a sweep against its ledger, execute what is missing, summarize.

plan   = expand the spec into runs, read the ledger, keep the runs without a final row
         (or whose history/artifacts are damaged), pack them into trials.
run    = check everything that can fail up front (spec, store, cluster), then lock the
         sweep, freeze its spec, execute the plan, fold finished runs into segments,
         release the lock.
status = the same plan, read-only.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from symsweep.errors import SpecChangedError, StoreError
from symsweep.executors import ExecutionReport, Executor
from symsweep.progress import Progress
from symsweep.spec import RunSpec, SweepSpec, Trial, canonical_json, describe_changes, expand, pack, spec_from_dict
from symsweep.store import COMPACT_EVERY, Damage, OutputCheck, SweepStore, damage_lines
from symsweep.tracking import Trackers
from symsweep.worker import TrialRunner, git_commit
from symsweep.api import COMPLETED, DIVERGED, FAILED

FINAL = (COMPLETED, FAILED, DIVERGED)


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
    """(path, error) of run and history files that could not be read whole."""
    damaged: list[Damage] = field(default_factory=list)
    """Planned runs with a final row whose history or artifacts are missing or damaged."""
    adaptive: Any = None
    """For adaptive seeds: the rounds replayed against the ledger (symsweep.adaptive.AdaptivePlan)."""

    def count(self, status: str) -> int:
        return sum(1 for s in self.status.values() if s == status)

    def counts(self) -> dict[str, int]:
        return {"planned": len(self.runs), "completed": self.count(COMPLETED), "failed": self.count(FAILED),
                "diverged": self.count(DIVERGED), "pending": len(self.runs) - len(self.status)}


@dataclass(frozen=True)
class RunOptions:
    """How `run_sweep` treats what the ledger already holds."""

    retry_failed: bool = False
    """Run failed runs again (default: a failed row is final)."""
    force: bool = False
    """Re-plan a sweep folder that was started with another spec (its rows are kept)."""
    force_unlock: bool = False
    """Take the lock even if another driver (on another host) holds it."""
    data_root: str | None = None
    """Root of local datasets, passed to every run as `ctx.data_root`."""
    compact_every: int = COMPACT_EVERY
    """Fold finished runs into a segment whenever this many small run files have piled up."""
    verify: bool = False
    """Read every artifact and compare its sha256 with its row (default: sizes only)."""


def make_plan(spec: SweepSpec, store: SweepStore, retry_failed: bool = False, check_outputs: bool = True,
              verify: bool = False, runs: list[RunSpec] | None = None) -> Plan:
    """The runs of `spec` that `store` still lacks. `check_outputs`: a run whose history or
    artifacts do not match its row counts as missing (`verify`: compare every artifact's sha256)."""
    runs = expand(spec) if runs is None else runs  # `runs`: expand(spec) computed already
    columns = ["run_id", "status", "attempt", "history_rows", "artifact_bytes", "artifact_digests"]
    if spec.adaptive is not None:
        columns.append(f"metric_{spec.adaptive.metric}")
    ledger = store.read_ledger(columns=columns, verify=check_outputs)
    rows = ledger.runs
    adaptive = None
    if spec.adaptive is not None:  # the runs the rounds so far need, replayed from the rows
        runs, adaptive = _adaptive_runs(spec, runs, rows)
    planned = {r.run_id for r in runs}
    ids = rows["run_id"].to_numpy(dtype=object)
    mine = np.fromiter((i in planned for i in ids), bool, len(ids))
    checked = store.check_outputs(rows[mine], full=verify) if check_outputs and mine.any() else OutputCheck()
    damaged = checked.damaged
    broken = {d.run_id for d in damaged}
    status = {rid: s for rid, s in zip(ids[mine], rows["status"].to_numpy(dtype=object)[mine])
              if rid not in broken}
    done = (COMPLETED, DIVERGED) if retry_failed else FINAL
    pending = [r for r in runs if status.get(r.run_id) not in done]
    attempts = {}
    if pending and "attempt" in rows:  # carried into the trials, so that a re-run counts on
        wanted = {r.run_id for r in pending}
        attempts = {rid: int(a) for rid, a in zip(ids, rows["attempt"].to_numpy()) if rid in wanted and a == a}
    return Plan(spec=spec, store=store, runs=runs, status=status, pending=pending,
                trials=pack(pending, spec.runs_per_trial, attempts),
                extra_rows=int(len(ids) - mine.sum()), corrupt=ledger.corrupt + checked.unreadable, damaged=damaged,
                adaptive=adaptive)


def _adaptive_runs(spec: SweepSpec, runs: list[RunSpec], rows: pd.DataFrame):
    """The runs the adaptive rounds need now, and the rounds' state."""
    from symsweep.adaptive import plan_rounds
    by_id = {r.run_id: r for r in runs}
    metric = f"metric_{spec.adaptive.metric}"
    values, final = {}, set()
    if not rows.empty:
        metric_values = rows[metric].to_numpy(dtype=float) if metric in rows else np.full(len(rows), np.nan)
        for rid, status, value in zip(rows["run_id"], rows["status"], metric_values):
            r = by_id.get(rid)
            if r is None or status not in FINAL:
                continue
            final.add((r.point_id, r.seed))
            if status == COMPLETED and np.isfinite(value):
                values[(r.point_id, r.seed)] = float(value)
    points = list(dict.fromkeys((r.point_id, None) for r in runs))
    configs = {r.point_id: r.config for r in runs}
    rounds = plan_rounds(spec.adaptive, [(p, configs[p]) for p, _ in points], values, final)
    return [r for r in runs if r.seed < rounds.seeds[r.point_id]], rounds


def check_frozen_spec(spec: SweepSpec, store: SweepStore, force: bool) -> None:
    """Refuse to resume a sweep folder with a spec that plans other runs, unless forced."""
    if not store.exists():
        return
    frozen = store.read_spec()
    try:
        old = spec_from_dict(frozen, source=store.spec_shown).science()
    except Exception as exc:  # noqa: BLE001 - e.g. the task changed its config fields
        old = {"unreadable": str(exc)}
    new = spec.science()
    if canonical_json(old) != canonical_json(new) and not force:
        changes = describe_changes(old, new)  # summarized: two million seeds are not printed whole
        raise SpecChangedError(
            f"{store.shown} was started with a different spec ({changes}). Runs would mix two sweeps: "
            f"use another --results folder or sweep name, or pass --force to re-plan with the new spec "
            f"(existing rows are kept)."
        )


@dataclass
class SweepOutcome:
    plan: Plan
    report: ExecutionReport
    counts: dict[str, int]
    quarantined: list[str]


def sweep_location(results: str, name: str) -> str:
    """The sweep folder `name` under a results root (a path or a URI, its query kept last)."""
    from symsweep._fs import parse_location
    return parse_location(results).join(name).uri


class Compactor:
    """Folds the run files of finished trials into segments as the sweep goes (driver side).

    Only finished trials' runs are folded: a live trial may still write its runs' files,
    and a retried trial looks for its finished runs' own files to skip them.
    """

    def __init__(self, store: SweepStore, every: int, by_trial: dict[str, list[str]]):
        self.store, self.every, self.by_trial = store, every, by_trial
        self.ready: list[str] = []
        self.last = time.monotonic()

    def trial_done(self, trial_id: str) -> None:
        self.ready += self.by_trial.get(trial_id, [])
        if len(self.ready) >= self.every:
            self.flush()

    def flush(self) -> None:
        if self.ready:
            ready, self.ready = self.ready, []
            self.store.compact(ready)


def run_sweep(spec: SweepSpec, store: SweepStore | str, executor: Executor, options: RunOptions = RunOptions(),
              echo: Callable[[str], None] = print) -> SweepOutcome:
    """Run what the sweep folder `store` is missing of `spec`; see the module docstring."""
    store = store if isinstance(store, SweepStore) else SweepStore(store)
    store.check_reachable()
    check_frozen_spec(spec, store, options.force)  # early, before a cluster is started
    runs = expand(spec)
    preview = make_plan(spec, store, options.retry_failed, check_outputs=False, runs=runs)
    if preview.trials or preview.corrupt:
        executor.prepare()  # a cluster that cannot run the trials fails here, before anything is written
    try:
        stale = store.acquire_lock(force=options.force_unlock)
        try:
            # again under the lock: another driver may have frozen another spec in between
            check_frozen_spec(spec, store, options.force)
            _note_takeover(stale, echo)
            plan, quarantined = _prepare(spec, store, options, echo, runs)
            return _execute_rounds(spec, store, executor, options, echo, runs, plan, quarantined)
        finally:
            store.release_lock()
    finally:
        executor.close()


def _note_takeover(stale: dict, echo: Callable[[str], None]) -> None:
    if stale.get("unreadable"):
        echo("note: took over an unreadable lock file (a lock is written whole, so it was no live driver's)")
    elif stale.get("forced"):
        echo(f"note: took over the lock of pid {stale.get('pid')} on {stale.get('host')} (--force-unlock)")
    elif stale.get("stale"):
        why = stale["stale"] if isinstance(stale["stale"], str) else "that driver is gone"
        echo(f"note: took over a stale lock of pid {stale.get('pid')} on {stale.get('host')} ({why})")


def _prepare(spec, store, options, echo, runs) -> tuple[Plan, list[str]]:
    """Under the lock: clear killed writers' leftovers, freeze the spec, plan, and set
    unreadable or damaged files aside (their runs run again)."""
    leftovers = store.remove_temp_files()
    if leftovers:
        echo(f"note: removed {len(leftovers)} temp files that killed writers left behind")
    if not store.exists() or options.force:
        store.write_spec(spec.to_dict())
    plan = make_plan(spec, store, options.retry_failed, verify=options.verify, runs=runs)
    quarantined = store.quarantine(p for p, _ in plan.corrupt) if plan.corrupt else []
    if plan.damaged:
        quarantined += store.set_aside(plan.damaged)
    for line in damage_lines(plan.corrupt, plan.damaged, store.shown_path,
                             "moved to quarantine/, its runs run again"):
        echo(f"warning: {line}")
    if quarantined:
        plan = make_plan(spec, store, options.retry_failed, runs=runs)
    already = len(plan.runs) - len(plan.pending)
    echo(f"sweep {spec.name!r} (task {spec.task}): {len(plan.runs)} runs planned, {already} already done, "
         f"{len(plan.pending)} to run in {len(plan.trials)} trials -> {store.shown}")
    return plan, quarantined


def _execute_rounds(spec, store, executor, options, echo, runs, plan, quarantined) -> SweepOutcome:
    """Execute the plan (and, for adaptive seeds, the rounds after it), folding as trials end."""
    report = ExecutionReport()
    runner = TrialRunner(store_uri=store.uri, sweep=spec.name, cpus_per_trial=spec.resources.cpus,
                         gpus_per_trial=spec.resources.gpus,
                         data_root=options.data_root, git_commit=git_commit(), retry_failed=options.retry_failed,
                         trackers=Trackers(spec.tracking, spec.name) if spec.tracking else None)
    after = plan
    while plan.trials:
        progress = Progress(spec.name, total=len(plan.runs), already_done=len(plan.runs) - len(plan.pending))
        compactor = Compactor(store, options.compact_every,
                              {t.trial_id: [rid for rid, _ in t.runs] for t in plan.trials})
        try:
            report = report.merge(executor.execute(plan.trials, runner, progress,
                                                   on_trial_done=compactor.trial_done))
        finally:
            progress.close()
        store.compact()  # everything: no trial is live any more
        # the counts after the round (damage was repaired above; what just ran was written whole)
        after = make_plan(spec, store, retry_failed=False, check_outputs=False, runs=runs)
        if spec.adaptive is None or len(after.runs) <= len(plan.runs) or report.lost_trials:
            break
        # adaptive seeds: the comparisons still open get the next seeds (a plan against the ledger)
        plan = make_plan(spec, store, options.retry_failed, check_outputs=False, runs=runs)
        echo(f"next round: {len(plan.pending)} runs for {adaptive_open(plan)} comparisons still open")
    if not plan.trials:
        store.compact()
    return SweepOutcome(plan=after, report=report, counts=after.counts(), quarantined=quarantined)


def adaptive_open(plan: Plan) -> int:
    from symsweep.adaptive import OPEN
    return sum(d.state == OPEN for d in plan.adaptive.decisions.values()) if plan.adaptive else 0


def open_sweep(path: str) -> tuple[SweepSpec, SweepStore]:
    """The frozen spec and store of an existing sweep folder."""
    store = SweepStore(path)
    store.check_reachable()
    if not store.exists():
        raise StoreError(f"{path} is not a sweep folder (no spec.yaml); expected RESULTS/<sweep name>")
    spec = spec_from_dict(store.read_spec(), source=store.spec_shown)
    return spec, store


def status_table(plan: Plan, slowest: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(slowest runs, failed or diverged runs) among the planned runs, read-only."""
    import pyarrow as pa
    import pyarrow.compute as pc
    table, _ = plan.store.read_ledger_arrow(columns=["run_id", "seed", "status", "duration_s", "device", "error"])
    if table is None or not plan.status:
        return pd.DataFrame(), pd.DataFrame()
    table = table.filter(pc.is_in(table.column("run_id"), value_set=pa.array(list(plan.status), pa.string())))
    cols = [c for c in ("run_id", "seed", "status", "duration_s", "device") if c in table.column_names]
    slow = pd.DataFrame()
    if slowest > 0 and "duration_s" in table.column_names:
        top = pc.select_k_unstable(table, k=min(slowest, table.num_rows), sort_keys=[("duration_s", "descending")])
        slow = table.take(top).select(cols).to_pandas()
    bad = table.filter(pc.is_in(table.column("status"), value_set=pa.array([FAILED, DIVERGED])))
    failed = bad.select([c for c in ("run_id", "seed", "status", "error") if c in bad.column_names]).to_pandas()
    return slow, failed
