"""Comparison tables: a baseline level of one axis against each other level, per metric.

The reusable piece behind every task's raw-vs-expanded numbers. Completed runs are grouped
by the config columns that vary in the sweep, except the compared axis; within a group,
the baseline level (SweepSpec.comparison_baseline: the spec's `baseline:`, else its adaptive
seeds', else the task's, e.g. expansion_factor 1) is compared with each other level of that
axis, metric by metric. Baseline runs are matched on every config column except the axis
and the fields the task declares meaningless at the baseline (`Task.unused_at_baseline`: a
raw image has no fill), so every fill level of x2 meets the same raw runs, while x2 at
epochs 5 never meets raw at epochs 1. A group with no matching baseline runs gets rows
with `n_base` 0 and no difference: it is reported, not dropped.

    n, mean, std, ci_low, ci_high          per level (columns suffixed _base for the baseline)
    delta, rel_delta                       mean - mean_base, and delta / |mean_base|
    delta_ci_low, delta_ci_high, paired    95 % Student-t interval of delta: of the per-seed
                                           differences when the seeds pair up, else Welch's;
                                           its standard deviation never below the metric's
                                           measurement step (stats.difference_ci)
    test, p_value                          two-sided; the test that gave it, by name

Statistics, and why:
- 95% CI: the Student-t interval of the mean (symsweep.stats.mean_ci), a function of
  its own values only. At 3-30 seeds it covers 95 % for normal data; a percentile bootstrap
  covered only 75-90 % there (docs/statistics.md has the measured table, including skewed
  data, where no interval reaches 95 % at few seeds). With n = 1 there is none (NaN).
- Paired test when seeds pair up, i.e. both levels hold the same set of seeds, each once:
  the Wilcoxon signed-rank test (scipy.stats.wilcoxon; exact for small n without ties).
  It suits seed-to-seed spread, which is often skewed by a bad seed, where a paired t-test
  assumes normal differences. Note that with fewer than 6 pairs no two-sided result can
  reach p < 0.05 (the exact minimum is 2 / 2**n). All differences zero: p = 1.
- Otherwise (different seeds, a failed run on one side): the Mann-Whitney U rank test
  (scipy.stats.mannwhitneyu), the unpaired counterpart of the same rank family.
- Fewer than 2 values (or pairs) on a side: no test (`test` = "none", p NaN).
"""
from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

from symsweep.stats import (
    CI_LEVEL,
    baseline_split,
    compare_samples,
    completed,
    describe,
    difference_ci,
    match_key,
    match_keys,
    varying_config_columns,
)


def unused_fields(runs: pd.DataFrame, baseline: Mapping[str, Any]) -> tuple[str, ...]:
    """The fields the runs' task declares meaningless at `baseline` (`Task.unused_at`): none
    when the runs are of several tasks, carry no `task` column, or their task is not installed
    (then every field is matched, which can only leave a group without a baseline)."""
    from symsweep.errors import UnknownTaskError
    from symsweep.registry import get_task
    names = runs["task"].dropna().unique() if "task" in runs else []
    if len(names) != 1:
        return ()
    try:
        return get_task(str(names[0])).unused_at(baseline)
    except UnknownTaskError:
        return ()


