"""Image datasets as in-memory tensors in [0, 1] (pixel units, before normalization).

`digits` is scikit-learn's bundled 8x8 digits: no download, the default on a laptop and
in CI. Torchvision datasets are read from a local root (`--data-root` / SYMSWEEP_DATA)
and downloaded only when asked (`download=True`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class ImageData:
    train_x: torch.Tensor  # (N, C, H, W) float32 in [0, 1]
    train_y: torch.Tensor  # (N,) int64
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    split: str
    """How train/test were formed ("standard" or a description of the seeded split)."""

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    def channel_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the raw training images (for normalization)."""
        mean = self.train_x.mean(dim=(0, 2, 3))
        std = self.train_x.std(dim=(0, 2, 3)).clamp_min(1e-6)
        return mean, std


def stratified_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split: the same (seed, fraction) gives the same indices everywhere."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        n_test = max(1, int(round(len(idx) * test_fraction)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_digits(test_fraction: float = 0.2, split_seed: int = 0) -> ImageData:
    from sklearn.datasets import load_digits as sk_digits
    bunch = sk_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)  # pixels 0..16 -> [0, 1]
    y = torch.from_numpy(bunch.target.astype(np.int64))
    tr, te = stratified_split(bunch.target, test_fraction, split_seed)
    return ImageData(x[tr], y[tr], x[te], y[te], 10,
                     split=f"stratified test_fraction={test_fraction} split_seed={split_seed}")


def data_root(root: str | None) -> str:
    root = root or os.environ.get("SYMSWEEP_DATA")
    if not root:
        raise FileNotFoundError("this dataset is read from a local root: pass --data-root DIR or set SYMSWEEP_DATA")
    return root


def _tv_to_tensors(ds) -> tuple[torch.Tensor, torch.Tensor]:
    data = getattr(ds, "data", None)
    targets = getattr(ds, "targets", None)
    if data is not None and targets is not None:  # CIFAR-style arrays: fast path
        arr = torch.as_tensor(np.asarray(data))
        if arr.dim() == 3:
            arr = arr.unsqueeze(-1)
        x = arr.permute(0, 3, 1, 2).float() / 255.0
        return x.contiguous(), torch.as_tensor(np.asarray(targets), dtype=torch.int64)
    from torchvision.transforms.functional import pil_to_tensor
    xs, ys = zip(*((pil_to_tensor(img).float() / 255.0, int(t)) for img, t in ds))
    return torch.stack(xs), torch.tensor(ys, dtype=torch.int64)


def load_cifar10(root: str | None, download: bool = False) -> ImageData:
    from torchvision.datasets import CIFAR10
    base = os.path.join(data_root(root), "cifar10")
    try:
        train = CIFAR10(base, train=True, download=download)
        test = CIFAR10(base, train=False, download=download)
    except RuntimeError as exc:
        raise FileNotFoundError(f"CIFAR-10 not found under {base} ({exc}); set download=true to fetch it") from None
    (trx, tr_y), (tex, te_y) = _tv_to_tensors(train), _tv_to_tensors(test)
    return ImageData(trx, tr_y, tex, te_y, 10, split="standard")


DATASETS = {
    "digits": lambda root, download, test_fraction, split_seed: load_digits(test_fraction, split_seed),
    "cifar10": lambda root, download, test_fraction, split_seed: load_cifar10(root, download),
}


def load_dataset(name: str, root: str | None = None, download: bool = False, test_fraction: float = 0.2,
                 split_seed: int = 0) -> ImageData:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(sorted(DATASETS))}")
    return DATASETS[name](root, download, test_fraction, split_seed)
