"""CIFAR-10 from the shared JPEG set (zip or unpacked tree) through the decoded cache."""
from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from symsweep.tasks.common import datasets
from symsweep.tasks.common.datasets import CIFAR10_CLASSES, cifar_jpeg_cache, load_dataset

from conftest import SHARED_DATA, ledger

JPEG_ROOT = SHARED_DATA / "cifar10-jpeg"
needs_cifar = pytest.mark.skipif(not (JPEG_ROOT / "cifar10-jpeg.zip").exists(),
                                 reason=f"the shared CIFAR-10 JPEG set is absent ({JPEG_ROOT}/cifar10-jpeg.zip)")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("SYMSWEEP_CACHE", str(folder))
    return folder


def _tiny_tree(root: Path, per_class: dict[str, int]) -> None:
    """An unpacked JPEG tree with a few 32x32 images per class, each a solid colour that
    encodes (split, class, index) so the decoded order can be checked."""
    from PIL import Image
    for split, n in per_class.items():
        for c, name in enumerate(CIFAR10_CLASSES):
            folder = root / "cifar10-jpeg" / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (32, 32), (c * 20, i * 40, 200 if split == "test" else 0)).save(
                    folder / f"{i:04d}.jpg", quality=95)


@needs_cifar
def test_the_shared_jpeg_set_loads_as_cifar10_and_the_cache_is_reused(cache, monkeypatch):
    data = load_dataset("cifar10", str(JPEG_ROOT))
    assert data.source == "cifar10-jpeg.zip" and data.split == "standard"
    assert tuple(data.train.x.shape) == (50000, 3, 32, 32) and data.train.x.dtype == torch.uint8
    assert tuple(data.test.x.shape) == (10000, 3, 32, 32)
    assert np.bincount(data.train.y.numpy()).tolist() == [5000] * 10
    assert np.bincount(data.test.y.numpy()).tolist() == [1000] * 10
    # class order as in CIFAR-10: the first test image of class 0 is an airplane, i.e. the
    # label of the first file of test/airplane/ is 0 and of test/truck/ is 9
    assert data.test.y[0] == 0 and data.test.y[-1] == 9 and data.num_classes == 10 and data.channels == 3
    # real photographs, not a blank decode: channel means of the training set near CIFAR-10's
    # published (0.4914, 0.4822, 0.4465); JPEG moves them by well under 0.01
    means = data.train.x.double().mean(dim=(0, 2, 3)) / 255
    assert np.allclose(means.numpy(), [0.4914, 0.4822, 0.4465], atol=0.01)
    assert len(list(cache.glob("cifar10-jpeg-*.npz"))) == 1

    def no_decode(path):
        raise AssertionError("decoded again although the cache holds the set")
    monkeypatch.setattr(datasets, "_decode_cifar_jpeg", no_decode)
    start = time.perf_counter()
    again = load_dataset("cifar10", str(JPEG_ROOT))
    assert time.perf_counter() - start < 10  # measured ~0.5 s from the cache (a decode is ~30 s)
    assert torch.equal(again.train.x[:100], data.train.x[:100])
    # a data root holding several datasets (the zip in its own folder) finds the same set
    assert load_dataset("cifar10", str(SHARED_DATA)).source == "cifar10-jpeg.zip"


def test_an_unpacked_tree_decodes_in_class_and_file_order(tmp_path, cache):
    _tiny_tree(tmp_path, {"train": 3, "test": 2})
    data = load_dataset("cifar10", str(tmp_path))
    assert data.source == "cifar10-jpeg"
    assert data.train.y.tolist() == [c for c in range(10) for _ in range(3)]
    assert data.test.y.tolist() == [c for c in range(10) for _ in range(2)]
    red, green, blue = (data.train.x[:, ch, 16, 16].int() for ch in range(3))
    # the solid colours survive JPEG to within a few levels: class in red, index in green
    assert (abs(red - data.train.y * 20) <= 6).all()
    assert (abs(green - torch.tensor([i * 40 for _ in range(10) for i in range(3)])) <= 6).all()
    assert (data.test.x[:, 2].float().mean() > 180) and (blue.float().mean() < 20)


def _load_in_child(root: str, cache_dir: str, out) -> None:
    os.environ["SYMSWEEP_CACHE"] = cache_dir
    arrays = cifar_jpeg_cache(os.path.join(root, "cifar10-jpeg"))
    out.put(int(arrays["train_x"].sum()))


def test_two_workers_building_the_cache_at_once_agree_and_leave_one_file(tmp_path, cache):
    _tiny_tree(tmp_path, {"train": 40, "test": 10})
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_load_in_child, args=(str(tmp_path), str(cache), out)) for _ in range(2)]
    for p in procs:
        p.start()
    sums = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert sums[0] == sums[1] > 0
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == [
        next(cache.glob("cifar10-jpeg-*.npz")).name]


def test_missing_cifar_names_both_layouts(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match="cifar-10-batches-py or cifar10-jpeg.zip / cifar10-jpeg/cifar10-jpeg.zip / cifar10-jpeg"):
        load_dataset("cifar10", str(tmp_path))


def test_a_sweep_on_ray_reads_cifar10_from_a_relative_data_root_and_records_the_source(tmp_path, cache, cli,
                                                                                      monkeypatch):
    """Ray runs each trial in a folder of its own: a relative --data-root must still be found,
    and every row says which files were read."""
    _tiny_tree(tmp_path / "data", {"train": 4, "test": 2})
    (tmp_path / "spec.yaml").write_text(
        "name: cifar-tiny\ntask: replica\n"
        "fixed: {dataset: cifar10, mode: subset, n_images: 20, epochs: 1}\n"
        "axes: {model: [simple]}\nseeds: 2\nruns_per_trial: 2\nresources: {cpus: 1, gpus: 0}\n")
    monkeypatch.setenv("SYMSWEEP_CACHE", str(cache))
    done = cli("run", "spec.yaml", "--results", "results", "--data-root", "data", "--num-cpus", "1",
               cwd=tmp_path, env={"SYMSWEEP_CACHE": str(cache)})
    assert done.returncode == 0, done.stdout + done.stderr
    runs = ledger(tmp_path / "results" / "cifar-tiny")
    assert set(runs["status"]) == {"completed"} and set(runs["info_dataset_source"]) == {"cifar10-jpeg"}