def comparison_table(runs: pd.DataFrame, baseline: Mapping[str, Any], metrics: list[str] | None = None,
                     unused: tuple[str, ...] | None = None, ci_level: float = CI_LEVEL) -> pd.DataFrame:
    """Baseline vs every other level of its axis, per group of the other varying config columns.

    `baseline` names one axis and its baseline level, e.g. {"expansion_factor": 1};
    `metrics` are metric names without the `metric_` prefix (default: every metric column);
    `unused`: config fields not matched between a run and its baseline runs (None: the runs'
    task's `unused_at(baseline)`, see `unused_fields`); `ci_level`: of the difference's interval (a verdict over k settings
    asks for 1 - 0.05 / k). Empty when the sweep does not vary that axis or has no completed
    baseline runs; a group without baseline runs has rows with n_base 0.
    """
    if len(baseline) != 1:
        raise ValueError(f"baseline must name exactly one axis and its level, got {dict(baseline)!r}")
    (axis, base_level), = baseline.items()
    axis_col = f"cfg_{axis}"
    done = completed(runs)
    if done.empty or axis_col not in done:
        return pd.DataFrame()
    metric_cols = [f"metric_{m}" for m in metrics] if metrics else [c for c in done if c.startswith("metric_")]
    metric_cols = [c for c in metric_cols if c in done]
    as_text = done[axis_col].dtype == object  # mixed types (0.5 and "random") cannot share a Parquet column
    group_cols = [c for c in varying_config_columns(done) if c != axis_col]
    # baseline runs are matched on every column but the axis and the task's unused ones (stats.baseline_split)
    unused = unused_fields(done, baseline) if unused is None else unused
    is_base, match_cols = baseline_split(done[[axis_col, *group_cols]], axis_col, base_level,
                                         tuple(f"cfg_{u}" for u in unused))
    base_all, rest = done[is_base], done[~is_base]
    if base_all.empty or rest.empty:
        return pd.DataFrame()
    base_keys = match_keys(base_all, match_cols)
    text_cols = {c for c in group_cols if done[c].dtype == object}  # as for the axis: one type per column

    rows = []
    grouped = rest.groupby(group_cols, dropna=False, sort=True) if group_cols else [((), rest)]
    for key, part in grouped:
        key = dict(zip(group_cols, key if isinstance(key, tuple) else (key,)))
        wanted = match_key(key, match_cols)
        base = base_all[[k == wanted for k in base_keys]].set_index("seed")  # empty: no baseline
        for level in sorted(part[axis_col].unique(), key=lambda v: (str(type(v)), v)):
            other = part[part[axis_col] == level].set_index("seed")
            for col in metric_cols:
                b, o = pd.to_numeric(base[col], errors="coerce"), pd.to_numeric(other[col], errors="coerce")
                sb, so = describe(b), describe(o)
                test, p = compare_samples(b, o)
                delta = so["mean"] - sb["mean"]
                delta_low, delta_high, paired = difference_ci(b, o, ci_level)
                rows.append({
                    **{g[4:]: str(v) if g in text_cols else v for g, v in key.items()},
                    "metric": col[7:], "axis": axis,
                    "baseline": str(base_level) if as_text else base_level,
                    "level": str(level) if as_text else level,
                    **{f"{k}_base": v for k, v in sb.items()}, **so,
                    "delta": delta, "delta_ci_low": delta_low, "delta_ci_high": delta_high, "paired": paired,
                    "rel_delta": delta / abs(sb["mean"]) if sb["mean"] and sb["mean"] == sb["mean"] else float("nan"),
                    "test": test, "p_value": p,
                })
    return pd.DataFrame(rows)


def format_comparison(table: pd.DataFrame) -> pd.DataFrame:
    """A display copy: group columns, metric, `level vs baseline`, mean [95% CI] per side, delta, p."""
    if table.empty:
        return table
    first = table.columns.get_loc("metric")
    shown = table.iloc[:, :first].copy()
    shown["metric"] = table["metric"]
    shown["compared"] = [f"{a}={lv} vs {b}" for a, lv, b in zip(table["axis"], table["level"], table["baseline"])]

    def ci(mean, low, high, n):
        return f"{mean:.4g} [{low:.4g}, {high:.4g}] (n={n})" if low == low else f"{mean:.4g} (n={n})"

    shown["baseline"] = [ci(*r) if r[3] else "no baseline runs with this config"
                         for r in zip(table["mean_base"], table["ci_low_base"], table["ci_high_base"], table["n_base"])]
    shown["level"] = [ci(*r) for r in zip(table["mean"], table["ci_low"], table["ci_high"], table["n"])]
    shown["delta"] = [f"{d:+.4g} ({r:+.1%})" if r == r else f"{d:+.4g}"
                      for d, r in zip(table["delta"], table["rel_delta"])]
    shown["test"] = table["test"]
    shown["p"] = [f"{p:.3g}" if p == p else "" for p in table["p_value"]]
    return shown
