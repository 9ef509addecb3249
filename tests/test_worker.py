"""What a trial's worker records: non-finite metrics."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import orchestrator.worker as worker
from orchestrator import SweepStore, TrialRunner
from orchestrator.spec import Trial, run_id
from tasks import DIVERGED, RunResult, Task


@dataclass(frozen=True)
class FakeConfig:
    value: float = 1.0
    """What the fake task reports as its metric (NaN, inf, ...)."""


def _trial(task: Task, seeds=(0, 1, 2), config: dict | None = None) -> Trial:
    config = config or {"value": 1.0}
    return Trial(trial_id="t0", task=task.name, config=config,
                 runs=tuple((run_id(task.name, config, s), s) for s in seeds))


def _execute(monkeypatch, tmp_path, task: Task, trial: Trial, **runner_kw):
    monkeypatch.setattr(worker.task_registry, "get_task", lambda name: task)
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
