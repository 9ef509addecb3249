"""Finding and reading PINNacle's data files (reference solutions, coefficient fields).

A data root (`--data-root` / SYMSWEEP_DATA) may hold the files directly, or in a
`pinnacle/` folder below it; in either place also in `ref/` (the upstream layout) and in
`regenerated/` (files rebuilt from PINNacle's generator where the upstream bytes were
unavailable; see ../shared/data/pinnacle/SOURCE.md). Upstream bytes win over regenerated
ones. `symsweep data pinnacle --dest DIR` (symsweep.tasks.pinn.download) fills such a folder.

Files are parsed once per process (functools.lru_cache): a trial that runs 10 seeds of
one PDE reads its files once.
"""
from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import numpy as np

SUBDIRS = ("", "ref", "regenerated")


class MissingDataError(FileNotFoundError):
    """A PINNacle file the PDE needs is not under the data root."""


class DataFiles:
    """Looks PINNacle files up under a data root (or nowhere, when root is None)."""

    def __init__(self, root: str | os.PathLike | None):
        self.root = None if root is None else Path(root)

    def candidates(self) -> list[Path]:
        if self.root is None:
            return []
        bases = [self.root, self.root / "pinnacle"]
        return [b / sub if sub else b for b in bases for sub in SUBDIRS]

    def find(self, name: str) -> Path | None:
        for folder in self.candidates():
            if (folder / name).is_file():
                return folder / name
        return None

    def require(self, name: str, why: str) -> Path:
        path = self.find(name)
        if path is None:
            where = ", ".join(str(c) for c in self.candidates()) or "(no data root given)"
            raise MissingDataError(
                f"{name} ({why}) not found; looked in: {where}. Pass --data-root DIR (or set "
                f"SYMSWEEP_DATA) to a folder holding PINNacle's ref files; with internet, "
                f"`symsweep data pinnacle --dest DIR` downloads them")
        return path


@functools.lru_cache(maxsize=16)
def read_table(path: str) -> np.ndarray:
    """A whitespace-separated numeric table, '%' lines (COMSOL headers) skipped, as float64."""
    import pandas as pd  # its C parser reads the 20 MB grids ~10x faster than np.loadtxt
    table = pd.read_csv(path, sep=r"\s+", comment="%", header=None, engine="c", dtype=np.float64)
    return table.to_numpy()


def read_time_table(path: str, n_space: int, n_out: int) -> np.ndarray:
    """A COMSOL export with one column per (time, output): rows of space, then `out @ t=...`.

    Returns rows (x..., t, outputs...) for every (node, time), nodes varying fastest
    within a time. Times come from the last '%' header line whose '@' count equals the
    number of value columns; outputs are interleaved per time (u@t0, v@t0, u@t1, ...).
    """
    data = read_table(path)
    n_values = data.shape[1] - n_space
    if n_values % n_out:
        raise ValueError(f"{path}: {n_values} value columns is not a multiple of {n_out} outputs")
    times = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.startswith("%"):
                break
            if line.count("@") == n_values:
                found = [re.search(r"t=([-+0-9.eE]+)", part) for part in line.split("@")[1:]]
                if all(found):
                    times = np.array([float(m.group(1)) for m in found])
    if times is None:
        raise ValueError(f"{path}: no COMSOL header with a time for each of the {n_values} columns")
    times = times[::n_out]
    n_t, n_nodes = len(times), data.shape[0]
    space = np.tile(data[:, :n_space], (n_t, 1))
    t = np.repeat(times, n_nodes)[:, None]
    values = data[:, n_space:].reshape(n_nodes, n_t, n_out).transpose(1, 0, 2).reshape(-1, n_out)
    return np.hstack([space, t, values])


@functools.lru_cache(maxsize=8)
def read_grid(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A field on a regular grid stored as rows (x, y, value), x varying fastest.

    Returns (xs, ys, values[iy, ix]); raises if the rows do not form a full regular grid.
    """
    table = read_table(path)
    xs, ys = np.unique(table[:, 0]), np.unique(table[:, 1])
    if len(xs) * len(ys) != len(table):
        raise ValueError(f"{path}: {len(table)} rows do not form a {len(xs)} x {len(ys)} grid")
    ix, iy = np.searchsorted(xs, table[:, 0]), np.searchsorted(ys, table[:, 1])
    values = np.empty((len(ys), len(xs)))
    values[iy, ix] = table[:, 2]
    return xs, ys, values
