"""Tiny datasets written in the on-disk formats torchvision uses, for offline tests."""
from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image

DATASETS = ("cifar10", "cifar100", "kmnist", "fashionmnist", "eurosat", "fgvc_aircraft", "dtd",
            "imagenet_r", "imagenet100")


def _jpeg(path: Path, rng, size=(20, 16)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (*size[::-1], 3), dtype=np.uint8)).save(path)


def _idx(path: Path, arr: np.ndarray, magic: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in arr.shape) + arr.tobytes())


def make(name: str, root: Path, per_class: int = 2, classes: int = 3, seed: int = 0) -> Path:
    """Write a tiny `name` dataset under root (the data root) and return root."""
    rng = np.random.default_rng(seed)
    n = per_class * classes
    labels = np.repeat(np.arange(classes), per_class)
    if name in ("cifar10", "cifar100"):
        folder = root / ("cifar-100-python" if name == "cifar100" else "cifar-10-batches-py")
        folder.mkdir(parents=True, exist_ok=True)
        key = "fine_labels" if name == "cifar100" else "labels"
        files = ["train", "test"] if name == "cifar100" else [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        for f in files:
            with open(folder / f, "wb") as fh:
                pickle.dump({"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8), key: labels.tolist()}, fh)
    elif name in ("kmnist", "fashionmnist"):
        raw = root / {"kmnist": "KMNIST", "fashionmnist": "FashionMNIST"}[name] / "raw"
        for split in ("train", "t10k"):
            _idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 255, (n, 28, 28), dtype=np.uint8), 2051)
            _idx(raw / f"{split}-labels-idx1-ubyte", labels.astype(np.uint8), 2049)
    elif name == "eurosat":
        for c in range(classes):
            for i in range(per_class * 3):
                _jpeg(root / "eurosat" / "2750" / f"Class{c}" / f"img{i}.jpg", rng, (64, 64))
    elif name == "imagenet_r":
        for c in range(classes):
            for i in range(per_class * 3):
                _jpeg(root / "imagenet-r" / f"n0{c}" / f"img{i}.jpg", rng)
    elif name == "imagenet100":
        for split in ("train", "val"):
            for c in range(classes):
                for i in range(per_class):
                    _jpeg(root / "imagenet100" / split / f"n0{c}" / f"img{i}.jpg", rng)
    elif name == "fgvc_aircraft":
        data = root / "fgvc-aircraft-2013b" / "data"
        data.mkdir(parents=True, exist_ok=True)
        variants = [f"Model-{c}" for c in range(classes)]
        (data / "variants.txt").write_text("\n".join(variants) + "\n")
        for split in ("trainval", "test"):
            lines = []
            for c, v in enumerate(variants):
                for i in range(per_class):
                    img = f"{split}{c}{i:03d}"
                    _jpeg(data / "images" / f"{img}.jpg", rng)
                    lines.append(f"{img} {v}")
            (data / f"images_variant_{split}.txt").write_text("\n".join(lines) + "\n")
    elif name == "dtd":
        base = root / "dtd" / "dtd"
        (base / "labels").mkdir(parents=True, exist_ok=True)
        for split in ("train", "val", "test"):
            lines = []
            for c in range(classes):
                for i in range(per_class):
                    rel = f"texture{c}/{split}_{i}.jpg"
                    _jpeg(base / "images" / rel, rng)
                    lines.append(rel)
            (base / "labels" / f"{split}1.txt").write_text("\n".join(lines) + "\n")
    else:
        raise ValueError(name)
    return root
