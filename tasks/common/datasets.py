"""Image datasets for the image tasks, as batch sources of float tensors in [0, 1].

Pixel values stay in [0, 1] (pixel units) until the task expands and normalizes them.
`digits` is scikit-learn's bundled 8x8 digits (no download; the laptop and CI default).
Every other dataset is read from a local root (`--data-root` / SYMSWEEP_DATA) in the
layout torchvision uses, and downloaded only when asked (`download: true`):

| name          | layout under the data root (torchvision's own)     | split              |
|---------------|----------------------------------------------------|--------------------|
| cifar10       | cifar-10-batches-py/{data_batch_1..5,test_batch}   | standard           |
|               | or JPEG: cifar10-jpeg.zip, cifar10-jpeg/cifar10-jpeg.zip, cifar10-jpeg/{train,test}/<class>/ |  |
| cifar100      | cifar-100-python/{train,test}                      | standard           |
| kmnist        | KMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte | standard      |
| fashionmnist  | FashionMNIST/raw/... (as KMNIST)                   | standard           |
| eurosat       | eurosat/2750/<class>/*.jpg                         | seeded, stratified |
| fgvc_aircraft | fgvc-aircraft-2013b/data/{images,variants.txt,images_variant_*.txt} | standard (trainval / test) |
| dtd           | dtd/dtd/{images/<class>/*.jpg,labels/{train,val,test}1.txt} | standard (train+val / test, partition 1) |
| imagenet_r    | imagenet-r/<class>/*.jpg  (an ImageFolder)         | seeded, stratified |
| imagenet100   | imagenet100/{train,val}/<class>/*.jpg              | standard (train / val) |

Small datasets (digits, CIFAR, the MNISTs) are held in memory; the others are decoded by a
DataLoader, resized (shorter side) and centre-cropped to `image_size`.

CIFAR-10 as JPEG (the 60,000 images re-encoded at quality 75 in an ImageFolder layout, in
one zip or unpacked) is decoded once into a uint8 cache (`cifar_jpeg_cache`), so a run
starts in about a second. `ImageData.source` says which files a run read.
"""
from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

# ----------------------------------------------------------------------------- sources


class TensorSource:
    """Images held in memory: (N, C, H, W) uint8 or float tensor and (N,) labels."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        self.x, self.y = x, y.long()

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, idx: np.ndarray) -> "TensorSource":
        idx = torch.as_tensor(idx, dtype=torch.long)
        return TensorSource(self.x[idx], self.y[idx])

    def batches(self, batch_size: int, order: torch.Tensor | None = None, workers: int = 0
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(images, labels, positions in this source) per batch, in `order`. Batches are
        formed where the images are: a source moved to a GPU (`to`) gathers them there, from
        one copy of the order per pass (the positions yielded stay on the CPU)."""
        order = torch.arange(len(self)) if order is None else order
        on = order.to(self.x.device, non_blocking=True) if self.x.device != order.device else order
        for s in range(0, len(order), batch_size):
            idx = on[s:s + batch_size]
            yield _to_float(self.x[idx]), self.y[idx], order[s:s + batch_size]

    def to(self, device: torch.device | str) -> "TensorSource":
        """The same images and labels held on `device` (uint8 stays uint8: a quarter of float's size)."""
        return TensorSource(self.x.to(device), self.y.to(device))

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        idx = torch.from_numpy(np.random.default_rng(seed).permutation(len(self))[:n])
        return _to_float(self.x[idx])


