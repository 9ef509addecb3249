"""What a trial's worker records: non-finite metrics, batches (their errors, time and memory), machine facts."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
import torch

import symsweep.worker as worker
from symsweep import SweepStore, TrialRunner
from symsweep.spec import Trial, run_id
from symsweep.tracking import Trackers
from symsweep import COMPLETED, DIVERGED, RunResult, Task


@dataclass(frozen=True)
class FakeConfig:
    value: float = 1.0
    """What the fake task reports as its metric (NaN, inf, ...)."""


def _trial(task: Task, seeds=(0, 1, 2), config: dict | None = None) -> Trial:
    config = config or {"value": 1.0}
    return Trial(trial_id="t0", task=task.name, config=config,
                 runs=tuple((run_id(task.name, config, s), s) for s in seeds))


def _execute(monkeypatch, tmp_path, task: Task, trial: Trial, **runner_kw):
    monkeypatch.setattr(worker, "get_task", lambda name: task)
    store = SweepStore(str(tmp_path / "w"))
    TrialRunner(store_uri=store.uri, sweep="w", **runner_kw)(trial)
    return store, store.read_runs().set_index("seed").sort_index()


# ----------------------------------------------------------------------------- non-finite metrics

NONFINITE = [float("nan"), -math.inf, np.float32("nan"), np.float64("inf"), np.array(np.nan), np.float16("-inf"),
             torch.tensor(float("nan")), torch.tensor(float("inf"), dtype=torch.float64)]
FINITE = [0.5, 3, 10**400, True, None, np.float32(1.5), np.int64(7), np.array(2.0), torch.tensor(0.25),
          torch.tensor(4)]


@pytest.mark.parametrize("value", NONFINITE, ids=repr)
def test_a_nonfinite_metric_of_any_numeric_type_is_detected(value):
    result = RunResult(metrics={"ok": 1.0, "bad": value})
    assert result.has_nonfinite_metric()
    assert result.nonfinite_metrics() == ["bad"]


@pytest.mark.parametrize("value", FINITE, ids=repr)
def test_finite_numbers_of_any_type_are_not_flagged(value):
    assert not RunResult(metrics={"m": value}).has_nonfinite_metric()


@pytest.mark.parametrize("value", [np.float32("nan"), np.array(np.inf), torch.tensor(float("nan"))], ids=repr)
def test_a_run_with_a_numpy_or_torch_nan_metric_is_recorded_diverged(monkeypatch, tmp_path, value):
    task = Task(name="fake", config_cls=FakeConfig, uses_torch=False,
                run=lambda config, seed, ctx: RunResult(metrics={"acc": 0.9, "loss": value}))
    _, runs = _execute(monkeypatch, tmp_path, task, _trial(task, seeds=(0,)))
    assert runs.loc[0, "status"] == DIVERGED
    assert runs.loc[0, "error"] == "non-finite metrics: loss"


# ----------------------------------------------------------------------------- batches


class RecordingTrackers(Trackers):
    """Trackers that record every start, log and end (no client)."""

    def __init__(self):
        super().__init__({"recording": True}, "w")
        self.events: list[tuple] = []

    def start(self, run):
        events = self.events
        events.append(("start", run.run_id))

        class Run:
            def log(self, step, metrics):
                events.append(("log", run.run_id, step))

            def end(self, status, metrics, error):
                events.append(("end", run.run_id, status))
        return Run()


def _single(config, seed, ctx):
    ctx.log(0, loss=1.0 + seed)
    return RunResult(metrics={"loss": 1.0 + seed})


def _batch_that_fails_after_one_seed(config, seeds, ctx_for_seed):
    for s in seeds:
        ctx_for_seed(s).log(0, loss=-1.0)  # partial history of the batch: must not reach the fallback's rows
    yield seeds[0], RunResult(metrics={"loss": -1.0})
    raise RuntimeError("batch blew up")


def test_a_batch_error_is_recorded_on_the_runs_that_fall_back_and_their_trackers_are_reused(monkeypatch, tmp_path,
                                                                                            capsys):
    task = Task(name="fake", config_cls=FakeConfig, uses_torch=False, run=_single,
                run_many=_batch_that_fails_after_one_seed)
    trackers = RecordingTrackers()
    store, runs = _execute(monkeypatch, tmp_path, task, _trial(task), trackers=trackers)

    assert (runs["status"] == COMPLETED).all()
    assert pd.isna(runs.loc[0, "batch_error"]) and runs.loc[0, "batch_size_runs"] == 3  # finished in the batch
    for seed in (1, 2):
        assert runs.loc[seed, "batch_error"] == "RuntimeError: batch blew up"
        assert runs.loc[seed, "batch_size_runs"] == 1 and runs.loc[seed, "metric_loss"] == 1.0 + seed
    history = store.read_history().set_index("run_id")
    for seed in (1, 2):  # the fallback's own history, not the batch's partial one
        assert history.loc[[runs.loc[seed, "run_id"]], "value"].tolist() == [1.0 + seed]
    assert "batch blew up" in capsys.readouterr().err  # its traceback, where the worker's log is

    started = [e[1] for e in trackers.events if e[0] == "start"]
    ended = [(e[1], e[2]) for e in trackers.events if e[0] == "end"]
    assert sorted(started) == sorted(runs["run_id"])  # one tracker run per run: none started twice
    assert sorted(ended) == sorted((rid, COMPLETED) for rid in runs["run_id"])


def test_a_seed_the_batch_leaves_without_a_result_says_so(monkeypatch, tmp_path):
    def skip_last(config, seeds, ctx_for_seed):
        for s in seeds[:-1]:
            yield s, RunResult(metrics={"loss": 0.0})
    task = Task(name="fake", config_cls=FakeConfig, uses_torch=False, run=_single, run_many=skip_last)
    _, runs = _execute(monkeypatch, tmp_path, task, _trial(task))
    assert runs["batch_error"].fillna("").tolist() == ["", "", "run_many gave no result for this seed"]
    assert (runs["status"] == COMPLETED).all()


def test_batched_runs_share_the_batch_time_and_record_its_memory_once(monkeypatch, tmp_path):
    def ensemble(config, seeds, ctx_for_seed):
        time.sleep(0.3)  # every seed trains together, then all come out at once
        for s in seeds:
            yield s, RunResult(metrics={"loss": 0.0})
    peaks = iter([9999.0, 700.0, 30.0, 20.0])  # the first call, at the batch's start, clears what came before
    monkeypatch.setattr(worker, "peak_memory_mb", lambda device: next(peaks))
    task = Task(name="fake", config_cls=FakeConfig, uses_torch=False, run=_single, run_many=ensemble)
    _, runs = _execute(monkeypatch, tmp_path, task, _trial(task))

    batch = runs["batch_duration_s"]
    assert (batch >= 0.3).all() and batch.max() - batch.min() < 0.05
    assert runs["duration_s"].sum() == pytest.approx(batch.max(), abs=1e-6)  # they add up to the batch
    # each seed's share of the 0.3 s they trained together; what follows (writing each run's
    # files, fsynced) is split among the seeds still waiting, so later ones get a little more
    assert 0.3 / 3 * 0.95 <= runs["duration_s"].min() <= batch.max() / 3 + 1e-9
    assert runs["peak_gpu_mem_mb"].isna().all()  # no seed's own figure: the batch's, in its own column
    assert runs["batch_peak_gpu_mem_mb"].tolist() == [700.0, 700.0, 700.0]


def test_a_single_run_has_no_batch_figures(monkeypatch, tmp_path):
    peaks = iter([9999.0, 42.0])
    monkeypatch.setattr(worker, "peak_memory_mb", lambda device: next(peaks))
    task = Task(name="fake", config_cls=FakeConfig, uses_torch=False, run=_single)
    _, runs = _execute(monkeypatch, tmp_path, task, _trial(task, seeds=(0,)))
    row = runs.loc[0]
    assert row["batch_size_runs"] == 1 and row["peak_gpu_mem_mb"] == 42.0
    assert row[["batch_duration_s", "batch_peak_gpu_mem_mb", "batch_error"]].isna().all()


# ----------------------------------------------------------------------------- the machine a run ran on


def test_rows_say_which_cpu_and_how_many_threads(monkeypatch, tmp_path, one_torch_thread):
    torch_task = Task(name="fake", config_cls=FakeConfig, run=_single)
    _, runs = _execute(monkeypatch, tmp_path, torch_task, _trial(torch_task, seeds=(0,)), cpus_per_trial=1)
    row = runs.loc[0]
    assert isinstance(row["cpu_model"], str) and row["cpu_model"]
    assert row["torch_threads"] == 1
    assert isinstance(row["blas"], str) and row["blas_threads"] >= 1

    numpy_task = Task(name="fake", config_cls=FakeConfig, run=_single, uses_torch=False)
    _, runs = _execute(monkeypatch, tmp_path / "np", numpy_task, _trial(numpy_task, seeds=(0,)))
    assert pd.isna(runs.loc[0, "torch_threads"])
