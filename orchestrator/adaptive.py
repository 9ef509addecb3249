"""Adaptive seeds: spend seeds only where a comparison with the baseline is still open.

    seeds: {adaptive: {metric: test_acc, start: 5, step: 5, max: 30, baseline: {expansion_factor: 1}}}

Round 1 runs `start` seeds (0..start-1) at every grid point. After each round, every
non-baseline point is compared with its baseline point, paired by seed; a point stops
when its comparison is decided, when its interval is narrower than `precision`, or at
`max` seeds. Undecided points, and each baseline point while a comparison needs it, get
the next `step` seeds. Every round is a plan against the ledger: the same rows give the
same decisions, so resume and re-run stay idempotent, and a finished sweep adds nothing.

The test, and why. The paired differences d_i = metric(point, seed i) - metric(baseline,
seed i) get a two-sided Student-t interval for their mean. A metric on a grid (accuracy on
m test items moves in steps of 1/m) often gives the same difference for every seed, or
nearly: the sample's standard deviation is then 0 or far below the spread the metric can
resolve, and the interval would "decide" after two seeds (simulated null: 10-14 % false
decisions at start 2). The standard deviation is therefore never taken below the metric's
measurement step (symsweep.stats.lattice_step, found from both sides' values; 0 for a
continuous metric, which leaves the t interval as it is). Looking after every round
inflates the error rate, so each look k gets its own share alpha_k of the overall alpha
from the power spending function alpha * t^rho, where t = seeds at look k / max (rho = 3
spends little early, like O'Brien-Fleming; rho = 1 evenly). A point is *decided* when the
interval at level 1 - alpha_k excludes zero. By the union bound the chance of any false
decision over all looks is at most sum_k alpha_k = alpha, whatever the correlation
between looks: conservative, exact in no case, valid whenever each look's interval holds
its level (checked by simulation in tests/test_adaptive.py, for normal differences and
for accuracy-like grid metrics). `precision` stops a point whose interval half-width is below
it (the effect, if any, is smaller than you care about); that stop decides nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from symsweep.errors import SpecError
from symsweep.spec import parse_baseline
from symsweep.stats import baseline_split, lattice_step, match_key, match_keys, t_quantile

if TYPE_CHECKING:
    import pandas as pd

DECIDED, PRECISE, AT_MAX, OPEN, BASELINE = "decided", "precision reached", "max seeds", "undecided", "baseline"
KEYS = ("metric", "start", "step", "max", "alpha", "precision", "spending", "baseline")


@dataclass(frozen=True)
class AdaptiveSeeds:
    metric: str
    """The task metric the comparison is about (one of the task's summary metrics)."""
    start: int = 5
    """Seeds every grid point gets in round 1."""
    step: int = 5
    """Seeds an undecided point gets in each further round."""
    max: int = 30
    """No point gets more seeds than this."""
    alpha: float = 0.05
    """Overall chance of a false decision, spent over the planned looks."""
    precision: float | None = None
    """Stop a point once its interval's half-width is below this (metric units); None: never."""
    spending: float = 3.0
    """rho of the spending function alpha * t**rho (3: little early, O'Brien-Fleming-like; 1: even)."""
    baseline: Mapping[str, Any] = field(default_factory=dict)
    """{axis: level} every other level of that axis is compared with: the spec's `baseline:`, else
    this section's `baseline`, else the task's (SweepSpec.comparison_baseline)."""
    unused: tuple[str, ...] = ()
    """Config fields not matched between a point and its baseline point: the task's
    `unused_at(baseline)` (a raw image has no fill). Derived from the task, not a spec key."""

    def looks(self) -> list[int]:
        """Seeds per point at each planned look: start, start + step, ..., max."""
        out = list(range(self.start, self.max, self.step))
        return out + [self.max] if not out or out[-1] != self.max else out

    def alpha_at(self, k: int) -> float:
        """The share of alpha spent at look k (0-based)."""
        looks = self.looks()
        t = [n / self.max for n in looks]
        before = t[k - 1] ** self.spending if k else 0.0
        return self.alpha * (t[k] ** self.spending - before)

    def to_dict(self) -> dict:
        return {"adaptive": {"metric": self.metric, "start": self.start, "step": self.step, "max": self.max,
                             "alpha": self.alpha, "precision": self.precision, "spending": self.spending,
                             "baseline": dict(self.baseline)}}


def parse_adaptive(raw: Any, task, axes: Mapping[str, tuple], source: str,
                   baseline: Mapping[str, Any] | None = None) -> AdaptiveSeeds:
    """An `adaptive:` mapping, checked field by field (one line naming the field); `baseline`:
    the spec's own `baseline:` (checked already), which this section's may repeat but not change."""
    where = f"{source}: seeds.adaptive"
    if not isinstance(raw, Mapping):
        raise SpecError(f"{where} must be a mapping with keys {', '.join(KEYS)}")
    unknown = [k for k in raw if k not in KEYS]
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(KEYS)}")
    metric = raw.get("metric")
    known = list(task.summary_metrics)
    if not isinstance(metric, str) or metric not in known:
        raise SpecError(f"{where}.metric: {metric!r} is not a metric task {task.name!r} reports; "
                        f"allowed: {', '.join(known) or '(the task declares none)'}")

    def integer(key: str, default: int, low: int) -> int:
        value = raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise SpecError(f"{where}.{key} must be an int >= {low}, got {value!r}")
        return value

    def number(key: str, default, low: float, high: float | None = None):
        value = raw.get(key, default)
        if value is None and default is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or value <= low or (high is not None and value >= high):
            bounds = f"> {low:g}" + (f" and < {high:g}" if high is not None else "")
            raise SpecError(f"{where}.{key} must be a finite number {bounds}, got {value!r}")
        return float(value)

    start, step, top = integer("start", 5, 2), integer("step", 5, 1), integer("max", 30, 2)
    if start > top:
        raise SpecError(f"{where}: start ({start}) must not exceed max ({top})")
    # The spec's `baseline:` serves adaptive seeds too (SweepSpec.comparison_baseline: the spec's,
    # else this section's, else the task's); this section's own key keeps working beside it.
    own = parse_baseline(raw["baseline"], axes, f"{where}.baseline") if "baseline" in raw else None
    if baseline and own is not None and own != dict(baseline):
        raise SpecError(f"{where}.baseline {own} differs from the spec's baseline {dict(baseline)}; set it once "
                        f"(the spec's `baseline:` serves adaptive seeds too)")
    if not (baseline or own or task.baseline):
        raise SpecError(f"{where}.baseline must name one axis and its baseline level (e.g. "
                        f"{{expansion_factor: 1}}), or set the spec's `baseline:`; task {task.name!r} has none")
    baseline = dict(baseline or {}) or own or parse_baseline(dict(task.baseline), axes, f"{where}.baseline")
    return AdaptiveSeeds(metric=metric, start=start, step=step, max=top, alpha=number("alpha", 0.05, 0, 1),
                         precision=number("precision", None, 0), spending=number("spending", 3.0, 0),
                         baseline=baseline, unused=task.unused_at(baseline))


