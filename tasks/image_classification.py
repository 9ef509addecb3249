"""Image classification with input expansion (paper Sec. 2.1 and 6.1).

One run trains one model on one dataset, raw (expansion_factor 1) or expanded by an
integer factor with a fill value, with the paper's protocol: SGD lr 0.1, momentum 0.9,
weight decay 5e-4, cosine annealing with T_max = epochs. History per epoch: train loss,
test loss, test accuracy, learning rate.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from tasks._api import Diverged, RunContext, RunResult, Task
from tasks.datasets import DATASETS, ImageData, load_dataset
from tasks.expansion import RANDOM, expand_image
from tasks.models import build_model, count_parameters


@dataclass(frozen=True)
class ImageClassificationConfig:
    dataset: str = "digits"
    """Dataset name (digits is bundled; others read from --data-root)."""
    model: Literal["small_cnn"] = "small_cnn"
    """Network architecture."""
    width: int = 32
    """Channels of the small CNN's first block."""
    expansion_factor: int = 1
    """1 = raw input; k >= 2 spreads pixel (i, j) to (k*i, k*j)."""
    fill: float | Literal["random"] = 0.5
    """Value at the expanded positions, in pixel units before normalization, or "random"."""
    random_fill: Literal["per_image", "per_batch"] = "per_image"
    """With fill "random": noise drawn once per image (fixed for the run) or anew for every batch."""
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
    scheduler: Literal["cosine", "none"] = "cosine"
    """Learning-rate schedule."""
    test_fraction: float = 0.2
    """Held-out fraction for datasets without a standard split (digits)."""
    split_seed: int = 0
    """Seed of that split: the same for every run seed, so runs share their test set."""
    download: bool = False
    """Download a torchvision dataset into the data root when it is missing."""

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset {self.dataset!r} unknown; available: {', '.join(sorted(DATASETS))}")
        if self.expansion_factor < 1:
            raise ValueError(f"expansion_factor must be >= 1, got {self.expansion_factor}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be >= 1")
        if isinstance(self.fill, float) and not 0.0 <= self.fill <= 1.0:
            raise ValueError(f"fill must be in [0, 1] (pixel units) or 'random', got {self.fill}")


@functools.lru_cache(maxsize=4)
def _dataset(name: str, root: str | None, download: bool, test_fraction: float, split_seed: int) -> ImageData:
    return load_dataset(name, root, download, test_fraction, split_seed)


def _prepare(x: torch.Tensor, config: ImageClassificationConfig, mean, std, gen) -> torch.Tensor:
    """Expand (fill in pixel units), then normalize with the raw images' channel statistics."""
    x = expand_image(x, config.expansion_factor, config.fill, generator=gen)
    return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def run(config: ImageClassificationConfig, seed: int, ctx: RunContext) -> RunResult:
    data = _dataset(config.dataset, ctx.data_root, config.download, config.test_fraction, config.split_seed)
    device = torch.device(ctx.device)
    torch.manual_seed(seed)  # model init; also reproducible when called outside the orchestrator
    gen = torch.Generator().manual_seed(seed)  # batch order and random fill
    mean, std = data.channel_stats()
    per_batch_noise = config.fill == RANDOM and config.random_fill == "per_batch"
    if per_batch_noise:
        train_x = data.train_x
    else:
        train_x = _prepare(data.train_x, config, mean, std, gen)
    test_x = _prepare(data.test_x, config, mean, std, gen).to(device)
    train_y, test_y = data.train_y.to(device), data.test_y.to(device)

    model = build_model(config.model, data.channels, data.num_classes, config.width).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                          weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs) \
        if config.scheduler == "cosine" else None
    n = train_x.shape[0]
    best_acc, train_loss, test_loss, test_acc = 0.0, math.nan, math.nan, 0.0
    for epoch in range(config.epochs):
        model.train()
        order = torch.randperm(n, generator=gen)
        total, seen = 0.0, 0
        for start in range(0, n, config.batch_size):
            idx = order[start:start + config.batch_size]
            xb = train_x[idx]
            if per_batch_noise:
                xb = _prepare(xb, config, mean, std, gen)
            xb, yb = xb.to(device, non_blocking=True), train_y[idx.to(device)]
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            seen += len(idx)
        train_loss = total / seen
        if not math.isfinite(train_loss):
            raise Diverged(f"train loss {train_loss} at epoch {epoch}")
        lr = opt.param_groups[0]["lr"]
        if sched is not None:
            sched.step()
        test_loss, test_acc = evaluate(model, test_x, test_y)
        best_acc = max(best_acc, test_acc)
        ctx.log(epoch, train_loss=train_loss, test_loss=test_loss, test_acc=test_acc, lr=lr)
    return RunResult(metrics={
        "test_acc": test_acc, "best_test_acc": best_acc, "test_loss": test_loss,
        "train_loss": train_loss, "n_params": count_parameters(model),
    })


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1024) -> tuple[float, float]:
    model.eval()
    loss, correct = 0.0, 0
    for s in range(0, x.shape[0], batch):
        logits = model(x[s:s + batch])
        loss += float(F.cross_entropy(logits, y[s:s + batch], reduction="sum"))
        correct += int((logits.argmax(1) == y[s:s + batch]).sum())
    return loss / x.shape[0], correct / x.shape[0]


TASK = Task(
    name="image_classification",
    config_cls=ImageClassificationConfig,
    run=run,
    summary_metrics=("test_acc", "best_test_acc"),
    description="image classifier on raw or expanded input (paper Sec. 2.1, 6.1)",
)
