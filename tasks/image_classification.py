"""Image classification with input expansion (paper Sec. 2.1 and 6.1).

One run trains one model on one dataset, raw (expansion_factor 1) or expanded by an
integer factor with a fill value, with the paper's protocol: SGD lr 0.1, momentum 0.9,
weight decay 5e-4, cosine annealing with T_max = epochs (ImageNet-R/100: step decay 0.2
at epochs 90, 120, 160). History per epoch: train loss, test loss, test accuracy, lr.

Order of operations per batch: images in [0, 1] -> (training batches, augment: standard:
random crop from the zero-padded image + horizontal flip, on the device) -> expand (fill in
pixel units) -> normalize with the raw training images' channel mean/std -> (grayscale +
replicate: repeat to 3 channels) -> model.
"""
from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from symsweep.api import Diverged, RunContext, RunResult, Task
from symsweep.stats import completed, describe_groups
from symsweep.tasks.common.capture import GraphedStep
from symsweep.tasks.common.datasets import DATASETS, ImageData, TensorSource, image_size_of, load_dataset, send
from symsweep.tasks.common.expansion import RANDOM
from symsweep.tasks.common.models import MIN_INPUT, build_model, count_parameters

# Datasets whose classes a left-right mirror changes (digits, Japanese characters): the
# standard augmentation crops them but does not flip them.
NO_FLIP = ("digits", "kmnist")


