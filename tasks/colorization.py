"""Image colorization by a conditional DDPM, raw or expanded input (paper Sec. 2.3 and 6.3.1).

One run trains a small U-Net to predict the noise of a color image x_t given t and the
grayscale image as a condition (concatenated channels), then colorizes the test set's
grayscale images by sampling, and scores MAE and MSE against the true colors.

Expansion (`expansion_factor` k > 1, `symsweep.tasks.common.expansion`): the clean color image and the
grayscale condition are both expanded (pixel (i, j) -> (k*i, k*j), `fill` elsewhere, in
pixel units), the forward process noises the whole expanded image, and the loss is taken
only at the original positions (`original_mask`), as the paper says. The colorized image is
read back at the original positions, so raw and expanded runs are scored on the same pixels.

Pixels: images in [0, 1] -> expand -> x = 2*pixel - 1 for the diffusion; gray is the
ITU-R 601 luma 0.299 R + 0.587 G + 0.114 B of the (resized) color image.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from symsweep.api import Diverged, RunContext, RunResult, Task
from symsweep.tasks.common.expansion import expand_image, original_mask

LUMA = (0.299, 0.587, 0.114)


@dataclass(frozen=True)
class ColorizationConfig:
    dataset: Literal["celeba", "sample_images"] = "celeba"
    """celeba: <data root>/celeba/img_align_celeba/*.jpg; sample_images: scikit-learn's two bundled photos, cut into crops."""
    image_size: int = 32
    """Side of the square (raw) images in px; a multiple of 4 (two U-Net downsamplings)."""
    expansion_factor: int = 1
    """1 = raw; k >= 2 expands color image and condition by k."""
    fill: float = 0.5
    """Value at the filled positions, pixel units in [0, 1] (stored 0.0 for raw runs)."""
    filled_noise: Literal["noised", "clean"] = "noised"
    """noised: the forward process noises filled positions too (loss ignores them); clean: they stay at `fill`."""
    base_channels: int = 32
    """U-Net channels at full resolution (x2 per level, 3 levels)."""
    timesteps: int = 1000
    """Diffusion steps T of training (linear beta schedule scaled by 1000/T)."""
    sampler: Literal["ddpm", "ddim"] = "ddpm"
    """ddpm: ancestral sampling through all `timesteps` steps (the paper: "instead of using an
    implicit diffusion model", Sec. 6.3.1); ddim: `sample_steps` DDIM steps, much faster."""
    ddpm_variance: Literal["beta", "posterior"] = "beta"
    """ddpm: the variance of each ancestral step, beta_t or the posterior's
    beta_t (1 - abar_{t-1}) / (1 - abar_t) (Ho et al. 2020 found both alike; the paper does not say)."""
    sample_steps: int = 50
    """ddim: denoising steps over evenly spaced timesteps (ignored by ddpm, which takes all of them)."""
    ddim_eta: float = 0.0
    """ddim: stochasticity, 0 deterministic, 1 DDPM-like ancestral noise (ignored by ddpm)."""
    steps: int = 20000
    """Training iterations (the paper leaves the number blank)."""
    batch_size: int = 32
    """Minibatch size."""
    lr: float = 2e-4
    """Adam learning rate (the paper leaves it blank; 2e-4 is DDPM's)."""
    log_every: int = 500
    """Log the mean training loss every this many iterations."""
    train_limit: int | None = None
    """CelebA: use a seeded subset of this many training images (None: all)."""
    test_limit: int | None = 1000
    """Colorize (and score) this many test images (sampling is the expensive part)."""
    n_train: int = 512
    """sample_images: training crops (from the left 75% of each photo)."""
    n_test: int = 64
    """sample_images: test crops (from the right 25%, so no pixel is shared with training)."""
    split_seed: int = 0
    """Seed of the crops / subsets: the same for every run seed."""

    # Budgets no one can mean (steps: 99999999999999999999999) are refused when a spec is read,
    # naming the range. A class attribute, not a field: run ids hash the fields only.
    BUDGET_RANGES = {"steps": (1, 10_000_000), "batch_size": (1, 65_536), "timesteps": (1, 100_000),
                     "sample_steps": (1, 100_000), "train_limit": (1, 100_000_000), "test_limit": (1, 100_000_000),
                     "n_train": (1, 10_000_000), "n_test": (1, 10_000_000), "image_size": (4, 4_096)}

    def __post_init__(self) -> None:
        if self.dataset not in ("celeba", "sample_images"):
            raise ValueError(f"dataset must be 'celeba' or 'sample_images', got {self.dataset!r}")
        if self.image_size < 4 or self.image_size % 4:
            raise ValueError(f"image_size must be a multiple of 4 (>= 4), got {self.image_size}")
        if self.expansion_factor < 1:
            raise ValueError(f"expansion_factor must be >= 1, got {self.expansion_factor}")
        if not 0.0 <= self.fill <= 1.0:
            raise ValueError(f"fill must be in [0, 1] (pixel units), got {self.fill}")
        if self.filled_noise not in ("noised", "clean"):
            raise ValueError(f"filled_noise must be 'noised' or 'clean', got {self.filled_noise!r}")
        if self.sampler == "ddim" and not 1 <= self.sample_steps <= self.timesteps:
            raise ValueError(f"sample_steps must be in [1, timesteps={self.timesteps}], got {self.sample_steps}")
        for name in ("base_channels", "steps", "batch_size", "log_every", "n_train", "n_test"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and 0 <= self.ddim_eta <= 1):
            raise ValueError("need lr > 0 and 0 <= ddim_eta <= 1")
        if self.expansion_factor == 1:  # nothing is filled: one canonical value, one run id
            object.__setattr__(self, "fill", 0.0)
            object.__setattr__(self, "filled_noise", "noised")


# ----------------------------------------------------------------------------- data


def _crops(image: np.ndarray, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    h, w, _ = image.shape
    ys, xs = rng.integers(0, h - size + 1, n), rng.integers(0, w - size + 1, n)
    return np.stack([image[y:y + size, x:x + size] for y, x in zip(ys, xs)])


def sample_image_crops(n_train: int, n_test: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded random crops of scikit-learn's two sample photos (427x640), as (N, 3, s, s) in [0, 1].

    Training crops come from the left 75% of each photo, test crops from the right 25%.
    """
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    train, test = [], []
    for i, img in enumerate(load_sample_images().images):
        cut = int(img.shape[1] * 0.75)
        train.append(_crops(img[:, :cut], n_train // 2 + (i < n_train % 2), size, rng))
        test.append(_crops(img[:, cut:], n_test // 2 + (i < n_test % 2), size, rng))
    to = lambda a: torch.from_numpy(np.concatenate(a)).permute(0, 3, 1, 2).float() / 255.0
    return to(train), to(test)


def _celeba_files(root: str | None) -> tuple[list[Path], list[Path]]:
    if root is None:
        raise FileNotFoundError("dataset celeba needs --data-root holding celeba/img_align_celeba/; "
                                "use dataset: sample_images to run without it")
    base = Path(root) / "celeba"
    images = base / "img_align_celeba"
    if not images.is_dir():
        raise FileNotFoundError(f"{images} not found: expected torchvision's CelebA layout "
                                "<data root>/celeba/img_align_celeba/*.jpg (+ list_eval_partition.txt)")
    partition = base / "list_eval_partition.txt"
    if partition.is_file():  # the standard split: 0 train, 1 valid, 2 test
        rows = [line.split() for line in partition.read_text().splitlines() if line.strip()]
        return ([images / f for f, p in rows if p == "0"], [images / f for f, p in rows if p == "2"])
    files = sorted(images.glob("*.jpg"))  # no partition file: the last 10% by name are the test set
    cut = int(len(files) * 0.9)
    return files[:cut], files[cut:]


def _load_jpegs(files: list[Path], size: int) -> torch.Tensor:
    from PIL import Image

    out = torch.empty(len(files), 3, size, size)
    for i, f in enumerate(files):
        with Image.open(f) as im:
            im = im.convert("RGB")
            w, h = im.size
            side = min(w, h)  # centre square crop, then resize (CelebA aligned faces are 178x218)
            im = im.crop(((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2))
            im = im.resize((size, size), Image.BICUBIC)
            out[i] = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1).float() / 255.0
    return out


@functools.lru_cache(maxsize=2)
def load_data(dataset: str, root: str | None, size: int, train_limit: int | None, test_limit: int | None,
              n_train: int, n_test: int, split_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, test) color images (N, 3, size, size) in [0, 1]."""
    if dataset == "sample_images":
        train, test = sample_image_crops(n_train, n_test, size, split_seed)
        return train, test[:test_limit] if test_limit else test
    train_files, test_files = _celeba_files(root)
    rng = np.random.default_rng(split_seed)
    if train_limit is not None and train_limit < len(train_files):
        train_files = [train_files[i] for i in np.sort(rng.permutation(len(train_files))[:train_limit])]
    if test_limit is not None and test_limit < len(test_files):
        test_files = [test_files[i] for i in np.sort(rng.permutation(len(test_files))[:test_limit])]
    return _load_jpegs(train_files, size), _load_jpegs(test_files, size)


def to_gray(rgb: torch.Tensor) -> torch.Tensor:
    w = torch.tensor(LUMA, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return (rgb * w).sum(1, keepdim=True)


# ----------------------------------------------------------------------------- model


def _timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([args.sin(), args.cos()], dim=1)


class _Block(nn.Module):
    """GroupNorm-SiLU-conv twice, the time embedding added in between, residual."""

    def __init__(self, c_in: int, c_out: int, t_dim: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(min(8, c_in), c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(t_dim, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(min(8, c_out), c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x))) + self.time(t)[:, :, None, None]
        return self.skip(x) + self.conv2(F.silu(self.norm2(h)))


class UNet(nn.Module):
    """Three resolutions (c, 2c, 4c), one residual block per level and side, skip connections.

    Input: x_t (3 channels) and the gray condition (1 channel) concatenated; output: the noise.
    Fully convolutional, so raw and expanded runs have the same parameters.
    """

    def __init__(self, base: int = 32):
        super().__init__()
        c1, c2, c3, t_dim = base, 2 * base, 4 * base, 4 * base
        self.base = base
        self.time = nn.Sequential(nn.Linear(base, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.inp = nn.Conv2d(4, c1, 3, padding=1)
        self.down1, self.down2 = _Block(c1, c1, t_dim), _Block(c1, c2, t_dim)
        self.mid = _Block(c2, c3, t_dim)
        self.up2, self.up1 = _Block(c3 + c2, c2, t_dim), _Block(c2 + c1, c1, t_dim)
        self.out = nn.Sequential(nn.GroupNorm(min(8, c1), c1), nn.SiLU(), nn.Conv2d(c1, 3, 3, padding=1))

    def forward(self, x_t: torch.Tensor, gray: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time(_timestep_embedding(t, self.base))
        h1 = self.down1(self.inp(torch.cat([x_t, gray], 1)), temb)         # s
        h2 = self.down2(F.avg_pool2d(h1, 2), temb)                          # s/2
        h3 = self.mid(F.avg_pool2d(h2, 2), temb)                            # s/4
        u2 = self.up2(torch.cat([F.interpolate(h3, scale_factor=2.0), h2], 1), temb)
        u1 = self.up1(torch.cat([F.interpolate(u2, scale_factor=2.0), h1], 1), temb)
        return self.out(u1)


# ----------------------------------------------------------------------------- diffusion


def alpha_bars(timesteps: int) -> torch.Tensor:
    """Cumulative products of 1 - beta for DDPM's linear schedule, scaled by 1000/T so that a
    short schedule still ends near pure noise (as improved-diffusion's "linear" schedule)."""
    scale = 1000.0 / timesteps
    betas = torch.linspace(1e-4 * scale, min(0.02 * scale, 0.999), timesteps, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, 0).float()


class _Inputs:
    """Expansion of a batch: images in [0, 1] -> (x0, gray) in [-1, 1] at the model's size."""

    def __init__(self, config: ColorizationConfig, device: torch.device):
        self.k, self.fill, self.device = config.expansion_factor, config.fill, device
        self.clean_fill = config.expansion_factor > 1 and config.filled_noise == "clean"
        self.mask = original_mask(config.image_size, config.image_size, self.k, device)  # (S, S)

    def __call__(self, rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        rgb = rgb.to(self.device)
        x0 = expand_image(rgb, self.k, self.fill) * 2 - 1
        gray = expand_image(to_gray(rgb), self.k, self.fill) * 2 - 1
        return x0, gray

    def keep_fill(self, x: torch.Tensor) -> torch.Tensor:
        """With filled_noise clean, filled positions hold the fill at every noise level."""
        return torch.where(self.mask, x, 2 * self.fill - 1) if self.clean_fill else x


def diffusion_loss(model: nn.Module, x0: torch.Tensor, gray: torch.Tensor, abar: torch.Tensor,
                   inputs: _Inputs) -> torch.Tensor:
    """Noise-prediction MSE at the original positions only."""
    t = torch.randint(0, len(abar), (len(x0),), device=x0.device)
    noise = torch.randn_like(x0)
    a = abar[t].view(-1, 1, 1, 1)
    x_t = inputs.keep_fill(a.sqrt() * x0 + (1 - a).sqrt() * noise)
    err = (model(x_t, gray, t) - noise) ** 2                    # (N, 3, S, S)
    return err[..., inputs.mask].mean()                          # only original pixels count


@torch.no_grad()
def sample(model: nn.Module, gray: torch.Tensor, abar: torch.Tensor, config: ColorizationConfig,
           inputs: _Inputs, generator: torch.Generator) -> torch.Tensor:
    """Colorize: returns x0 in [-1, 1] by the config's sampler."""
    if config.sampler == "ddpm":
        return sample_ddpm(model, gray, abar, config, inputs, generator)
    return sample_ddim(model, gray, abar, config, inputs, generator)


@torch.no_grad()
def sample_ddpm(model: nn.Module, gray: torch.Tensor, abar: torch.Tensor, config: ColorizationConfig,
                inputs: _Inputs, generator: torch.Generator) -> torch.Tensor:
    """Ancestral DDPM (Ho et al. 2020) through every timestep: the mean of q(x_{t-1} | x_t, x0)
    at the predicted x0 (clipped to [-1, 1], as their sampler does), plus noise of variance
    beta_t or the posterior's (`ddpm_variance`); no noise at the last step."""
    model.eval()
    n, _, s, _ = gray.shape
    x = inputs.keep_fill(torch.randn((n, 3, s, s), generator=generator).to(gray.device))
    for t in range(len(abar) - 1, -1, -1):
        a = abar[t]
        a_prev = abar[t - 1] if t > 0 else torch.tensor(1.0, device=a.device)
        beta = 1 - a / a_prev
        eps = model(x, gray, torch.full((n,), t, device=gray.device, dtype=torch.long))
        x0 = ((x - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
        x = (a_prev.sqrt() * beta / (1 - a)) * x0 + ((1 - beta).sqrt() * (1 - a_prev) / (1 - a)) * x
        if t > 0:
            var = beta if config.ddpm_variance == "beta" else beta * (1 - a_prev) / (1 - a)
            x = x + var.sqrt() * torch.randn(x.shape, generator=generator).to(x.device)
        x = inputs.keep_fill(x)
    return x


@torch.no_grad()
def sample_ddim(model: nn.Module, gray: torch.Tensor, abar: torch.Tensor, config: ColorizationConfig,
                inputs: _Inputs, generator: torch.Generator) -> torch.Tensor:
    """DDIM (eta `ddim_eta`) over `sample_steps` evenly spaced timesteps."""
    model.eval()
    n, _, s, _ = gray.shape
    ts = torch.linspace(len(abar) - 1, 0, config.sample_steps).round().long().tolist()
    x = inputs.keep_fill(torch.randn((n, 3, s, s), generator=generator).to(gray.device))
    for i, t in enumerate(ts):
        a = abar[t]
        a_prev = abar[ts[i + 1]] if i + 1 < len(ts) else torch.tensor(1.0, device=a.device)
        eps = model(x, gray, torch.full((n,), t, device=gray.device, dtype=torch.long))
        x0 = ((x - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
        eps = (x - a.sqrt() * x0) / (1 - a).sqrt()               # consistent with the clamped x0
        sigma = config.ddim_eta * ((1 - a_prev) / (1 - a) * (1 - a / a_prev)).clamp(min=0).sqrt()
        x = a_prev.sqrt() * x0 + (1 - a_prev - sigma ** 2).clamp(min=0).sqrt() * eps
        if config.ddim_eta > 0 and i + 1 < len(ts):
            x = x + sigma * torch.randn(x.shape, generator=generator).to(x.device)
        x = inputs.keep_fill(x)
    return x


# ----------------------------------------------------------------------------- run


def run(config: ColorizationConfig, seed: int, ctx: RunContext) -> RunResult:
    train, test = load_data(config.dataset, ctx.data_root, config.image_size, config.train_limit,
                            config.test_limit, config.n_train, config.n_test, config.split_seed)
    device = torch.device(ctx.device)
    torch.manual_seed(seed)  # init, batches, t and noise; reproducible when called directly
    model = UNet(config.base_channels).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    abar = alpha_bars(config.timesteps).to(device)
    inputs = _Inputs(config, device)
    running, count, train_loss = 0.0, 0, math.nan
    for step in range(config.steps):
        model.train()
        idx = torch.randint(0, len(train), (min(config.batch_size, len(train)),))
        x0, gray = inputs(train[idx])
        loss = diffusion_loss(model, x0, gray, abar, inputs)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        running, count = running + loss.item(), count + 1
        if not math.isfinite(running):
            raise Diverged(f"loss {loss.item()} at step {step}")
        if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
            train_loss = running / count
            ctx.log(step + 1, train_loss=train_loss)
            running, count = 0.0, 0
    mae, mse, gray_mae, preview = evaluate(model, test, abar, config, inputs, seed)
    ctx.log(config.steps, test_mae=mae, test_mse=mse)
    ctx.save_artifact("preview", preview)
    return RunResult(metrics={"mae": mae, "mse": mse, "gray_mae": gray_mae, "train_loss": train_loss,
                              "n_params": sum(p.numel() for p in model.parameters())})


def evaluate(model: nn.Module, test: torch.Tensor, abar: torch.Tensor, config: ColorizationConfig,
             inputs: _Inputs, seed: int, batch: int = 64) -> tuple[float, float, float, dict]:
    """MAE / MSE in pixel units ([0, 1]) over the original positions and all 3 channels.

    gray_mae: the same MAE for the gray image copied to 3 channels, the do-nothing reference.
    """
    gen = torch.Generator().manual_seed(seed + 7919)  # sampling noise, separate from training's
    k = config.expansion_factor
    abs_err, sq_err, gray_err, preview = 0.0, 0.0, 0.0, None
    for start in range(0, len(test), batch):
        rgb = test[start:start + batch].to(inputs.device)
        _, gray = inputs(rgb)
        out = ((sample(model, gray, abar, config, inputs, gen) + 1) / 2)[..., ::k, ::k]  # original positions
        abs_err += float((out - rgb).abs().sum())
        sq_err += float(((out - rgb) ** 2).sum())
        gray_err += float((to_gray(rgb) - rgb).abs().sum())
        if preview is None:
            preview = {"true": rgb[:8].cpu().numpy(), "colorized": out[:8].cpu().numpy()}
    n = test.numel()
    return abs_err / n, sq_err / n, gray_err / n, preview


TASK = Task(
    name="colorization",
    config_cls=ColorizationConfig,
    run=run,
    summary_metrics=("mae", "mse"),
    baseline={"expansion_factor": 1},
    unused_at_baseline=("fill", "filled_noise"),  # a raw image has no filled positions
    description="conditional DDPM colorization, raw vs expanded input (Sec. 2.3, 6.3.1)",
)
