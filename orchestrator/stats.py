"""Statistical rules every comparison in symsweep shares, in one place: which config
columns vary, which runs count, when two levels of an axis are the same level, the
interval of a mean over seeds, the interval of a proportion, a metric's measurement step,
and the two-sample test (docs/statistics.md says what each assumes and what coverage or
error rate a simulation measured; tests/test_statistics.py and tests/test_adaptive.py
check them)."""
from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from symsweep.api import COMPLETED

CI_LEVEL = 0.95
N_BOOTSTRAP = 10_000
BOOTSTRAP_SEED = 0
WILCOXON, MANN_WHITNEY, NO_TEST = "wilcoxon", "mannwhitneyu", "none"
# lattice_step: values closer than this (relative to the largest |value|) are one value: a
# float32 metric carries ~6e-8 relative round-off, so two runs with the same count of correct
# test items can differ in the last digits.
SAME_VALUE_RTOL = 1e-6
# lattice_step: a gap counts as a whole multiple of the step within this fraction of the step
# (round-off of float32 accuracies over a range of ~20 steps of 1/360 stays below 1e-3).
ON_GRID_TOL = 0.01
# lattice_step: the smallest gap between distinct values may span several steps (values 5/360
# apart); a grid of steps up to this many per smallest gap is found. The step matters where
# paired differences spread less than a step, and then some two values lie a few steps apart.
MAX_STEPS_PER_GAP = 10


def varying_config_columns(runs: pd.DataFrame, exclude: tuple[str, ...] = ()) -> list[str]:
    """The cfg_ columns with more than one value (missing counts as a value), except `exclude`."""
    return [c for c in runs.columns if c.startswith("cfg_") and c not in exclude
            and runs[c].astype(str).nunique(dropna=False) > 1]


