"""Statistical rules every comparison in symsweep shares, in one place: which config
columns vary, which runs count, the bootstrap interval of a mean, and the two-sample test
(see orchestrator.compare for why these tests and intervals)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from tasks.common.api import COMPLETED

N_BOOTSTRAP = 10_000
BOOTSTRAP_SEED = 0
CI_LEVEL = 0.95
WILCOXON, MANN_WHITNEY, NO_TEST = "wilcoxon", "mannwhitneyu", "none"


def varying_config_columns(runs: pd.DataFrame, exclude: tuple[str, ...] = ()) -> list[str]:
    """The cfg_ columns with more than one value (missing counts as a value), except `exclude`."""
    return [c for c in runs.columns if c.startswith("cfg_") and c not in exclude
            and runs[c].astype(str).nunique(dropna=False) > 1]


def completed(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs whose status is completed (all rows when there is no status column)."""
    return runs[runs["status"] == COMPLETED] if "status" in runs else runs


def bootstrap_ci(values: np.ndarray, n_boot: int = N_BOOTSTRAP, seed: int = BOOTSTRAP_SEED,
                 level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean; (nan, nan) for fewer than 2 values."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(low), float(high)


def compare_samples(base: pd.Series, other: pd.Series) -> tuple[str, float]:
    """(test name, two-sided p-value) for two samples of one metric, indexed by seed."""
    from scipy import stats  # ~0.7 s to import: every CLI command imports this module, few compare
    base, other = base.dropna(), other.dropna()
    paired = (base.index.is_unique and other.index.is_unique
              and set(base.index) == set(other.index))
    if paired:
        if len(base) < 2:
            return NO_TEST, float("nan")
        diffs = other.loc[base.index].to_numpy(float) - base.to_numpy(float)
        if not np.any(diffs):  # scipy would divide by zero; no difference at all is p = 1
            return WILCOXON, 1.0
        return WILCOXON, float(stats.wilcoxon(diffs).pvalue)
    if len(base) < 2 or len(other) < 2:
        return NO_TEST, float("nan")
    return MANN_WHITNEY, float(stats.mannwhitneyu(other, base, alternative="two-sided").pvalue)


