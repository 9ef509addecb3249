"""The interval of a mean over seeds covers what it claims, checked by simulation at the seed
counts the specs use (3-30) for normal and for skewed (log-normal) data; the old percentile
bootstrap fails the same check. Proportions get scipy's Wilson interval; levels compare one way.

`python tests/test_statistics.py` prints the whole coverage table of docs/statistics.md
(percentile bootstrap, Student-t and scipy's BCa; about a minute on 2 cores).
"""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from symsweep.stats import (
    compare_samples, describe, describe_groups, difference_ci, level_mask, mean_ci, pair_by_seed, percentile_bootstrap_ci,
    proportion_ci, same_level,
)

SIMS = 2000  # samples per (n, distribution): a coverage of 0.95 is then known to +-0.005 (one SE)
SEED_COUNTS = (3, 5, 10, 30)
# name -> (draw(rng, shape), true mean). Log-normal with sigma 1 has skewness 6.2: a seed
# distribution with a long tail of bad seeds; sigma 0.5 (skewness 1.8) is milder.
DISTRIBUTIONS = {
    "normal": (lambda rng, shape: rng.normal(size=shape), 0.0),
    "log-normal s=0.5": (lambda rng, shape: rng.lognormal(0.0, 0.5, size=shape), math.exp(0.5**2 / 2)),
    "log-normal s=1": (lambda rng, shape: rng.lognormal(0.0, 1.0, size=shape), math.exp(0.5)),
}


def coverage(interval, distribution: str, n: int, sims: int = SIMS, seed: int = 0) -> float:
    """Share of `sims` samples of size n whose interval holds the true mean."""
    draw, true_mean = DISTRIBUTIONS[distribution]
    samples = draw(np.random.default_rng([seed, n]), (sims, n))
    return float(np.mean([low <= true_mean <= high for low, high in map(interval, samples)]))


@pytest.mark.parametrize("n", SEED_COUNTS)
def test_the_interval_of_a_mean_covers_95_percent_of_normal_samples(n):
    assert coverage(mean_ci, "normal", n) >= 0.93


# Skewed data: at few seeds no interval of a mean reaches 95 % without assuming a shape (a
# sample of 3 rarely holds the tail that carries the mean). Measured with 100,000 samples per
# cell (docs/statistics.md): Student-t covers 0.92-0.94 for sigma 0.5 and 0.82-0.88 for
# sigma 1; the lower bounds sit 3 standard errors (of 2,000 samples) under those. The upper
# bound for sigma 1 keeps the documented shortfall true: if it fails, update the docs.
SKEWED_BOUNDS = {"log-normal s=0.5": (0.89, 1.0), "log-normal s=1": (0.79, 0.92)}


@pytest.mark.parametrize("n", SEED_COUNTS)
@pytest.mark.parametrize("distribution", sorted(SKEWED_BOUNDS))
def test_on_skewed_data_the_interval_covers_what_docs_statistics_says(distribution, n):
    low, high = SKEWED_BOUNDS[distribution]
    assert low <= coverage(mean_ci, distribution, n) <= high


def test_the_old_percentile_bootstrap_fails_the_same_check():
    # the check can fail: the interval every table used before covers about 0.75 at 3 seeds
    # (1,000 resamples instead of its 10,000 keep this fast and change its coverage by < 0.01)
    assert coverage(lambda v: percentile_bootstrap_ci(v, n_boot=1000), "normal", 3) < 0.85


def test_the_interval_is_a_function_of_the_values_alone():
    values = np.array([0.91, 0.93, 0.90, 0.95])
    assert mean_ci(values) == mean_ci(values.copy()) == mean_ci(list(values))
    assert mean_ci(values[::-1]) == pytest.approx(mean_ci(values), rel=1e-12)
    assert all(np.isnan(mean_ci(values[:1]))) and all(np.isnan(mean_ci([])))


def test_a_proportion_gets_scipys_wilson_interval():
    assert proportion_ci(15, 20) == pytest.approx((0.5313, 0.8881), abs=1e-4)  # by hand: p 0.75, z 1.96
    ci = stats.binomtest(2, 8).proportion_ci(method="wilson")
    assert proportion_ci(2, 8) == (ci.low, ci.high)
    assert proportion_ci(0, 5)[0] == 0.0 and proportion_ci(5, 5)[1] == 1.0
    assert all(np.isnan(proportion_ci(0, 0)))