def completed(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs whose status is completed (all rows when there is no status column)."""
    return runs[runs["status"] == COMPLETED] if "status" in runs else runs


def same_level(a: Any, b: Any) -> bool:
    """Whether two values of an axis are the same level. A level read back from Parquet, YAML or
    a text column may differ in type from the spec's or the task's (1 vs 1.0 vs "1"); a missing
    value (None, read back as NaN) is one level, `null` in a spec."""
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    return a == b or str(a) == str(b)


def level_mask(column: pd.Series, level: Any) -> pd.Series:
    """same_level(value, level) for every value of a config column."""
    if _missing(level):
        return column.isna()
    return (column == level) | (column.astype(str) == str(level))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _level_text(value: Any) -> str:
    """A level as text for matching: str(value), one text for every missing value."""
    return "None" if _missing(value) else str(value)


def baseline_split(configs: pd.DataFrame, axis: str, level: Any,
                   unused: tuple[str, ...] = ()) -> tuple[pd.Series, list[str]]:
    """The one rule that pairs compared runs (or grid points) with baseline ones.

    `configs`: one row per run or grid point, a column per config field. Returns (is_base,
    match_columns): the baseline rows are those whose `axis` is the same level as `level`
    (`same_level`); a compared row meets the baseline rows equal to it (`match_key`) on every
    column except the axis and `unused`, the fields the task declares meaningless at the
    baseline level (`Task.unused_at_baseline`: a raw image has no fill). Which columns match is
    decided by the task, never by the data: a column that a partial sweep's baseline runs happen
    to hold constant is still matched, so an expanded run at epochs 5 never meets raw runs at
    epochs 1, and a PDE without raw runs has no baseline (it is reported, not compared with
    another PDE's). Comparison tables (symsweep.compare), verdicts (symsweep.reproduce) and
    adaptive seeds (symsweep.adaptive) all use it."""
    is_base = level_mask(configs[axis], level)
    match = [c for c in configs.columns if c != axis and c not in unused]
    return is_base, match


def match_key(row: Any, columns: list[str]) -> tuple[str, ...]:
    """A row's values in `columns` as text: what `baseline_split`'s matching compares (a level
    read back from Parquet or YAML may differ in type: 1 vs 1.0 vs "1", see same_level)."""
    return tuple(_level_text(row[c]) for c in columns)


def match_keys(frame: pd.DataFrame, columns: list[str]) -> list[tuple[str, ...]]:
    """`match_key` of every row of a frame (pandas' astype(str) would keep a None as missing)."""
    return [tuple(map(_level_text, row)) for row in frame[columns].itertuples(index=False, name=None)]


def pair_by_seed(base: pd.Series, other: pd.Series) -> tuple[pd.Series, pd.Series, bool]:
    """The one seed-pairing rule: (base, other, paired) of two samples of one metric indexed by
    seed, NaN values left out. Paired when both sides hold the same seeds, each once (a seed fixes
    the initial weights of both runs, so a pair shares its start); `other` is then in `base`'s
    seed order. Every paired statistic (difference_ci, compare_samples, the PINN seed bootstrap)
    pairs through here."""
    base, other = base.dropna(), other.dropna()
    paired = base.index.is_unique and other.index.is_unique and set(base.index) == set(other.index)
    return base, (other.loc[base.index] if paired else other), paired


def describe(values: Any, level: float = CI_LEVEL, interval: bool = True) -> dict[str, float]:
    """The one summary of a metric over seeds: n, mean, std (and ci_low, ci_high unless
    `interval` is False), NaN values left out. std is the sample standard deviation (ddof 1), NaN
    for fewer than 2 values (one seed measures no spread: not 0); the interval is `mean_ci`'s.
    Summary tables, comparison tables and the tasks' own tables (QCD, replica accuracy curves)
    read it. Without the interval, scipy is not imported (`symsweep status` prints summaries)."""
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna().to_numpy(float)
    out = {"n": len(v), "mean": float(v.mean()) if len(v) else float("nan"),
           "std": float(v.std(ddof=1)) if len(v) > 1 else float("nan")}
    if interval:
        out["ci_low"], out["ci_high"] = mean_ci(v, level)
    return out


def describe_groups(frame: pd.DataFrame, by: list[str], column: str) -> pd.DataFrame:
    """`describe` without the interval (n, mean, std) of `column` for every group of `by`,
    vectorized for tables of many groups (accuracy per epoch): one row per group, the `by`
    columns first. The same rule: NaN values left out, std ddof 1 and NaN for one value."""
    values = pd.to_numeric(frame[column], errors="coerce")
    g = values.groupby([frame[c] for c in by], sort=True, dropna=False)
    out = pd.DataFrame({"n": g.count(), "mean": g.mean(), "std": g.std(ddof=1)})
    out.loc[out["n"] < 2, "std"] = float("nan")
    return out.reset_index()


# ----------------------------------------------------------------------------- intervals


def mean_ci(values: np.ndarray, level: float = CI_LEVEL) -> tuple[float, float]:
    """The two-sided Student-t interval of the mean over seeds; (nan, nan) for fewer than 2.

    mean +- t(1 - (1 - level) / 2, n - 1) * s / sqrt(n). It assumes independent seeds whose
    mean is close to normal. Measured coverage of the 95 % interval (tests/test_statistics.py,
    docs/statistics.md): 0.95 for normal data at every n from 2 to 30; below 0.95 for skewed
    data, most at small n (log-normal, sigma 1: about 0.83-0.87 from 3 to 30 seeds). All values
    equal: a zero-width interval (a metric that did not vary over the seeds).
    """
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n < 2:
        return float("nan"), float("nan")
    mean = float(values.mean())
    half = t_quantile(0.5 + level / 2, n - 1) * float(values.std(ddof=1)) / np.sqrt(n)
    return mean - half, mean + half


def difference_ci(base: pd.Series, other: pd.Series, level: float = CI_LEVEL) -> tuple[float, float, bool]:
    """(low, high, paired) Student-t interval of mean(other) - mean(base), samples indexed by seed.

    Paired (both sides hold the same seeds, each once): the interval of the mean of the
    per-seed differences, which removes the seed-to-seed spread the two sides share. Otherwise
    Welch's interval (unequal variances, Welch-Satterthwaite degrees of freedom, kept
    fractional as scipy does). Same assumptions as `mean_ci`: independent seeds, means close to
    normal. A standard deviation is never taken below the metric's measurement step
    (`lattice_step` of both sides' values; 0 for a continuous metric): accuracy on m test items
    moves in steps of 1/m, and two seeds that both gain exactly one item would otherwise give a
    zero-width interval that decides (the floor adaptive seeds use too). (nan, nan) with fewer
    than 2 values (pairs) on a side."""
    base, other, paired = pair_by_seed(base, other)
    b, o = base.to_numpy(float), other.to_numpy(float)
    if len(b) < 2 or len(o) < 2:
        return float("nan"), float("nan"), paired
    step = lattice_step(np.concatenate([b, o]))
    if paired:
        d = o - b
        sd = max(float(d.std(ddof=1)), step)
        half = t_quantile(0.5 + level / 2, len(d) - 1) * sd / np.sqrt(len(d))
        return float(d.mean()) - half, float(d.mean()) + half, True
    vb = max(float(b.var(ddof=1)), step ** 2) / len(b)
    vo = max(float(o.var(ddof=1)), step ** 2) / len(o)
    delta, se = float(o.mean() - b.mean()), float(np.sqrt(vb + vo))
    if se == 0:  # a continuous metric that did not vary on either side: exact
        return delta, delta, False
    df = (vb + vo) ** 2 / (vb ** 2 / (len(b) - 1) + vo ** 2 / (len(o) - 1))
    half = t_quantile(0.5 + level / 2, df) * se
    return delta - half, delta + half, False


def t_quantile(q: float, df: float) -> float:
    """scipy.stats.t.ppf(q, df), cached: the same few (level, n) come back for every group.
    `df` may be fractional (Welch-Satterthwaite)."""
    return _t_quantile(float(q), float(df))


@functools.lru_cache(maxsize=4096)
def _t_quantile(q: float, df: float) -> float:
    from scipy import stats  # ~0.7 s to import: every CLI command imports this module, few compare
    return float(stats.t.ppf(q, df))


def percentile_bootstrap_ci(values: np.ndarray, n_boot: int = N_BOOTSTRAP, seed: int = BOOTSTRAP_SEED,
                            level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean; (nan, nan) for fewer than 2 values.

    NOT used for any table or verdict: at the seed counts of the specs it is far too narrow
    (coverage of the 95 % interval for normal data: 0.75 at n = 3, 0.85 at 5, 0.90 at 10). Kept
    so that tests/test_statistics.py can show that its coverage check fails it.
    """
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def proportion_ci(k: int, n: int, level: float = CI_LEVEL) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n (scipy.stats.binomtest); (nan, nan) for n = 0.
    It assumes n independent trials with one success probability."""
    from scipy import stats
    if n == 0:
        return float("nan"), float("nan")
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def lattice_step(values: np.ndarray) -> np.ndarray | float:
    """The measurement step of a metric whose values lie on a grid, along the last axis.

    Accuracy on a test set of m items moves in steps of 1/m. The step is the largest h that
    divides every gap between distinct values (to ON_GRID_TOL of h), found among the smallest
    gap / k for k = 1 .. MAX_STEPS_PER_GAP. 0.0 for values on no such grid (a continuous
    metric) and for values that are all equal (no gap to measure). Drop NaN values first.
    """
    v = np.sort(np.asarray(values, dtype=float), axis=-1)
    scale = np.abs(v).max(axis=-1, keepdims=True, initial=0.0)
    gaps = np.diff(v, axis=-1)
    gaps = np.where(gaps > SAME_VALUE_RTOL * scale, gaps, np.nan)  # equal up to round-off: one value
    smallest = np.fmin.reduce(gaps, axis=-1, initial=np.inf)
    found = np.isfinite(smallest)
    ks = np.arange(1, MAX_STEPS_PER_GAP + 1)
    with np.errstate(invalid="ignore"):
        # ratio[..., k-1, i]: gap i in units of smallest / k; a fit leaves every gap a whole number
        ratio = gaps[..., None, :] * ks[:, None] / np.where(found, smallest, 1.0)[..., None, None]
        fits = ((np.abs(ratio - np.rint(ratio)) <= ON_GRID_TOL) | np.isnan(ratio)).all(axis=-1)
    k = ks[np.argmax(fits, axis=-1)]  # the first fit: the largest step
    step = np.where(found & fits.any(axis=-1), smallest / k, 0.0)
    return float(step) if step.ndim == 0 else step


def compare_samples(base: pd.Series, other: pd.Series) -> tuple[str, float]:
    """(test name, two-sided p-value) for two samples of one metric, indexed by seed."""
    from scipy import stats  # ~0.7 s to import: every CLI command imports this module, few compare
    base, other, paired = pair_by_seed(base, other)
    if paired:
        if len(base) < 2:
            return NO_TEST, float("nan")
        diffs = other.to_numpy(float) - base.to_numpy(float)
        if not np.any(diffs):  # scipy would divide by zero; no difference at all is p = 1
            return WILCOXON, 1.0
        return WILCOXON, float(stats.wilcoxon(diffs).pvalue)
    if len(base) < 2 or len(other) < 2:
        return NO_TEST, float("nan")
    return MANN_WHITNEY, float(stats.mannwhitneyu(other, base, alternative="two-sided").pvalue)
