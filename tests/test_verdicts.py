"""Verdicts that cannot overclaim (issue 31): each case an independent read found on the old
rules, as a test, and the simulated false-verdict rate of every rule under no effect.

The vocabulary: reproduced (the interval is on the claimed side), contradicted (on the other
side), inconclusive (it spans both, too few seeds, levels or baselines missing), not run."""
from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from symsweep.reproduce import evaluate, load_claims
from symsweep.store import SweepStore


def _sweep(root: Path, name: str, rows: list[dict], task: str = "synthetic") -> SweepStore:
    store = SweepStore(str(root / name))
    store.write_spec({"name": name, "task": task})
    for i, row in enumerate(rows):
        store.write_run({"run_id": f"{name}-{i}", "task": task, "status": "completed", "attempt": 1, **row})
    return store


def _row(tmp_path: Path, claim: str, results: Path | None = None):
    path = tmp_path / "claims.yaml"
    path.write_text(textwrap.dedent(claim))
    (row,) = evaluate(load_claims(path), str(results or tmp_path / "res"))
    return row


FRACTION = """
- {id: most, claim: most pdes improve, specs: [frac], rule: fraction, metric: err, axis: input,
   baseline: raw, better: lower, unit: pde, fraction: 0.75}
"""
COMPARE = """
- {id: up, claim: x2 raises acc, specs: [cmp], rule: compare, metric: acc, axis: factor, baseline: 1,
   better: higher}
"""
ORDER = """
- {id: order, claim: a > b > c > d > e, specs: [ord], rule: order, metric: acc, by: model,
   expected: [a, b, c, d, e], better: higher}
"""


def _fraction_rows(improved: int, units: int, seeds: int = 5, shift: float = 0.2) -> list[dict]:
    """`improved` of `units` units clearly improved (lower err), the others clearly worse."""
    rng = np.random.default_rng(2)
    rows = []
    for u in range(units):
        for s in range(seeds):
            base = 1.0 + rng.normal(0, 0.01)
            rows += [{"seed": s, "cfg_pde": f"p{u}", "cfg_input": "raw", "metric_err": base},
                     {"seed": s, "cfg_pde": f"p{u}", "cfg_input": "expanded",
                      "metric_err": base + (-shift if u < improved else shift)}]
    return rows


# ----------------------------------------------------------------------------- 1. the fraction rule


@pytest.mark.parametrize("improved, units", [(0, 1), (1, 3), (4, 8)])
def test_a_fraction_that_only_does_not_rule_out_the_papers_is_not_reproduced(tmp_path, improved, units):
    """Old rule: reproduced when the Wilson interval's *upper* bound reached 0.75, so 0 of 1,
    1 of 3 and 4 of 8 units improved all read "reproduced"."""
    _sweep(tmp_path / "res", "frac", _fraction_rows(improved, units))
    row = _row(tmp_path, FRACTION)
    assert row.verdict != "reproduced", row.measured
    assert f"improved on {improved} of {units} pdes" in row.measured


def test_a_fraction_is_reproduced_only_above_chance_and_contradicted_below_the_papers(tmp_path):
    _sweep(tmp_path / "res", "frac", _fraction_rows(8, 8))
    assert _row(tmp_path, FRACTION).verdict == "reproduced"  # Wilson [0.68, 1]: above 0.5, reaches 0.75
    _sweep(tmp_path / "res2", "frac", _fraction_rows(1, 8))
    row = _row(tmp_path, FRACTION, tmp_path / "res2")
    assert row.verdict == "contradicted", row.measured  # 7 of 8 clearly worse: at most 1/8 + noise improve


# ----------------------------------------------------------------------------- 2. the order rule


def _order_rows(means: dict[str, float], seeds: int = 4, spread: float = 0.005, seed: int = 1) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{"seed": s, "cfg_model": m, "metric_acc": mu + rng.normal(0, spread)} for m, mu in means.items()
            for s in range(seeds)]


def test_an_order_whose_intervals_all_overlap_is_inconclusive(tmp_path):
    """Old rule: ranked the point means only: five models 0.001 apart with a spread of 0.05
    read "reproduced", tau +1, whenever the means happened to fall in the paper's order."""
    rows = _order_rows({"a": 0.504, "b": 0.503, "c": 0.502, "d": 0.501, "e": 0.500}, spread=0.0)
    noise = np.random.default_rng(5).normal(0, 0.05, len(rows))
    for r, n in zip(rows, noise):
        r["metric_acc"] += n - noise[[i for i, q in enumerate(rows) if q["cfg_model"] == r["cfg_model"]]].mean()
    _sweep(tmp_path / "res", "ord", rows)  # each model's mean exactly its level: the paper's order
    row = _row(tmp_path, ORDER)
    assert row.verdict == "inconclusive", row.measured
    assert "a ~ b" in row.measured and "unresolved" in row.measured


