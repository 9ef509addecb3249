"""Energy degeneracy of the 2D Ising model with and without a field (paper Sec. 3.1, Fig. 5).

One run takes spin configurations of an L x L periodic lattice (a seeded uniform sample,
or every configuration for small lattices), computes

    E(s) = -J sum_<ij> s_i s_j - h sum_i s_i

with h = 0 and with h = field_h, and counts degeneracies: how many configurations share
each energy. The field breaks the global spin-flip symmetry E(s) = E(-s), so energy
levels split. Bonds are counted once per site to its right and lower neighbour (2N bonds
for N = L*L sites), so the all-up energy is -2JN - hN for every L >= 2 (on a 2x2 lattice
each neighbour pair is then counted twice, as the periodic sum over bonds does).

Each configuration is summarized by two integers, the bond sum B = sum_<ij> s_i s_j and
the magnetization M = sum_i s_i, so E = -J B - h M; a run counts (B, M) pairs, which
bounds memory for exact enumeration of up to 2^25 configurations.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from symsweep.api import RunContext, RunResult, Task
from symsweep.stats import completed

MAX_EXACT_SITES = 25   # 2^25 configurations, enumerated in chunks
AUTO_EXACT_SITES = 16  # "auto" enumerates exactly up to 4x4


@dataclass(frozen=True)
class IsingConfig:
    lattice_size: int = 10
    """L: the lattice has L x L sites with periodic boundaries."""
    coupling_j: float = 1.0
    """Coupling J between nearest neighbours (J > 0: ferromagnetic)."""
    field_h: float = 0.5
    """External field of the symmetry-broken case (the other case is h = 0)."""
    mode: Literal["auto", "exact", "sample"] = "auto"
    """exact: every configuration (L*L <= 25); sample: n_samples uniform random ones; auto: exact up to 4x4."""
    n_samples: int = 1000
    """Configurations drawn (uniformly, from the run's seed) in sample mode (paper: 1000)."""
    energy_decimals: int = 9
    """Energies are rounded to this many decimals before counting degenerate ones."""
    chunk_configs: int = 2 ** 18
    """Configurations per chunk of the exact enumeration (bounds memory)."""

    # Budgets no one can mean (steps: 99999999999999999999999) are refused when a spec is read,
    # naming the range. A class attribute, not a field: run ids hash the fields only.
    BUDGET_RANGES = {"lattice_size": (2, 10_000), "n_samples": (1, 100_000_000), "chunk_configs": (1, 2**30)}

    def __post_init__(self) -> None:
        if self.lattice_size < 2:
            raise ValueError(f"lattice_size must be >= 2, got {self.lattice_size}")
        if self.mode == "exact" and self.lattice_size ** 2 > MAX_EXACT_SITES:
            raise ValueError(f"mode exact allows lattice_size**2 <= {MAX_EXACT_SITES} "
                             f"(lattice_size <= 5), got {self.lattice_size}; use mode: sample")
        if self.n_samples < 1 or self.chunk_configs < 1:
            raise ValueError("n_samples and chunk_configs must be >= 1")
        if self.field_h == 0:
            raise ValueError("field_h must be nonzero: h = 0 is always computed alongside it")

    @property
    def exact(self) -> bool:
        return self.mode == "exact" or (self.mode == "auto" and self.lattice_size ** 2 <= AUTO_EXACT_SITES)


# ----------------------------------------------------------------------------- physics


def bond_sum_and_magnetization(spins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """spins (K, L, L) of +-1 -> (B, M): sum over right and down neighbours of s_i s_j, and sum of s_i."""
    s = spins.astype(np.int32, copy=False)
    bonds = (s * np.roll(s, -1, axis=2) + s * np.roll(s, -1, axis=1)).sum(axis=(1, 2))
    return bonds, s.sum(axis=(1, 2))


def energy(spins: np.ndarray, coupling_j: float, field_h: float) -> np.ndarray:
    bonds, mag = bond_sum_and_magnetization(spins)
    return -coupling_j * bonds - field_h * mag


def all_configurations(size: int, start: int, stop: int) -> np.ndarray:
    """Configurations start..stop-1 of an L x L lattice: bit k of the index is site k (1 = up)."""
    idx = np.arange(start, stop, dtype=np.int64)
    bits = (idx[:, None] >> np.arange(size * size, dtype=np.int64)) & 1
    return (2 * bits - 1).astype(np.int8).reshape(-1, size, size)


def _histogram(config: IsingConfig, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(counts[B + 2N, M + N] over the configurations, the sampled spins or None)."""
    size, n = config.lattice_size, config.lattice_size ** 2
    hist = np.zeros((4 * n + 1, 2 * n + 1), dtype=np.int64)
    if config.exact:
        total = 2 ** n
        for start in range(0, total, config.chunk_configs):
            b, m = bond_sum_and_magnetization(all_configurations(size, start, min(total, start + config.chunk_configs)))
            np.add.at(hist, (b + 2 * n, m + n), 1)
        return hist, None
    rng = np.random.default_rng(seed)
    spins = rng.choice(np.array([-1, 1], dtype=np.int8), size=(config.n_samples, size, size))
    b, m = bond_sum_and_magnetization(spins)
    np.add.at(hist, (b + 2 * n, m + n), 1)
    return hist, spins


def levels(hist: np.ndarray, n_sites: int, coupling_j: float, field_h: float, decimals: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct energies, number of configurations at each) from a (B, M) histogram."""
    b_idx, m_idx = np.nonzero(hist)
    e = -coupling_j * (b_idx - 2 * n_sites) - field_h * (m_idx - n_sites)
    keys = np.rint(e * 10.0 ** decimals).astype(np.int64)
    uniq, inverse = np.unique(keys, return_inverse=True)
    counts = np.bincount(inverse, weights=hist[b_idx, m_idx]).astype(np.int64)
    return uniq / 10.0 ** decimals, counts


# ----------------------------------------------------------------------------- run


def run(config: IsingConfig, seed: int, ctx: RunContext) -> RunResult:
    n = config.lattice_size ** 2
    hist, spins = _histogram(config, seed)
    metrics: dict[str, float | int | None] = {"num_configs": int(hist.sum()), "exact": int(config.exact)}
    arrays = {"bond_magnetization_counts": hist}
    for tag, h in (("h0", 0.0), ("h", config.field_h)):
        e, counts = levels(hist, n, config.coupling_j, h, config.energy_decimals)
        metrics.update({
            f"num_distinct_energies_{tag}": len(e),
            f"ground_energy_{tag}": float(e[0]),
            f"ground_degeneracy_{tag}": int(counts[0]),
            f"max_degeneracy_{tag}": int(counts.max()),
            f"mean_degeneracy_{tag}": float(counts.mean()),
        })
        arrays[f"energy_{tag}"], arrays[f"count_{tag}"] = e, counts
        if spins is not None:
            arrays[f"sample_energy_{tag}"] = energy(spins, config.coupling_j, h)
    ctx.save_artifact("levels", arrays)
    return RunResult(metrics=metrics)


# ----------------------------------------------------------------------------- aggregation


def aggregate(runs: pd.DataFrame, history: pd.DataFrame, load_artifact) -> dict[str, pd.DataFrame]:
    """`ising_levels`: every energy level and its degeneracy, h = 0 and h != 0, per completed run."""
    rows = []
    for _, r in completed(runs).iterrows():
        arr = load_artifact(r["run_id"], "levels")
        for tag in ("h0", "h"):
            for e, c in zip(arr[f"energy_{tag}"], arr[f"count_{tag}"]):
                rows.append({"run_id": r["run_id"], "lattice_size": int(r["cfg_lattice_size"]),
                             "seed": int(r["seed"]), "field": 0.0 if tag == "h0" else float(r["cfg_field_h"]),
                             "energy": float(e), "degeneracy": int(c)})
    return {"ising_levels": pd.DataFrame(rows)}


def figures(tables: dict, runs: pd.DataFrame, history: pd.DataFrame) -> dict:
    """fig5b_energies: per lattice size (lowest seed), energy against configuration (sorted)
    for h = 0 and h != 0, and the degeneracy of each level."""
    from symsweep.tasks.common.plots import subplots

    lv = tables.get("ising_levels")
    if lv is None or lv.empty:
        return {}
    first = lv.sort_values("seed").groupby("lattice_size")["run_id"].first()
    fig, axes = subplots(len(first), 2, figsize=(11, 3.8 * len(first)), squeeze=False)
    for (size, run_id), (ax_e, ax_d) in zip(first.items(), axes):
        part = lv[lv["run_id"] == run_id]
        for field, style in zip(sorted(part["field"].unique()), ("-", "--")):
            sub = part[part["field"] == field].sort_values("energy")
            counts = sub["degeneracy"].to_numpy()
            xs = np.concatenate([[0], np.cumsum(counts)])
            ys = np.concatenate([sub["energy"].to_numpy(), sub["energy"].to_numpy()[-1:]])
            ax_e.step(xs, ys, style, where="post", label=f"h = {field:g}: {len(sub)} levels")
            ax_d.plot(sub["energy"], counts, "o" + style, ms=3, label=f"h = {field:g}")
        ax_e.set(xlabel="configurations, sorted by energy", ylabel="energy",
                 title=f"{size}x{size} lattice, {int(part[part['field'] == 0]['degeneracy'].sum()):,} configurations")
        ax_d.set(xlabel="energy", ylabel="configurations at that energy", yscale="log", title="degeneracy")
        ax_e.legend(fontsize=8)
        ax_d.legend(fontsize=8)
    fig.tight_layout()
    return {"fig5b_energies": fig}


TASK = Task(
    name="ising",
    config_cls=IsingConfig,
    run=run,
    summary_metrics=("num_configs", "num_distinct_energies_h0", "num_distinct_energies_h",
                     "ground_degeneracy_h0", "ground_degeneracy_h"),
    aggregate=aggregate,
    figures=figures,
    description="2D Ising energies with h = 0 and h != 0: degeneracy and its breaking (paper Sec. 3.1)",
    uses_torch=False,
)
