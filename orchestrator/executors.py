"""Executors: how trials reach workers. Ray Tune for real sweeps, an inline twin for debugging.

Both take the same trials and the same `TrialRunner`, and report progress the same way;
neither knows anything about a task.
"""
from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Protocol, Sequence

from orchestrator.progress import Progress
from orchestrator.spec import Resources, Trial
from orchestrator.worker import TrialRunner


@dataclass
class ExecutionReport:
    trials: int = 0
    lost_trials: list[str] = field(default_factory=list)
    """Trials that still died after their retries: their unfinished runs stay pending."""


class Executor(Protocol):
    def execute(self, trials: Sequence[Trial], runner: TrialRunner, progress: Progress) -> ExecutionReport:
        ...


# ----------------------------------------------------------------------------- inline


class InlineExecutor:
    """Runs every trial in this process, one after another: for tests and debuggers."""

    name = "inline"

    def execute(self, trials: Sequence[Trial], runner: TrialRunner, progress: Progress) -> ExecutionReport:
        for trial in trials:
            runner(trial, lambda counts, t=trial.trial_id: progress.update(t, counts))
        return ExecutionReport(trials=len(trials))


# ----------------------------------------------------------------------------- ray tune


class RayExecutor:
    """One Tune trial per packed group of runs; Tune schedules them on the Ray cluster.

    With no address an embedded local Ray starts (and stops at the end); with an address
    (or RAY_ADDRESS) the driver joins that cluster, whose workers must see the store.
    """

    name = "ray"

    def __init__(self, resources: Resources, max_failures: int, address: str | None = None,
                 max_concurrent: int | None = None, num_cpus: int | None = None, verbose: bool = False,
                 experiment_name: str = "symsweep"):
        self.resources = resources
        self.max_failures = max_failures
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.max_concurrent = max_concurrent
        self.num_cpus = num_cpus
        self.verbose = verbose
        self.experiment_name = experiment_name

    def execute(self, trials: Sequence[Trial], runner: TrialRunner, progress: Progress) -> ExecutionReport:
        if not trials:
            return ExecutionReport()
        # Tune's per-trial CSV/JSON/TensorBoard loggers cost time and are not our record.
        os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        import ray
        from ray import tune

        started_here = False
        if not ray.is_initialized():
            kwargs = dict(logging_level=logging.INFO if self.verbose else logging.ERROR,
                          log_to_driver=self.verbose, include_dashboard=False)
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                # "local": always a new embedded instance. Without it ray.init() joins the
                # last cluster `ray start` left on this machine, even a dead one.
                ray.init(address="local", num_cpus=self.num_cpus, **kwargs)
            started_here = True
        if not self.verbose:
            logging.getLogger("ray.tune").setLevel(logging.ERROR)
            logging.getLogger("ray.train").setLevel(logging.ERROR)
        try:
            by_id = {t.trial_id: t for t in trials}

            def trainable(config: dict) -> None:
                trial = by_id[config["trial"]]
                last = [0.0]

                # Each tune.report is a round trip to the driver: report at most twice a
                # second, and always the trial's last run.
                def report(counts: dict) -> None:
                    now = time.monotonic()
                    if now - last[0] >= 0.5 or counts["finished"] == counts["trial_runs"]:
                        last[0] = now
                        tune.report(dict(counts))

                runner(trial, report)

            resources = {"cpu": self.resources.cpus, "gpu": self.resources.gpus}
            tuner = tune.Tuner(
                tune.with_resources(trainable, resources),
                param_space={"trial": tune.grid_search([t.trial_id for t in trials])},
                tune_config=tune.TuneConfig(max_concurrent_trials=self.max_concurrent, reuse_actors=True),
                run_config=tune.RunConfig(
                    name=self.experiment_name,
                    storage_path=tempfile.mkdtemp(prefix="symsweep-tune-"),
                    verbose=2 if self.verbose else 0,
                    failure_config=tune.FailureConfig(max_failures=self.max_failures),
                    callbacks=[_progress_callback(progress)],
                    log_to_file=not self.verbose,
                ),
            )
            grid = tuner.fit()
            lost = [r.config["trial"] for r in grid if r.error is not None]
            return ExecutionReport(trials=len(trials), lost_trials=lost)
        finally:
            if started_here:
                ray.shutdown()


def _progress_callback(progress: Progress):
    """A driver-side Tune callback turning each trial's reported counts into the progress line."""
    from ray.tune import Callback

    class ProgressCallback(Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            progress.update(trial.config["trial"], result)

    return ProgressCallback()


def make_executor(kind: str, **kwargs) -> Executor:
    if kind == "inline":
        return InlineExecutor()
    if kind == "ray":
        return RayExecutor(**kwargs)
    raise ValueError(f"unknown executor {kind!r}; allowed: ray, inline")