def test_an_order_with_levels_missing_is_inconclusive(tmp_path):
    """Old rule: two of five levels measured, in the paper's order: "reproduced"."""
    _sweep(tmp_path / "res", "ord", _order_rows({"a": 0.9, "e": 0.5}))
    row = _row(tmp_path, ORDER)
    assert row.verdict == "inconclusive" and "missing: b, c, d" in row.measured, row.measured


def test_tied_levels_are_a_tie_not_the_papers_order(tmp_path):
    """Old rule: equal means were ranked in input order, which was the paper's."""
    rows = [{"seed": s, "cfg_model": m, "metric_acc": v} for m, v in [("a", 0.9), ("b", 0.9), ("c", 0.5)]
            for s, v in enumerate([v, v + 0.01, v + 0.02])]
    _sweep(tmp_path / "res", "ord", rows)
    path = tmp_path / "claims.yaml"
    path.write_text(ORDER.replace("[a, b, c, d, e]", "[a, b, c]").replace("a > b > c > d > e", "a > b > c"))
    (row,) = evaluate(load_claims(path), str(tmp_path / "res"))
    assert row.verdict == "inconclusive" and "a ~ b" in row.measured, row.measured


def test_a_separated_order_is_reproduced_and_a_separated_reversal_contradicts(tmp_path):
    _sweep(tmp_path / "res", "ord", _order_rows({"a": 0.9, "b": 0.8, "c": 0.7, "d": 0.6, "e": 0.5}))
    assert _row(tmp_path, ORDER).verdict == "reproduced"
    _sweep(tmp_path / "res2", "ord", _order_rows({"a": 0.9, "b": 0.6, "c": 0.7, "d": 0.8, "e": 0.5}))
    row = _row(tmp_path, ORDER, tmp_path / "res2")
    assert row.verdict == "contradicted" and "against the paper: b < c" in row.measured, row.measured


# ----------------------------------------------------------------------------- 3. baseline matching


def test_a_partial_sweep_never_compares_a_pde_with_another_pdes_baseline(tmp_path):
    """Old rule: the baseline runs held pde constant (only burgers1d's raw runs had finished),
    so pde was taken as decided by the axis and all four PDEs met burgers1d's raw error:
    "improved on 4 of 4", reproduced, while 3 of 4 were worse than their own raw runs."""
    rows = []
    for s in range(5):
        rows.append({"seed": s, "cfg_pde": "burgers1d", "cfg_input": "raw", "metric_err": 1.0 + 0.001 * s})
        rows.append({"seed": s, "cfg_pde": "burgers1d", "cfg_input": "expanded", "metric_err": 0.5 + 0.001 * s})
        for pde in ("heat", "poisson", "wave"):  # their raw runs (err 0.1) have not finished
            rows.append({"seed": s, "cfg_pde": pde, "cfg_input": "expanded", "metric_err": 0.2 + 0.001 * s})
    _sweep(tmp_path / "res", "frac", rows)
    row = _row(tmp_path, FRACTION)
    assert row.verdict != "reproduced", row.measured
    assert "improved on 1 of 4 pdes" in row.measured and "no baseline: heat, poisson, wave" in row.measured


def test_a_compared_run_meets_only_baseline_runs_equal_to_it_on_every_other_field():
    """Old rule: x2 at epochs 5 was compared with raw at epochs 1 (the raw runs held epochs
    constant). The epochs 5 group is now reported without a baseline, not dropped either."""
    from symsweep.compare import comparison_table
    rows = [{"seed": s, "cfg_factor": f, "cfg_epochs": e, "metric_acc": 0.5 + 0.1 * e + 0.01 * s, "status": "completed"}
            for f, e in [(1, 1), (2, 1), (2, 5)] for s in range(3)]
    table = comparison_table(pd.DataFrame(rows), {"factor": 1})
    by_epochs = table.set_index("epochs")
    assert by_epochs.loc[1, "n_base"] == 3 and by_epochs.loc[1, "delta"] == pytest.approx(0.0)
    assert by_epochs.loc[5, "n_base"] == 0 and math.isnan(by_epochs.loc[5, "delta"])


