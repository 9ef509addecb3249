"""Loss landscapes by exhaustive +-1 weight enumeration (paper Sec. 3.2, 4.1, 6.4, 6.5; Fig. 6, 7).

One run evaluates the loss of every configuration of one small network whose weights
(and, where asked, first-layer biases) are each -1 or +1, and counts how the losses are
degenerate: how many configurations share each loss value after rounding.

* network "classifier": the random-number classifier, a tanh MLP 1-3-3-2-1 on x (raw) or
  2-3-3-2-1 on [x, c] (expanded), MSE to the label x > 0.5, on a seeded sample of x.
* network "cnn": a tiny CNN on the 12 2x2 images of Sec. 6.5, cross entropy, in five
  variants (baseline, dropout, batchnorm, equivariant, wrong_equivariant). The conv maps
  are flattened into the dense layer (the paper names no pooling); global mean pooling is
  an option (`cnn_pooling: mean`), under which the baseline cannot fit the 12 images and the
  wrong-equivariant variant is blind by construction.

The enumeration itself lives in `symsweep.tasks.landscape.enumerate` (vectorized, chunked, bounded memory).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch

from symsweep.api import RunContext, RunResult, Task
from symsweep.stats import completed
from symsweep.tasks.landscape.enumerate import LossTally, iter_losses
from symsweep.tasks.landscape.nets import (
    CNN_VARIANTS, CnnShape, build_classifier, build_cnn, classifier_inputs, cnn_dataset, dropout_mask,
    filter_basis, params_of, plain_classifier_forward, plain_cnn_logits, plain_loss,
)

DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass(frozen=True)
class LandscapeConfig:
    network: Literal["classifier", "cnn"] = "classifier"
    """Which network: the random-number classifier (Sec. 6.4) or the 2x2-image CNN (Sec. 6.5)."""
    expanded: bool = False
    """classifier: input [x, c] (expanded) instead of x (raw)."""
    expansion_c: float = 0.5
    """classifier: the constant c of the expanded input (paper: 0.5)."""
    first_layer_bias: bool = False
    """classifier: give the first layer's units a +-1 bias too (Fig. 6B)."""
    hidden_sizes: tuple[int, ...] = (3, 3, 2)
    """classifier: widths of the tanh hidden layers (paper: 3, 3, 2)."""
    output_activation: Literal["none", "tanh"] = "none"
    """classifier: activation of the single output unit (the paper names tanh for the network, not for its output)."""
    n_samples: int = 100
    """classifier: how many numbers x ~ U[0, 1) the loss averages over (drawn from the run's seed)."""
    label_threshold: float = 0.5
    """classifier: label y = 1 if x > threshold else 0."""
    variant: Literal["baseline", "dropout", "batchnorm", "equivariant", "wrong_equivariant"] = "baseline"
    """cnn: the network variant of Fig. 7."""
    conv_channels: int = 2
    """cnn: channels of the 3x3 convolution."""
    cnn_hidden: int = 2
    """cnn: units of the dense layer between the conv features and the two logits."""
    cnn_pooling: Literal["flatten", "mean"] = "flatten"
    """cnn: how the conv maps reach the dense layer: flattened (4 inputs per channel; the paper's
    "one convolutional layer, one fully connected layer", no pooling named) or global mean
    pooled (1 input per channel; the earlier reading, kept as an option)."""
    cnn_output_bias: bool = True
    """cnn: give each of the two logits a +-1 bias, enumerated like the weights. The paper names
    only weights; without this bias a ReLU network has no default class (all-zero features give
    tied logits), and no configuration of the one-channel network fits the 12 images."""
    cnn_dataset: Literal["signed_pairs", "pair_on_background"] = "signed_pairs"
    """cnn: which reading of the paper's 12 images (Fig. 10 is not in the text; see
    `symsweep.tasks.landscape.nets.cnn_dataset`)."""
    cnn_activation: Literal["relu", "tanh"] = "relu"
    """cnn: activation after the convolution and after the dense layer."""
    dropout_p: float = 0.3
    """cnn, variant dropout: drop probability of the fixed mask on the dense layer's inputs (paper: 0.3)."""
    loss_decimals: int = 8
    """Losses are rounded to this many decimals before counting distinct values (<= 5 with float32)."""
    dtype: Literal["float64", "float32"] = "float64"
    """Arithmetic precision of the enumeration."""
    max_elements: int = 2 ** 20
    """Largest temporary of the enumeration, in numbers (bounds memory; 2^20 float64 = 8 MiB)."""

    # Budgets no one can mean (steps: 99999999999999999999999) are refused when a spec is read,
    # naming the range. A class attribute, not a field: run ids hash the fields only.
    BUDGET_RANGES = {"n_samples": (1, 10_000_000), "max_elements": (1024, 2**34)}

    def __post_init__(self) -> None:
        if not self.hidden_sizes or any(h < 1 for h in self.hidden_sizes):
            raise ValueError(f"hidden_sizes must be a non-empty list of ints >= 1, got {list(self.hidden_sizes)}")
        if self.n_samples < 1:
            raise ValueError(f"n_samples must be >= 1, got {self.n_samples}")
        if self.conv_channels < 1 or self.cnn_hidden < 1:
            raise ValueError("conv_channels and cnn_hidden must be >= 1")
        if not 0.0 <= self.dropout_p < 1.0:
            raise ValueError(f"dropout_p must be in [0, 1), got {self.dropout_p}")
        if not 0 <= self.loss_decimals <= 12:
            raise ValueError(f"loss_decimals must be in 0..12, got {self.loss_decimals}")
        if self.max_elements < 1024:
            raise ValueError(f"max_elements must be >= 1024, got {self.max_elements}")
        if self.num_params > 40:
            raise ValueError(f"{self.num_params} parameters means 2^{self.num_params} configurations; "
                             "at most 40 parameters are allowed")

    @property
    def num_params(self) -> int:
        """Number of +-1 parameters (so the network has 2^num_params configurations)."""
        if self.network == "classifier":
            sizes = [2 if self.expanded else 1] + list(self.hidden_sizes) + [1]
            weights = sum(a * b for a, b in zip(sizes, sizes[1:]))
            return weights + (self.hidden_sizes[0] if self.first_layer_bias else 0)
        k = filter_basis(self.variant).shape[0]
        features = 4 if self.cnn_pooling == "flatten" else 1
        return (self.conv_channels * k + self.conv_channels * features * self.cnn_hidden
                + 2 * (self.cnn_hidden + self.cnn_output_bias))


