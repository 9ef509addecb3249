"""Export a sweep after the fact: TensorBoard event files, or a replay into MLflow.

    symsweep export tensorboard RESULTS/SWEEP --out LOGDIR     then: tensorboard --logdir LOGDIR
    symsweep export mlflow RESULTS/SWEEP --uri URI [--experiment NAME]

TensorBoard: one run folder per symsweep run (`<config that varies>-seed<seed>-<run id>`),
each history metric as a scalar series, and the hparams plugin's data (the resolved config
and the final metrics), so the HPARAMS tab compares the runs. MLflow: the same runs as live
tracking makes (one mapping, in symsweep.tracking: run name, tags, params, metrics,
status), plus the tag symsweep.exported, from the ledger, with the runs' own start and end times;
runs whose symsweep run id the experiment already holds (ended) are skipped, so an export
can be repeated.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any

import pandas as pd

from symsweep.stats import varying_config_columns
from symsweep.store import SweepStore
from symsweep.tracking import (RunInfo, mlflow_client, mlflow_end_run, mlflow_experiment, mlflow_final_points,
                               mlflow_log_points, mlflow_points, mlflow_start_run, require)


def _config(row: pd.Series) -> dict[str, Any]:
    return json.loads(row["config_json"]) if isinstance(row.get("config_json"), str) else {}


def _run_info(row: pd.Series) -> RunInfo:
    """The facts of a ledger row's run, as live tracking saw them on its worker."""
    commit, attempt = row.get("git_commit"), pd.to_numeric(row.get("attempt"), errors="coerce")
    return RunInfo(run_id=str(row["run_id"]), sweep=str(row.get("sweep")), task=str(row.get("task")),
                   seed=int(row["seed"]), trial_id=str(row.get("trial_id")),
                   attempt=0 if pd.isna(attempt) else int(attempt),  # rows from before the column
                   config=_config(row), host=str(row.get("host")), git_commit=commit if isinstance(commit, str) else None)


def _final_metrics(row: pd.Series) -> dict[str, float]:
    out = {}
    for c, v in row.items():
        if c.startswith("metric_") and v is not None and not (isinstance(v, float) and math.isnan(v)):
            out[c[7:]] = float(v)
    return out


def _run_name(row: pd.Series, varying: list[str]) -> str:
    parts = [f"{c[4:]}={row[c]}" for c in varying]
    return "-".join([*parts, f"seed{row['seed']}", str(row["run_id"])[:8]]).replace("/", "_")


# ----------------------------------------------------------------------------- TensorBoard


def export_tensorboard(store: SweepStore, out: str) -> int:
    """Write one TensorBoard run per symsweep run under `out`; return how many."""
    from tensorboardX import SummaryWriter
    from tensorboardX.summary import hparams

    runs = store.read_runs()
    if runs.empty:
        return 0
    history = store.read_history()
    by_run = dict(tuple(history.groupby("run_id"))) if not history.empty else {}
    varying = varying_config_columns(runs)
    for _, row in runs.iterrows():
        writer = SummaryWriter(logdir=os.path.join(out, _run_name(row, varying)))
        part = by_run.get(row["run_id"])
        if part is not None:
            for step, metric, value in zip(part["step"], part["metric"], part["value"]):
                writer.add_scalar(metric, float(value), int(step))
        config = {k: (v if isinstance(v, (int, float, str, bool)) else json.dumps(v))
                  for k, v in _config(row).items()}
        config.update(seed=int(row["seed"]), status=str(row["status"]))
        finals = {f"final/{k}": v for k, v in _final_metrics(row).items()}
        for summary in hparams(config, finals):
            writer.file_writer.add_summary(summary)
        for k, v in finals.items():
            writer.add_scalar(k, v, 0)
        writer.close()
    return len(runs)


# ----------------------------------------------------------------------------- MLflow


def export_mlflow(store: SweepStore, uri: str, experiment: str | None = None) -> tuple[int, int]:
    """Replay a sweep's runs into MLflow; return (exported, skipped as already there)."""
    require("mlflow", extra="mlflow", what="export mlflow")
    runs = store.read_runs()
    if runs.empty:
        return 0, 0
    spec_name = str(runs["sweep"].iloc[0]) if "sweep" in runs else store.location.name
    client = mlflow_client(uri)
    experiment_id = mlflow_experiment(client, uri, experiment or spec_name)
    there = {r.data.tags.get("symsweep.run_id") for r in client.search_runs(
        [experiment_id], filter_string="attributes.status != 'RUNNING'", max_results=50000)}
    history = store.read_history()
    by_run = dict(tuple(history.groupby("run_id"))) if not history.empty else {}
    exported = skipped = 0
    for _, row in runs.iterrows():
        if row["run_id"] in there:
            skipped += 1
            continue
        started = int(pd.Timestamp(row["started_at"]).timestamp() * 1000) if "started_at" in row else None
        ended = int(pd.Timestamp(row["finished_at"]).timestamp() * 1000) if "finished_at" in row else None
        rid = mlflow_start_run(client, experiment_id, _run_info(row), start_ms=started,
                               extra_tags={"symsweep.exported": "true"})
        points, last = [], 0
        part = by_run.get(row["run_id"])
        if part is not None:
            for step, metric, value in zip(part["step"], part["metric"], part["value"]):
                points += mlflow_points({metric: value}, step, started or 0)
                last = max(last, int(step))
        points += mlflow_final_points(_final_metrics(row), last, started or 0, ended or 0)
        mlflow_log_points(client, rid, points)
        mlflow_end_run(client, rid, str(row["status"]), row["error"] if isinstance(row.get("error"), str) else None,
                       end_ms=ended)
        exported += 1
    return exported, skipped