def test_a_level_is_the_same_level_whatever_type_it_was_read_back_as():
    assert same_level(1, 1.0) and same_level(1, "1") and same_level(0.5, "0.5") and not same_level(1, 2)
    column = pd.Series([1, 2, 1], dtype=object)
    assert level_mask(column, "1").tolist() == [True, False, True]
    assert level_mask(pd.Series(["random", "0.5"]), 0.5).tolist() == [False, True]


# ----------------------------------------------------------------------------- the full table


def _bca(values: np.ndarray) -> tuple[float, float]:
    if np.ptp(values) == 0:
        return float(values[0]), float(values[0])
    ci = stats.bootstrap((values,), np.mean, n_resamples=2000, method="BCa", rng=np.random.default_rng(0))
    return float(ci.confidence_interval.low), float(ci.confidence_interval.high)


def main() -> None:
    import warnings
    warnings.simplefilter("ignore")  # BCa warns on degenerate resamples at n = 3
    print(f"coverage of the 95 % interval of the mean; Student-t: {50 * SIMS:,} samples per cell, "
          f"bootstraps: {SIMS:,}")
    print(f"{'distribution':18} {'n':>3} {'percentile':>10} {'student-t':>10} {'BCa':>6}")
    for name in DISTRIBUTIONS:
        for n in SEED_COUNTS:
            t = coverage(mean_ci, name, n, sims=50 * SIMS, seed=1)
            print(f"{name:18} {n:3d} {coverage(percentile_bootstrap_ci, name, n):10.3f} {t:10.3f} "
                  f"{coverage(_bca, name, n):6.3f}", flush=True)


if __name__ == "__main__":
    main()


@pytest.mark.parametrize("n", [3, 10])
def test_the_interval_of_a_difference_covers_95_percent_paired_and_unpaired(n):
    """The comparison table's delta interval (and the reproduction verdicts built on it):
    paired by seed it is the t-interval of the differences; unpaired, Welch's. Normal data
    with unequal spreads, true difference 0.3; 2,000 samples each."""
    from symsweep.stats import difference_ci
    rng = np.random.default_rng(n)
    hits = {True: 0, False: 0}
    for _ in range(2000):
        shared = rng.normal(0, 1.0, n)  # the seed effect both sides share when paired
        base = pd.Series(shared + rng.normal(0, 0.5, n))
        other = pd.Series(shared + 0.3 + rng.normal(0, 0.5, n))
        low, high, paired = difference_ci(base, other)
        hits[True] += low <= 0.3 <= high and paired
        unpaired = pd.Series(rng.normal(0.3, 2.0, n + 1), index=range(10, 11 + n))
        low, high, paired = difference_ci(pd.Series(rng.normal(0, 0.5, n)), unpaired)
        hits[False] += low <= 0.3 <= high and not paired
    assert hits[True] / 2000 >= 0.93 and hits[False] / 2000 >= 0.93, hits


# ----------------------------------------------------------------------------- one home per rule


def _runs(rows):
    frame = pd.DataFrame(rows)
    frame["status"] = "completed"
    frame["config_json"] = [json.dumps({k[4:]: r[k] for k in r if k.startswith("cfg_")}, sort_keys=True)
                            for r in rows]
    frame["run_id"] = [f"r{i}" for i in range(len(rows))]
    return frame


def test_one_seed_has_no_spread_in_every_table():
    """std over seeds is ddof 1 and NaN for one seed everywhere (the replica curves said 0)."""
    from symsweep.aggregate import summary_table
    from symsweep.compare import comparison_table
    from symsweep.tasks.replica.distance import accuracy_curves
    runs = _runs([{"cfg_model": "simple", "cfg_factor": f, "seed": 0, "metric_test_acc": 0.5 + f / 10}
                  for f in (1, 2)])
    summary = summary_table(runs)
    assert summary["test_acc_std"].isna().all() and list(summary["n"]) == [1, 1]
    table = comparison_table(runs, {"factor": 1})
    assert math.isnan(table["std"].iloc[0]) and math.isnan(table["std_base"].iloc[0])
    history = pd.DataFrame({"run_id": ["r0", "r0"], "step": [0, 1], "metric": "test_acc", "value": [0.1, 0.2]})
    curves = accuracy_curves(runs.iloc[:1], history)
    assert curves["test_acc_std"].isna().all() and list(curves["n"]) == [1, 1]
    groups = describe_groups(pd.DataFrame({"g": [1, 1, 1, 2], "v": [1.0, 3.0, None, 5.0]}), ["g"], "v")
    assert list(groups["n"]) == [2, 1] and list(groups["mean"]) == [2.0, 5.0]
    assert groups["std"].iloc[0] == pytest.approx(math.sqrt(2)) and math.isnan(groups["std"].iloc[1])
    two = describe(pd.Series([1.0, 3.0, float("nan")]))
    assert (two["n"], two["mean"], two["std"]) == (2, 2.0, math.sqrt(2)) and two["ci_low"] < 2 < two["ci_high"]


