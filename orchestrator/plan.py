"""`symsweep plan`: what a `run` would do and what it would cost, before the spend.

A dry run: nothing is written, not even the sweep folder. The counts come from the same
plan `run` makes (expand the spec, diff it with the ledger when the sweep folder exists).
The estimate comes from measured durations, never from a guess:

- the ledger's finished runs of this sweep (their `duration_s`), when there are some;
- else, with `calibrate`, one inline run of the spec's smoke budget in a temporary folder
  (deleted afterwards), scaled to the real budget by the task's cost model (`Task.cost`).

What is estimated is the runs' own time: the sum of the `duration_s` the runs to do would
record. Wall time is a schedule: the trials, in the order `run` submits them, each started
on the first slot that frees up (as Tune starts trials), over the slots this machine has
(its usable CPUs: affinity and cgroup quota, and GPUs, divided by a trial's resources).
Ray's start-up and its bookkeeping per trial (about a second) come on top.
"""
from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass
from typing import Callable

import yaml

from symsweep.errors import SpecChangedError
from symsweep.registry import get_task
from symsweep.spec import RunSpec, SweepSpec, config_from_dict, expand, load_spec, pack
from symsweep.sweep import Plan, _adaptive_runs, check_frozen_spec, make_plan, sweep_location
from symsweep.store import SweepStore
from symsweep.api import COMPLETED

UNCERTAIN = "uncertain by about x2"


@dataclass(frozen=True)
class Rate:
    """Seconds of run time per unit of the task's cost (per run when `scaled` is False)."""

    seconds: float
    scaled: bool
    source: str
    mean_cost: float = 1.0
    """The mean cost of the measured runs (to say how far the estimate scales them)."""


# ----------------------------------------------------------------------------- the plan


def dry_plan(spec: SweepSpec, results: str) -> tuple[Plan, bool, str | None]:
    """(plan against the ledger, whether the sweep folder exists, a note when `run` would
    refuse the folder's frozen spec). An absent folder means nothing done; it is not made."""
    store = SweepStore(sweep_location(results, spec.name))
    if store.exists():
        note = None
        try:
            check_frozen_spec(spec, store, force=False)
        except SpecChangedError as exc:
            note = str(exc)
        return make_plan(spec, store), True, note
    runs, adaptive = expand(spec), None
    if spec.adaptive is not None:  # the first round, against an empty ledger
        import pandas as pd
        runs, adaptive = _adaptive_runs(spec, runs, pd.DataFrame(columns=["run_id", "status"]))
    return Plan(spec=spec, store=store, runs=runs, status={}, pending=runs,
                trials=pack(runs, spec.runs_per_trial, {}), adaptive=adaptive), False, None


def run_costs(spec: SweepSpec, runs: list[RunSpec]) -> list[float] | None:
    """The task's relative cost of each run, or None when the task declares no cost model."""
    task = get_task(spec.task)
    if task.cost is None:
        return None
    by_point: dict[str, float] = {}
    for r in runs:
        if r.point_id not in by_point:
            by_point[r.point_id] = float(task.cost(config_from_dict(task, r.config)))
    return [by_point[r.point_id] for r in runs]


# ----------------------------------------------------------------------------- measured rates


def ledger_rate(spec: SweepSpec, store: SweepStore, runs: list[RunSpec], source: str) -> Rate | None:
    """Seconds per unit cost of the completed runs among `runs`, from their `duration_s`."""
    table = store.read_ledger(columns=["run_id", "status", "duration_s"]).runs
    if table.empty or "duration_s" not in table:
        return None
    durations = {rid: float(d) for rid, s, d in zip(table["run_id"], table["status"], table["duration_s"])
                 if s == COMPLETED and d == d}
    done = [r for r in runs if r.run_id in durations]
    if not done:
        return None
    seconds = sum(durations[r.run_id] for r in done)
    costs = run_costs(spec, done)
    if costs is None:
        return Rate(seconds / len(done), False, source.format(n=len(done)))
    return Rate(seconds / sum(costs), True, source.format(n=len(done)), sum(costs) / len(costs))


def smoke_overrides(spec: SweepSpec) -> list[str]:
    """The spec's `smoke:` section as `key=value` overrides (as the smoke tests apply it)."""
    return [f"{k}={_yaml_value(v)}" for k, v in spec.smoke.items()]


