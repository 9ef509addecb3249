"""Aggregation driver: runs table -> summary tables under the sweep's aggregates/.

The generic summary groups completed runs by the config columns that vary in the sweep
and reports mean ± std over seeds of each metric. A sweep with a baseline (the spec's
`baseline:`, else its adaptive seeds', else the task's) gets a `comparison` table
(symsweep.compare). A task can add its own tables
(`Task.aggregate`); they are written next to the summary.
"""
from __future__ import annotations

import sys
from typing import Callable

import pandas as pd

from symsweep.compare import comparison_table
from symsweep.stats import completed, describe, varying_config_columns
from symsweep.registry import get_task
from symsweep.spec import SweepSpec, build_settings
from symsweep.store import SweepStore, runs_fingerprint


def summary_table(runs: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """Mean, std and count over seeds of each metric, per combination of varying config values."""
    done = completed(runs)
    if done.empty:
        return pd.DataFrame()
    metric_cols = [f"metric_{m}" for m in metrics] if metrics else [c for c in done if c.startswith("metric_")]
    metric_cols = [c for c in metric_cols if c in done]
    group = varying_config_columns(done)
    rows = []
    grouped = done.groupby(group, dropna=False, sort=True) if group else [((), done)]
    for key, part in grouped:
        key = key if isinstance(key, tuple) else (key,)
        row = {g[4:]: k for g, k in zip(group, key)}
        row["n"] = len(part)
        for c in metric_cols:
            d = describe(part[c], interval=False)  # std over seeds: ddof 1, NaN for one seed
            row[f"{c[7:]}_mean"], row[f"{c[7:]}_std"] = d["mean"], d["std"]
        rows.append(row)
    return pd.DataFrame(rows)


def mean_std(mean: float, std: float) -> str:
    """`mean ± std` as every table of symsweep prints it (just the mean with one seed)."""
    return f"{mean:.4g} ± {std:.2g}" if std == std else f"{mean:.4g}"


def format_summary(table: pd.DataFrame, metrics: list[str]) -> str:
    """The summary as aligned text: config columns, n, and `mean ± std` per metric."""
    if table.empty:
        return "(no completed runs)"
    shown = pd.DataFrame()
    for c in table.columns:
        if c == "n" or not (c.endswith("_mean") or c.endswith("_std")):
            shown[c] = table[c]
    for m in metrics:
        if f"{m}_mean" in table:
            shown[m] = [mean_std(mu, sd) for mu, sd in zip(table[f"{m}_mean"], table[f"{m}_std"])]
    return shown.to_string(index=False)


def aggregate_sweep(spec: SweepSpec, store: SweepStore, figures: bool = True,
                    warn: Callable[[str], None] | None = None) -> dict[str, pd.DataFrame]:
    """Write `summary` and the task's own tables (and figures) under aggregates/; return the tables.
    Files that cannot be read are left out and named through `warn` (default: stderr)."""
    warn = warn or _stderr
    task = get_task(spec.task)
    ledger = store.read_ledger()
    runs = ledger.runs
    for path, err in ledger.corrupt:
        warn(f"warning: unreadable run file left out of the aggregates: {store.shown_path(path)} ({err}); "
             f"`symsweep resume` re-runs its run")
    tables = {"summary": summary_table(runs, list(task.summary_metrics) or None)}
    baseline = spec.comparison_baseline()  # the spec's `baseline:`, else its adaptive seeds', else the task's
    if baseline and not runs.empty:
        # baseline vs each other level of its axis; none when the sweep does not vary that axis
        comparison = comparison_table(runs, baseline, list(task.summary_metrics) or None, task.unused_at(baseline))
        if spec.adaptive is not None:  # seeds were spent by rounds: say where each comparison stopped
            from symsweep.adaptive import decision_table, mark_comparison
            from symsweep.sweep import make_plan
            plan = make_plan(spec, store, check_outputs=False)
            tables["adaptive"] = decision_table(spec, plan.runs, plan.adaptive)
            comparison = mark_comparison(comparison, tables["adaptive"], next(iter(baseline)))
        if not comparison.empty:
            tables["comparison"] = comparison
    history = None
    if task.aggregate is not None and not runs.empty:
        history = _history(store, warn)
        args = (runs, history, store.artifact_loader(runs))
        if task.aggregate_config is not None:  # tasks without settings take three arguments
            args += (build_settings(task, spec.aggregate),)
        tables.update(task.aggregate(*args))
    sources = runs_fingerprint(runs)  # recorded in every table: `symsweep reproduce` refuses a stale one
    for name, df in tables.items():
        if not df.empty:
            store.write_aggregate(name, df, sources)
    if figures and task.figures is not None and not runs.empty:
        history = _history(store, warn) if history is None else history
        save_figures(store, task.figures(tables, runs, history))
    return tables


def _history(store: SweepStore, warn: Callable[[str], None]) -> pd.DataFrame:
    history, corrupt = store.read_history_checked()
    for path, err in corrupt:
        warn(f"warning: unreadable history file left out of the aggregates: {store.shown_path(path)} ({err})")
    return history


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def save_figures(store: SweepStore, figs: dict) -> list[str]:
    """Save matplotlib figures as aggregates/figures/<name>.png (atomically)."""
    import io

    paths = []
    for name, fig in figs.items():
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
        paths.append(store.write_file(f"aggregates/figures/{name}.png", buf.getvalue()))
    return paths