def test_the_task_declares_which_fields_mean_nothing_at_the_baseline():
    """A raw image has no fill (the task records one canonical fill): the image task says so,
    and every fill of x2 meets the same raw runs. Undeclared, a field is matched."""
    from symsweep.compare import comparison_table
    from symsweep.registry import get_task
    task = get_task("image_classification")
    assert set(task.unused_at({"expansion_factor": 1})) == {"fill", "random_fill"}
    assert task.unused_at({"expansion_factor": 2}) == () and task.unused_at({"model": "resnet18"}) == ()
    rows = [{"seed": s, "cfg_expansion_factor": f, "cfg_fill": fill, "metric_acc": 0.5 + 0.01 * s + 0.1 * (f > 1),
             "status": "completed"} for f, fill in [(1, 0.0), (2, 0.5), (2, 1.0)] for s in range(3)]
    matched = comparison_table(pd.DataFrame(rows), {"expansion_factor": 1}, unused=("fill",))
    assert list(matched["n_base"]) == [3, 3] and matched["delta"].to_numpy() == pytest.approx([0.1, 0.1])
    unmatched = comparison_table(pd.DataFrame(rows), {"expansion_factor": 1})
    assert list(unmatched["n_base"]) == [0, 0]


# ----------------------------------------------------------------------------- 4. seeds and spread


def test_one_seed_is_inconclusive_not_not_reproduced(tmp_path):
    rows = [{"seed": 0, "cfg_factor": f, "metric_acc": 0.5 + 0.1 * (f == 2)} for f in (1, 2)]
    _sweep(tmp_path / "res", "cmp", rows)
    row = _row(tmp_path, COMPARE)
    assert row.verdict == "inconclusive" and "too few seeds" in row.measured, row.measured


def test_two_seeds_with_the_same_difference_do_not_decide(tmp_path):
    """Accuracies on 200 test items: both seeds gain exactly one item (+0.005). The sample
    spread is 0; the old zero-width interval decided. The measurement step is the floor."""
    rows = [{"seed": s, "cfg_factor": f, "metric_acc": (160 + 4 * s + (f == 2)) / 200} for f in (1, 2) for s in range(2)]
    _sweep(tmp_path / "res", "cmp", rows)
    row = _row(tmp_path, COMPARE)
    assert row.verdict == "inconclusive", row.measured


def test_welchs_interval_keeps_fractional_degrees_of_freedom_as_scipy_does():
    from scipy import stats

    from symsweep.stats import difference_ci
    base = pd.Series([0.31, 0.35, 0.29, 0.40], index=[0, 1, 2, 3])
    other = pd.Series([0.52, 0.41, 0.60], index=[10, 11, 12])  # other seeds: unpaired
    low, high, paired = difference_ci(base, other)
    ci = stats.ttest_ind(other, base, equal_var=False).confidence_interval(0.95)
    assert not paired and (low, high) == pytest.approx((ci.low, ci.high), rel=1e-9)


# ----------------------------------------------------------------------------- 5. aggregates


RD = """
- {id: rd, claim: a > b > c by rd, specs: [reps], rule: order, table: rd, metric: rd, also: [rd_flat],
   by: model, expected: [a, b, c], better: higher}
"""


def _rd_sweep(tmp_path: Path, models=("a", "b", "c"), seeds: int = 3) -> SweepStore:
    from symsweep.store import runs_fingerprint
    store = _sweep(tmp_path / "res", "reps", [{"seed": s, "cfg_model": m} for m in models for s in range(seeds)])
    table = pd.DataFrame({"model": ["a", "b", "c"], "rd": [0.3, 0.2, 0.1], "ci_low": [0.29, 0.19, 0.09],
                          "ci_high": [0.31, 0.21, 0.11], "rd_flat": [3.0, 2.0, 1.0]})
    store.write_aggregate("rd", table, runs_fingerprint(store.read_runs()))
    return store


def test_a_stale_aggregate_table_is_refused(tmp_path):
    """Old rule: read the table whatever runs finished since it was written."""
    store = _rd_sweep(tmp_path)
    assert _row(tmp_path, RD).verdict == "reproduced"
    store.write_run({"run_id": "late", "task": "synthetic", "seed": 9, "cfg_model": "c", "status": "completed",
                     "attempt": 1})
    row = _row(tmp_path, RD)
    assert row.verdict == "not run" and "stale" in row.measured and "symsweep aggregate" in row.measured


def test_a_table_that_does_not_say_what_it_was_computed_from_is_refused(tmp_path):
    store = _rd_sweep(tmp_path)
    store.write_aggregate("rd", store.read_aggregate("rd"))  # as symsweep wrote tables before
    row = _row(tmp_path, RD)
    assert row.verdict == "not run" and "does not record the runs" in row.measured


