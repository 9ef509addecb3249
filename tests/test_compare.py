"""Comparison tables against scipy on data whose answer is known, and the baseline they compare with."""
from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import symsweep
from symsweep.compare import comparison_table
from symsweep.stats import N_BOOTSTRAP, mean_ci, percentile_bootstrap_ci

BASE = np.array([0.90, 0.92, 0.88, 0.91, 0.95, 0.89])


def _runs(levels: dict, seeds=None, **fixed_cfg) -> pd.DataFrame:
    """A runs table: one completed row per (expansion_factor level, seed), metric `acc`."""
    rows = []
    for level, values in levels.items():
        for i, v in enumerate(values):
            seed = seeds[level][i] if seeds else i
            rows.append({"run_id": f"{level}-{seed}", "status": "completed", "seed": seed,
                         "cfg_expansion_factor": level, "cfg_lr": 0.1, **fixed_cfg, "metric_acc": v})
    return pd.DataFrame(rows)


def test_identical_groups_give_zero_delta_and_p_one():
    table = comparison_table(_runs({1: BASE, 2: BASE}), {"expansion_factor": 1})
    assert len(table) == 1
    row = table.iloc[0]
    assert (row["metric"], row["axis"], row["baseline"], row["level"]) == ("acc", "expansion_factor", 1, 2)
    assert row["n"] == row["n_base"] == 6
    assert row["delta"] == 0 and row["rel_delta"] == 0
    assert row["test"] == "wilcoxon" and row["p_value"] == 1.0
    assert (row["ci_low"], row["ci_high"]) == (row["ci_low_base"], row["ci_high_base"])
    assert "lr" not in table  # a config column that does not vary is not a group


def test_a_constant_shift_is_the_delta_and_the_paired_p_value_is_scipys():
    shifted = BASE + 0.05
    row = comparison_table(_runs({1: BASE, 3: shifted}), {"expansion_factor": 1}).iloc[0]
    assert row["delta"] == pytest.approx(0.05)
    assert row["rel_delta"] == pytest.approx(0.05 / BASE.mean())
    assert row["mean"] == pytest.approx(shifted.mean()) and row["std"] == pytest.approx(BASE.std(ddof=1))
    assert row["test"] == "wilcoxon"
    assert row["p_value"] == pytest.approx(stats.wilcoxon(shifted - BASE).pvalue)
    assert row["p_value"] == pytest.approx(2 / 2**6)  # exact: every one of 6 pairs moved up


def test_seeds_that_do_not_pair_up_get_a_rank_test():
    other = np.array([0.80, 0.82, 0.79, 0.85, 0.81])
    seeds = {1: list(range(6)), 2: [10, 11, 12, 13, 14]}
    row = comparison_table(_runs({1: BASE, 2: other}, seeds=seeds), {"expansion_factor": 1}).iloc[0]
    assert row["test"] == "mannwhitneyu"
    assert row["p_value"] == pytest.approx(stats.mannwhitneyu(other, BASE, alternative="two-sided").pvalue)
    assert (row["n_base"], row["n"]) == (6, 5)
    assert row["delta"] == pytest.approx(other.mean() - BASE.mean())


def test_a_failed_run_breaks_the_pairing_and_is_left_out():
    runs = _runs({1: BASE, 2: BASE + 0.01})
    runs.loc[runs["run_id"] == "2-5", ["status", "metric_acc"]] = ["failed", np.nan]
    row = comparison_table(runs, {"expansion_factor": 1}).iloc[0]
    assert (row["n_base"], row["n"]) == (6, 5)
    assert row["test"] == "mannwhitneyu"
    assert row["mean"] == pytest.approx((BASE[:5] + 0.01).mean())


def test_groups_by_the_other_varying_columns_and_compares_every_level():
    parts = []
    for fill, offset in ((0.0, 0.0), (0.5, 0.1)):
        part = _runs({1: BASE, 2: BASE + offset, 4: BASE - offset}, cfg_fill=fill)
        part["metric_loss"] = 1 - part["metric_acc"]
        parts.append(part)
    table = comparison_table(pd.concat(parts, ignore_index=True), {"expansion_factor": 1})
    assert len(table) == 2 * 2 * 2  # fills x non-baseline levels x metrics
    assert list(table.columns[:2]) == ["fill", "metric"]
    deltas = table.set_index(["fill", "level", "metric"])["delta"]
    assert deltas[(0.0, 2, "acc")] == pytest.approx(0)
    assert deltas[(0.5, 2, "acc")] == pytest.approx(0.1)
    assert deltas[(0.5, 4, "loss")] == pytest.approx(0.1)
    only_acc = comparison_table(pd.concat(parts, ignore_index=True), {"expansion_factor": 1}, metrics=["acc"])
    assert set(only_acc["metric"]) == {"acc"}