@dataclass(frozen=True)
class ImageClassificationConfig:
    dataset: str = "digits"
    """Dataset name (digits is bundled; the others are read from --data-root)."""
    model: Literal["small_cnn", "resnet18", "resnet50", "densenet121", "efficientnet_b0",
                   "mobilenet_v3_large"] = "small_cnn"
    """Network architecture (torchvision models unmodified but for num_classes / input channels)."""
    width: int = 32
    """Channels of the small CNN's first block (ignored by the torchvision models)."""
    in_channels: Literal["native", "replicate"] = "native"
    """Grayscale data: first conv takes 1 channel (native) or the gray channel is repeated 3x (replicate)."""
    image_size: int | None = None
    """Resize images to this square size before expansion (None: native / the dataset's default)."""
    expansion_factor: int = 1
    """1 = raw input; k >= 2 spreads pixel (i, j) to (k*i, k*j)."""
    fill: float | Literal["random"] = 0.5
    """Value at the expanded positions, in pixel units before normalization, or "random" (U[0,1))."""
    random_fill: Literal["per_image", "per_batch"] = "per_image"
    """With fill "random": noise fixed per image for the whole run, or drawn anew for every batch."""
    epochs: int = 10
    """Training epochs (also the cosine schedule's T_max)."""
    batch_size: int = 64
    """Minibatch size."""
    lr: float = 0.1
    """Initial SGD learning rate."""
    momentum: float = 0.9
    """SGD momentum."""
    weight_decay: float = 5e-4
    """SGD weight decay."""
    scheduler: Literal["cosine", "step", "none"] = "cosine"
    """cosine (T_max = epochs), step (x gamma at milestones; the paper's ImageNet schedule) or none."""
    milestones: tuple[int, ...] = (90, 120, 160)
    """Epochs of the step schedule's decays."""
    gamma: float = 0.2
    """Decay factor of the step schedule."""
    train_limit: int | None = None
    """Train on a seeded subset of this many training images (None: all); for quick checks."""
    test_limit: int | None = None
    """Evaluate on a seeded subset of this many test images (None: all); for quick checks."""
    test_fraction: float = 0.2
    """Held-out fraction for datasets without a standard split (digits, EuroSAT, ImageNet-R)."""
    split_seed: int = 0
    """Seed of that split (and of train_limit's subset): the same for every run seed."""
    download: bool = False
    """Download a torchvision dataset into the data root when it is missing."""
    augment: Literal["none", "standard"] = "none"
    """Augmentation of the training images, drawn per image from the run's seed and done on the
    device before expansion. standard: a random crop back to the image size from the image
    zero-padded by `crop_padding_px` (black, in pixel units), then a horizontal flip with
    probability 1/2 (not on digits and KMNIST, whose classes a mirror changes): the usual CIFAR
    recipe (pad 4 at 32 px), which the paper's CIFAR accuracies presuppose. none: the images as loaded."""
    crop_padding_px: int | None = None
    """Padding of the standard random crop, in pixels of the loaded image (before expansion);
    None: image size // 8 (4 px at CIFAR's 32 px, 28 px at 224 px, 1 px on 8x8 digits)."""
    amp: bool = True
    """bfloat16 autocast on CUDA (ignored on CPU). The paper does not say; false trains in fp32.
    The run row keeps the setting, so the two are never mixed in one comparison unnoticed."""
    channels_last: bool = True
    """channels-last memory format on CUDA (ignored on CPU)."""
    workers: int = 0
    """DataLoader worker processes for the file-based datasets."""
    capture: Literal["none", "cuda_graph"] = "none"
    """cuda_graph: on CUDA, the training step (forward, loss, backward, SGD) is replayed from
    a CUDA graph per batch size (full batches, and the epoch's last, partial batch), recorded
    after 3 eager warm-up steps of that size, so a small batch is not bound by Python and
    kernel launches. SGD then runs fused with the learning rate as a device tensor (what a
    graph can replay as the schedule changes it) and autocast without its weight cache: the
    numbers equal the eager step's to rounding (tested on the CPU, where no graph is recorded
    but the rest of the path runs). Opt-in: no GPU has run it in this project yet
    (docs/performance.md)."""

    # Settings added after sweeps had run: left out of the run id (and row) at their default.
    OMIT_AT_DEFAULT = {"capture": "none"}

    # Budgets no one can mean (steps: 99999999999999999999999) are refused when a spec is read,
    # naming the range. A class attribute, not a field: run ids hash the fields only.
    BUDGET_RANGES = {"epochs": (1, 10_000), "batch_size": (1, 65_536), "train_limit": (1, 100_000_000),
                     "test_limit": (1, 100_000_000), "image_size": (1, 4_096), "expansion_factor": (1, 64),
                     "workers": (0, 256)}

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset {self.dataset!r} unknown; available: {', '.join(DATASETS)}")
        if self.expansion_factor < 1:
            raise ValueError(f"expansion_factor must be >= 1, got {self.expansion_factor}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if isinstance(self.fill, float) and not 0.0 <= self.fill <= 1.0:
            raise ValueError(f"fill must be in [0, 1] (pixel units) or 'random', got {self.fill}")
        if self.image_size is not None and self.image_size < 1:
            raise ValueError(f"image_size must be >= 1, got {self.image_size}")
        if self.crop_padding_px is not None and self.crop_padding_px < 0:
            raise ValueError(f"crop_padding_px must be >= 0, got {self.crop_padding_px}")
        size = image_size_of(self.dataset, self.image_size)
        if size * self.expansion_factor < MIN_INPUT[self.model]:
            raise ValueError(f"{self.model} needs inputs of at least {MIN_INPUT[self.model]} px; {self.dataset} "
                             f"is {size} px: set image_size: {MIN_INPUT[self.model]}")
        if self.expansion_factor == 1:
            # A raw run has no filled positions: one canonical fill, so that a factor x fill
            # grid plans the raw runs once (equal configs have equal run ids).
            object.__setattr__(self, "fill", 0.0)
            object.__setattr__(self, "random_fill", "per_image")


@functools.lru_cache(maxsize=2)
def _dataset(name: str, root: str | None, download: bool, test_fraction: float, split_seed: int,
             image_size: int | None, train_limit: int | None, test_limit: int | None = None
             ) -> tuple[ImageData, torch.Tensor, torch.Tensor]:
    data = load_dataset(name, root, download, test_fraction, split_seed, image_size)
    rng = np.random.default_rng(split_seed)
    train, test = data.train, data.test
    if train_limit is not None and train_limit < len(train):
        train = train.subset(np.sort(rng.permutation(len(train))[:train_limit]))
    if test_limit is not None and test_limit < len(test):
        test = test.subset(np.sort(rng.permutation(len(test))[:test_limit]))
    if train is not data.train or test is not data.test:
        data = ImageData(train, test, data.num_classes, data.channels, data.image_size,
                         data.split + f" train_limit={train_limit} test_limit={test_limit}", data.source)
    mean, std = data.channel_stats()
    return data, mean, std


def draw_crop_flip(sizes, padding: int, flip: bool, gen: torch.Generator
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The crops' offsets (N, 2) and mirror flags (N,) of consecutive batches of `sizes`
    images, drawn from `gen` batch after batch in the order `random_crop_flip` draws them, so
    an epoch's draws can be made (and sent to the device) at once with the same values."""
    offsets, mirrors = [], []
    for n in sizes:
        offsets.append(torch.randint(0, 2 * padding + 1, (n, 2), generator=gen))
        if flip:
            mirrors.append(torch.rand(n, generator=gen) < 0.5)
    return torch.cat(offsets), torch.cat(mirrors) if flip else None


def random_crop_flip(x: torch.Tensor, padding: int, flip: bool, gen: torch.Generator | None = None,
                     drawn: tuple[torch.Tensor, torch.Tensor | None] | None = None) -> torch.Tensor:
    """(N, C, H, W) images on any device -> the same size cropped at a random offset from the
    image zero-padded by `padding`, then mirrored left-right with probability 1/2 if `flip`.
    The draws come from the CPU generator `gen` (so a seed gives the same crops on every
    device), or are given (`drawn`: from `draw_crop_flip`, on any device); the pixel work is
    one gather on x's device."""
    n, _, h, w = x.shape
    offsets, mirror = drawn if drawn is not None else draw_crop_flip([n], padding, flip, gen)
    offsets = offsets.to(x.device, non_blocking=True)
    if padding:
        padded = F.pad(x, (padding, padding, padding, padding))
        rows = offsets[:, :1] + torch.arange(h, device=x.device)                # (N, H)
        cols = offsets[:, 1:] + torch.arange(w, device=x.device)                # (N, W)
        first = torch.arange(n, device=x.device)[:, None, None]
        x = padded.permute(0, 2, 3, 1)[first, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if mirror is not None:
        x = torch.where(mirror.to(x.device, non_blocking=True).view(-1, 1, 1, 1), x.flip(-1), x)
    return x.contiguous()


class _Inputs:
    """Augmentation, expansion and normalization of a batch, with the run's own random draws."""

    def __init__(self, config: ImageClassificationConfig, seed: int, mean, std, device):
        self.c, self.seed, self.device = config, seed, device
        self.mean, self.std = mean.view(1, -1, 1, 1).to(device), std.view(1, -1, 1, 1).to(device)
        self.batch_gen = torch.Generator().manual_seed(seed + 104729)
        self.augment_gen = torch.Generator().manual_seed(seed + 1299709)
        size = image_size_of(config.dataset, config.image_size)
        self.crop_padding = size // 8 if config.crop_padding_px is None else config.crop_padding_px
        self.flip = config.dataset not in NO_FLIP
        self._drawn: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self._at = 0

    def start_epoch(self, n: int, batch_size: int) -> None:
        """Draw the whole epoch's augmentation at once (the values batch-by-batch drawing
        gives) and send it to the device in one copy: no host-to-device copy, hence no wait
        on the GPU, per batch."""
        if self.c.augment != "standard":
            return
        sizes = [min(batch_size, n - s) for s in range(0, n, batch_size)]
        offsets, mirror = draw_crop_flip(sizes, self.crop_padding, self.flip, self.augment_gen)
        self._drawn = (send(offsets, self.device), None if mirror is None else send(mirror, self.device))
        self._at = 0

    def _noise(self, idx: torch.Tensor, split: int, shape) -> torch.Tensor:
        if self.c.random_fill == "per_batch" and split == 0:
            return torch.rand((len(idx), *shape), generator=self.batch_gen)
        # per image: the same noise for image i of this split in every epoch of this run
        return torch.stack([torch.rand(shape, generator=torch.Generator().manual_seed(
            (self.seed * 1_000_003 + split * 1_000_000_007 + int(i)) % 2**63)) for i in idx])

    def __call__(self, x: torch.Tensor, idx: torch.Tensor, split: int) -> torch.Tensor:
        k = self.c.expansion_factor
        x = x.to(self.device, non_blocking=True)
        if split == 0 and self.c.augment == "standard":  # on the original image, before expansion
            drawn = None
            if self._drawn is not None:
                n, at = len(x), self._at
                drawn = (self._drawn[0][at:at + n], None if self._drawn[1] is None else self._drawn[1][at:at + n])
                self._at += n
            x = random_crop_flip(x, self.crop_padding, self.flip, self.augment_gen, drawn)
        if k > 1:
            n, ch, h, w = x.shape
            if self.c.fill == RANDOM:
                out = self._noise(idx, split, (ch, h * k, w * k)).to(self.device)
            else:
                out = torch.full((n, ch, h * k, w * k), float(self.c.fill), device=self.device)
            out[..., ::k, ::k] = x
            x = out
        x = (x - self.mean) / self.std
        if x.shape[1] == 1 and self.c.in_channels == "replicate":
            x = x.expand(-1, 3, -1, -1)
        if self.device.type == "cuda" and self.c.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x


@functools.lru_cache(maxsize=2)
def _on_device(source: TensorSource, device: str) -> TensorSource:
    """An in-memory split held on the GPU for the process's runs (CIFAR-10's training set as
    uint8: 150 MB), so batches are gathered there."""
    return source.to(device)


class _Step:
    """One training step: forward, loss, backward, SGD. Returns the batch's loss as a device
    tensor (summed into the epoch's loss on the device: no host sync per step)."""

    def __init__(self, model, opt, device: torch.device, amp: bool):
        self.model, self.opt, self.device, self.amp = model, opt, device, amp

    def _eager(self, xb, yb, cache: bool = True):
        with torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=self.amp,
                            cache_enabled=cache):
            loss = F.cross_entropy(self.model(xb), yb)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.detach()

    def __call__(self, xb, yb):
        return self._eager(xb, yb)


CAPTURE_WARMUP = 3
"""Eager steps of a batch size before `capture: cuda_graph` records its graph."""


def run(config: ImageClassificationConfig, seed: int, ctx: RunContext) -> RunResult:
    data, mean, std = _dataset(config.dataset, ctx.data_root, config.download, config.test_fraction,
                               config.split_seed, config.image_size, config.train_limit, config.test_limit)
    device = torch.device(ctx.device)
    train_src, test_src = data.train, data.test
    if device.type == "cuda":  # batches formed on the device: one gather, no copy per batch
        train_src, test_src = (_on_device(src, str(device)) if isinstance(src, TensorSource) else src
                               for src in (data.train, data.test))
    torch.manual_seed(seed)  # model init; also reproducible when called outside the orchestrator
    order_gen = torch.Generator().manual_seed(seed)
    inputs = _Inputs(config, seed, mean, std, device)
    in_ch = 3 if data.channels == 1 and config.in_channels == "replicate" else data.channels
    model = build_model(config.model, in_ch, data.num_classes, config.width).to(device)
    if device.type == "cuda" and config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    amp = device.type == "cuda" and config.amp
    captured = config.capture == "cuda_graph"
    # a captured step replays the learning rate from a device tensor, which fused SGD reads
    lr = torch.tensor(config.lr, device=device) if captured else config.lr
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=config.momentum,
                          weight_decay=config.weight_decay, **({"fused": True} if captured else {}))
    sched = (torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs) if config.scheduler == "cosine"
             else torch.optim.lr_scheduler.MultiStepLR(opt, list(config.milestones), config.gamma)
             if config.scheduler == "step" else None)
    step = _Step(model, opt, device, amp)
    if captured:  # each batch size's step replayed from a CUDA graph (symsweep.tasks.common.capture)
        step = GraphedStep(functools.partial(step._eager, cache=False), device, CAPTURE_WARMUP,
                           before_capture=lambda: opt.zero_grad(set_to_none=True))
    best_acc, train_loss, test_loss, test_acc = 0.0, math.nan, math.nan, 0.0
    train_s, train_images = 0.0, 0
    for epoch in range(config.epochs):
        model.train()
        total = torch.zeros((), dtype=torch.float64, device=device)
        seen = 0
        epoch_start = time.perf_counter()
        order = torch.randperm(len(train_src), generator=order_gen)
        inputs.start_epoch(len(order), config.batch_size)
        for xb, yb, idx in train_src.batches(config.batch_size, order, config.workers):
            xb, yb = inputs(xb, idx, 0), yb.to(device, non_blocking=True)
            # the batch's mean loss x its size, summed in float64 on the device (the same
            # numbers as summing loss.item() on the host, without a wait for the GPU per step)
            total += step(xb, yb).double() * len(yb)
            seen += len(yb)
        train_loss = float(total) / seen  # the epoch's one wait for the GPU
        train_s += time.perf_counter() - epoch_start
        train_images += seen
        if not math.isfinite(train_loss):
            raise Diverged(f"train loss {train_loss} at epoch {epoch}")
        lr = float(opt.param_groups[0]["lr"])
        if sched is not None:
            sched.step()
        test_loss, test_acc = evaluate(model, test_src, inputs, config, amp)
        best_acc = max(best_acc, test_acc)
        ctx.log(epoch, train_loss=train_loss, test_loss=test_loss, test_acc=test_acc, lr=lr)
    return RunResult(metrics={
        "test_acc": test_acc, "best_test_acc": best_acc, "test_loss": test_loss,
        "train_loss": train_loss, "n_params": count_parameters(model),
        "train_images_per_s": train_images / train_s if train_s > 0 else None,
    }, info={"dataset_source": data.source})