class FileSource:
    """Images decoded on the fly from a torchvision dataset (indices select a split)."""

    def __init__(self, dataset, indices: np.ndarray, labels: np.ndarray):
        self.dataset, self.indices, self.labels = dataset, np.asarray(indices), np.asarray(labels)

    def __len__(self) -> int:
        return len(self.indices)

    def subset(self, idx: np.ndarray) -> "FileSource":
        return FileSource(self.dataset, self.indices[idx], self.labels[idx])

    def batches(self, batch_size: int, order: torch.Tensor | None = None, workers: int = 0
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        from torch.utils.data import DataLoader, Subset
        order = torch.arange(len(self)) if order is None else order
        loader = DataLoader(Subset(self.dataset, self.indices[order.numpy()].tolist()), batch_size=batch_size,
                            shuffle=False, num_workers=workers, pin_memory=torch.cuda.is_available())
        for s, (x, y) in zip(range(0, len(order), batch_size), loader):
            yield x, torch.as_tensor(y).long(), order[s:s + batch_size]

    def sample(self, n: int, seed: int = 0) -> torch.Tensor:
        idx = np.random.default_rng(seed).permutation(len(self))[:n]
        return torch.stack([self.dataset[int(self.indices[i])][0] for i in idx])


def send(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU tensor of random draws or indices on `device`: to a GPU through pinned memory
    without waiting for the GPU (a copy from pageable memory waits for the work queued before
    it); on the CPU as it is."""
    if device.type != "cuda":
        return t
    return t.pin_memory().to(device, non_blocking=True)


def _to_float(x: torch.Tensor) -> torch.Tensor:
    return x.float() / 255.0 if x.dtype == torch.uint8 else x


@dataclass(frozen=True)
class ImageData:
    train: TensorSource | FileSource
    test: TensorSource | FileSource
    num_classes: int
    channels: int
    image_size: int
    split: str
    """How train/test were formed ("standard" or the seeded split's description)."""
    source: str = ""
    """Which files were read (e.g. "cifar-10-batches-py", "cifar10-jpeg.zip"): recorded in run rows."""

    def channel_stats(self, n: int = 2000) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean/std of (up to n, seeded sample of) raw training images."""
        x = self.train.sample(min(n, len(self.train)))
        return x.mean(dim=(0, 2, 3)), x.std(dim=(0, 2, 3)).clamp_min(1e-6)

    # tensors of the in-memory datasets (convenience for small tasks and tests)
    @property
    def train_x(self) -> torch.Tensor:
        return _to_float(self.train.x)

    @property
    def train_y(self) -> torch.Tensor:
        return self.train.y

    @property
    def test_x(self) -> torch.Tensor:
        return _to_float(self.test.x)

    @property
    def test_y(self) -> torch.Tensor:
        return self.test.y


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


def data_root(root: str | None) -> str:
    """The run's data root (ctx.data_root: the CLI resolves --data-root / SYMSWEEP_DATA)."""
    if not root:
        raise FileNotFoundError("this dataset is read from a local root: pass --data-root DIR or set SYMSWEEP_DATA")
    return root


def _resize_tensor(x: torch.Tensor, size: int | None) -> torch.Tensor:
    if size is None or x.shape[-1] == size and x.shape[-2] == size:
        return x
    dtype = x.dtype
    out = F.interpolate(_to_float(x), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (out.clamp(0, 1) * 255).round().to(torch.uint8) if dtype == torch.uint8 else out


# ----------------------------------------------------------------------------- loaders


def load_digits(test_fraction: float, split_seed: int, size: int | None) -> ImageData:
    from sklearn.datasets import load_digits as sk_digits
    bunch = sk_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)  # pixels 0..16 -> [0, 1]
    x = _resize_tensor(x, size)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    tr, te = stratified_split(bunch.target, test_fraction, split_seed)
    src = TensorSource(x, y)
    return ImageData(src.subset(tr), src.subset(te), 10, 1, x.shape[-1],
                     split=f"stratified test_fraction={test_fraction} split_seed={split_seed}",
                     source="sklearn.datasets.load_digits")


def _unpickle(path: str) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_JPEG = ("cifar10-jpeg.zip", "cifar10-jpeg/cifar10-jpeg.zip", "cifar10-jpeg")
"""Where the JPEG set is looked for under a data root, in order: the zip, the zip in its own
folder (a data root that holds several datasets), the tree unpacked (cifar10-jpeg/{train,test})."""


def _find_cifar10_jpeg(base: str) -> str | None:
    for rel in CIFAR10_JPEG:
        path = os.path.join(base, rel)
        if rel.endswith(".zip") and os.path.isfile(path) or os.path.isdir(os.path.join(path, "train")):
            return path
    return None


def _cifar(root: str, download: bool, hundred: bool, size: int | None) -> ImageData:
    from torchvision.datasets import CIFAR10, CIFAR100
    name = "cifar100" if hundred else "cifar10"
    base = data_root(root)
    pickled = "cifar-100-python" if hundred else "cifar-10-batches-py"
    folder = os.path.join(base, pickled)
    if not os.path.isdir(folder):
        jpeg = None if hundred else _find_cifar10_jpeg(base)
        if jpeg is not None:
            return _cifar10_jpeg(jpeg, size)
        if not download:
            also = f" or {' / '.join(CIFAR10_JPEG)}" if not hundred else ""
            raise FileNotFoundError(f"{name} not found at {folder}{also}; set download: true to fetch it")
        (CIFAR100 if hundred else CIFAR10)(base, train=True, download=True)
    files = (["train"], ["test"]) if hundred else ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"])
    key = "fine_labels" if hundred else "labels"
    parts = []
    for names in files:  # read the pickles ourselves: torchvision would reject files it cannot md5-check
        batches = [_unpickle(os.path.join(folder, n)) for n in names]
        x = np.concatenate([b["data"] for b in batches]).reshape(-1, 3, 32, 32)
        y = np.concatenate([b[key] for b in batches])
        parts.append(TensorSource(_resize_tensor(torch.from_numpy(x), size), torch.from_numpy(y)))
    return ImageData(parts[0], parts[1], 100 if hundred else 10, 3, size or 32, split="standard", source=pickled)


def _cifar10_jpeg(path: str, size: int | None) -> ImageData:
    arrays = cifar_jpeg_cache(path)
    parts = [TensorSource(_resize_tensor(torch.from_numpy(arrays[f"{s}_x"]), size), torch.from_numpy(arrays[f"{s}_y"]))
             for s in ("train", "test")]
    return ImageData(parts[0], parts[1], 10, 3, size or 32, split="standard", source=os.path.basename(path))


def cache_dir() -> str:
    """Where decoded datasets are kept: $SYMSWEEP_CACHE, else $XDG_CACHE_HOME/symsweep, else
    ~/.cache/symsweep (the data root itself is often read-only, e.g. a shared mount)."""
    return os.environ.get("SYMSWEEP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "symsweep")


def cifar_jpeg_cache(path: str) -> dict[str, np.ndarray]:
    """The JPEG set at `path` (zip or unpacked tree) as uint8 arrays: train_x (50000, 3, 32, 32),
    train_y, test_x, test_y; labels in CIFAR-10's class order, images in file-name order.

    Decoded once (about 30 s on one core) into `cache_dir()`; the cache file is named by the
    source's path, size and modification time, so a changed source is decoded again. Two
    workers that miss the cache at once serialize on a file lock: one decodes, the other
    waits and reads its result. The file is written to a temp name and renamed."""
    from filelock import FileLock
    st = os.stat(path)
    key = hashlib.sha256(f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    folder = cache_dir()
    os.makedirs(folder, exist_ok=True)
    target = os.path.join(folder, f"cifar10-jpeg-{key}.npz")
    with FileLock(target + ".lock"):
        if not os.path.exists(target):
            arrays = _decode_cifar_jpeg(path)
            tmp = f"{target}.tmp-{os.getpid()}"
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
    with np.load(target) as z:
        return {k: z[k] for k in z.files}


def _decode_cifar_jpeg(path: str) -> dict[str, np.ndarray]:
    import io
    import zipfile

    from PIL import Image
    if os.path.isdir(path):
        names = [os.path.relpath(os.path.join(d, f), path).replace(os.sep, "/")
                 for d, _, files in os.walk(path) for f in files if f.endswith(".jpg")]
        read = lambda n: open(os.path.join(path, n), "rb").read()  # noqa: E731
        archive = None
    else:
        archive = zipfile.ZipFile(path)
        prefix = "cifar10-jpeg/"
        names = [n[len(prefix):] for n in archive.namelist() if n.startswith(prefix) and n.endswith(".jpg")]
        read = lambda n: archive.read(prefix + n)  # noqa: E731
    out = {}
    try:
        for split in ("train", "test"):
            picked = sorted((CIFAR10_CLASSES.index(n.split("/")[1]), n) for n in names
                            if n.split("/")[0] == split and n.split("/")[1] in CIFAR10_CLASSES)
            if not picked:
                raise FileNotFoundError(f"{path} holds no {split}/<class>/*.jpg images of CIFAR-10")
            x = np.empty((len(picked), 3, 32, 32), dtype=np.uint8)
            for i, (_, n) in enumerate(picked):
                img = np.asarray(Image.open(io.BytesIO(read(n))).convert("RGB"))
                if img.shape != (32, 32, 3):
                    raise ValueError(f"{path}: {n} is {img.shape[1]}x{img.shape[0]}, not 32x32")
                x[i] = img.transpose(2, 0, 1)
            out[f"{split}_x"], out[f"{split}_y"] = x, np.array([c for c, _ in picked], dtype=np.int64)
    finally:
        if archive is not None:
            archive.close()
    return out


def _mnist_like(cls_name: str, root: str, download: bool, size: int | None) -> ImageData:
    import torchvision.datasets as tvd
    cls = getattr(tvd, cls_name)
    base = data_root(root)
    try:
        train, test = cls(base, train=True, download=download), cls(base, train=False, download=download)
    except RuntimeError as exc:
        raise FileNotFoundError(f"{cls_name} not found under {base}/{cls_name}/raw ({exc}); "
                                f"set download: true to fetch it") from None
    srcs = [TensorSource(_resize_tensor(d.data.unsqueeze(1), size), d.targets) for d in (train, test)]
    return ImageData(srcs[0], srcs[1], len(train.classes), 1, size or 28, split="standard",
                     source=f"{cls_name}/raw")


def _transform(size: int):
    from torchvision import transforms as T
    return T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor()])


def _targets(ds) -> np.ndarray:
    for attr in ("targets", "_labels"):
        if hasattr(ds, attr):
            return np.asarray(getattr(ds, attr))
    return np.asarray([t for _, t in ds.samples])


def _file_dataset(name: str, root: str, download: bool, size: int, test_fraction: float,
                  split_seed: int) -> ImageData:
    import torchvision.datasets as tvd
    base = data_root(root)
    tf = _transform(size)
    try:
        if name == "eurosat":
            full = tvd.EuroSAT(base, transform=tf, download=download)
            return _seeded(full, size, test_fraction, split_seed, 3)
        if name == "imagenet_r":
            return _seeded(tvd.ImageFolder(os.path.join(base, "imagenet-r"), transform=tf), size, test_fraction,
                           split_seed, 3)
        if name == "fgvc_aircraft":
            train = tvd.FGVCAircraft(base, split="trainval", transform=tf, download=download)
            test = tvd.FGVCAircraft(base, split="test", transform=tf, download=download)
        elif name == "dtd":
            parts = [tvd.DTD(base, split=s, partition=1, transform=tf, download=download)
                     for s in ("train", "val", "test")]
            train, test = torch.utils.data.ConcatDataset(parts[:2]), parts[2]
            train.classes = parts[0].classes
            train.targets = np.concatenate([_targets(p) for p in parts[:2]])
        elif name == "imagenet100":
            train = tvd.ImageFolder(os.path.join(base, "imagenet100", "train"), transform=tf)
            test = tvd.ImageFolder(os.path.join(base, "imagenet100", "val"), transform=tf)
        else:
            raise ValueError(name)
    except (RuntimeError, FileNotFoundError) as exc:
        raise FileNotFoundError(f"{name} not found under {base} ({exc}); "
                                f"set download: true where torchvision can fetch it") from None
    ytr, yte = _targets(train), _targets(test)
    return ImageData(FileSource(train, np.arange(len(ytr)), ytr), FileSource(test, np.arange(len(yte)), yte),
                     len(train.classes), 3, size, split="standard", source=type(train).__name__)


def _seeded(full, size: int, test_fraction: float, split_seed: int, channels: int) -> ImageData:
    y = _targets(full)
    tr, te = stratified_split(y, test_fraction, split_seed)
    return ImageData(FileSource(full, tr, y[tr]), FileSource(full, te, y[te]), len(full.classes), channels,
                     size, split=f"stratified test_fraction={test_fraction} split_seed={split_seed}",
                     source=type(full).__name__)


NATIVE_SIZE = {"digits": 8, "cifar10": 32, "cifar100": 32, "kmnist": 28, "fashionmnist": 28}
FILE_DEFAULT_SIZE = {"eurosat": 64, "fgvc_aircraft": 224, "dtd": 224, "imagenet_r": 224, "imagenet100": 224}
DATASETS = ("digits", "cifar10", "cifar100", "kmnist", "fashionmnist", *FILE_DEFAULT_SIZE)


def image_size_of(name: str, image_size: int | None) -> int:
    """The square size a dataset's images have after loading with `image_size`."""
    return image_size or NATIVE_SIZE.get(name) or FILE_DEFAULT_SIZE[name]


def load_dataset(name: str, root: str | None = None, download: bool = False, test_fraction: float = 0.2,
                 split_seed: int = 0, image_size: int | None = None) -> ImageData:
    """A dataset's train/test sources. image_size: resize to this square size (None: native,
    or the dataset's default for the variable-size ones: 64 EuroSAT, 224 the others)."""
    if name == "digits":
        return load_digits(test_fraction, split_seed, image_size)
    if name in ("cifar10", "cifar100"):
        return _cifar(root, download, name == "cifar100", image_size)
    if name in ("kmnist", "fashionmnist"):
        return _mnist_like({"kmnist": "KMNIST", "fashionmnist": "FashionMNIST"}[name], root, download, image_size)
    if name in FILE_DEFAULT_SIZE:
        return _file_dataset(name, root, download, image_size or FILE_DEFAULT_SIZE[name], test_fraction, split_seed)
    raise ValueError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
