"""Replica trainings (vectorized vs one-by-one) and the replica-distance metric."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from symsweep import SimpleContext, get_task
from symsweep.tasks.replica.task import (
    MODELS, ReplicaCNN, ReplicaConfig, _Replica, augment_images, flat_weights, train_replicas)
from symsweep.tasks.replica.distance import RDSettings, pairwise_wasserstein, replica_distance


AUGMENTED = [("flip", {"augment": "paper"}), ("rot180", {"augment": "paper"}),
             ("rot180", {"augment": "paper", "augment_rotation": "uniform"})]


@pytest.mark.parametrize("model,extra", [(m, {}) for m in MODELS] + AUGMENTED,
                         ids=list(MODELS) + ["flip-augment", "rot180-augment", "rot180-augment-uniform"])
def test_vectorized_ensemble_matches_training_each_seed_alone(model, extra):
    cfg = ReplicaConfig(model=model, epochs=3, n_images=60, batch_size=32, **extra)
    alone = {s: (flat_weights(m), met) for s, m, met in train_replicas(cfg, [0, 1, 2], None, "cpu", False)}
    together = {s: (flat_weights(m), met) for s, m, met in train_replicas(cfg, [0, 1, 2], None, "cpu", True)}
    tol = 2e-3 if model == "batchnorm" else 1e-5  # batch statistics accumulate float differences
    for s in alone:
        np.testing.assert_allclose(together[s][0], alone[s][0], atol=tol)
        assert together[s][1]["test_acc"] == pytest.approx(alone[s][1]["test_acc"], abs=0.02)
    assert not np.allclose(alone[0][0], alone[1][0])  # different seeds, different replicas


@pytest.mark.parametrize("model,group", [("flip", lambda x: x.flip(-1)), ("rot180", lambda x: torch.rot90(x, 2, (-2, -1)))],
                         ids=["flip-horizontal", "rot180-half-turn"])
def test_the_equivariance_models_transform_by_their_own_group_element(model, group):
    """The paper's Flip / Rot models transform half of each batch in the forward pass
    (Sec. 6.6): the transform must be the horizontal flip / the half turn, and an involution,
    so the transformed image of x is the untransformed image of g(x), and g(g(x)) = x."""
    torch.manual_seed(0)
    net = ReplicaCNN(model, 3, 32, 10, (8, 16), 32).eval()
    x = torch.randn(6, 3, 32, 32)
    every = torch.ones(6, dtype=torch.bool)
    with torch.no_grad():
        assert torch.allclose(net(x, None, every), net(group(x)), atol=1e-6)
        assert torch.allclose(net(group(x), None, every), net(x), atol=1e-6)
        assert not torch.allclose(net(x, None, every), net(x), atol=1e-3)  # not invariant by chance
        other = (lambda t: t.flip(-2)) if model == "flip" else (lambda t: torch.rot90(t, 1, (-2, -1)))
        assert not torch.allclose(net(x, None, every), net(other(x)), atol=1e-3)  # nor another element
        half = torch.tensor([True, False] * 3)
        mixed = net(x, None, half)
        assert torch.allclose(mixed[half], net(group(x[half])), atol=1e-6)
        assert torch.allclose(mixed[~half], net(x[~half]), atol=1e-6)


def test_replica_randomness_is_per_seed_and_transforms_half_a_batch():
    cfg = ReplicaConfig(model="dropout")
    d0, _ = _Replica(0, cfg).masks(64)
    d0_again, _ = _Replica(0, cfg).masks(64)
    d1, _ = _Replica(1, cfg).masks(64)
    assert torch.equal(d0, d0_again) and not torch.equal(d0, d1)
    assert abs(float((d0 > 0).float().mean()) - 0.7) < 0.05  # dropout 0.3 keeps ~70 %
    _, flip = _Replica(0, ReplicaConfig(model="flip")).masks(64)
    assert int(flip.sum()) == 32


def test_augmentation_is_drawn_per_seed_only_for_the_paper_models():
    for model in ("simple", "dropout", "batchnorm"):
        assert _Replica(0, ReplicaConfig(model=model, augment="paper")).augmentation(64) is None
    assert _Replica(0, ReplicaConfig(model="flip")).augmentation(64) is None  # augment: none
    cfg = ReplicaConfig(model="flip", augment="paper", augment_p=0.25)
    a0 = _Replica(0, cfg).augmentation(4000)
    assert torch.equal(a0, _Replica(0, cfg).augmentation(4000))
    assert not torch.equal(a0, _Replica(1, cfg).augmentation(4000))
    assert set(a0.unique().tolist()) == {0.0, 1.0} and abs(float(a0.mean()) - 0.25) < 0.03
    angles = _Replica(0, ReplicaConfig(model="rot180", augment="paper", augment_rotation="uniform",
                                       rotation_max_deg=20.0)).augmentation(4000)
    moved = angles[angles != 0]
    assert abs(len(moved) / 4000 - 0.5) < 0.03 and float(moved.abs().max()) <= 20.0


def test_augment_images_flips_turns_and_rotates_only_the_chosen_images():
    x = torch.arange(2 * 3 * 1 * 4 * 4, dtype=torch.float32).view(2, 3, 1, 4, 4)  # (replicas, batch, C, H, W)
    chosen = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    flipped = augment_images(x, chosen, ReplicaConfig(model="flip", augment="paper"))
    turned = augment_images(x, chosen, ReplicaConfig(model="rot180", augment="paper"))
    for r in range(2):
        for b in range(3):
            pick = bool(chosen[r, b])
            assert torch.equal(flipped[r, b], x[r, b].flip(-1) if pick else x[r, b])
            assert torch.equal(turned[r, b], x[r, b].rot90(2, (-2, -1)) if pick else x[r, b])
    uniform = ReplicaConfig(model="rot180", augment="paper", augment_rotation="uniform", rotation_max_deg=90.0)
    quarter = augment_images(x, 90.0 * chosen, uniform)
    for r in range(2):
        for b in range(3):  # +90 degrees turns counterclockwise and lands on the pixel grid
            want = x[r, b].rot90(1, (-2, -1)) if chosen[r, b] else x[r, b]
            torch.testing.assert_close(quarter[r, b], want, atol=1e-4, rtol=0)


def test_run_reproduces_and_keeps_weights():
    task = get_task("replica")
    cfg = ReplicaConfig(epochs=2, n_images=50)
    ctx1, ctx2 = SimpleContext(), SimpleContext()
    r1, r2 = task.run(cfg, 5, ctx1), task.run(cfg, 5, ctx2)
    assert r1.metrics == r2.metrics
    w = ctx1.artifacts["weights"]["weights"]
    assert w.ndim == 1 and w.size == r1.metrics["n_params"]  # no buffers without batch norm
    np.testing.assert_array_equal(w, ctx2.artifacts["weights"]["weights"])


def test_curves_mode_logs_test_accuracy_every_epoch():
    ctx = SimpleContext()
    get_task("replica").run(ReplicaConfig(mode="curves", epochs=2, batch_size=128), 0, ctx)
    assert [h["step"] for h in ctx.history] == [0, 1]
    assert all(0 <= h["test_acc"] <= 1 for h in ctx.history)


def test_wasserstein_of_identical_and_scaled_replicas():
    u = np.random.default_rng(0).normal(size=50)
    emb = np.stack([u, u, 2 * u, 3 * u])
    d = pairwise_wasserstein(emb)
    m = np.mean(np.abs(u))
    assert d[0, 1] == pytest.approx(0, abs=1e-12)
    assert d[0, 2] == pytest.approx(m) and d[0, 3] == pytest.approx(2 * m) and d[2, 3] == pytest.approx(m)
    np.testing.assert_allclose(d, d.T)


def test_pairwise_wasserstein_is_pots():
    import ot
    emb = np.random.default_rng(3).normal(size=(6, 40)) * np.arange(1, 7)[:, None]
    d = pairwise_wasserstein(emb)
    for i in range(6):
        for j in range(6):
            assert d[i, j] == pytest.approx(ot.wasserstein_1d(emb[i], emb[j], p=1), abs=1e-12)


def test_rd_without_reduction_grows_with_the_spread_of_the_replicas():
    """Replicas c + s * noise: the no-reduction RD is proportional to s when c = 0 (W1 of
    scaled distributions scales), which the UMAP RD cannot be (bench/rd_scale.py measures it)."""
    noise = np.random.default_rng(4).normal(size=(10, 500))
    plain = RDSettings(reduction="none", bootstrap=0)
    rds = [replica_distance(s * noise, plain).rd for s in (0.01, 1.0, 100.0)]
    assert rds[1] == pytest.approx(100 * rds[0]) and rds[2] == pytest.approx(100 * rds[1])


def test_rd_of_identical_replicas_is_zero_and_of_scaled_copies_is_their_mean_distance():
    u = np.random.default_rng(1).normal(size=200)
    same = replica_distance(np.stack([u] * 5), RDSettings(reduction="none", bootstrap=50))
    assert same.rd == 0 and same.ci_low == 0 and same.ci_high == 0
    scaled = np.stack([c * u for c in (1.0, 2.0, 3.0, 4.0)])
    res = replica_distance(scaled, RDSettings(reduction="none", bins=400, sigma_bins=0, bootstrap=200))
    m = np.mean(np.abs(u))
    expected = np.mean([abs(a - b) * m for i, a in enumerate((1, 2, 3, 4)) for b in (1, 2, 3, 4)[i + 1:]])
    width = res.density_x[1] - res.density_x[0]
    assert res.rd == pytest.approx(expected, abs=width)
    assert res.ci_low <= res.rd <= res.ci_high
    assert np.sum(res.density) * width == pytest.approx(1.0)


def test_rd_with_umap_says_when_it_reduces_fewer_dimensions():
    w = np.random.default_rng(2).normal(size=(8, 300))
    res = replica_distance(w, RDSettings(bootstrap=20))
    assert res.embedding.shape == (8, 6) and res.n_components == 6
    assert "UMAP reduced to 6 dimensions, not 100: only 8 replicas" in res.notes
    assert res.rd > 0 and res.ci_low <= res.rd <= res.ci_high
    with pytest.raises(ValueError, match="n_replicas >= 3"):
        replica_distance(w[:2])


def test_digits_sweep_runs_and_aggregates_from_the_cli(cli, tmp_path):
    res = cli("run", "sweeps/replicas-digits.yaml", "--set", "seeds=4", "--set", "epochs=3",
              "--set", "model=[simple, dropout]", "--results", str(tmp_path), "--executor", "inline")
    assert res.returncode == 0, res.stderr
    agg = cli("aggregate", str(tmp_path / "replicas-digits"))
    assert agg.returncode == 0, agg.stderr
    folder = tmp_path / "replicas-digits" / "aggregates"
    rd = pd.read_parquet(folder / "rd.parquet")
    assert sorted(rd["model"]) == ["dropout", "simple"]
    assert (rd["rd"] > 0).all() and (rd["ci_low"] <= rd["rd"]).all() and (rd["rd"] <= rd["ci_high"]).all()
    assert rd["note"].str.contains("UMAP reduced to 2 dimensions").all()
    assert (rd["rd_no_reduction_ci_low"] <= rd["rd_no_reduction"]).all() and (rd["rd_no_reduction"] > 0).all()
    assert (rd["rd_no_reduction"] <= rd["rd_no_reduction_ci_high"]).all()
    # the RD under 5 UMAP random states, the headline's first; its spread beside the bootstrap
    states = rd["rd_umap_states"].map(json.loads)
    assert (states.map(len) == 5).all() and (states.map(lambda v: v[0]) == rd["rd"]).all()
    assert (rd["rd_umap_min"] <= rd["rd"]).all() and (rd["rd"] <= rd["rd_umap_max"]).all()
    assert (rd["rd_umap_sd"] >= 0).all() and (rd["umap_states"] == 5).all() and (rd["rd_mean_distance"] > 0).all()
    assert "blind to how far apart" in pd.read_parquet(folder / "rd_reading.parquet")["reading"].iloc[0]
    dens = pd.read_parquet(folder / "rd_density.parquet")
    assert set(dens["reduction"]) == {"umap", "none"}
    emb = pd.read_parquet(folder / "rd_embeddings.parquet")
    assert list(emb.columns) == ["model", "run_id", "dim_0", "dim_1"] and len(emb) == 8
    dist = pd.read_parquet(folder / "rd_distances.parquet")
    assert list(dist.columns) == ["model", "run_a", "run_b", "distance"] and len(dist) == 2 * 6
    assert (folder / "figures" / "rd_density.png").stat().st_size > 1000


def test_rd_settings_come_from_the_spec_and_are_validated():
    from symsweep import SpecError, load_spec
    from conftest import REPO
    spec = load_spec(REPO / "sweeps/replicas-digits.yaml", ["aggregate.bins=80", "aggregate.umap_seed=3"])
    assert spec.aggregate["bins"] == 80 and spec.aggregate["umap_seed"] == 3 and spec.aggregate["ci"] == 0.95
    with pytest.raises(SpecError, match=r"unknown key\(s\) 'binz'; allowed: n_components, n_neighbors"):
        load_spec(REPO / "sweeps/replicas-digits.yaml", ["aggregate.binz=80"])
    with pytest.raises(SpecError, match="aggregate.reduction: 'pca' is not allowed; allowed values: 'umap', 'none'"):
        load_spec(REPO / "sweeps/replicas-digits.yaml", ["aggregate.reduction=pca"])
    with pytest.raises(SpecError, match="has no aggregation settings"):
        load_spec(REPO / "sweeps/quickstart.yaml", ["aggregate.bins=3"])


def test_the_rd_under_other_umap_states_differs_only_by_umaps_randomness():
    """umap_spread: the same replicas under UMAP random states umap_seed, +1, ...: the first is
    the headline RD itself, the others are other embeddings of the same replicas."""
    from symsweep.tasks.replica.distance import umap_spread
    w = np.random.default_rng(3).normal(size=(12, 200))
    settings = RDSettings(bootstrap=0, umap_states=3)
    head = replica_distance(w, settings).rd
    spread = umap_spread(w, settings, head)
    values = json.loads(spread["rd_umap_states"])
    assert len(values) == 3 and values[0] == head
    assert values[1] == pytest.approx(replica_distance(w, RDSettings(bootstrap=0, umap_seed=1)).rd)
    assert spread["rd_umap_min"] == min(values) and spread["rd_umap_max"] == max(values)
    with pytest.raises(ValueError, match="umap_states must be >= 1"):
        RDSettings(umap_states=0)


@pytest.mark.parametrize("kw", [{"model": "dropout"}, {"model": "rot180", "augment": "paper", "augment_rotation": "uniform"}])
def test_draws_made_a_chunk_of_batches_at_once_train_the_same_replicas(monkeypatch, kw):
    """On a GPU the replicas' draws are made several batches at a time and sent in one copy
    (no wait on the GPU per batch): the same values, so the same training, as one batch at a time."""
    from symsweep.tasks.replica import task as t
    cfg = t.ReplicaConfig(dataset="digits", epochs=2, n_images=150, batch_size=32, **kw)

    def weights():
        return [t.flat_weights(model) for _, model, _ in t.train_replicas(cfg, [0, 1], None, "cpu", True)]
    assert t.draw_chunk(cfg, 200, 100, torch.device("cpu")) == 1
    assert t.draw_chunk(t.ReplicaConfig(), 200, 100, torch.device("cuda")) == 2  # a 100-image epoch at once
    one = weights()
    monkeypatch.setattr(t, "draw_chunk", lambda *a, **k: 3)  # 5 batches: chunks of 3 and 2
    assert all(np.array_equal(a, b) for a, b in zip(one, weights()))


@pytest.mark.parametrize("vectorized", [True, False], ids=["ensemble", "one-by-one"])
@pytest.mark.parametrize("model", ["batchnorm", "dropout", "rot180"])
def test_the_captured_step_path_trains_the_same_replicas_on_the_cpu(model, vectorized):
    """capture: cuda_graph records no graph off CUDA, but the step runs from its static
    tensors, one set per batch size (60 images, batch 32: 32 and 28), after 3 eager steps of
    each: the same weights, losses and buffers (BatchNorm's running statistics) bit for bit."""
    kw = dict(model=model, epochs=5, n_images=60, batch_size=32, augment="paper")

    def train(**extra):
        cfg = ReplicaConfig(**kw, **extra)
        return {s: (flat_weights(m), met) for s, m, met in train_replicas(cfg, [0, 1], None, "cpu", vectorized)}
    eager, captured = train(), train(capture="cuda_graph")
    for s in eager:
        assert np.array_equal(eager[s][0], captured[s][0])
        assert eager[s][1] == captured[s][1]


@pytest.mark.parametrize("vectorized", [True, False], ids=["ensemble", "one-by-one"])
def test_evaluating_every_epoch_leaves_the_training_unchanged(vectorized):
    """curves mode evaluates each replica after every epoch (eval mode: batch norm on its
    running statistics); the next epoch trains in train mode again, so the weights equal those
    of the same training evaluated only at the end, bit for bit."""
    cfg = ReplicaConfig(model="batchnorm", epochs=3, n_images=60, batch_size=32)
    logged = []

    def weights(on_epoch):
        return {s: flat_weights(m) for s, m, _ in train_replicas(cfg, [0, 1], None, "cpu", vectorized, on_epoch)}
    quiet, evaluated = weights(None), weights(lambda seed, epoch, metrics: logged.append((seed, epoch)))
    assert sorted(logged) == [(s, e) for s in (0, 1) for e in range(3)]
    for s in quiet:
        assert np.array_equal(quiet[s], evaluated[s])