@torch.no_grad()
def evaluate(model, source, inputs: _Inputs, config: ImageClassificationConfig, amp: bool,
             batch: int = 512) -> tuple[float, float]:
    """Mean loss and accuracy; summed on the device (float64 / int64), one wait at the end."""
    model.eval()
    loss = torch.zeros((), dtype=torch.float64, device=inputs.device)
    correct = torch.zeros((), dtype=torch.int64, device=inputs.device)
    n = 0
    for xb, yb, idx in source.batches(batch, None, config.workers):
        yb = yb.to(inputs.device)
        with torch.autocast(device_type=inputs.device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(inputs(xb, idx, 1)).float()
        loss += F.cross_entropy(logits, yb, reduction="sum").double()
        correct += (logits.argmax(1) == yb).sum()
        n += len(yb)
    return float(loss) / n, int(correct) / n


# ----------------------------------------------------------------------------- aggregation


def _aggregate(runs: pd.DataFrame, history: pd.DataFrame, load_artifact) -> dict[str, pd.DataFrame]:
    """`expansion_grid` (factor x fill per dataset/model) and `accuracy_curves` (per epoch)."""
    done = completed(runs).copy()
    if done.empty:
        return {}
    keys = ["cfg_dataset", "cfg_model", "cfg_expansion_factor", "cfg_fill"]
    done["cfg_fill"] = done["cfg_fill"].astype(str)
    # mean and std over seeds by the shared rule (symsweep.stats.describe_groups)
    final, best = (describe_groups(done, keys, f"metric_{m}") for m in ("test_acc", "best_test_acc"))
    grid = final.rename(columns={"mean": "test_acc_mean", "std": "test_acc_std"}).merge(
        best.drop(columns="n").rename(columns={"mean": "best_test_acc_mean", "std": "best_test_acc_std"}), on=keys)
    grid.columns = [c[4:] if c.startswith("cfg_") else c for c in grid.columns]
    tables = {"expansion_grid": grid}
    acc = history[history["metric"] == "test_acc"].merge(done[["run_id", *keys]], on="run_id")
    if not acc.empty:
        curves = (describe_groups(acc, [*keys, "step"], "value")
                  .rename(columns={"step": "epoch", "mean": "test_acc_mean", "std": "test_acc_std"}))
        curves.columns = [c[4:] if c.startswith("cfg_") else c for c in curves.columns]
        tables["accuracy_curves"] = curves
    return tables


def _figures(tables: dict, runs, history) -> dict:
    from symsweep.tasks.common.plots import subplots
    figs = {}
    grid = tables.get("expansion_grid", pd.DataFrame())
    for (dataset, model), part in (grid.groupby(["dataset", "model"]) if not grid.empty else []):
        expanded = part[part["expansion_factor"] > 1]
        if expanded["expansion_factor"].nunique() * expanded["fill"].nunique() < 2:
            continue
        table = expanded.pivot(index="expansion_factor", columns="fill", values="best_test_acc_mean")
        raw = part.loc[part["expansion_factor"] == 1, "best_test_acc_mean"]
        if not raw.empty:  # the raw run has no fill: show it across the row
            table.loc[1] = float(raw.iloc[0])
            table = table.sort_index()
        fig, ax = subplots(figsize=(1.2 * table.shape[1] + 2, 0.8 * table.shape[0] + 1.5))
        im = ax.imshow(table.values, cmap="viridis", aspect="auto")
        ax.set_xticks(range(table.shape[1]), table.columns)
        ax.set_yticks(range(table.shape[0]), [f"{i} (raw)" if i == 1 else str(i) for i in table.index])
        lo, hi = np.nanmin(table.values), np.nanmax(table.values)
        for (i, j), v in np.ndenumerate(table.values):  # dark text on the light end of viridis
            light = hi > lo and (v - lo) / (hi - lo) > 0.6
            ax.text(j, i, f"{v:.3f}", ha="center", va="center", color="k" if light else "w", fontsize=8)
        ax.set_xlabel("fill")
        ax.set_ylabel("expansion factor")
        ax.set_title(f"best test accuracy: {model} on {dataset}")
        fig.colorbar(im, ax=ax)
        figs[f"grid_{dataset}_{model}"] = fig
    curves = tables.get("accuracy_curves", pd.DataFrame())
    for (dataset, model), part in (curves.groupby(["dataset", "model"]) if not curves.empty else []):
        fig, ax = subplots(figsize=(6, 4))
        for (factor, fill), c in part.groupby(["expansion_factor", "fill"]):
            label = "raw" if factor == 1 else f"x{factor}, fill {fill}"
            ax.plot(c["epoch"], c["test_acc_mean"], label=label)
            ax.fill_between(c["epoch"], c["test_acc_mean"] - c["test_acc_std"].fillna(0),
                            c["test_acc_mean"] + c["test_acc_std"].fillna(0), alpha=0.2)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (mean +- std over seeds)")
        ax.set_title(f"{model} on {dataset}: raw vs expanded")
        ax.legend(fontsize=8)
        figs[f"curves_{dataset}_{model}"] = fig
    return figs


def _downloader(name: str):
    def fetch(dest: str) -> None:  # torchvision's own download into its layout under dest
        load_dataset(name, dest, download=True)
    return fetch


# Training images of each dataset (its standard train split, or 1 - test_fraction of it):
# the relative cost of a run for `symsweep plan`; an unknown dataset counts as 1.
TRAIN_IMAGES = {"digits": 1797, "cifar10": 50_000, "cifar100": 50_000, "kmnist": 60_000,
                "fashionmnist": 60_000, "eurosat": 27_000, "fgvc_aircraft": 6_667, "dtd": 3_760}


def _cost(config: ImageClassificationConfig) -> float:
    """epochs x training images x expansion_factor**2: the time of a run scales with them."""
    images = config.train_limit
    if images is None:
        images = TRAIN_IMAGES.get(config.dataset, 1)
        if config.dataset in ("digits", "eurosat"):  # no standard split: a held-out fraction
            images *= 1 - config.test_fraction
    return config.epochs * images * config.expansion_factor ** 2


TASK = Task(
    name="image_classification",
    config_cls=ImageClassificationConfig,
    run=run,
    summary_metrics=("test_acc", "best_test_acc"),
    aggregate=_aggregate,
    figures=_figures,
    baseline={"expansion_factor": 1},
    unused_at_baseline=("fill", "random_fill"),  # a raw image has no filled positions
    downloads={n: _downloader(n) for n in ("cifar10", "cifar100", "kmnist", "fashionmnist", "eurosat",
                                           "fgvc_aircraft", "dtd")},
    description="image classifier on raw or expanded input (paper Sec. 2.1, 6.1)",
    cost=_cost,
)
