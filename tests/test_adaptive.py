"""Adaptive seeds: the sequential design keeps its error rate, rounds are plans against the
ledger (deterministic, idempotent, inline and on Ray), and bad settings stop at once."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import assert_ran_once, ledger, symsweep
from symsweep import SpecError, spec_from_dict
from symsweep.adaptive import AT_MAX, BASELINE, DECIDED, OPEN, AdaptiveSeeds, paired_interval, plan_rounds
from symsweep.stats import lattice_step

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


def _decided(settings: AdaptiveSeeds, base: np.ndarray, other: np.ndarray, floor: bool = True) -> np.ndarray:
    """For each simulated sweep (a row of per-seed metric values on both sides), whether any
    look decides: plan_rounds' looks replayed for all rows at once (floor=False: without the
    measurement-step floor on the standard deviation, the rule before it)."""
    decided = np.zeros(len(base), dtype=bool)
    for k, n in enumerate(settings.looks()):
        step = lattice_step(np.concatenate([base[:, :n], other[:, :n]], axis=1)) if floor else 0.0
        _, low, high = paired_interval(other[:, :n] - base[:, :n], settings.alpha_at(k), step)
        decided |= (low > 0) | (high < 0)
    return decided


def _plan_rounds_decided(settings: AdaptiveSeeds, base: np.ndarray, other: np.ndarray) -> np.ndarray:
    points = [("base", {"axis": 0}), ("other", {"axis": 1})]
    out = []
    for b, o in zip(base, other):
        values = {**{("base", s): v for s, v in enumerate(b)}, **{("other", s): v for s, v in enumerate(o)}}
        out.append(plan_rounds(settings, points, values, set(values)).decisions["other"].state == DECIDED)
    return np.array(out)


def test_with_no_true_effect_the_false_decision_rate_stays_at_or_below_alpha():
    rng = np.random.default_rng(2026)
    sims = 4000
    se = (0.05 * 0.95 / sims) ** 0.5
    for spending in (3.0, 1.0):  # O'Brien-Fleming-like and even spending
        settings = AdaptiveSeeds(metric="m", start=5, step=5, max=30, alpha=0.05, spending=spending,
                                 baseline={"axis": 0})
        base = rng.normal(size=(sims, settings.max)) * 3.0  # seed-to-seed spread shared by both sides
        other = base + rng.normal(size=base.shape)
        decided = _decided(settings, base, other)
        # the replay is plan_rounds' own rule: the same decisions, sweep by sweep
        assert (decided[:150] == _plan_rounds_decided(settings, base[:150], other[:150])).all()
        assert decided.mean() <= 0.05 + 2 * se, (spending, decided.mean())
    # the same six looks with a plain 95% interval at each do inflate it: the check can fail
    diffs, naive = rng.normal(size=(sims, 30)), np.zeros(sims, dtype=bool)
    for n in (5, 10, 15, 20, 25, 30):
        _, lo, hi = paired_interval(diffs[:, :n], 0.05)
        naive |= (lo > 0) | (hi < 0)
    assert naive.mean() > 0.1


def _accuracies(rng, kind: str, n_test: int, p: float, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Accuracy-like metrics of two sides with no true difference, on the grid k / n_test."""
    if kind == "independent":  # each run's errors drawn afresh
        return rng.binomial(n_test, p, shape) / n_test, rng.binomial(n_test, p, shape) / n_test
    if kind == "seed-shared":  # a seed's own difficulty (its accuracy) shared by both sides of a pair
        p_seed = rng.beta(20 * p, 20 * (1 - p), shape)
        return rng.binomial(n_test, p_seed) / n_test, rng.binomial(n_test, p_seed) / n_test
    # "mostly-equal": 80 % of the pairs predict the test set alike; the rest differ by 1-2 items
    base = rng.binomial(n_test, p, shape)
    moved = base + rng.choice([-2, -1, 1, 2], size=shape)
    return base / n_test, np.where(rng.random(shape) < 0.8, base, moved) / n_test


DISCRETE_NULLS = [("independent", 10, 0.5), ("independent", 10, 0.9), ("independent", 30, 0.95),
                  ("independent", 360, 0.99), ("independent", 360, 0.998), ("seed-shared", 20, 0.9),
                  ("mostly-equal", 360, 0.95)]


def test_accuracy_like_metrics_with_no_true_effect_keep_the_false_decision_rate_at_or_below_alpha():
    # Accuracy on a small test set moves in steps of 1/n_test; with p near 1 many paired
    # differences are exactly 0 (n_test 360, p 0.998: 0.38 of them; "mostly-equal": 0.8),
    # and often all of a few seeds' differences are equal: zero variance. Simulation slack: 2 standard errors of a
    # rate at alpha over `sims` sweeps (0.007); the rates measured (20,000 sweeps per cell,
    # docs/statistics.md) are at most 0.039, so a pass does not hang on the slack.
    rng = np.random.default_rng(360)
    sims = 2000
    slack = 2 * (0.05 * 0.95 / sims) ** 0.5
    worst, unfloored = 0.0, 0.0
    for start, step, top in ((2, 2, 12), (3, 3, 12), (5, 5, 30)):
        for spending in (3.0, 1.0):
            settings = AdaptiveSeeds(metric="m", start=start, step=step, max=top, spending=spending,
                                     baseline={"axis": 0})
            for kind, n_test, p in DISCRETE_NULLS:
                base, other = _accuracies(rng, kind, n_test, p, (sims, top))
                rate = _decided(settings, base, other).mean()
                assert rate <= 0.05 + slack, (start, spending, kind, n_test, p, rate)
                worst = max(worst, rate)
                if start == 2:
                    unfloored = max(unfloored, _decided(settings, base, other, floor=False).mean())
    assert worst > 0.01  # the rule is not simply refusing to decide
    # without the floor, identical differences "decided" after two seeds: the check can fail
    assert unfloored > 0.08, unfloored
    # and the replay agrees with plan_rounds on grid metrics too
    settings = AdaptiveSeeds(metric="m", start=2, step=2, max=12, baseline={"axis": 0})
    base, other = _accuracies(rng, "independent", 10, 0.9, (150, 12))
    assert (_decided(settings, base, other) == _plan_rounds_decided(settings, base, other)).all()


def test_a_zero_variance_sample_of_a_grid_metric_decides_nothing_at_two_seeds():
    settings = AdaptiveSeeds(metric="m", start=2, step=2, max=12, baseline={"axis": 0})
    points = [("base", {"axis": 0}), ("other", {"axis": 1})]
    values = {("base", 0): 0.8, ("base", 1): 0.9, ("other", 0): 0.9, ("other", 1): 1.0}  # +0.1 twice
    first = plan_rounds(settings, points, values, set(values)).decisions["other"]
    assert first.state == OPEN and first.low < 0 < first.high
    # the same one-item gain on every seed is evidence once there are enough of them: t = sqrt(n)
    # passes the look's quantile at 10 seeds (a sign test there: p = 2 / 2**10)
    values = {(side, s): 0.5 + 0.1 * (s % 4) + 0.1 * (side == "other") for side in ("base", "other")
              for s in range(12)}
    last = plan_rounds(settings, points, values, set(values)).decisions["other"]
    assert (last.state, last.seeds) == (DECIDED, 10)


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


# ray: slow tier (rounds are planned by the driver, the same on both executors)
@pytest.mark.parametrize("executor", ["inline", pytest.param("ray", marks=pytest.mark.slow)])
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
