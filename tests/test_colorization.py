"""The colorization task: data, expansion, the masked loss, reproducibility (all tiny, CPU)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from symsweep import SimpleContext
from symsweep.tasks.colorization import (ColorizationConfig, UNet, _Inputs, alpha_bars, diffusion_loss, load_data,
                                run, sample, sample_image_crops)

TINY = dict(dataset="sample_images", image_size=8, base_channels=8, steps=4, log_every=2, timesteps=20,
            sample_steps=3, n_train=16, n_test=4, batch_size=4)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_config_validates_and_canonicalizes_raw_runs():
    with pytest.raises(ValueError, match="multiple of 4"):
        ColorizationConfig(image_size=10)
    with pytest.raises(ValueError, match="sample_steps"):
        ColorizationConfig(timesteps=10, sample_steps=11, sampler="ddim")
    assert ColorizationConfig(timesteps=10, sample_steps=11).sampler == "ddpm"  # ddpm takes all 10 steps
    raw = ColorizationConfig(expansion_factor=1, fill=0.7, filled_noise="clean")
    assert (raw.fill, raw.filled_noise) == (0.0, "noised")


def test_sample_image_crops_are_seeded_and_split_by_region():
    train, test = sample_image_crops(10, 5, 16, seed=3)
    again, _ = sample_image_crops(10, 5, 16, seed=3)
    assert train.shape == (10, 3, 16, 16) and test.shape == (5, 3, 16, 16)
    assert torch.equal(train, again) and 0 <= train.min() and train.max() <= 1


def test_celeba_read_from_local_layout(tmp_path):
    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(6):
        name = f"{i:06d}.jpg"
        Image.fromarray(rng.integers(0, 255, (218, 178, 3), dtype=np.uint8)).save(folder / name)
        rows.append(f"{name} {0 if i < 4 else 2}")
    (tmp_path / "celeba" / "list_eval_partition.txt").write_text("\n".join(rows) + "\n")
    train, test = load_data("celeba", str(tmp_path), 8, None, None, 0, 0, 0)
    assert train.shape == (4, 3, 8, 8) and test.shape == (2, 3, 8, 8)
    with pytest.raises(FileNotFoundError, match="img_align_celeba"):
        load_data("celeba", str(tmp_path / "nowhere"), 8, None, None, 0, 0, 0)


def test_expanded_inputs_shapes_and_same_parameters():
    cfg = ColorizationConfig(**{**TINY, "expansion_factor": 2})
    x0, gray = _Inputs(cfg, torch.device("cpu"))(torch.rand(3, 3, 8, 8))
    assert x0.shape == (3, 3, 16, 16) and gray.shape == (3, 1, 16, 16)
    assert torch.all(x0[..., 1::2, :] == 0.0)  # fill 0.5 -> 0 in [-1, 1]
    model = UNet(8)
    assert model(x0, gray, torch.zeros(3, dtype=torch.long)).shape == x0.shape
    assert model(x0[..., ::2, ::2], gray[..., ::2, ::2], torch.zeros(3, dtype=torch.long)).shape == (3, 3, 8, 8)


class _Const(torch.nn.Module):
    """Predicts a fixed tensor whatever the input."""

    def __init__(self, out):
        super().__init__()
        self.out = out

    def forward(self, x, gray, t):
        return self.out


def test_loss_ignores_filled_positions():
    cfg = ColorizationConfig(**{**TINY, "expansion_factor": 2})
    inputs = _Inputs(cfg, torch.device("cpu"))
    x0, gray = inputs(torch.rand(2, 3, 8, 8))
    abar = alpha_bars(20)
    base = torch.zeros(2, 3, 16, 16)
    wild = base.clone()
    wild[..., ~inputs.mask] = 1e6  # garbage only where the fill is
    torch.manual_seed(0)
    a = diffusion_loss(_Const(base), x0, gray, abar, inputs)
    torch.manual_seed(0)
    b = diffusion_loss(_Const(wild), x0, gray, abar, inputs)
    assert torch.equal(a, b)
    wild[..., 0, 0] = 1e6  # an original position does count
    torch.manual_seed(0)
    assert diffusion_loss(_Const(wild), x0, gray, abar, inputs) > a


def test_clean_filled_noise_keeps_the_fill():
    cfg = ColorizationConfig(**{**TINY, "expansion_factor": 2, "fill": 0.25, "filled_noise": "clean"})
    inputs = _Inputs(cfg, torch.device("cpu"))
    x = inputs.keep_fill(torch.randn(2, 3, 16, 16))
    assert torch.all(x[..., ~inputs.mask] == -0.5)


@pytest.mark.parametrize("factor", [1, 2])
def test_run_is_reproducible_and_scored_on_original_pixels(factor):
    cfg = ColorizationConfig(**{**TINY, "expansion_factor": factor})
    a, b = run(cfg, 0, SimpleContext()), run(cfg, 0, SimpleContext())
    assert a.metrics == b.metrics
    assert run(cfg, 1, SimpleContext()).metrics["mae"] != a.metrics["mae"]
    assert 0 < a.metrics["mse"] <= a.metrics["mae"] <= 1
    ctx = SimpleContext()
    run(cfg, 0, ctx)
    assert ctx.artifacts["preview"]["colorized"].shape == (4, 3, 8, 8)  # raw size in both cases
    assert [h["step"] for h in ctx.history if "train_loss" in h] == [2, 4]


class _Oracle(torch.nn.Module):
    """The exact noise for a known clean image: x_t = sqrt(abar) x0 + sqrt(1 - abar) eps."""

    def __init__(self, x0, abar):
        super().__init__()
        self.x0, self.abar = x0, abar

    def forward(self, x, gray, t):
        a = self.abar[t].view(-1, 1, 1, 1)
        return (x - a.sqrt() * self.x0) / (1 - a).sqrt()


@pytest.mark.parametrize("sampler", [dict(sampler="ddim", ddim_eta=0.0), dict(sampler="ddim", ddim_eta=1.0),
                                     dict(sampler="ddpm"), dict(sampler="ddpm", ddpm_variance="posterior")])
def test_sampler_recovers_the_image_from_exact_noise_predictions(sampler):
    cfg = ColorizationConfig(**{**TINY, "expansion_factor": 2, "timesteps": 50, "sample_steps": 7, **sampler})
    inputs = _Inputs(cfg, torch.device("cpu"))
    x0, gray = inputs(torch.rand(2, 3, 8, 8))
    abar = alpha_bars(cfg.timesteps)
    out = sample(_Oracle(x0, abar), gray, abar, cfg, inputs, torch.Generator().manual_seed(0))
    assert torch.allclose(out, x0, atol=1e-4)


def test_ddpm_is_the_default_and_walks_every_timestep_with_fresh_noise():
    assert ColorizationConfig().sampler == "ddpm"
    cfg = ColorizationConfig(**{**TINY, "timesteps": 30})
    inputs = _Inputs(cfg, torch.device("cpu"))
    _, gray = inputs(torch.rand(2, 3, 8, 8))
    seen = []

    class Zero(torch.nn.Module):
        def forward(self, x, gray, t):
            seen.append(int(t[0]))
            return torch.zeros_like(x)

    abar = alpha_bars(cfg.timesteps)
    a = sample(Zero(), gray, abar, cfg, inputs, torch.Generator().manual_seed(0))
    assert seen == list(range(29, -1, -1))
    b = sample(Zero(), gray, abar, cfg, inputs, torch.Generator().manual_seed(1))
    assert not torch.allclose(a, b)  # ancestral: the noise of every step shows in the result
    seen.clear()
    sample(Zero(), gray, abar, ColorizationConfig(**{**TINY, "timesteps": 30, "sampler": "ddim", "sample_steps": 5}),
           inputs, torch.Generator().manual_seed(0))
    assert len(seen) == 5