def test_baseline_runs_with_a_canonical_value_serve_every_group():
    # raw images have no fill: the task records fill 0.0 for them, whatever the expanded runs use,
    # and declares fill unused at the baseline (Task.unused_at_baseline)
    raw = _runs({1: BASE}, cfg_fill=0.0)
    expanded = pd.concat([_runs({2: BASE + 0.02}, cfg_fill=0.5), _runs({2: BASE - 0.03}, cfg_fill="random")])
    table = comparison_table(pd.concat([raw, expanded], ignore_index=True), {"expansion_factor": 1}, unused=("fill",))
    assert table["fill"].tolist() == ["0.5", "random"]  # mixed types are written as text
    assert table["n_base"].tolist() == [6, 6] and table["test"].tolist() == ["wilcoxon", "wilcoxon"]
    assert table["delta"].tolist() == pytest.approx([0.02, -0.03])


def test_baseline_runs_are_matched_on_every_other_column():
    digits = _runs({1: BASE, 2: BASE + 0.01}, cfg_dataset="digits")
    cifar = _runs({1: BASE - 0.3, 2: BASE - 0.2}, cfg_dataset="cifar10")
    table = comparison_table(pd.concat([digits, cifar], ignore_index=True), {"expansion_factor": 1})
    deltas = dict(zip(table["dataset"], table["delta"]))
    assert deltas == pytest.approx({"cifar10": 0.1, "digits": 0.01})
    assert table["mean_base"].tolist() == pytest.approx([BASE.mean() - 0.3, BASE.mean()])


def test_no_table_when_the_axis_does_not_vary_and_a_clear_error_for_two_axes():
    assert comparison_table(_runs({1: BASE}), {"expansion_factor": 1}).empty
    assert comparison_table(_runs({2: BASE, 3: BASE}), {"expansion_factor": 1}).empty  # no baseline runs
    with pytest.raises(ValueError, match="exactly one axis"):
        comparison_table(_runs({1: BASE, 2: BASE}), {"expansion_factor": 1, "fill": 0})


def test_a_single_seed_has_no_interval_and_no_test():
    row = comparison_table(_runs({1: BASE[:1], 2: BASE[1:2]}), {"expansion_factor": 1}).iloc[0]
    assert row["test"] == "none" and np.isnan(row["p_value"]) and np.isnan(row["ci_low"])
    assert row["delta"] == pytest.approx(BASE[1] - BASE[0])


def test_the_interval_of_a_mean_is_scipys_student_t_and_the_tables_use_it():
    low, high = mean_ci(BASE)
    assert (low, high) == mean_ci(BASE)  # the same values give the same interval
    ref = stats.t.interval(0.95, len(BASE) - 1, loc=BASE.mean(), scale=stats.sem(BASE))
    assert (low, high) == pytest.approx(ref, rel=1e-12)
    assert mean_ci(np.full(4, 0.5)) == (0.5, 0.5)  # a metric that did not vary over the seeds
    row = comparison_table(_runs({1: BASE, 2: BASE + 0.01}), {"expansion_factor": 1}).iloc[0]
    assert (row["ci_low_base"], row["ci_high_base"]) == (low, high)
    # the old percentile bootstrap (kept, used for nothing) is narrower: that is why it went
    b_low, b_high = percentile_bootstrap_ci(BASE)
    ref = stats.bootstrap((BASE,), np.mean, n_resamples=N_BOOTSTRAP, method="percentile",
                          rng=np.random.default_rng(1)).confidence_interval
    assert b_low == pytest.approx(ref.low, abs=0.002) and b_high == pytest.approx(ref.high, abs=0.002)
    assert b_high - b_low < 0.8 * (high - low)


def test_a_plain_sweep_with_a_spec_baseline_gets_a_comparison_table(tmp_path):
    # synthetic declares no baseline: without the spec's `baseline:` there is no comparison
    spec = tmp_path / "plain.yaml"
    spec.write_text(textwrap.dedent("""
        name: plain
        task: synthetic
        fixed: {steps: 3}
        axes: {n_samples: [32, 64], lr: [0.05, 0.1]}
        seeds: 3
        baseline: {n_samples: 64}
    """))
    res = symsweep("run", str(spec), "--results", str(tmp_path / "res"), "--executor", "inline")
    assert res.returncode == 0, res.stderr
    table = pd.read_parquet(tmp_path / "res" / "plain" / "aggregates" / "comparison.parquet")
    assert set(table["baseline"]) == {64} and set(table["level"]) == {32} and set(table["axis"]) == {"n_samples"}
    assert sorted(table["lr"].unique()) == [0.05, 0.1] and (table["n"] == 3).all()
    assert "adaptive" not in table
    # the baseline is not part of the runs: another one re-plans nothing (it is frozen with the spec)
    again = symsweep("run", str(spec), "--results", str(tmp_path / "res"), "--executor", "inline",
                     "--set", "baseline={lr: 0.1}")
    assert again.returncode == 0 and "12 already done, 0 to run" in again.stdout, again.stdout + again.stderr
