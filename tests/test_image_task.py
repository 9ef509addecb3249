"""Input expansion and the image-classification task."""
from __future__ import annotations

import math

import pytest
import torch

from symsweep import SimpleContext, get_task
from symsweep.tasks.common.expansion import expand_image, original_mask
from symsweep.tasks.image_classification import ImageClassificationConfig


def test_expand_places_pixels_on_a_k_grid_and_fills_the_rest():
    x = torch.arange(1, 13, dtype=torch.float32).reshape(1, 3, 4)
    for k in (2, 3, 5):
        out = expand_image(x, k, fill=0.25)
        assert out.shape == (1, 3 * k, 4 * k)
        for i in range(3):
            for j in range(4):
                assert out[0, k * i, k * j] == x[0, i, j]
        mask = original_mask(3, 4, k)
        assert torch.all(out[0][~mask] == 0.25)
        assert int(mask.sum()) == 12
    assert torch.equal(expand_image(x, 1, 0.5), x)


def test_expand_batches_and_random_fill_is_seeded():
    x = torch.rand(5, 3, 4, 4)
    a = expand_image(x, 2, "random", generator=torch.Generator().manual_seed(0))
    b = expand_image(x, 2, "random", generator=torch.Generator().manual_seed(0))
    c = expand_image(x, 2, "random", generator=torch.Generator().manual_seed(1))
    assert a.shape == (5, 3, 8, 8) and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(a[..., ::2, ::2], x)
    filled = a[..., ~original_mask(4, 4, 2)]
    assert filled.min() >= 0 and filled.max() < 1 and filled.std() > 0.2


@pytest.mark.parametrize("bad", [dict(factor=0), dict(factor=2.0), dict(fill="noise")])
def test_expand_rejects_bad_arguments(bad):
    with pytest.raises(ValueError):
        expand_image(torch.zeros(1, 2, 2), bad.get("factor", 2), bad.get("fill", 0.5))


def test_same_seed_reproduces_and_raw_expanded_share_parameters():
    task = get_task("image_classification")
    cfg = ImageClassificationConfig(epochs=1, width=8)
    r1 = task.run(cfg, 3, SimpleContext())
    r2 = task.run(cfg, 3, SimpleContext())
    timing = {"train_images_per_s"}  # a measured throughput, not a result of the seed
    assert {k: v for k, v in r1.metrics.items() if k not in timing} == \
        {k: v for k, v in r2.metrics.items() if k not in timing}
    assert set(r1.metrics) == set(r2.metrics) and r1.metrics["train_images_per_s"] > 0
    exp = task.run(ImageClassificationConfig(epochs=1, width=8, expansion_factor=2), 3, ctx := SimpleContext())
    assert exp.metrics["n_params"] == r1.metrics["n_params"]
    assert [h["step"] for h in ctx.history] == [0]
    assert {"train_loss", "test_loss", "test_acc", "lr"} <= set(ctx.history[0])


def test_random_fill_per_batch_trains():
    task = get_task("image_classification")
    res = task.run(ImageClassificationConfig(epochs=1, width=8, expansion_factor=2, fill="random",
                                             random_fill="per_batch"), 0, SimpleContext())
    assert 0.0 <= res.metrics["test_acc"] <= 1.0 and res.metrics["train_loss"] > 0


def test_config_rejects_unknown_dataset_and_bad_fill():
    with pytest.raises(ValueError, match="available: digits, cifar10, cifar100, kmnist"):
        ImageClassificationConfig(dataset="mnist")
    with pytest.raises(ValueError, match="fill must be in"):
        ImageClassificationConfig(fill=3.0)


# ----------------------------------------------------------------------------- every model x dataset

from fake_datasets import DATASETS as FAKE_DATASETS, make as make_fake  # noqa: E402
from symsweep.tasks.common.datasets import load_dataset  # noqa: E402
from symsweep.tasks.common.models import MIN_INPUT, MODELS  # noqa: E402


@pytest.fixture(scope="module")
def fake_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for name in FAKE_DATASETS:
        make_fake(name, root)
    return root


