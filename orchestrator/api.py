"""The task contract: what a task gives the orchestrator and what it gets back.

A task is plain Python and torch. It never imports Ray, never touches the store and
knows nothing of other tasks. The orchestrator hands it a frozen config, a seed and a
`RunContext`; it returns a `RunResult`.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np

# Statuses a run row can carry. `completed` is the only one that marks a run as done.
COMPLETED = "completed"
FAILED = "failed"
DIVERGED = "diverged"
STATUSES = (COMPLETED, FAILED, DIVERGED)


class Diverged(Exception):
    """Raised by a task when training went non-finite; the run is recorded as `diverged`."""


@dataclass
class RunResult:
    """What one run leaves behind.

    metrics:   final scalar metrics (float, int, or None for "not measured").
    history:   per-step records, each `{"step": int, metric: value, ...}`.
    artifacts: name -> dict of numpy arrays (e.g. final weights), saved as .npz.
    status:    `completed` unless the task decides otherwise (e.g. `diverged`).
    info:      descriptive text facts about the run (e.g. `dataset_source`: which files
               were read), written as `info_<name>` text columns of the run row.
    """

    metrics: dict[str, float | int | None] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    artifacts: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    status: str = COMPLETED
    info: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {STATUSES}")

    def nonfinite_metrics(self) -> list[str]:
        """Names of the metrics that are NaN or infinite, whatever their numeric type: Python
        floats, numpy scalars and 0-d arrays, 0-d torch tensors. The check is on `float(v)`,
        the value the run row records; ints are finite, and None is "not measured"."""
        return [k for k, v in self.metrics.items() if _nonfinite(v)]

    def has_nonfinite_metric(self) -> bool:
        """Whether a run that says `completed` is in fact `diverged` (see `nonfinite_metrics`)."""
        return bool(self.nonfinite_metrics())


def _nonfinite(value: Any) -> bool:
    if value is None or isinstance(value, int):  # a Python int is exact (and may not fit a float)
        return False
    try:
        return not math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):  # not one number (e.g. an array): the row writer says so
        return False


class RunContext(Protocol):
    """What the orchestrator lends a running task."""

    device: str          # "cuda" or "cpu"
    data_root: str | None  # root of local datasets (--data-root / SYMSWEEP_DATA), or None
    num_threads: int     # CPU threads this run may use

    def log(self, step: int, **metrics: float) -> None:
        """Record one history step (also shown as progress)."""

    def save_artifact(self, name: str, arrays: Mapping[str, np.ndarray]) -> None:
        """Keep named arrays with the run (written with the run row)."""


@dataclass
class SimpleContext:
    """The RunContext: collects a run's history and artifacts. The orchestrator's workers
    use it too (with `on_log` forwarding each step to experiment trackers); call a task
    directly with one in notebooks and tests."""

    device: str = "cpu"
    data_root: str | None = None
    num_threads: int = 1
    on_log: Callable[[int, dict], None] | None = None
    """Called with (step, metrics) at every log, e.g. to mirror them to a tracker."""
    history: list[dict[str, float]] = field(default_factory=list)
    artifacts: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def log(self, step: int, **metrics: float) -> None:
        self.history.append({"step": int(step), **metrics})
        if self.on_log is not None:
            self.on_log(step, metrics)

    def save_artifact(self, name: str, arrays: Mapping[str, np.ndarray]) -> None:
        self.artifacts[name] = {k: np.asarray(v) for k, v in arrays.items()}


@dataclass(frozen=True)
class Task:
    """A registered experiment.

    name:          the name sweep specs use (`task: NAME`).
    config_cls:    a frozen dataclass; every field has a default or is required.
    run:           run(config, seed, ctx) -> RunResult.
    run_many:      optional run_many(config, seeds, ctx_for_seed) -> iterator of
                   (seed, RunResult): trains several seeds together. `ctx_for_seed(seed)`
                   gives each seed its own context (history, artifacts).
    batches:       optional batches(config) -> bool: whether run_many trains this config's
                   seeds together; where it says no, each seed runs through `run` (its own
                   duration, peak memory and error). None: run_many whenever a trial has
                   several seeds.
    summary_metrics: metrics the end-of-sweep table shows (mean +- std over seeds).
    aggregate:     optional aggregate(runs_df, history_df, load_artifact[, settings]) ->
                   dict[name, DataFrame], written under the sweep's aggregates/;
                   load_artifact(run_id, name) -> dict of arrays; `settings` (an
                   aggregate_config instance) is passed only to tasks that declare one.
    aggregate_config: optional frozen dataclass of aggregation settings (bins, ...), set
                   by the spec's `aggregate:` section or `--set aggregate.KEY=VALUE`.
    figures:       optional figures(tables, runs_df, history_df) -> dict[name, matplotlib
                   Figure], saved as aggregates/figures/<name>.png; `tables` are the
                   aggregate tables (including `summary`).
    baseline:      the baseline level of the axis that comparison tables compare against,
                   e.g. {"expansion_factor": 1}; empty when the task has none.
    unused_at_baseline: config fields that mean nothing at that baseline level (a raw image
                   has no fill: ("fill", "random_fill")). A compared run meets the baseline runs
                   equal to it on every other config field (symsweep.stats.baseline_split);
                   these fields alone are not matched. Declared by the task, never read from the
                   data: a partial sweep's runs must not decide what is matched.
    downloads:     dataset name -> fetch(dest) for `symsweep data NAME --dest DIR` (needs
                   internet; tasks read the result from --data-root).
    uses_torch:    whether runs use torch (the default). The runner then seeds torch and
                   limits its threads before every run; a task that does not (numpy only)
                   says False, and its worker processes never import torch (~3 s each).
    cost:          optional cost(config) -> float: the relative cost of one run, the
                   quantities its time scales with (e.g. epochs x training images x
                   expansion_factor**2). `symsweep plan --calibrate` scales a run of the
                   smoke budget by it; None: the estimate is unscaled.
    """

    name: str
    config_cls: type
    run: Callable[[Any, int, RunContext], RunResult]
    run_many: Callable[..., Any] | None = None
    batches: Callable[[Any], bool] | None = None
    summary_metrics: Sequence[str] = ()
    aggregate: Callable[..., dict] | None = None
    aggregate_config: type | None = None
    figures: Callable[..., dict] | None = None
    baseline: Mapping[str, Any] = field(default_factory=dict)
    unused_at_baseline: Sequence[str] = ()
    downloads: Mapping[str, Callable[[str], Any]] = field(default_factory=dict)
    description: str = ""
    uses_torch: bool = True
    cost: Callable[[Any], float] | None = None

    def __post_init__(self) -> None:
        if not (dataclasses.is_dataclass(self.config_cls)):
            raise TypeError(f"task {self.name!r}: config_cls must be a dataclass")
        fields = {f.name for f in dataclasses.fields(self.config_cls)}
        unknown = sorted(set(self.unused_at_baseline) - fields)
        if unknown:
            raise TypeError(f"task {self.name!r}: unused_at_baseline names {', '.join(unknown)}, "
                            f"not fields of {self.config_cls.__name__}")
        if self.unused_at_baseline and not self.baseline:
            raise TypeError(f"task {self.name!r}: unused_at_baseline needs a baseline")

    def unused_at(self, baseline: Mapping[str, Any]) -> tuple[str, ...]:
        """The fields not matched when comparing against `baseline` ({axis: level}): the task's
        `unused_at_baseline` when that is the task's own baseline, else none (at another level
        of the axis, or another axis, a fill means something)."""
        from symsweep.stats import same_level
        if len(baseline) != 1 or len(self.baseline) != 1:
            return ()
        (axis, level), = baseline.items()
        (own_axis, own_level), = self.baseline.items()
        return tuple(self.unused_at_baseline) if axis == own_axis and same_level(level, own_level) else ()
