"""Adaptive seeds: the sequential design keeps its error rate, rounds are plans against the
ledger (deterministic, idempotent, inline and on Ray), and bad settings stop at once."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import assert_ran_once, ledger, symsweep
from orchestrator import SpecError, spec_from_dict
from orchestrator.adaptive import AT_MAX, BASELINE, DECIDED, OPEN, AdaptiveSeeds, paired_interval, plan_rounds

SPEC = """
name: ad
task: synthetic
fixed: {{steps: 5}}
axes: {{n_samples: [64, 65, 256]}}
seeds: {{adaptive: {{metric: loss, start: 3, step: 3, max: {top}, baseline: {{n_samples: 64}}}}}}
runs_per_trial: 3
"""


def _simulate(settings: AdaptiveSeeds, effect: float, sims: int, rng: np.random.Generator) -> tuple[float, float]:
    """(share of sweeps that decided, mean seeds used by the compared point) for one
    comparison whose paired differences are normal with mean `effect` and sd 1."""
    points = [("base", {"axis": 0}), ("other", {"axis": 1})]
    decided, used = 0, 0
    for _ in range(sims):
        base = rng.normal(size=settings.max) * 3.0  # seed-to-seed spread shared by both sides
        other = base + effect + rng.normal(size=settings.max)
        values = {("base", s): base[s] for s in range(settings.max)}
        values.update({("other", s): other[s] for s in range(settings.max)})
        final = set(values)
        rounds = plan_rounds(settings, points, values, final)
        assert rounds.complete
        decided += rounds.decisions["other"].state == DECIDED
        used += rounds.seeds["other"]
    return decided / sims, used / sims


def test_with_no_true_effect_the_false_decision_rate_stays_at_or_below_alpha():
    rng = np.random.default_rng(2026)
    sims = 4000
    for spending in (3.0, 1.0):  # O'Brien-Fleming-like and even spending
        settings = AdaptiveSeeds(metric="m", start=5, step=5, max=30, alpha=0.05, spending=spending,
                                 baseline={"axis": 0})
        rate, _ = _simulate(settings, effect=0.0, sims=sims, rng=rng)
        se = (0.05 * 0.95 / sims) ** 0.5
        assert rate <= 0.05 + 2 * se, (spending, rate)
    # the same six looks with a plain 95% interval at each do inflate it: the check can fail
    naive = 0
    for _ in range(sims):
        diffs = rng.normal(size=30)
        naive += any(not (lo <= 0 <= hi) for _, lo, hi in (paired_interval(diffs[:n], 0.05)
                                                           for n in (5, 10, 15, 20, 25, 30)))
    assert naive / sims > 0.1


def test_with_a_true_effect_it_decides_and_saves_seeds():
    rng = np.random.default_rng(7)
    settings = AdaptiveSeeds(metric="m", start=5, step=5, max=30, baseline={"axis": 0})
    rate, used = _simulate(settings, effect=1.5, sims=500, rng=rng)
    assert rate > 0.95 and used < 20, (rate, used)


def test_rounds_are_replayed_from_the_ledger_deterministically():
    settings = AdaptiveSeeds(metric="m", start=2, step=2, max=6, precision=None, baseline={"axis": 0})
    points = [("b", {"axis": 0}), ("same", {"axis": 1}), ("far", {"axis": 2})]
    rng = np.random.default_rng(0)
    truth = {(p, s): v for p, shift in (("b", 0), ("same", 0), ("far", 5)) for s, v in
             enumerate(rng.normal(size=6) * 0.1 + shift)}
    # nothing ran yet: round 1 asks for seeds 0, 1 everywhere
    r0 = plan_rounds(settings, points, {}, set())
    assert r0.seeds == {"b": 2, "same": 2, "far": 2} and not r0.complete
    # round 1 done: the rows say which points get more (same inputs, same answer, every time)
    done = {k: v for k, v in truth.items() if k[1] < 2}
    r1 = plan_rounds(settings, points, done, set(done))
    assert repr(r1) == repr(plan_rounds(settings, points, dict(done), set(done)))
    assert r1.seeds["same"] == 4 and r1.seeds["b"] == 4
    # a failed run is final without a value: the look happens, with one pair fewer
    done = {k: v for k, v in truth.items() if k[1] < r1.seeds[k[0]]}
    failed = {("same", 3)}
    r2 = plan_rounds(settings, points, {k: v for k, v in done.items() if k not in failed}, set(done))
    assert r2.decisions["same"].pairs == 3
    # everything final at max: nothing more, every comparison stopped
    r3 = plan_rounds(settings, points, truth, set(truth))
    assert r3.complete and r3.decisions["same"].state in (AT_MAX, DECIDED) and r3.decisions["b"].state == BASELINE
    assert r3.decisions["same"].state != OPEN


@pytest.mark.parametrize("executor", ["inline", "ray"])
def test_an_adaptive_sweep_runs_in_rounds_and_a_rerun_adds_nothing(tmp_path, executor):
    spec = tmp_path / "ad.yaml"
    spec.write_text(SPEC.format(top=9 if executor == "inline" else 6))  # on Ray: two rounds are enough
    res = symsweep("run", str(spec), "--results", str(tmp_path / "res"), "--executor", executor, "--num-cpus", "2")
    assert res.returncode == 0, res.stderr
    runs = ledger(tmp_path / "res" / "ad")
    per_point = runs.groupby("cfg_n_samples")["seed"].agg(["count", "max"])
    assert per_point.loc[64, "count"] == per_point["count"].max()  # the baseline keeps up with the open ones
    assert set(per_point["count"]) <= {3, 6, 9} and per_point["count"].max() > 3  # a second round ran
    for _, row in per_point.iterrows():  # seeds come in order: 0..k-1
        assert row["max"] == row["count"] - 1
    status = symsweep("status", str(tmp_path / "res" / "ad"), "--slowest", "0")
    assert "adaptive seeds (loss vs {'n_samples': 64}, complete)" in status.stdout
    again = symsweep("run", str(spec), "--results", str(tmp_path / "res"), "--executor", executor)
    assert again.returncode == 0 and f"{len(runs)} already done, 0 to run" in again.stdout
    assert_ran_once(tmp_path / "res" / "ad", len(runs))
    agg = symsweep("aggregate", str(tmp_path / "res" / "ad"))
    assert agg.returncode == 0 and "adaptive.parquet" in agg.stdout
    import pandas as pd
    comparison = pd.read_parquet(tmp_path / "res" / "ad" / "aggregates" / "comparison.parquet")
    assert set(comparison["adaptive"]) <= {DECIDED, AT_MAX, "precision reached"} and len(comparison) == 2


@pytest.mark.parametrize("adaptive, message", [
    ("{metric: accuracy, baseline: {n_samples: 64}}", "seeds.adaptive.metric: 'accuracy' is not a metric task "
                                                      "'synthetic' reports; allowed: loss"),
    ("{metric: loss}", "seeds.adaptive.baseline must name one axis and its baseline level"),
    ("{metric: loss, baseline: {steps: 1}}", "seeds.adaptive.baseline: 'steps' is not an axis of this spec"),
    ("{metric: loss, baseline: {n_samples: 63}}", "seeds.adaptive.baseline: n_samples=63 is not on the axis"),
    ("{metric: loss, start: 12, max: 10, baseline: {n_samples: 64}}", "start (12) must not exceed max (10)"),
    ("{metric: loss, step: 0, baseline: {n_samples: 64}}", "seeds.adaptive.step must be an int >= 1, got 0"),
    ("{metric: loss, precision: tight, baseline: {n_samples: 64}}",
     "seeds.adaptive.precision must be a finite number > 0, got 'tight'"),
    ("{metric: loss, alpha: 1.5, baseline: {n_samples: 64}}", "seeds.adaptive.alpha must be a finite number > 0 and < 1"),
    ("{metric: loss, seeds: 3, baseline: {n_samples: 64}}", "seeds.adaptive: unknown key(s) 'seeds'"),
])
def test_bad_adaptive_settings_stop_before_anything_runs(tmp_path, adaptive, message):
    spec = tmp_path / "ad.yaml"
    spec.write_text(SPEC.format(top=9).replace(
        "seeds: {adaptive: {metric: loss, start: 3, step: 3, max: 9, baseline: {n_samples: 64}}}",
        f"seeds: {{adaptive: {adaptive}}}"))
    res = symsweep("run", str(spec), "--results", str(tmp_path / "res"), "--executor", "inline")
    assert res.returncode == 2 and message in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert not (tmp_path / "res").exists()


def test_adaptive_settings_are_part_of_the_sweeps_identity():
    base = {"name": "a", "task": "synthetic", "axes": {"n_samples": [64, 65]},
            "seeds": {"adaptive": {"metric": "loss", "baseline": {"n_samples": 64}}}}
    spec = spec_from_dict(base)
    assert spec.seeds == tuple(range(30)) and spec.adaptive.looks() == [5, 10, 15, 20, 25, 30]
    assert spec_from_dict(spec.to_dict()) == spec
    other = spec_from_dict({**base, "seeds": {"adaptive": {"metric": "loss", "max": 20, "baseline": {"n_samples": 64}}}})
    assert other.science() != spec.science()
    with pytest.raises(SpecError, match="more than max_runs"):
        spec_from_dict({**base, "max_runs": 50})
