"""A cheap synthetic task for the orchestrator's own tests and benchmarks.

A run fits a noisy linear regression with a few steps of gradient descent in numpy:
real, seeded, reproducible arithmetic that costs well under a millisecond, so that
tests and `bench/overhead.py` measure the orchestration, not the training. Knobs let
tests make a run sleep, raise or diverge on chosen seeds.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from symsweep.api import RunContext, RunResult, Task


@dataclass(frozen=True)
class SyntheticConfig:
    n_features: int = 4
    """Number of regression features."""
    n_samples: int = 64
    """Number of generated samples."""
    steps: int = 20
    """Gradient-descent steps."""
    lr: float = 0.1
    """Learning rate of the gradient descent."""
    sleep_s: float = 0.0
    """Extra wall time per run, in seconds (to make runs slow on purpose in tests)."""
    fail_seeds: tuple[int, ...] = ()
    """Seeds whose run raises RuntimeError (tests of failure rows)."""
    diverge_seeds: tuple[int, ...] = ()
    """Seeds whose loss is made NaN (tests of `diverged` rows)."""

    # Budgets no one can mean (steps: 99999999999999999999999) are refused when a spec is read,
    # naming the range. A class attribute, not a field: run ids hash the fields only.
    BUDGET_RANGES = {"steps": (1, 10_000_000), "n_samples": (1, 10_000_000), "n_features": (1, 100_000)}

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")


def run(config: SyntheticConfig, seed: int, ctx: RunContext) -> RunResult:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(config.n_samples, config.n_features))
    w_true = rng.normal(size=config.n_features)
    y = x @ w_true + 0.1 * rng.normal(size=config.n_samples)
    w = np.zeros(config.n_features)
    if config.sleep_s:
        time.sleep(config.sleep_s)
    if seed in config.fail_seeds:
        raise RuntimeError(f"synthetic failure requested for seed {seed}")
    loss = float("nan")
    for step in range(config.steps):
        resid = x @ w - y
        loss = float(np.mean(resid**2))
        w -= config.lr * 2 * x.T @ resid / config.n_samples
        if seed in config.diverge_seeds:
            loss = float("nan")
        if step % 5 == 0 or step == config.steps - 1:
            ctx.log(step, loss=loss)
    ctx.save_artifact("weights", {"w": w})
    return RunResult(metrics={"loss": loss, "weight_error": float(np.linalg.norm(w - w_true))})


def _cost(config) -> float:
    """The relative cost of a run for `symsweep plan`: its time scales with the steps."""
    return config.steps


TASK = Task(
    name="synthetic",
    config_cls=SyntheticConfig,
    run=run,
    summary_metrics=("loss",),
    description="cheap seeded linear regression for tests and overhead benchmarks",
    uses_torch=False,
    cost=_cost,
)