@pytest.mark.parametrize("dataset", FAKE_DATASETS)
def test_datasets_load_from_their_on_disk_layout(dataset, fake_root):
    data = load_dataset(dataset, str(fake_root), image_size=16)
    x, y, idx = next(data.train.batches(4))
    assert x.dtype == torch.float32 and 0 <= float(x.min()) and float(x.max()) <= 1
    assert x.shape[1:] == (data.channels, 16, 16) and len(y) == len(idx) == x.shape[0]
    assert data.channels == (1 if dataset in ("kmnist", "fashionmnist") else 3)
    assert len(data.test) > 0 and int(y.max()) < data.num_classes
    if dataset in ("eurosat", "imagenet_r"):
        assert data.split.startswith("stratified")  # no standard split: a seeded one, recorded
        assert set(data.train.indices).isdisjoint(data.test.indices)


def test_missing_dataset_names_the_path_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="download: true"):
        load_dataset("cifar10", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="--data-root"):
        load_dataset("cifar10", None)


@pytest.mark.parametrize("dataset", ("digits", *FAKE_DATASETS))
def test_every_model_builds_and_takes_a_training_step_on_every_dataset(dataset, fake_root):
    from symsweep.tasks.image_classification import _Inputs
    from symsweep.tasks.common.models import build_model
    data = load_dataset(dataset, str(fake_root), image_size=None if dataset == "digits" else 16)
    mean, std = data.channel_stats()
    for model_name in MODELS:
        factor = 1 if data.image_size >= MIN_INPUT[model_name] else -(-MIN_INPUT[model_name] // data.image_size)
        cfg = ImageClassificationConfig(dataset=dataset, model=model_name, expansion_factor=factor,
                                        image_size=None if dataset == "digits" else 16)
        inputs = _Inputs(cfg, 0, mean, std, torch.device("cpu"))
        torch.manual_seed(0)
        model = build_model(model_name, data.channels, data.num_classes, width=4)
        x, y, idx = next(data.train.batches(2))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        before = [p.detach().clone() for p in model.parameters()]
        loss = torch.nn.functional.cross_entropy(model(inputs(x, idx, 0)), y)
        loss.backward()
        opt.step()
        assert math.isfinite(loss.item()), (dataset, model_name)
        assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters())), (dataset, model_name)


@pytest.mark.parametrize("dataset", ("digits", *FAKE_DATASETS))
def test_task_runs_end_to_end_on_every_dataset(dataset, fake_root):
    cfg = ImageClassificationConfig(dataset=dataset, epochs=2, batch_size=4, width=4, expansion_factor=2,
                                    image_size=None if dataset == "digits" else 16, train_limit=8, test_limit=8)
    ctx = SimpleContext(data_root=str(fake_root))
    res = get_task("image_classification").run(cfg, 0, ctx)
    assert math.isfinite(res.metrics["train_loss"]) and 0 <= res.metrics["test_acc"] <= 1
    assert [h["step"] for h in ctx.history] == [0, 1]


def test_grayscale_channels_are_explicit(fake_root):
    native = get_task("image_classification").run(
        ImageClassificationConfig(dataset="kmnist", model="resnet18", epochs=1, batch_size=4, train_limit=4,
                                  test_limit=4),
        0, SimpleContext(data_root=str(fake_root)))
    replicate = get_task("image_classification").run(
        ImageClassificationConfig(dataset="kmnist", model="resnet18", epochs=1, batch_size=4, train_limit=4,
                                  test_limit=4, in_channels="replicate"), 0, SimpleContext(data_root=str(fake_root)))
    # the first conv of resnet18 has 64 x C x 7 x 7 weights: C = 1 natively, 3 when replicated
    assert replicate.metrics["n_params"] - native.metrics["n_params"] == 64 * 2 * 7 * 7