# ----------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Decision:
    """Where one grid point stands after the looks so far."""

    point: str
    baseline_point: str | None
    """None for a baseline point."""
    seeds: int
    """Seeds planned for it so far."""
    pairs: int
    """Seeds with a value on both sides."""
    mean: float
    low: float
    high: float
    """The interval of the mean paired difference at the last look's level."""
    state: str
    """decided | precision reached | max seeds | undecided | baseline"""
    look: int
    """The look (1-based) at which it stopped, or the last look made."""


def paired_interval(diffs: np.ndarray, alpha: float, step: float | np.ndarray = 0.0):
    """(mean, low, high): the two-sided Student-t interval of the mean difference, at level
    1 - alpha, with the standard deviation never below `step` (the metric's measurement step;
    0 for a continuous metric). Vectorized: one interval per row of a 2-D `diffs`."""
    diffs = np.asarray(diffs, dtype=float)
    n = diffs.shape[-1]
    if n < 2:
        mean = diffs.mean(axis=-1) if n else np.full(diffs.shape[:-1], np.nan)
        low, high = np.full_like(mean, -np.inf), np.full_like(mean, np.inf)
    else:
        mean = diffs.mean(axis=-1)
        sd = np.maximum(diffs.std(axis=-1, ddof=1), step)  # identical differences, no step: exact
        half = t_quantile(1 - alpha / 2, n - 1) * sd / math.sqrt(n)
        low, high = mean - half, mean + half
    if np.ndim(mean) == 0:
        return float(mean), float(low), float(high)
    return mean, low, high


def judge(settings: AdaptiveSeeds, diffs: np.ndarray, look: int, step: float = 0.0) -> tuple[str, float, float, float]:
    """(state, mean, low, high) of one comparison at look `look` (0-based); `step` as in paired_interval."""
    mean, low, high = paired_interval(diffs, settings.alpha_at(look), step)
    if low > 0 or high < 0:
        return DECIDED, mean, low, high
    if settings.precision is not None and (high - low) / 2 < settings.precision:
        return PRECISE, mean, low, high
    if look == len(settings.looks()) - 1:
        return AT_MAX, mean, low, high
    return OPEN, mean, low, high


@dataclass
class AdaptivePlan:
    """The seeds each grid point needs now, and the state of every comparison."""

    seeds: dict[str, int]
    """point id -> how many seeds (0..n-1) it needs so far."""
    decisions: dict[str, Decision]
    complete: bool
    """Every comparison has stopped: nothing more to run."""


