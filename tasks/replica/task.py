"""Replica trainings (paper Sec. 4.2, 6.6): the same CNN trained from many seeds.

Two modes:
- `subset` (Fig. 8B, the RD metric): a fixed subset of `n_images` training images (the
  same subset for every seed), `epochs` epochs (paper: 100 images, 200 epochs); the final
  flattened weights are kept as the artifact `weights`.
- `curves` (Fig. 8A): the full training set, per-epoch test accuracy in history
  (paper: 30 epochs, batch 64).

Five networks: simple, dropout (0.3 before the output layer), batchnorm (after each
conv), flip and rot180 ("equivariance" CNNs: during training, a random half of each
batch is flipped horizontally / rotated 180 degrees in the forward pass). Adam, cross
entropy. With `augment: paper` the flip and rot180 models also see augmented data (Sec. 6.6,
"Data Preparation"): each training image is flipped / rotated with probability `augment_p`
before it enters the network, on top of the half-batch transform.

Packed seeds train as one vectorized ensemble (torch.func: stack_module_state,
functional_call, vmap) or one after another. All randomness a replica sees (initial
weights, batch order, dropout masks, which half of a batch is transformed, which images are
augmented and by what angle) is drawn from
generators seeded by that replica's seed, outside the vmapped function, so both paths
give each seed the same training as running that seed alone.
"""
from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from typing import Callable, Iterator, Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from symsweep.api import RunContext, RunResult, Task
from symsweep.tasks.common.capture import GraphedStep
from symsweep.tasks.common.datasets import load_dataset, send
from symsweep.tasks.replica.distance import RDSettings

MODELS = ("simple", "dropout", "batchnorm", "flip", "rot180")
AUGMENTED_MODELS = ("flip", "rot180")  # the models the paper augments (Sec. 6.6)


@dataclass(frozen=True)
class ReplicaConfig:
    model: Literal["simple", "dropout", "batchnorm", "flip", "rot180"] = "simple"
    """Which of the paper's five CNNs."""
    dataset: Literal["digits", "cifar10"] = "digits"
    """digits is bundled; cifar10 is read from --data-root (download: true fetches it)."""
    mode: Literal["subset", "curves"] = "subset"
    """subset: n_images fixed images, final weights kept; curves: full training set, test accuracy per epoch."""
    n_images: int = 100
    """Size of the fixed training subset in `subset` mode."""
    subset_seed: int = 0
    """Seed that picks the subset (and the digits split): the same for every replica."""
    epochs: int = 200
    """Training epochs (paper: 200 in subset mode, 30 in curves mode)."""
    batch_size: int = 64
    """Minibatch size."""
    lr: float = 1e-3
    """Adam learning rate."""
    weight_decay: float = 1e-4
    """Adam (L2) weight decay; the paper gives no value."""
    channels: tuple[int, ...] = (16, 32)
    """Output channels of the two conv layers."""
    hidden: int = 64
    """Units of the fully connected layer."""
    dropout: float = 0.3
    """Dropout rate of the dropout model."""
    augment: Literal["none", "paper"] = "none"
    """Data augmentation of the training images. paper (Sec. 6.6, "Data Preparation"): a random
    horizontal flip for the flip model, a random rotation for the rot180 model (see
    `augment_rotation`), nothing for the other three; applied on the run's device, per image,
    before the forward pass and so on top of the model's half-batch transform. none: no augmentation."""
    augment_p: float = 0.5
    """Probability that a training image is augmented, drawn per image per epoch from the replica's seed."""
    augment_rotation: Literal["half_turn", "uniform"] = "half_turn"
    """rot180 model under `augment: paper`: turn by 180 degrees (the model's own group; the paper
    says only "rotations"), or by an angle uniform in [-rotation_max_deg, rotation_max_deg]
    (bilinear, zeros outside, i.e. the mean colour after normalization; positive = counterclockwise)."""
    rotation_max_deg: float = 15.0
    """Largest angle of `augment_rotation: uniform`, in degrees."""
    vectorize: Literal["auto", "on", "off"] = "auto"
    """Train a trial's seeds as one vmapped ensemble (on), one after another (off), or by device (auto)."""
    capture: Literal["none", "cuda_graph"] = "none"
    """cuda_graph: on CUDA, the training step (the ensemble's or one replica's forward, loss,
    backward and Adam) is replayed from a CUDA graph per batch size (the 100-image subset's
    batches of 64 and 36 each get one), recorded after 3 eager warm-up steps of that size;
    every random draw is made outside the step as always. Adam then keeps its step count on
    the device (`capturable`), which computes the bias correction in float32 tensors instead
    of Python floats: the numbers differ from the eager step's by that rounding. Off CUDA no
    graph is recorded and the numbers equal the eager step's (tested). Opt-in: no GPU has run
    it in this project yet (docs/performance.md)."""
    download: bool = False
    """Download CIFAR-10 into the data root when missing."""

    # Settings added after sweeps had run: left out of the run id (and row) at their default.
    OMIT_AT_DEFAULT = {"capture": "none"}

    # Budgets no one can mean (steps: 99999999999999999999999) are refused when a spec is read,
    # naming the range. A class attribute, not a field: run ids hash the fields only.
    BUDGET_RANGES = {"n_images": (2, 10_000_000), "epochs": (1, 100_000), "batch_size": (1, 65_536),
                     "hidden": (1, 100_000)}

    def __post_init__(self) -> None:
        if len(self.channels) != 2 or min(self.channels) < 1:
            raise ValueError(f"channels must be two positive ints, got {self.channels}")
        if self.n_images < 2 or self.epochs < 1 or self.batch_size < 1 or self.hidden < 1:
            raise ValueError("n_images >= 2, epochs >= 1, batch_size >= 1 and hidden >= 1 are required")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.augment_p <= 1.0:
            raise ValueError(f"augment_p must be in [0, 1], got {self.augment_p}")
        if not 0.0 < self.rotation_max_deg <= 180.0:
            raise ValueError(f"rotation_max_deg must be in (0, 180], got {self.rotation_max_deg}")