# ----------------------------------------------------------------------------- run


def run(config: LandscapeConfig, seed: int, ctx: RunContext) -> RunResult:
    dtype, device = DTYPES[config.dtype], torch.device(ctx.device)
    if config.network == "classifier":
        x = torch.from_numpy(np.random.default_rng(seed).uniform(0.0, 1.0, config.n_samples)).to(device, dtype)
        y = (x > config.label_threshold).to(dtype)
        inputs = classifier_inputs(x, config.expanded, config.expansion_c)
        net = build_classifier(inputs, y, config.hidden_sizes, config.first_layer_bias, config.output_activation)
        first_params = inputs.shape[1] + config.first_layer_bias
    else:
        inputs, y = cnn_dataset(dtype, device, config.cnn_dataset)
        shape = CnnShape(config.variant, config.conv_channels, config.cnn_hidden, config.cnn_activation,
                         config.dropout_p, config.cnn_pooling, config.cnn_output_bias)
        mask = dropout_mask(shape, len(y), seed, dtype, device)
        net = build_cnn(inputs, y, shape, mask)
        first_params = filter_basis(config.variant).shape[0]

    tally = LossTally(config.loss_decimals)
    start = time.perf_counter()
    for chunk in iter_losses(net, config.max_elements):
        tally.add(chunk)
    elapsed = time.perf_counter() - start
    values, counts = tally.distinct()

    # Re-evaluate the best configuration with plain torch ops: an independent check of the
    # enumeration on every run, and the accuracy that the loss alone does not give.
    best = params_of(net, tally.argmin, first_params)
    if config.network == "classifier":
        out = plain_classifier_forward(inputs, best, config.first_layer_bias, config.output_activation)
        accuracy = float(((out > 0.5).to(dtype) == y).to(torch.float64).mean())
    else:
        out = plain_cnn_logits(inputs, best, shape, mask)
        true = out.gather(1, y.long()[:, None])[:, 0]
        other = out.gather(1, (1 - y.long())[:, None])[:, 0]
        accuracy = float((true > other).to(torch.float64).mean())  # a tie counts as wrong
    check = plain_loss(net.loss, out, y)
    tol = 1e-4 if config.dtype == "float32" else 1e-8
    if not math.isclose(check, tally.min_loss, rel_tol=tol, abs_tol=tol):
        raise RuntimeError(f"enumeration and plain forward disagree at config {tally.argmin}: "
                           f"{tally.min_loss} vs {check}")

    ctx.save_artifact("loss_curve", {"loss": values, "count": counts})
    ctx.save_artifact("data", {"x": inputs.cpu().numpy(), "y": y.cpu().numpy()})
    ctx.save_artifact("best_config", {f"layer{i}": p.cpu().numpy() for i, p in enumerate(best)})
    return RunResult(metrics={
        "num_configs": net.num_configs,
        "num_params": config.num_params,
        "num_distinct_losses": len(values),
        "mean_multiplicity": net.num_configs / len(values),
        "min_loss": tally.min_loss,
        "min_multiplicity": int(counts[0]),
        "max_loss": float(values[-1]),
        "max_multiplicity": int(counts.max()),
        "best_accuracy": accuracy,
        "enumeration_s": elapsed,
        "configs_per_s": net.num_configs / elapsed,
    })


