"""Coefficient fields of the PDEs that have them, evaluated in torch inside the residual.

PINNacle interpolates its 256^2 coefficient grids with scipy's griddata on every call
(cached per tensor). The grids are regular, so here a gather on the grid does the same
on whatever device the collocation points live, with no cache: `nearest` for the heat
diffusivity (PINNacle: griddata nearest) and bilinear for the wave speed (PINNacle:
griddata linear, i.e. barycentric on a Delaunay triangulation; bilinear differs from it
only inside grid cells, by far less than the field's jumps).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

Grid = tuple[np.ndarray, np.ndarray, np.ndarray]  # xs, ys, values[iy, ix] (symsweep.tasks.pinn.data.read_grid)


def _cell(grid: Grid, px, py, xp):
    """Lower-left cell index and fractional offset of points on a regular grid, clamped to the grid."""
    xs, ys, values = grid
    nx, ny = len(xs), len(ys)
    fx = (px - xs[0]) / (xs[-1] - xs[0]) * (nx - 1)
    fy = (py - ys[0]) / (ys[-1] - ys[0]) * (ny - 1)
    fx, fy = xp.clip(fx, 0, nx - 1), xp.clip(fy, 0, ny - 1)
    ix = xp.clip(xp.floor(fx), 0, nx - 2)
    iy = xp.clip(xp.floor(fy), 0, ny - 2)
    return ix, iy, fx - ix, fy - iy


def bilinear_np(grid: Grid, points: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of a grid field at points (n, 2) -> (n, 1)."""
    values = grid[2]
    ix, iy, wx, wy = _cell(grid, points[:, 0], points[:, 1], np)
    ix, iy = ix.astype(int), iy.astype(int)
    out = (values[iy, ix] * (1 - wx) * (1 - wy) + values[iy, ix + 1] * wx * (1 - wy)
           + values[iy + 1, ix] * (1 - wx) * wy + values[iy + 1, ix + 1] * wx * wy)
    return out[:, None]


class GridField:
    """A grid field on a torch device; evaluated at (x, y) columns of a tensor, after an affine map."""

    def __init__(self, grid: Grid, method: str, scale: float = 1.0, shift: float = 0.0):
        if method not in ("nearest", "bilinear"):
            raise ValueError(f"method must be nearest or bilinear, got {method!r}")
        self.grid, self.method, self.scale, self.shift = grid, method, scale, shift
        self._values: dict[tuple, torch.Tensor] = {}

    def values_on(self, like: torch.Tensor) -> torch.Tensor:
        key = (like.device, like.dtype)
        if key not in self._values:
            self._values[key] = torch.as_tensor(self.grid[2], device=like.device, dtype=like.dtype)
        return self._values[key]

    def torch(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach()
        px, py = x[:, 0] * self.scale + self.shift, x[:, 1] * self.scale + self.shift
        values = self.values_on(x)
        ix, iy, wx, wy = _cell(self.grid, px, py, torch)
        ix, iy = ix.long(), iy.long()
        if self.method == "nearest":
            ix, iy = ix + (wx >= 0.5).long(), iy + (wy >= 0.5).long()
            return values[iy, ix][:, None]
        out = (values[iy, ix] * (1 - wx) * (1 - wy) + values[iy, ix + 1] * wx * (1 - wy)
               + values[iy + 1, ix] * (1 - wx) * wy + values[iy + 1, ix + 1] * wx * wy)
        return out[:, None]

    def numpy(self, points: np.ndarray) -> np.ndarray:
        return self.torch(torch.as_tensor(points, dtype=torch.float64, device="cpu")).numpy()


@dataclass
class ManyAreaField:
    """Piecewise coefficients of Poisson 2D many-area on [-10, 10]^2, 5 x 5 blocks.

    Block (i, j) (i along x, j along y) has a = a_coef[i, j] and source
    f = c[i, j, 0, 0] + c[i, j, 1, 1] sin(pi rx / s) sin(pi ry / s), where (rx, ry) is the
    offset inside the block and s its side: PINNacle's double sum over the 2 x 2 sine
    coefficients, of which only (0, 0) as a constant and (1, 1) are non-zero terms.
    PINNacle widens the box by 1e-5 on each side so that x = 10 falls in the last block;
    the same shift is kept.
    """

    a_coef: np.ndarray  # (5, 5)
    f_coef: np.ndarray  # (5, 5, 2, 2)
    low: float = -10.0
    high: float = 10.0
    pad: float = 1e-5

    @classmethod
    def from_files(cls, a_path: Path, f_path: Path) -> "ManyAreaField":
        a = np.loadtxt(a_path)
        f = np.loadtxt(f_path)
        if a.shape != (5, 5) or f.size != 100:
            raise ValueError(f"many-area coefficients: expected 5x5 a and 100 f values, got {a.shape}, {f.shape}")
        return cls(a, f.reshape(5, 5, 2, 2))

    @property
    def block(self) -> float:
        return (self.high - self.low + 2 * self.pad) / 5

    def _parts(self, x, xp, table):
        shifted = x[:, :2] - self.low + self.pad
        idx = xp.floor(shifted / self.block)
        offset = shifted - idx * self.block
        if xp is torch:
            idx = idx.long().clamp(0, 4)
        else:
            idx = np.clip(idx.astype(int), 0, 4)
        a, c00, c11 = (t[idx[:, 0], idx[:, 1]] for t in table)
        wave = xp.sin(np.pi * offset[:, 0] / self.block) * xp.sin(np.pi * offset[:, 1] / self.block)
        return a[:, None], (c00 + c11 * wave)[:, None]

    def numpy(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(a, f) at points (n, 2), each (n, 1)."""
        return self._parts(x, np, (self.a_coef, self.f_coef[..., 0, 0], self.f_coef[..., 1, 1]))

    def torch(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        table = [torch.as_tensor(t, dtype=x.dtype, device=x.device)
                 for t in (self.a_coef, self.f_coef[..., 0, 0], self.f_coef[..., 1, 1])]
        return self._parts(x.detach(), torch, table)