# ----------------------------------------------------------------------------- networks


class BatchNorm(nn.Module):
    """Batch norm written out so that vmap keeps one set of running statistics per replica."""

    def __init__(self, channels: int, momentum: float = 0.1, eps: float = 1e-5):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean = x.mean(dim=(0, 2, 3))
            var = x.var(dim=(0, 2, 3), unbiased=False)
            n = x.numel() / x.shape[1]
            with torch.no_grad():  # in place: under vmap this writes the replica's own buffers
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * var * n / max(n - 1, 1))
        else:
            mean, var = self.running_mean, self.running_var
        shape = (1, -1, 1, 1)
        return (x - mean.view(shape)) / torch.sqrt(var.view(shape) + self.eps) * self.weight.view(shape) \
            + self.bias.view(shape)


class ReplicaCNN(nn.Module):
    """Two conv+ReLU+maxpool blocks, a fully connected layer and an output layer.

    forward(x, drop_mask, transform_mask): the masks carry the replica's randomness
    (a scaled keep-mask for dropout; which images to flip/rotate), drawn by the caller.
    """

    def __init__(self, model: str, in_channels: int, image_size: int, num_classes: int,
                 channels: Sequence[int], hidden: int):
        super().__init__()
        self.model = model
        c1, c2 = channels
        self.conv1 = nn.Conv2d(in_channels, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.bn1 = BatchNorm(c1) if model == "batchnorm" else nn.Identity()
        self.bn2 = BatchNorm(c2) if model == "batchnorm" else nn.Identity()
        side = image_size // 4
        self.fc = nn.Linear(c2 * side * side, hidden)
        self.out = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor, drop_mask: torch.Tensor | None = None,
                transform_mask: torch.Tensor | None = None) -> torch.Tensor:
        if transform_mask is not None:
            moved = x.flip(-1) if self.model == "flip" else x.flip(-1, -2)
            x = torch.where(transform_mask.view(-1, 1, 1, 1), moved, x)
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = F.relu(self.fc(torch.flatten(x, 1)))
        if drop_mask is not None:
            x = x * drop_mask
        return self.out(x)


def build_model(config: ReplicaConfig, data: "_Data", seed: int) -> ReplicaCNN:
    torch.manual_seed(seed)
    return ReplicaCNN(config.model, data.channels, data.image_size, data.num_classes,
                      config.channels, config.hidden)


def flat_weights(model: nn.Module) -> np.ndarray:
    """All parameters and buffers, flattened in a fixed order (the RD metric's input)."""
    state = model.state_dict()
    return torch.cat([state[k].detach().flatten().float().cpu() for k in sorted(state)]).numpy()


# ----------------------------------------------------------------------------- data


@dataclass(frozen=True)
class _Data:
    channels: int
    image_size: int
    num_classes: int
    train_x: torch.Tensor  # normalized
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    source: str = ""


