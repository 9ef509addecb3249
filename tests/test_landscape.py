"""Loss-landscape enumeration: counts, symmetries and losses checked against known answers."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO
from symsweep import SimpleContext, get_task
from symsweep.tasks.landscape.enumerate import LossTally, iter_losses, sign_patterns
from symsweep.tasks.landscape.nets import (
    CNN_DATASETS, CNN_VARIANTS, CnnShape, build_classifier, build_cnn, classifier_inputs, cnn_dataset, dropout_mask,
    filter_basis, params_of, plain_classifier_forward, plain_cnn_logits, plain_loss,
)
from symsweep.tasks.landscape.task import LandscapeConfig

TASK = get_task("landscape")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def all_losses(net, **kw) -> np.ndarray:
    return torch.cat(list(iter_losses(net, **kw))).numpy()


def small_classifier(expanded=True, bias=True, hidden=(2, 2), n=7, seed=0, output="none"):
    x = torch.from_numpy(np.random.default_rng(seed).uniform(0, 1, n))
    y = (x > 0.5).double()
    inputs = classifier_inputs(x, expanded, 0.5)
    return build_classifier(inputs, y, hidden, bias, output), inputs, y


# ----------------------------------------------------------------------------- known answers


def test_sign_patterns_enumerate_in_index_order():
    assert sign_patterns(2).tolist() == [[-1, -1], [-1, 1], [1, -1], [1, 1]]


def test_one_one_one_network_has_two_losses_by_hand():
    """x -> tanh(w1 x) -> w2 * h: (w1, w2) and (-w1, -w2) give the same output, so the
    4 configurations have exactly 2 losses, mean (tanh x - y)^2 and mean (tanh x + y)^2."""
    cfg = LandscapeConfig(hidden_sizes=(1,), n_samples=6)
    res = TASK.run(cfg, 5, ctx := SimpleContext())
    x, y = ctx.artifacts["data"]["x"][:, 0], ctx.artifacts["data"]["y"]
    by_hand = sorted([np.mean((np.tanh(x) - y) ** 2), np.mean((-np.tanh(x) - y) ** 2)])
    curve = ctx.artifacts["loss_curve"]
    assert res.metrics["num_configs"] == 4 and res.metrics["num_distinct_losses"] == 2
    assert curve["count"].tolist() == [2, 2]
    np.testing.assert_allclose(curve["loss"], by_hand, atol=1e-8)
    assert res.metrics["min_loss"] == pytest.approx(by_hand[0])
    np.testing.assert_array_equal(y, (x > 0.5).astype(float))


@pytest.mark.parametrize("expanded,bias,params", [(False, False, 20), (False, True, 23)])
def test_paper_classifier_has_2_to_the_params_configurations(expanded, bias, params):
    res = TASK.run(LandscapeConfig(expanded=expanded, first_layer_bias=bias, n_samples=20), 0, ctx := SimpleContext())
    assert res.metrics["num_params"] == params and res.metrics["num_configs"] == 2 ** params
    assert int(ctx.artifacts["loss_curve"]["count"].sum()) == 2 ** params
    assert ctx.artifacts["data"]["x"].shape == (20, 1)


def test_expanded_input_counts_the_extra_weights_without_running():
    assert LandscapeConfig(expanded=True).num_params == 23
    assert LandscapeConfig(expanded=True, first_layer_bias=True).num_params == 26


@pytest.mark.parametrize("expanded,bias", [(False, False), (True, False), (True, True)])
def test_tanh_sign_flip_symmetry_makes_losses_degenerate_in_groups(expanded, bias):
    """Flipping the signs of a hidden unit's incoming weights, bias and outgoing weights leaves a
    tanh network unchanged, and these flips act freely on the +-1 configurations: every loss is
    shared by a multiple of 2^(hidden units) configurations."""
    net, _, _ = small_classifier(expanded, bias, hidden=(3, 2))
    tally = LossTally(8)
    tally.add(torch.from_numpy(all_losses(net)))
    _, counts = tally.distinct()
    assert np.all(counts % 2 ** 5 == 0), counts


def test_expansion_splits_degenerate_losses_on_the_paper_network():
    raw = TASK.run(LandscapeConfig(n_samples=30), 1, SimpleContext()).metrics
    exp = TASK.run(LandscapeConfig(n_samples=30, expanded=True, hidden_sizes=(3, 3, 2)), 1, SimpleContext()).metrics
    assert exp["num_configs"] == 8 * raw["num_configs"]
    assert exp["num_distinct_losses"] > raw["num_distinct_losses"]


# ----------------------------------------------------------------------------- enumeration vs plain torch


@pytest.mark.parametrize("output", ["none", "tanh"])
def test_classifier_enumeration_matches_plain_forward(output):
    net, inputs, y = small_classifier(output=output)
    losses = all_losses(net)
    assert len(losses) == net.num_configs == 2 ** (3 * 2 + 2 * 2 + 2)
    for i in np.random.default_rng(0).choice(net.num_configs, 40, replace=False):
        params = params_of(net, int(i), first_param_count=3)
        out = plain_classifier_forward(inputs, params, True, output)
        assert losses[i] == pytest.approx(plain_loss("mse", out, y), abs=1e-12)


def test_gram_shortcut_equals_per_sample_loss_and_chunking_changes_nothing():
    net, _, _ = small_classifier(hidden=(3, 2))
    ref = all_losses(net, gram=False)
    np.testing.assert_allclose(all_losses(net, gram=True), ref, atol=1e-12)
    np.testing.assert_allclose(all_losses(net, gram=True, max_elements=1024), ref, atol=1e-12)
    np.testing.assert_array_equal(all_losses(net, gram=False, max_elements=1024), ref)


@pytest.mark.parametrize("pooling", ["flatten", "mean"])
@pytest.mark.parametrize("variant", CNN_VARIANTS)
def test_cnn_enumeration_matches_plain_forward(variant, pooling):
    images, y = cnn_dataset()
    k = filter_basis(variant).shape[0]
    channels = 2 if pooling == "mean" or k <= 4 else 1   # keep flatten at <= 2^20 configurations
    shape = CnnShape(variant, channels=channels, hidden=1, activation="relu", dropout_p=0.3, pooling=pooling,
                     output_bias=pooling == "flatten")
    mask = dropout_mask(shape, len(y), seed=3, dtype=torch.float64)
    net = build_cnn(images, y, shape, mask)
    losses = all_losses(net, max_elements=4096)
    features = shape.features_per_channel
    assert len(losses) == 2 ** (channels * k + channels * features + 2 * (1 + shape.output_bias))
    for i in np.random.default_rng(1).choice(net.num_configs, 30, replace=False):
        logits = plain_cnn_logits(images, params_of(net, int(i), k), shape, mask)
        assert losses[i] == pytest.approx(plain_loss("cross_entropy", logits, y), abs=1e-12)


@pytest.mark.parametrize("variant,max_elements,pooling", [("equivariant", 1024, "mean"), ("dropout", 2 ** 15, "mean"),
                                                          ("wrong_equivariant", 2 ** 12, "flatten")])
def test_cutting_one_prefix_into_blocks_changes_nothing(variant, max_elements, pooling):
    """A prefix bigger than max_elements is cut along its units' patterns (dropout: units differ;
    flatten: each unit hands on 4 features, summed in another order, so equal to rounding)."""
    images, y = cnn_dataset()
    shape = CnnShape(variant, channels=2, hidden=1, activation="tanh", dropout_p=0.3, pooling=pooling)
    net = build_cnn(images, y, shape, dropout_mask(shape, len(y), seed=0, dtype=torch.float64))
    whole = all_losses(net, max_elements=2 ** 24)
    assert len(whole) == net.num_configs
    np.testing.assert_allclose(all_losses(net, max_elements=max_elements), whole, rtol=0, atol=1e-14)


def test_tally_merges_chunks_like_one_unique():
    values = np.random.default_rng(0).integers(0, 50, 10_000) / 7
    tally = LossTally(6)
    for chunk in np.array_split(values, 13):
        tally.add(torch.from_numpy(chunk))
    keys, counts = np.unique(np.round(values, 6), return_counts=True)
    got_keys, got_counts = tally.distinct()
    np.testing.assert_allclose(got_keys, keys)
    np.testing.assert_array_equal(got_counts, counts)
    assert tally.min_loss == values.min() and values[tally.argmin] == values.min()


# ----------------------------------------------------------------------------- the CNN of Sec. 6.5


def _orientation(img: torch.Tensor) -> int:
    """0: the pair is horizontal, 1: vertical (the pair: the two nonzero pixels, or, on a
    nonzero background, the rows or columns that are constant)."""
    nonzero = img.nonzero()
    if len(nonzero) == 2:
        return 0 if nonzero[0, 0] == nonzero[1, 0] else 1
    if img[0, 0] == img[0, 1] and img[1, 0] == img[1, 1]:
        return 0
    assert img[0, 0] == img[1, 0] and img[0, 1] == img[1, 1]
    return 1


@pytest.mark.parametrize("reading", CNN_DATASETS)
def test_dataset_labels_survive_flips_and_half_turns_not_quarter_turns(reading):
    images, y = cnn_dataset(reading=reading)
    assert images.shape == (12, 2, 2) and set(images.unique().tolist()) == {-1.0, 0.0, 1.0}
    assert int(y.sum()) == 6 and len({tuple(i.flatten().tolist()) for i in images}) == 12
    for img, label in zip(images, y):
        assert _orientation(img) == label
        for g in (lambda a: a.flip(1), lambda a: a.flip(0), lambda a: a.rot90(2)):
            assert _orientation(g(img)) == label
        assert _orientation(img.rot90(1)) != label


def test_equivariant_filters_are_invariant_under_their_group():
    for variant, n, group in (("equivariant", 4, [lambda f: f.flip(1), lambda f: f.flip(0), lambda f: f.rot90(2)]),
                              ("wrong_equivariant", 3, [lambda f: f.rot90(1)]),
                              ("baseline", 9, [])):
        basis = filter_basis(variant)
        assert basis.shape[0] == n
        for signs in sign_patterns(n):
            f = torch.einsum("k,kij->ij", signs, basis)
            assert all(torch.equal(g(f), f) for g in group)
    assert not torch.equal(filter_basis("equivariant")[1].rot90(1), filter_basis("equivariant")[1])


def test_wrong_equivariance_cannot_beat_chance_and_right_equivariance_can():
    """Every vertical pair is a 90-degree rotation of a horizontal one, so a network invariant
    under 90-degree rotations gives both the same logits: loss >= ln 2, no better than chance."""
    small = dict(network="cnn", conv_channels=2, cnn_hidden=2, cnn_pooling="mean", cnn_output_bias=False)
    wrong = TASK.run(LandscapeConfig(variant="wrong_equivariant", **small), 0, SimpleContext()).metrics
    right = TASK.run(LandscapeConfig(variant="equivariant", **small), 0, SimpleContext()).metrics
    assert wrong["num_configs"] == 2 ** (2 * 3 + 4 + 4) and right["num_configs"] == 2 ** (2 * 4 + 4 + 4)
    assert wrong["min_loss"] >= math.log(2) - 1e-12 and wrong["best_accuracy"] <= 0.5
    assert right["min_loss"] < math.log(2) - 0.1


def _fig7_spec_config(**changes) -> LandscapeConfig:
    fixed = yaml.safe_load((REPO / "sweeps" / "landscape-cnn.yaml").read_text())["fixed"]
    return LandscapeConfig(**{**fixed, "hidden_sizes": (3, 3, 2), **changes})


@pytest.mark.parametrize("reading", CNN_DATASETS)
def test_fig7_baseline_best_configuration_classifies_all_twelve_images(reading):
    """Before variants are compared, the baseline of the Fig. 7 spec must be able to fit its
    data: its lowest-loss configuration classifies all 12 images (checked with plain torch)."""
    res = TASK.run(_fig7_spec_config(variant="baseline", cnn_dataset=reading, cnn_pooling="flatten"), 0,
                   SimpleContext()).metrics
    assert res["best_accuracy"] == 1.0 and res["min_loss"] < 0.2


def test_mean_pooled_baseline_without_output_bias_cannot_fit_the_images():
    """The earlier reading: global mean pooling, no bias. Nothing breaks the tie of an all-zero
    feature vector, and no configuration gets below ln 2 at one channel."""
    res = TASK.run(LandscapeConfig(network="cnn", conv_channels=1, cnn_hidden=2, cnn_pooling="mean",
                                   cnn_output_bias=False), 0, SimpleContext()).metrics
    assert res["min_loss"] >= math.log(2) - 1e-9 and res["best_accuracy"] < 1.0


def test_only_dropout_depends_on_the_seed():
    base = dict(network="cnn", conv_channels=1, cnn_hidden=1)
    runs = {v: [TASK.run(LandscapeConfig(variant=v, **base), s, SimpleContext()).metrics for s in (0, 1)]
            for v in ("baseline", "dropout")}
    assert runs["baseline"][0]["min_loss"] == runs["baseline"][1]["min_loss"]
    assert runs["dropout"][0]["min_loss"] != runs["dropout"][1]["min_loss"]


# ----------------------------------------------------------------------------- aggregation, config


def test_aggregate_and_figures_from_runs():
    rows, store = [], {}
    for i, (expanded, bias) in enumerate([(False, False), (True, False), (False, True), (True, True)]):
        cfg = LandscapeConfig(expanded=expanded, first_layer_bias=bias, hidden_sizes=(2, 2), n_samples=10)
        res = TASK.run(cfg, 0, ctx := SimpleContext())
        rows.append({"run_id": f"r{i}", "status": "completed", "seed": 0, "cfg_network": "classifier",
                     "cfg_expanded": expanded, "cfg_first_layer_bias": bias, "cfg_variant": "baseline",
                     **{f"metric_{k}": v for k, v in res.metrics.items()}})
        store[f"r{i}"] = ctx.artifacts
    runs = pd.DataFrame(rows)
    tables = TASK.aggregate(runs, pd.DataFrame(), lambda rid, name: store[rid][name])
    levels = tables["landscape_levels"]
    assert set(levels["label"]) == {"raw", "expanded", "raw + bias", "expanded + bias"}
    per_label = levels.groupby("label")["multiplicity"].sum()
    assert per_label["raw"] == 2 ** 8 and per_label["expanded + bias"] == 2 ** 12
    assert (tables["landscape_multiplicity"]["levels"] > 0).all()
    figs = TASK.figures(tables, runs, pd.DataFrame())
    assert list(figs) == ["fig6_classifier"] and len(figs["fig6_classifier"].axes) == 2


def test_cnn_aggregate_keeps_settings_apart():
    rows, store = [], {}
    for i, (variant, reading, pooling, seed) in enumerate([("baseline", "signed_pairs", "flatten", 0),
                                                           ("baseline", "pair_on_background", "flatten", 0),
                                                           ("dropout", "signed_pairs", "mean", 0),
                                                           ("dropout", "signed_pairs", "mean", 1)]):
        cfg = LandscapeConfig(network="cnn", variant=variant, cnn_dataset=reading, cnn_pooling=pooling,
                              conv_channels=1, cnn_hidden=1)
        res = TASK.run(cfg, seed, ctx := SimpleContext())
        rows.append({"run_id": f"r{i}", "status": "completed", "seed": seed, "cfg_network": "cnn",
                     "cfg_variant": variant, "cfg_cnn_dataset": reading, "cfg_cnn_pooling": pooling,
                     **{f"metric_{k}": v for k, v in res.metrics.items()}})
        store[f"r{i}"] = ctx.artifacts
    runs = pd.DataFrame(rows)
    tables = TASK.aggregate(runs, pd.DataFrame(), lambda rid, name: store[rid][name])
    summary = tables["landscape_cnn"]
    assert sorted(zip(summary["setting"], summary["variant"])) == [
        ("pair_on_background, flatten", "baseline"), ("signed_pairs, flatten", "baseline"),
        ("signed_pairs, mean", "dropout")]
    dropout = summary[summary["variant"] == "dropout"].iloc[0]
    assert dropout["seeds"] == 2 and dropout["min_loss_lo"] == min(runs.loc[2:, "metric_min_loss"])
    levels = tables["landscape_levels"]
    assert levels.groupby("setting")["multiplicity"].sum().to_dict() == {
        "pair_on_background, flatten": 2 ** 17, "signed_pairs, flatten": 2 ** 17, "signed_pairs, mean": 2 ** 14}
    figs = TASK.figures(tables, runs, pd.DataFrame())
    assert list(figs) == ["fig7_cnn"] and len(figs["fig7_cnn"].axes) == 3 * 2


@pytest.mark.parametrize("bad", [dict(hidden_sizes=()), dict(n_samples=0), dict(dropout_p=1.0),
                                 dict(loss_decimals=13), dict(hidden_sizes=(8, 8)), dict(max_elements=10)])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        LandscapeConfig(**bad)