def _yaml_value(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("...\n").strip()


def calibrate(spec_path: str, overrides: list[str], spec: SweepSpec, data_root: str | None,
              echo: Callable[[str], None] = print, extra: list[str] = ()) -> Rate:
    """Run the smoke budget once, inline, into a temporary results folder (deleted afterwards).
    `extra`: overrides on top of the smoke budget (e.g. keep the real dataset, which a smoke
    budget may swap for a bundled one that the cost model cannot scale from)."""
    from symsweep.executors import make_executor
    from symsweep.sweep import RunOptions, run_sweep
    import dataclasses
    smoke_set = smoke_overrides(spec) + list(extra)
    # a plan writes nothing: its smoke runs are mirrored to no tracker (MLflow kept two runs)
    smoke = dataclasses.replace(load_spec(spec_path, list(overrides) + smoke_set), tracking={})
    root = tempfile.mkdtemp(prefix="symsweep-calibrate-")
    try:
        location = sweep_location(root, smoke.name)
        echo(f"calibrating: {len(expand(smoke))} runs of the smoke budget ({', '.join(smoke_set)}), inline, "
             f"in a temporary folder ...")
        run_sweep(smoke, location, make_executor("inline", smoke.resources, smoke.max_failures),
                  RunOptions(data_root=data_root), echo=lambda _line: None)
        store = SweepStore(location)
        what = "a calibration run of the smoke budget ({n} runs)"
        rate = ledger_rate(smoke, store, expand(smoke), what)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if rate is None:
        raise CalibrationFailed("the calibration runs of the smoke budget did not complete; run "
                                f"`symsweep run {spec_path} --executor inline` at the smoke budget to see why")
    if rate.scaled:
        return Rate(rate.seconds, True, rate.source + f", scaled by the task's cost model: {UNCERTAIN}",
                    rate.mean_cost)
    return Rate(rate.seconds, False, rate.source + ", unscaled: the task declares no cost model, so every run "
                "is taken to cost what a smoke run cost (a lower bound when the real budget is larger)")


class CalibrationFailed(RuntimeError):
    pass


# ----------------------------------------------------------------------------- this machine


def slots_here(spec: SweepSpec) -> tuple[int, str]:
    """How many trials fit at once on this machine, and its resources in words (the CPUs this
    process may use: its affinity and cgroup quota, not the machine's count)."""
    from symsweep._machine import usable_cpus
    cpus, why = usable_cpus()
    res = spec.resources
    slots = math.inf if res.cpus == 0 else max(int(cpus // res.cpus), 0)
    gpus = 0
    if res.gpus > 0:
        try:
            import torch
            gpus = torch.cuda.device_count()
        except ImportError:
            gpus = 0
        slots = min(slots, int(gpus // res.gpus) if gpus else 0)
    words = f"{cpus} CPUs" + (f" by its {why}" if why else "") + (f", {gpus} GPUs" if res.gpus > 0 else "")
    return (0 if slots == math.inf else int(slots)), words


def run_seconds(rate: Rate, spec: SweepSpec, runs: list[RunSpec]) -> list[float]:
    """The estimated `duration_s` of each run."""
    costs = run_costs(spec, runs) if rate.scaled else None
    return [rate.seconds * c for c in costs] if costs is not None else [rate.seconds] * len(runs)


def wall_seconds(rate: Rate, spec: SweepSpec, runs: list[RunSpec], slots: int) -> float:
    """When the last trial ends: the trials in submission order, each on the first free slot."""
    each = dict(zip((r.run_id for r in runs), run_seconds(rate, spec, runs)))
    trials = [sum(each[rid] for rid, _ in t.runs) for t in pack(runs, spec.runs_per_trial, {})]
    return schedule_end(trials, slots)


def schedule_end(durations: list[float], slots: int) -> float:
    """The end of a list schedule: jobs in order, each started on the slot that frees first
    (17 one-hour trials on 16 slots end after 2 h, not 17/16 h)."""
    import heapq
    free = [0.0] * max(1, min(slots, len(durations)) if durations else 1)
    for d in durations:
        heapq.heappush(free, heapq.heappop(free) + d)
    return max(free)


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def cost_lines(rate: Rate, spec: SweepSpec, runs: list[RunSpec], slots: int) -> str:
    total = sum(run_seconds(rate, spec, runs))
    res = spec.resources
    hours = f"{total * res.cpus / 3600:.3g} CPU hours" + (f", {total * res.gpus / 3600:.3g} GPU hours"
                                                           if res.gpus else "")
    wall = (f"wall ~{duration(wall_seconds(rate, spec, runs, slots))} with {slots} trial"
            f"{'' if slots == 1 else 's'} at once here"
            if slots else "no wall time here: a trial does not fit on this machine")
    return f"run time {duration(total)} (the runs' summed duration_s), {wall}, {hours}"


# ----------------------------------------------------------------------------- the report


def plan_report(spec_path: str, overrides: list[str], results: str, do_calibrate: bool,
                data_root: str | None, echo: Callable[[str], None] = print, calibrate_overrides: list[str] = ()) -> None:
    spec = load_spec(spec_path, overrides)  # a bad spec or --set fails here, as `run` does
    plan, exists, note = dry_plan(spec, results)
    points = len({r.point_id for r in expand(spec)})
    per = f"{spec.runs_per_trial} run{'s' if spec.runs_per_trial != 1 else ''} per trial"
    seeds = (f"{spec.adaptive.start} to {spec.adaptive.max} seeds (adaptive)" if spec.adaptive is not None
             else f"{len(spec.seeds)} seeds")
    echo(f"sweep {spec.name!r} (task {spec.task}): {points} grid points x {seeds}; {len(plan.runs)} runs "
         f"planned now, {per}")
    if exists:
        c = plan.counts()
        echo(f"ledger {plan.store.shown}: {len(plan.runs) - len(plan.pending)} already done "
             f"({c['completed']} completed, {c['failed']} failed, {c['diverged']} diverged); "
             f"{len(plan.pending)} to run in {len(plan.trials)} trials")
    else:
        echo(f"ledger {plan.store.shown}: does not exist yet, nothing done; {len(plan.pending)} to run "
             f"in {len(plan.trials)} trials")
    if note:
        echo(f"note: `run` would refuse this folder: {note}")
    upper: list[RunSpec] = []
    if spec.adaptive is not None:
        done = {r.run_id for r in plan.runs} - {r.run_id for r in plan.pending}
        upper = [r for r in expand(spec) if r.run_id not in done]
        echo(f"adaptive seeds: this round runs {len(plan.pending)}; if every comparison stays open up to "
             f"{spec.adaptive.max} seeds, {len(upper)} runs in all")
    slots, words = slots_here(spec)
    res = spec.resources
    echo(f"resources per trial: {res.cpus:g} CPU, {res.gpus:g} GPU; this machine ({words}) runs {slots} "
         f"trial{'' if slots == 1 else 's'} at once (plan reads this machine only, not a cluster's --address)")
    if not plan.pending and not upper:
        echo("nothing to run")
        return
    rate = ledger_rate(spec, plan.store, plan.runs, "{n} finished runs of this sweep") if exists else None
    if rate is not None and not rate.scaled:
        rate = Rate(rate.seconds, False, rate.source + " (unscaled: the task declares no cost model; each run "
                    "counted at their mean)")
    if rate is None and do_calibrate:
        try:
            rate = calibrate(spec_path, overrides, spec, data_root, echo, list(calibrate_overrides))
        except CalibrationFailed as exc:
            echo(f"no estimate: {exc}")
            return
    if rate is None:
        echo("no estimate: this sweep has no finished runs yet; pass --calibrate to time one run of its smoke "
             "budget here and scale it by the task's cost model")
        return
    costs = run_costs(spec, upper or plan.pending) if rate.scaled else None
    factor = sum(costs) / len(costs) / rate.mean_cost if costs else 1.0
    if factor > 50 and rate.source.startswith("a calibration"):
        echo(f"note: a run to do costs {factor:.0f}x a calibration run, whose fixed costs (imports, data, "
             f"set-up) are scaled with it: an overestimate; raise the calibration budget with --calibrate-set "
             f"(e.g. more steps or epochs) until it trains for seconds")
    if spec.adaptive is not None:
        echo(f"estimate (from {rate.source}): first round {cost_lines(rate, spec, plan.pending, slots)}")
        echo(f"  up to {spec.adaptive.max} seeds: {cost_lines(rate, spec, upper, slots)}")
    else:
        echo(f"estimate (from {rate.source}): {cost_lines(rate, spec, plan.pending, slots)}")