@functools.lru_cache(maxsize=4)
def _data(config_key: tuple, root: str | None) -> _Data:
    dataset, mode, n_images, subset_seed, download = config_key
    data = load_dataset(dataset, root, download, test_fraction=0.2, split_seed=subset_seed)
    mean, std = data.channel_stats(n=len(data.train))
    norm = lambda x: (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)  # noqa: E731
    train_x, train_y = norm(data.train_x), data.train_y
    if mode == "subset":
        if n_images > len(train_y):
            raise ValueError(f"n_images={n_images} exceeds the {len(train_y)} training images")
        idx = torch.from_numpy(np.sort(np.random.default_rng(subset_seed).choice(len(train_y), n_images,
                                                                                 replace=False)))
        train_x, train_y = train_x[idx], train_y[idx]
    return _Data(data.channels, data.image_size, data.num_classes, train_x, train_y,
                 norm(data.test_x), data.test_y, data.source)


# ----------------------------------------------------------------------------- training


class _Replica:
    """One seed's randomness: batch order, dropout masks, transformed halves."""

    def __init__(self, seed: int, config: ReplicaConfig):
        self.seed, self.config = seed, config
        self.gen = torch.Generator().manual_seed(seed + 7919)  # apart from the init stream

    def order(self, n: int) -> torch.Tensor:
        return torch.randperm(n, generator=self.gen)

    def masks(self, batch: int) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        drop = transform = None
        if self.config.model == "dropout":
            keep = 1.0 - self.config.dropout
            drop = (torch.rand(batch, self.config.hidden, generator=self.gen) < keep).float() / keep
        if self.config.model in ("flip", "rot180"):
            transform = torch.zeros(batch, dtype=torch.bool)
            transform[torch.randperm(batch, generator=self.gen)[: batch // 2]] = True
        return drop, transform

    def augmentation(self, batch: int) -> torch.Tensor | None:
        """Per image of a batch: 0 = leave it, 1 = flip / turn by 180 degrees, or the rotation
        angle in degrees (`augment_rotation: uniform`, 0 where not augmented). None: no
        augmentation for this model. Drawn after `masks`, so a model without augmentation
        sees the same random stream as before the option existed."""
        cfg = self.config
        if cfg.augment == "none" or cfg.model not in AUGMENTED_MODELS:
            return None
        chosen = (torch.rand(batch, generator=self.gen) < cfg.augment_p).float()
        if cfg.model == "rot180" and cfg.augment_rotation == "uniform":
            angle = (2 * torch.rand(batch, generator=self.gen) - 1) * cfg.rotation_max_deg
            return chosen * angle
        return chosen


def augment_images(x: torch.Tensor, aug: torch.Tensor, config: ReplicaConfig) -> torch.Tensor:
    """x (..., C, H, W) training images, aug (...) from `_Replica.augmentation`, on x's device."""
    if config.model == "rot180" and config.augment_rotation == "uniform":
        flat, angle = x.flatten(0, -4), torch.deg2rad(aug.flatten())
        cos, sin, zero = torch.cos(angle), torch.sin(angle), torch.zeros_like(angle)
        theta = torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1)], -2)
        grid = F.affine_grid(theta.to(flat.dtype), list(flat.shape), align_corners=False)
        turned = F.grid_sample(flat, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return turned.view(x.shape)
    moved = x.flip(-1) if config.model == "flip" else x.flip(-1, -2)
    return torch.where(aug.bool()[..., None, None, None], moved, x)


def use_vectorized(config: ReplicaConfig, device: str, n_seeds: int) -> bool:
    """auto: vectorize whenever a trial packs several seeds. On a GPU one big kernel beats
    many small ones; on this project's 2-core CPU bench/replicas.py measured the ensemble
    1.3-1.5x faster on the digits subset for all five models too (docs/tasks/replica.md)."""
    if config.vectorize != "auto":
        return config.vectorize == "on"
    return n_seeds > 1 and device in ("cuda", "cpu")


def train_replicas(config: ReplicaConfig, seeds: Sequence[int], data_root: str | None, device: str,
                   vectorized: bool, on_epoch: Callable[[int, int, dict], None] | None = None
                   ) -> Iterator[tuple[int, ReplicaCNN, dict]]:
    """Train `seeds`; yield (seed, trained model, final metrics) as each finishes."""
    data = _data((config.dataset, config.mode, config.n_images, config.subset_seed, config.download), data_root)
    train_x, train_y = data.train_x, data.train_y
    dev = torch.device(device)
    train_x, train_y = train_x.to(dev), train_y.to(dev)
    test_x, test_y = data.test_x.to(dev), data.test_y.to(dev)
    groups = [list(seeds)] if vectorized else [[s] for s in seeds]
    for group in groups:
        chunk_batches = draw_chunk(config, len(group), n_images=train_x.shape[0], device=dev)
        models = [build_model(config, data, s).to(dev) for s in group]
        replicas = [_Replica(s, config) for s in group]
        step = _vmapped_step if vectorized else _plain_step
        params, buffers, forward = _ensemble(models) if vectorized else (None, None, None)
        opt_params = list(params.values()) if vectorized else list(models[0].parameters())
        captured = config.capture == "cuda_graph"
        opt = torch.optim.Adam(opt_params, lr=config.lr, weight_decay=config.weight_decay,
                               capturable=captured and dev.type == "cuda")
        # the step as a function of the batch's tensors; with capture, replayed from a CUDA
        # graph per batch size (symsweep.tasks.common.capture)
        run_step = functools.partial(step, models, params, buffers, forward, opt)
        if captured:
            run_step = GraphedStep(run_step, dev, before_capture=lambda: opt.zero_grad(set_to_none=True))
        n = train_x.shape[0]
        for epoch in range(config.epochs):
            # train mode once an epoch, not per step: only on_epoch's evaluation leaves it
            (forward.base if vectorized else models[0]).train()
            losses = torch.zeros(len(group), device=dev)
            for idx, drop, transform, aug in epoch_draws(replicas, n, config.batch_size, dev, chunk_batches):
                x = train_x[idx]
                if aug is not None:
                    x = augment_images(x, aug, config)
                batch_losses = run_step(x, train_y[idx], drop, transform)
                losses += batch_losses * idx.shape[1]
            if vectorized and (on_epoch is not None or epoch == config.epochs - 1):
                _unstack(models, params, buffers)
            if on_epoch is not None:
                for i, (seed, model) in enumerate(zip(group, models)):
                    metrics = {"train_loss": float(losses[i]) / n}
                    metrics["test_loss"], metrics["test_acc"] = _evaluate(model, test_x, test_y)
                    on_epoch(seed, epoch, metrics)
        for seed, model in zip(group, models):
            final = {"train_loss": float(losses[group.index(seed)]) / n}
            final["train_acc"] = _evaluate(model, train_x, train_y)[1]
            final["test_loss"], final["test_acc"] = _evaluate(model, test_x, test_y)
            final["n_params"] = sum(p.numel() for p in model.parameters())
            yield seed, model, final


DRAW_CHUNK_BYTES = 64 * 2 ** 20
"""On a GPU, the replicas' random draws of this many bytes at most are made and sent at once."""


def draw_chunk(config: ReplicaConfig, n_replicas: int, n_images: int, device: torch.device) -> int:
    """How many batches' draws to make at once: one per batch on the CPU (nothing to send),
    on a GPU as many as fit DRAW_CHUNK_BYTES (an epoch of 100 images at once; a full
    CIFAR-10 epoch of dropout masks in a few copies), so the GPU is not waited on per batch."""
    if device.type != "cuda":
        return 1
    per_image = 8 + 4 + (4 * config.hidden if config.model == "dropout" else 0) + 5
    batches = -(-n_images // config.batch_size)
    return max(1, min(batches, DRAW_CHUNK_BYTES // max(1, n_replicas * config.batch_size * per_image)))


def epoch_draws(replicas: Sequence["_Replica"], n: int, batch_size: int, dev: torch.device, chunk_batches: int = 1):
    """One epoch's (positions, dropout masks, transformed halves, augmentation) per batch, each
    (replicas, batch, ...) on `dev`. Every replica draws from its own generator in the order it
    always has (its batch order, then per batch its masks and its augmentation), `chunk_batches`
    batches at a time, sent in one copy per chunk: the same values whatever the chunk."""
    orders = [r.order(n) for r in replicas]
    starts = list(range(0, n, batch_size))
    for c in range(0, len(starts), chunk_batches):
        chunk = starts[c:c + chunk_batches]
        sizes = [min(batch_size, n - s) for s in chunk]
        idx = torch.stack([o[chunk[0]:chunk[-1] + sizes[-1]] for o in orders])
        per_replica = []
        for r in replicas:
            draws = [(*r.masks(size), r.augmentation(size)) for size in sizes]
            per_replica.append([None if d[0] is None else torch.cat(d) for d in zip(*draws)])
        drop, transform, aug = (None if parts[0] is None else torch.stack(parts) for parts in zip(*per_replica))
        idx, drop, transform, aug = (None if t is None else send(t, dev) for t in (idx, drop, transform, aug))
        at = 0
        for size in sizes:
            yield tuple(None if t is None else t[:, at:at + size] for t in (idx, drop, transform, aug))
            at += size




def _plain_step(models, params, buffers, forward, opt, x, y, drop, transform):
    model = models[0]
    logits = model(x[0], None if drop is None else drop[0], None if transform is None else transform[0])
    loss = F.cross_entropy(logits, y[0])
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach().view(1)


def _ensemble(models):
    params, buffers = torch.func.stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def forward(p, b, x, drop, transform):
        return torch.func.functional_call(base, (p, b), (x, drop, transform))

    forward.base = base
    return params, buffers, forward


def _vmapped_step(models, params, buffers, forward, opt, x, y, drop, transform):
    in_dims = (0, 0, 0, None if drop is None else 0, None if transform is None else 0)
    logits = torch.func.vmap(forward, in_dims=in_dims)(params, buffers, x, drop, transform)
    # Summing the replicas' mean losses keeps each replica's gradient its own; Adam is
    # elementwise, so one Adam over stacked parameters is one Adam per replica.
    losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(y.shape).mean(1)
    opt.zero_grad(set_to_none=True)
    losses.sum().backward()
    opt.step()
    return losses.detach()


@torch.no_grad()
def _unstack(models, params, buffers) -> None:
    for i, model in enumerate(models):
        for name, p in model.named_parameters():
            p.copy_(params[name][i])
        for name, b in model.named_buffers():
            b.copy_(buffers[name][i])


@torch.no_grad()
def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 2048) -> tuple[float, float]:
    model.eval()
    loss = torch.zeros((), dtype=torch.float64, device=x.device)  # summed on the device: one wait
    correct = torch.zeros((), dtype=torch.int64, device=x.device)
    for s in range(0, x.shape[0], batch):
        logits = model(x[s:s + batch])
        loss += F.cross_entropy(logits, y[s:s + batch], reduction="sum").double()
        correct += (logits.argmax(1) == y[s:s + batch]).sum()
    return float(loss) / x.shape[0], int(correct) / x.shape[0]


# ----------------------------------------------------------------------------- task API


def run_many(config: ReplicaConfig, seeds: Sequence[int], ctx_for_seed) -> Iterator[tuple[int, RunResult]]:
    ctx0 = ctx_for_seed(seeds[0])
    vectorized = use_vectorized(config, ctx0.device, len(seeds))
    log = (lambda seed, epoch, m: ctx_for_seed(seed).log(epoch, **m)) if config.mode == "curves" else None
    info = {"dataset_source": dataset_source(config, ctx0.data_root)}
    for seed, model, metrics in train_replicas(config, seeds, ctx0.data_root, ctx0.device, vectorized, log):
        ctx = ctx_for_seed(seed)
        ctx.save_artifact("weights", {"weights": flat_weights(model)})
        status = "completed" if math.isfinite(metrics["train_loss"]) else "diverged"
        yield seed, RunResult(metrics=metrics, status=status, info=info)


def dataset_source(config: ReplicaConfig, data_root: str | None) -> str:
    """Which files the runs read (the data is cached per process: no second load)."""
    return _data((config.dataset, config.mode, config.n_images, config.subset_seed, config.download),
                 data_root).source


def run(config: ReplicaConfig, seed: int, ctx: RunContext) -> RunResult:
    ((_, result),) = list(run_many(config, [seed], lambda s: ctx))
    return result


def _aggregate(runs, history, load_artifact, settings):
    from symsweep.tasks.replica.distance import aggregate_replicas
    return aggregate_replicas(runs, history, load_artifact, settings)


def _figures(tables, runs, history):
    from symsweep.tasks.replica.distance import replica_figures
    return replica_figures(tables, runs, history)


def _cost(config: ReplicaConfig) -> float:
    """epochs x training images (n_images in subset mode, else the training set's size)."""
    images = config.n_images if config.mode == "subset" else {"digits": 1437, "cifar10": 50_000}[config.dataset]
    return config.epochs * images


TASK = Task(
    name="replica",
    config_cls=ReplicaConfig,
    run=run,
    run_many=run_many,
    batches=lambda config: config.vectorize != "off",  # off: each seed through `run`, its own duration
    summary_metrics=("test_acc", "train_acc"),
    aggregate=_aggregate,
    aggregate_config=RDSettings,
    figures=_figures,
    description="replicas of five CNNs from many seeds; replica distance (paper Sec. 4.2, 6.6)",
    cost=_cost,
)