def test_comparison_tables_and_adaptive_seeds_pair_the_same_baseline():
    """baseline_split is the one matching rule: a field the task declares unused at the baseline
    (raw images have one canonical fill) is not matched on, every other field (lr) is; a None
    beside ints in a config does not turn 5 into 5.0 and break the match."""
    from symsweep.adaptive import AdaptiveSeeds, baseline_pairs
    from symsweep.compare import comparison_table
    grid = [("b1", {"factor": 1, "fill": 0.5, "lr": 0.1, "cap": 5}),
            ("b2", {"factor": 1, "fill": 0.5, "lr": 0.01, "cap": None}),
            ("p1", {"factor": 2, "fill": 0.0, "lr": 0.1, "cap": 5}),
            ("p2", {"factor": 2, "fill": 1.0, "lr": 0.1, "cap": 5}),
            ("p3", {"factor": 2, "fill": 0.0, "lr": 0.01, "cap": None})]
    settings = AdaptiveSeeds(metric="acc", baseline={"factor": 1}, unused=("fill",))
    assert baseline_pairs(settings, grid) == {"p1": "b1", "p2": "b1", "p3": "b2"}
    rows = []
    for _, config in grid:
        for seed in range(3):
            value = 1.0 + (config["lr"] == 0.1) + 0.1 * seed + (0.5 if config["factor"] == 2 else 0.0)
            rows.append({**{f"cfg_{k}": v for k, v in config.items() if k != "cap"}, "seed": seed, "metric_acc": value})
    table = comparison_table(_runs(rows), {"factor": 1}, unused=("fill",))
    for _, row in table.iterrows():  # every level is compared with the baseline runs of its own lr only
        assert row["mean_base"] == pytest.approx(1.1 + (row["lr"] == 0.1))
        assert row["delta"] == pytest.approx(0.5) and row["paired"]
    assert len(table) == 3


def test_every_paired_statistic_pairs_by_the_same_rule():
    base = pd.Series([1.0, 2.0, 3.0], index=[0, 1, 2])
    b, o, paired = pair_by_seed(base, pd.Series([2.5, 1.5, 2.2], index=[2, 0, 1]))
    assert paired and list(o.index) == [0, 1, 2] and list(o) == [1.5, 2.2, 2.5]
    gap = pd.Series([2.5, 1.5, float("nan")], index=[2, 0, 1])  # seed 1 failed on one side
    assert not pair_by_seed(base, gap)[2]
    assert difference_ci(base, o)[2] and compare_samples(base, o)[0] == "wilcoxon"
    assert not difference_ci(base, gap)[2] and compare_samples(base, gap)[0] == "mannwhitneyu"


def test_a_missing_level_is_one_level_for_baselines_and_adaptive_seeds():
    """`null` in a spec (None, read back from Parquet as NaN) is a level like any other."""
    from symsweep.adaptive import AdaptiveSeeds, baseline_pairs
    from symsweep.compare import comparison_table
    assert same_level(None, float("nan")) and not same_level(None, 0) and not same_level(0.0, None)
    assert list(level_mask(pd.Series([None, 100.0, float("nan")]), None)) == [True, False, True]
    grid = [("b", {"limit": None, "lr": 0.1}), ("p", {"limit": 100, "lr": 0.1})]
    assert baseline_pairs(AdaptiveSeeds(metric="acc", baseline={"limit": None}), grid) == {"p": "b"}
    runs = _runs([{"cfg_limit": limit, "seed": s, "metric_acc": 0.5 + (limit is None) * 0.1 + s / 100}
                  for limit in (None, 100.0) for s in range(3)])
    table = comparison_table(runs, {"limit": None})
    assert len(table) == 1 and table["delta"].iloc[0] == pytest.approx(-0.1)