def test_models_refuse_inputs_they_cannot_take():
    with pytest.raises(ValueError, match="densenet121 needs inputs of at least 32 px; digits is 8 px"):
        ImageClassificationConfig(dataset="digits", model="densenet121")
    ImageClassificationConfig(dataset="digits", model="densenet121", expansion_factor=4)  # 32 px: fine


def test_raw_runs_have_one_canonical_fill():
    assert ImageClassificationConfig(expansion_factor=1, fill="random").fill == 0.0
    from symsweep import expand, spec_from_dict
    spec = spec_from_dict({"name": "g", "task": "image_classification", "seeds": 2,
                           "axes": {"expansion_factor": [1, 2, 3], "fill": [0.5, "random"]}})
    runs = expand(spec)
    assert len(runs) == (1 + 2 * 2) * 2  # raw once, not once per fill
    assert len({r.run_id for r in runs}) == len(runs)


def test_per_image_random_fill_is_fixed_across_epochs_and_per_batch_is_not():
    from symsweep.tasks.image_classification import _Inputs
    x = torch.rand(3, 1, 4, 4)
    idx = torch.tensor([5, 6, 7])
    mean, std = torch.zeros(1), torch.ones(1)
    fixed = _Inputs(ImageClassificationConfig(expansion_factor=2, fill="random"), 0, mean, std, torch.device("cpu"))
    assert torch.equal(fixed(x, idx, 0), fixed(x, idx, 0))
    assert not torch.equal(fixed(x, idx, 0), fixed(x, idx, 1))  # test images get their own noise
    batch = _Inputs(ImageClassificationConfig(expansion_factor=2, fill="random", random_fill="per_batch"),
                    0, mean, std, torch.device("cpu"))
    assert not torch.equal(batch(x, idx, 0), batch(x, idx, 0))
    assert torch.equal(batch(x, idx, 0)[..., ::2, ::2], x)


# ----------------------------------------------------------------------------- augmentation


def test_random_crop_flip_takes_shifted_windows_of_the_padded_image():
    from symsweep.tasks.image_classification import random_crop_flip
    x = torch.rand(64, 3, 8, 8)
    assert torch.equal(random_crop_flip(x, 0, False, torch.Generator().manual_seed(0)), x)
    gen, twin = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    out = random_crop_flip(x, 2, True, gen)
    offsets = torch.randint(0, 5, (64, 2), generator=twin)
    mirror = torch.rand(64, generator=twin) < 0.5
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(64):
        oy, ox = offsets[i].tolist()
        want = padded[i, :, oy:oy + 8, ox:ox + 8]
        assert torch.equal(out[i], want.flip(-1) if mirror[i] else want)
    assert 0 < int(mirror.sum()) < 64 and len({tuple(o) for o in offsets.tolist()}) > 10


def test_standard_augmentation_is_seeded_train_only_and_comes_before_expansion():
    from symsweep.tasks.image_classification import _Inputs
    x, idx = torch.rand(16, 3, 8, 8) * 0.5 + 0.25, torch.arange(16)
    mean, std = torch.zeros(3), torch.ones(3)
    cfg = ImageClassificationConfig(expansion_factor=2, fill=1.0, augment="standard", crop_padding_px=2)
    a, b = _Inputs(cfg, 0, mean, std, torch.device("cpu")), _Inputs(cfg, 0, mean, std, torch.device("cpu"))
    first = a(x, idx, 0)
    assert torch.equal(first, b(x, idx, 0)) and not torch.equal(first, a(x, idx, 0))  # seeded, new each batch
    assert torch.equal(a(x, idx, 1)[..., ::2, ::2], x)                               # test images untouched
    filled = ~original_mask(8, 8, 2)
    assert torch.all(first[..., filled] == 1.0)  # cropping after expansion would move the fill grid
    originals = first[..., ::2, ::2]
    assert torch.any(originals == 0.0) and not torch.equal(originals, x)  # padding pixels cropped in


