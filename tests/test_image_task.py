"""Input expansion and the image-classification task."""
from __future__ import annotations

import pytest
import torch

from tasks import SimpleContext, get_task
from tasks.expansion import expand_image, original_mask
from tasks.image_classification import ImageClassificationConfig


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
    assert r1.metrics == r2.metrics
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
    with pytest.raises(ValueError, match="available: cifar10, digits"):
        ImageClassificationConfig(dataset="mnist")
    with pytest.raises(ValueError, match="fill must be in"):
        ImageClassificationConfig(fill=3.0)
