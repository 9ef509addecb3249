"""Input expansion of the paper (Sec. 6.1): spread the pixels, fill the gaps with a constant.

Pixel (i, j) of an H x W image goes to (k*i, k*j) of a kH x kW image; every other
position holds the fill value. Fill values are in pixel units (images in [0, 1]) before
any normalization.
"""
from __future__ import annotations

import torch

RANDOM = "random"


def expand_image(x: torch.Tensor, factor: int, fill: float | str = 0.5,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Expand (C, H, W) or (N, C, H, W) images by an integer factor.

    fill: a number, or "random" for independent U[0, 1) values at every filled position
    (drawn from `generator`, so a seeded generator reproduces them).
    """
    if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1:
        raise ValueError(f"factor must be an int >= 1, got {factor!r}")
    if x.dim() not in (3, 4):
        raise ValueError(f"expected (C,H,W) or (N,C,H,W) images, got shape {tuple(x.shape)}")
    if factor == 1:
        return x
    *lead, h, w = x.shape
    shape = (*lead, h * factor, w * factor)
    if fill == RANDOM:
        out = torch.rand(shape, generator=generator, dtype=x.dtype, device=x.device)
    elif isinstance(fill, (int, float)) and not isinstance(fill, bool):
        out = torch.full(shape, float(fill), dtype=x.dtype, device=x.device)
    else:
        raise ValueError(f"fill must be a number or {RANDOM!r}, got {fill!r}")
    out[..., ::factor, ::factor] = x
    return out


def original_mask(h: int, w: int, factor: int, device=None) -> torch.Tensor:
    """Boolean (kH, kW) mask of the positions that hold original pixels."""
    mask = torch.zeros(h * factor, w * factor, dtype=torch.bool, device=device)
    mask[::factor, ::factor] = True
    return mask