def plan_rounds(settings: AdaptiveSeeds, points: Sequence[tuple[str, dict]], values: Mapping[tuple[str, int], float],
                final: set[tuple[str, int]]) -> AdaptivePlan:
    """Replay the rounds against the ledger.

    points: (point id, resolved config) of the grid; values: (point, seed) -> the metric of
    a completed run; final: (point, seed) of every run with a final row (a failed run is
    final, without a value). Look k is made once every run it needs is final; the plan
    stops at the first look whose runs are not all there yet.
    """
    pairs = baseline_pairs(settings, points)
    looks = settings.looks()
    active = set(pairs)  # non-baseline points still open
    stopped: dict[str, Decision] = {}
    seeds = {p: looks[0] for p, _ in points}
    last: dict[str, Decision] = {}
    complete = False
    for k, n in enumerate(looks):
        for p in active:
            seeds[p] = n
            seeds[pairs[p]] = max(seeds[pairs[p]], n)
        needed = {(p, s) for p in seeds for s in range(seeds[p])}
        if not needed <= final:
            break  # this round is still running (or yet to run)
        for p in sorted(active):
            b = pairs[p]
            common = [s for s in range(n) if (p, s) in values and (b, s) in values]
            diffs = np.array([values[(p, s)] - values[(b, s)] for s in common], dtype=float)
            step = lattice_step([values[(q, s)] for s in common for q in (p, b)])
            state, mean, low, high = judge(settings, diffs, k, step)
            last[p] = Decision(p, b, n, len(common), mean, low, high, state, k + 1)
            if state != OPEN:
                stopped[p] = last[p]
        active -= set(stopped)
        if not active:
            complete = True
            break
    decisions = {**last, **stopped}
    for b in set(pairs.values()):
        decisions[b] = Decision(b, None, seeds[b], seeds[b], float("nan"), float("nan"), float("nan"), BASELINE, 0)
    return AdaptivePlan(seeds=seeds, decisions=decisions, complete=complete)


def baseline_pairs(settings: AdaptiveSeeds, points: Sequence[tuple[str, dict]]) -> dict[str, str]:
    """Non-baseline point id -> its baseline point id.

    As in comparison tables (symsweep.compare), baseline points are matched on every other
    config field except those the task declares unused at the baseline (raw images have no
    fill, so every fill level is compared with the same raw runs).
    """
    import pandas as pd
    (axis, level), = settings.baseline.items()
    # object columns: the values as the spec resolved them (no int -> float upcast beside a None)
    configs = pd.DataFrame([c for _, c in points], index=[p for p, _ in points], dtype=object)
    is_base, keys = baseline_split(configs, axis, level, settings.unused)
    if not is_base.any():
        raise SpecError(f"seeds.adaptive.baseline: no grid point has {axis}={level!r}")
    index = dict(zip(match_keys(configs[is_base], keys), configs.index[is_base]))
    out = {}
    for p, c in points:
        if is_base[p]:
            continue
        match = index.get(match_key(c, keys))
        if match is None:
            shown = ", ".join(f"{k}={c[k]!r}" for k in keys)
            raise SpecError(f"seeds.adaptive.baseline: no baseline point ({axis}={level!r}) for {shown}")
        out[p] = match
    return out


def decision_table(spec, runs: Sequence, rounds: AdaptivePlan) -> "pd.DataFrame":
    """One row per grid point: its axis values, seeds planned, pairs, the paired difference
    to its baseline with the interval of the last look, the state and that look."""
    import pandas as pd
    configs = {r.point_id: r.config for r in runs}
    rows = []
    for point, d in rounds.decisions.items():
        config = configs.get(point, {})
        rows.append({**{a: config.get(a) for a in spec.axes}, "seeds": d.seeds, "pairs": d.pairs,
                     "diff_mean": d.mean, "diff_low": d.low, "diff_high": d.high, "state": d.state,
                     "look": d.look, "metric": spec.adaptive.metric})
    table = pd.DataFrame(rows)
    return table.sort_values(list(spec.axes)).reset_index(drop=True) if not table.empty else table


def mark_comparison(comparison: "pd.DataFrame", decisions: "pd.DataFrame", axis: str) -> "pd.DataFrame":
    """The comparison table with an `adaptive` column: each compared level's state (rows of
    other metrics, and levels the rounds never compared, stay empty)."""
    if comparison.empty or decisions.empty:
        return comparison
    keys = [c for c in decisions.columns if c in comparison.columns and c not in ("metric",)]
    state = {}
    for _, d in decisions.iterrows():
        state[(str(d[axis]), d["metric"], *(str(d[k]) for k in keys))] = d["state"]
    out = comparison.copy()
    out["adaptive"] = [state.get((str(r["level"]), r["metric"], *(str(r[k]) for k in keys)), "")
                       for _, r in comparison.iterrows()]
    return out