# ----------------------------------------------------------------------------- aggregation


def _label(row: pd.Series) -> str:
    if row.get("cfg_network", "classifier") == "cnn":
        return str(row.get("cfg_variant", "baseline"))
    text = "expanded" if bool(row.get("cfg_expanded", False)) else "raw"
    return text + (" + bias" if bool(row.get("cfg_first_layer_bias", False)) else "")


def _setting(row: pd.Series) -> str:
    """cnn: the dataset reading and pooling a variant was enumerated under ("" for the classifier)."""
    if row.get("cfg_network", "classifier") != "cnn":
        return ""
    return f"{row.get('cfg_cnn_dataset', 'signed_pairs')}, {row.get('cfg_cnn_pooling', 'flatten')}"


def _first_seed_per_label(runs: pd.DataFrame) -> pd.DataFrame:
    done = completed(runs).copy()
    if done.empty:
        return done
    done["label"] = done.apply(_label, axis=1)
    done["setting"] = done.apply(_setting, axis=1)
    done["group"] = done.get("cfg_network", "classifier")
    return done.sort_values("seed").groupby(["group", "setting", "label"], sort=False).head(1)


def _cnn_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per CNN setting and variant: the landscape counts (lowest seed) and, over all
    seeds, the range of the minimum loss and of the best configuration's accuracy."""
    done = completed(runs)
    done = done[done.get("cfg_network", "classifier") == "cnn"].copy()
    if done.empty:
        return pd.DataFrame()
    done["setting"] = done.apply(_setting, axis=1)
    done["variant"] = done.apply(_label, axis=1)
    rows = []
    for (setting, variant), g in done.groupby(["setting", "variant"], sort=False):
        first = g.sort_values("seed").iloc[0]
        rows.append({"setting": setting, "variant": variant, "seeds": len(g),
                     "num_params": int(first["metric_num_params"]), "num_configs": int(first["metric_num_configs"]),
                     "num_distinct_losses": int(first["metric_num_distinct_losses"]),
                     "min_loss": float(first["metric_min_loss"]),
                     "min_multiplicity": int(first["metric_min_multiplicity"]),
                     "best_accuracy": float(first["metric_best_accuracy"]),
                     "min_loss_lo": float(g["metric_min_loss"].min()), "min_loss_hi": float(g["metric_min_loss"].max()),
                     "best_accuracy_lo": float(g["metric_best_accuracy"].min()),
                     "best_accuracy_hi": float(g["metric_best_accuracy"].max())})
    order = {v: i for i, v in enumerate(CNN_VARIANTS)}
    return pd.DataFrame(rows).sort_values(["setting", "variant"], key=lambda c: c.map(order) if c.name == "variant"
                                          else c).reset_index(drop=True)