def test_the_claims_where_applies_to_an_aggregate_table(tmp_path):
    """Old rule: the where was applied to the runs only; the table of every dataset decided."""
    from symsweep.store import runs_fingerprint
    store = _sweep(tmp_path / "res", "reps", [{"seed": s, "cfg_model": m, "cfg_dataset": d}
                                             for d in ("digits", "cifar10") for m in "abc" for s in range(3)])
    table = pd.DataFrame({"model": list("abcabc"), "dataset": ["digits"] * 3 + ["cifar10"] * 3,
                          "rd": [0.3, 0.2, 0.1, 0.1, 0.2, 0.3], "ci_low": [0.29, 0.19, 0.09, 0.09, 0.19, 0.29],
                          "ci_high": [0.31, 0.21, 0.11, 0.11, 0.21, 0.31]})
    store.write_aggregate("rd", table, runs_fingerprint(store.read_runs()))
    where = RD.replace("by: model,", "by: model, where: {dataset: cifar10},")
    assert _row(tmp_path, where).verdict == "contradicted"
    assert _row(tmp_path, where.replace("cifar10}", "digits}")).verdict == "reproduced"
    store.write_aggregate("rd", table.drop(columns="dataset"), runs_fingerprint(store.read_runs()))
    row = _row(tmp_path, where)
    assert row.verdict == "inconclusive" and "does not split by dataset" in row.measured


def test_an_also_metric_never_borrows_the_headline_metrics_interval(tmp_path):
    _rd_sweep(tmp_path)
    row = _row(tmp_path, RD)
    also = row.measured.split("also rd_flat (not used for the verdict): ")[1]
    assert also.startswith("a 3 ~ b 2 ~ c 1") and "[" not in also.split(";")[0], also


# ----------------------------------------------------------------------------- simulated error rates


def _bench():
    import importlib.util

    from conftest import REPO
    spec = importlib.util.spec_from_file_location("bench_verdicts", REPO / "bench" / "verdicts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("case, seeds, tables", [
    ("compare_k1", 3, 300), ("compare_k5", 5, 200), ("compare_k1_lattice", 2, 300), ("compare_k1_lattice", 5, 200),
    ("order_runs", 5, 200), ("order_table", 200, 300), ("fraction", 5, 60),
])
def test_no_true_effect_gives_a_false_verdict_in_at_most_5_percent_of_tables(case, seeds, tables):
    """Random results with no true effect, through each rule (bench/verdicts.py has the cases
    and prints the full grid): "reproduced" and "contradicted" each in at most 5 % of the
    simulated tables (designed for 2.5 %; fixed seeds, so the test is deterministic)."""
    shares = _bench().simulate(case, seeds, effect=False, tables=tables, seed=11)
    assert shares.get("reproduced", 0.0) <= 0.05, shares
    assert shares.get("contradicted", 0.0) <= 0.05, shares


@pytest.mark.parametrize("case, seeds, tables, power", [
    ("compare_k1", 5, 100, 0.9), ("compare_k5", 10, 60, 0.9), ("order_runs", 10, 100, 0.7), ("fraction", 30, 20, 0.6),
])
def test_a_true_effect_of_the_papers_size_is_found_at_the_stated_power(case, seeds, tables, power):
    """The same rules find an effect of the paper's size (bench/verdicts.py says what that is per
    case) at the power docs/statistics.md states, and never contradict it."""
    shares = _bench().simulate(case, seeds, effect=True, tables=tables, seed=12)
    assert shares.get("reproduced", 0.0) >= power, shares
    assert shares.get("contradicted", 0.0) == 0.0, shares


def test_an_order_that_depends_on_umaps_random_state_is_inconclusive(tmp_path):
    """Fig. 8B's RD rests on a UMAP embedding with a random state: the verdict must hold under
    each state (the `states` column, the headline's first), else it is inconclusive."""
    import json as _json

    from symsweep.store import runs_fingerprint
    store = _sweep(tmp_path / "res", "reps", [{"seed": s, "cfg_model": m} for m in "abc" for s in range(3)])
    table = pd.DataFrame({"model": ["a", "b", "c"], "rd": [0.3, 0.2, 0.1], "ci_low": [0.29, 0.19, 0.09],
                          "ci_high": [0.31, 0.21, 0.11]})
    claim = RD.replace("also: [rd_flat],", "states: rd_umap_states,")
    stable = [[0.3, 0.31, 0.29], [0.2, 0.21, 0.19], [0.1, 0.11, 0.09]]
    store.write_aggregate("rd", table.assign(rd_umap_states=[_json.dumps(v) for v in stable]),
                          runs_fingerprint(store.read_runs()))
    row = _row(tmp_path, claim)
    assert row.verdict == "reproduced" and "the same verdict under each of 3 states" in row.measured, row.measured
    unstable = [[0.3, 0.1, 0.3], [0.2, 0.2, 0.2], [0.1, 0.3, 0.1]]  # state 1 reverses the order
    store.write_aggregate("rd", table.assign(rd_umap_states=[_json.dumps(v) for v in unstable]),
                          runs_fingerprint(store.read_runs()))
    row = _row(tmp_path, claim)
    assert row.verdict == "inconclusive", row.measured
    assert "not stable under the states of `rd_umap_states`: reproduced in 2, contradicted in 1 of 3" in row.measured