def test_standard_augmentation_does_not_mirror_digits():
    from symsweep.tasks.image_classification import _Inputs
    x = torch.rand(32, 1, 8, 8)
    inputs = _Inputs(ImageClassificationConfig(augment="standard", crop_padding_px=0), 0, torch.zeros(1),
                     torch.ones(1), torch.device("cpu"))
    assert torch.equal(inputs(x, torch.arange(32), 0), x)
    cifar_like = ImageClassificationConfig(dataset="cifar10", augment="standard", crop_padding_px=0)
    mirrored = _Inputs(cifar_like, 0, torch.zeros(1), torch.ones(1), torch.device("cpu"))(x, torch.arange(32), 0)
    assert not torch.equal(mirrored, x) and all(torch.equal(m, o) or torch.equal(m, o.flip(-1))
                                                for m, o in zip(mirrored, x))


def test_augmented_run_trains_and_differs_from_the_plain_one():
    task = get_task("image_classification")
    plain = task.run(ImageClassificationConfig(epochs=1, width=8), 3, SimpleContext()).metrics
    aug = task.run(ImageClassificationConfig(epochs=1, width=8, augment="standard"), 3, SimpleContext()).metrics
    assert math.isfinite(aug["train_loss"]) and aug["train_loss"] != plain["train_loss"]


# ----------------------------------------------------------------------------- the device path (issue 32)


def _history(monkeypatch=None, **kw):
    from symsweep.tasks.image_classification import run
    cfg = ImageClassificationConfig(**{"dataset": "digits", "epochs": 2, "train_limit": 200, "test_limit": 80,
                                       "batch_size": 64, **kw})
    ctx = SimpleContext()
    metrics = run(cfg, 5, ctx).metrics
    return ctx.history, {k: v for k, v in metrics.items() if k != "train_images_per_s"}


def test_an_epochs_augmentation_drawn_at_once_is_what_batch_by_batch_drawing_gave(monkeypatch):
    """The loop draws an epoch's crops and flips at once (one copy to the GPU, not one per
    batch): the same values, so the same training, as drawing them batch by batch."""
    from symsweep.tasks import image_classification as ic
    kw = dict(augment="standard", expansion_factor=2, fill=0.5)
    at_once = _history(**kw)
    monkeypatch.setattr(ic._Inputs, "start_epoch", lambda self, n, batch_size: None)  # per batch, as before
    assert _history(**kw) == at_once
    gen_a, gen_b = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    offsets, mirror = ic.draw_crop_flip([4, 4, 3], 2, True, gen_a)
    one_by_one = [ic.draw_crop_flip([n], 2, True, gen_b) for n in (4, 4, 3)]
    assert torch.equal(offsets, torch.cat([o for o, _ in one_by_one]))
    assert torch.equal(mirror, torch.cat([m for _, m in one_by_one]))


def test_the_captured_step_path_gives_the_eager_numbers_on_the_cpu(monkeypatch):
    """capture: cuda_graph records no graph off CUDA, but its static tensors (one set per
    batch size), warm-up and fused SGD with a tensor learning rate run. Two checks: the static
    tensors change nothing (bit for bit against the same step called on the batches
    themselves), and fused SGD differs from the eager step's SGD by rounding only; the logged
    learning rate is the float32 value the step used."""
    from symsweep.tasks import image_classification as ic
    # 200 images, batch 64: 3 full batches + 1 partial per epoch; after 3 epochs the partial
    # batch's step runs from its own static tensors too
    kw = dict(augment="standard", epochs=5)
    eager, captured = _history(**kw), _history(capture="cuda_graph", **kw)
    monkeypatch.setattr(ic, "CAPTURE_WARMUP", 10 ** 9)  # every step on the batch itself
    assert _history(capture="cuda_graph", **kw) == captured
    for a, b in zip(eager[0], captured[0]):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-6)  # fused SGD's rounding
        assert b["test_loss"] == pytest.approx(a["test_loss"], rel=1e-5)
        assert b["lr"] == pytest.approx(a["lr"], rel=1e-6)  # a float32 tensor, updated by the schedule
        assert abs(b["test_acc"] - a["test_acc"]) <= 1 / 80  # one test image of 80 at most