def aggregate(runs: pd.DataFrame, history: pd.DataFrame, load_artifact) -> dict[str, pd.DataFrame]:
    """`landscape_levels`: every distinct loss and its multiplicity, for the lowest seed of
    each network/setting/variant; `landscape_multiplicity`: how many loss levels have each
    multiplicity; `landscape_cnn`: the CNN counts per setting and variant, with the minimum
    loss and best-configuration accuracy over seeds (only the dropout mask depends on the seed)."""
    rows, hist = [], []
    for _, r in _first_seed_per_label(runs).iterrows():
        curve = load_artifact(r["run_id"], "loss_curve")
        for value, count in zip(curve["loss"], curve["count"]):
            rows.append({"network": r["group"], "setting": r["setting"], "label": r["label"], "seed": r["seed"],
                         "run_id": r["run_id"], "loss": float(value), "multiplicity": int(count)})
        mult, levels = np.unique(curve["count"], return_counts=True)
        for m, k in zip(mult, levels):
            hist.append({"network": r["group"], "setting": r["setting"], "label": r["label"], "seed": r["seed"],
                         "multiplicity": int(m), "levels": int(k)})
    tables = {"landscape_levels": pd.DataFrame(rows), "landscape_multiplicity": pd.DataFrame(hist)}
    summary = _cnn_summary(runs)
    if not summary.empty:
        tables["landscape_cnn"] = summary
    return tables


def figures(tables: dict, runs: pd.DataFrame, history: pd.DataFrame) -> dict:
    """fig6_classifier / fig7_cnn: sorted loss curves, highest loss first, one per label
    (x = fraction of configurations; flat steps are degenerate configurations). fig7_cnn has
    one row per setting (dataset reading, pooling) and adds the lowest losses against how
    many configurations reach them (log axis)."""
    from symsweep.tasks.common.plots import subplots

    levels = tables.get("landscape_levels")
    if levels is None or levels.empty:
        return {}
    if "setting" not in levels:
        levels = levels.assign(setting="")
    figs = {}
    for network, name in (("classifier", "fig6_classifier"), ("cnn", "fig7_cnn")):
        part = levels[levels["network"] == network]
        if part.empty:
            continue
        settings = sorted(part["setting"].unique())
        panels = [bool(b) for b in sorted(part["label"].str.contains("bias").unique())] \
            if network == "classifier" else [None, "low"]
        fig, axes = subplots(len(settings), len(panels), figsize=(5.5 * len(panels), 4 * len(settings)),
                                 squeeze=False)
        for row_axes, setting in zip(axes, settings):
            for ax, panel in zip(row_axes, panels):
                _landscape_panel(ax, part[part["setting"] == setting], network, panel)
                if setting:
                    ax.set_title(f"{setting}" + (": lowest losses" if panel == "low" else ""))
        fig.suptitle("Loss landscape, every +-1 configuration" +
                     (" (random-number classifier)" if network == "classifier" else " (2x2-image CNN)"))
        fig.tight_layout(rect=(0, 0, 1, 1 - 0.04 / len(settings)))
        figs[name] = fig
    return figs


def _landscape_panel(ax, sub: pd.DataFrame, network: str, panel) -> None:
    if panel in (True, False):
        sub = sub[sub["label"].str.contains("bias") == panel]
    order = [v for v in CNN_VARIANTS if v in set(sub["label"])] if network == "cnn" \
        else sorted(sub["label"].unique(), key=lambda label: (label.startswith("expanded"), label))
    for label in order:
        lv = sub[sub["label"] == label].sort_values("loss", ascending=panel == "low")
        counts = lv["multiplicity"].to_numpy()
        ys = np.concatenate([lv["loss"].to_numpy(), lv["loss"].to_numpy()[-1:]])
        if panel == "low":  # the lowest losses, by how many configurations reach them
            ax.step(np.concatenate([[1], 1 + np.cumsum(counts)]), ys, where="post", label=label)
            continue
        xs = np.concatenate([[0], np.cumsum(counts)]) / counts.sum()
        ax.step(xs, ys, where="post", label=f"{label}: {len(lv)} distinct of {counts.sum():,}")
    if panel == "low":
        ax.set(xscale="log", xlabel="configurations with at most this loss", title="lowest losses")
    else:
        ax.set_xlabel("configurations, sorted by loss, highest first (fraction)")
    ax.set_ylabel("MSE loss" if network == "classifier" else "cross-entropy loss")
    if panel in (True, False):
        ax.set_title("first-layer bias" if panel else "no bias")
    ax.legend(fontsize=8)


TASK = Task(
    name="landscape",
    config_cls=LandscapeConfig,
    run=run,
    summary_metrics=("num_configs", "num_distinct_losses", "min_multiplicity", "min_loss", "best_accuracy"),
    aggregate=aggregate,
    figures=figures,
    baseline={"expanded": False},
    description="exhaustive +-1 weight enumeration: degenerate losses, raw vs expanded (paper Sec. 3.2, 6.4-6.5)",
)
