"""The replica-distance (RD) metric of the paper (Sec. 4.2, 6.6 "Symmetry Metric Calculation").

For the replicas of one model:
1. flatten each replica's final weights (one row per replica);
2. reduce the rows with UMAP to `n_components` dimensions (paper: 100; at most
   n_replicas - 2 because UMAP's spectral initialisation needs fewer dimensions than
   points; the result says when it reduced fewer);
3. treat each replica's reduced vector as a 1-D empirical distribution of its
   n_components values and take the 1-Wasserstein distance (POT) between every pair;
4. histogram the pairwise distances (`bins` bins over [0, max distance]), smooth with a
   Gaussian of `sigma_bins` bins, normalize to a probability density;
5. RD = the mean of that density, E[d] = sum(d * p(d) * bin width): a larger RD means the
   replicas ended further apart, i.e. more symmetry breaking. (The paper's "mean value of
   the probability density" is read as the density's mean; the mean *height* of a
   normalized density is just 1 / range and would not rank models this way.)

A bootstrap over replicas (resampling replicas with replacement, reusing the embedding and
dropping pairs of a replica with itself) gives the confidence interval.

What it measures: UMAP keeps neighbourhoods, not distances, and re-embeds the replicas at a
scale of its own, so the paper's RD says how the replicas are arranged relative to one
another, not how far apart they are in weight space (replicas spread 100x wider or
narrower give about the same RD; bench/rd_scale.py). The aggregation therefore also reports
the RD without reduction (step 2 skipped: the Wasserstein distances between the flattened
weights themselves), which grows with that spread, beside the paper's.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from symsweep.stats import completed, describe_groups, varying_config_columns


@dataclass(frozen=True)
class RDSettings:
    n_components: int = 100
    """UMAP output dimensions (capped at n_replicas - 2)."""
    n_neighbors: int = 15
    """UMAP neighbours (capped at n_replicas - 1)."""
    umap_seed: int = 0
    """UMAP random_state: fixes the embedding."""
    umap_states: int = 5
    """UMAP random states the RD is also computed under (umap_seed, umap_seed + 1, ...): their
    spread (columns rd_umap_*) says how much of an RD comes from UMAP's own randomness; a
    verdict on an order must hold under each of them. 1: the headline state only."""
    reduction: Literal["umap", "none"] = "umap"
    """umap (the paper), or none (use the flattened weights as they are)."""
    bins: int = 50
    """Histogram bins over [0, max pairwise distance]."""
    sigma_bins: float = 1.0
    """Gaussian smoothing width, in bins."""
    bootstrap: int = 1000
    """Bootstrap resamples of the replicas for the confidence interval."""
    ci: float = 0.95
    """Confidence level."""
    bootstrap_seed: int = 0
    """Seed of the bootstrap resampling."""
    also_no_reduction: bool = True
    """Also report the RD without reduction beside the headline one (columns rd_no_reduction*)."""

    def __post_init__(self) -> None:
        if self.reduction not in ("umap", "none"):
            raise ValueError(f"reduction must be 'umap' or 'none', got {self.reduction!r}")
        if self.bins < 2 or self.n_components < 1 or self.bootstrap < 0 or not 0 < self.ci < 1:
            raise ValueError("bins >= 2, n_components >= 1, bootstrap >= 0 and 0 < ci < 1 are required")
        if self.umap_states < 1:
            raise ValueError(f"umap_states must be >= 1, got {self.umap_states}")


@dataclass
class RDResult:
    rd: float
    ci_low: float
    ci_high: float
    n_replicas: int
    n_components: int
    embedding: np.ndarray          # (n_replicas, n_components)
    distances: np.ndarray          # (n_replicas, n_replicas), symmetric, zero diagonal
    density_x: np.ndarray          # bin centres
    density: np.ndarray            # smoothed, normalized density at the bin centres
    notes: list[str] = field(default_factory=list)


def reduce(weights: np.ndarray, settings: RDSettings) -> tuple[np.ndarray, list[str]]:
    n = weights.shape[0]
    if settings.reduction == "none":
        return weights.astype(np.float64), []
    notes = []
    dims = min(settings.n_components, n - 2)
    neighbors = min(settings.n_neighbors, n - 1)
    if dims < 1:
        raise ValueError(f"UMAP needs at least 3 replicas, got {n}")
    if dims < settings.n_components:
        notes.append(f"UMAP reduced to {dims} dimensions, not {settings.n_components}: only {n} replicas")
    if neighbors < settings.n_neighbors:
        notes.append(f"UMAP used {neighbors} neighbours, not {settings.n_neighbors}: only {n} replicas")
    import warnings

    import umap
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap warns that random_state disables parallelism
        reducer = umap.UMAP(n_components=dims, n_neighbors=neighbors, random_state=settings.umap_seed,
                            init="spectral" if dims < n - 1 else "random")
        return reducer.fit_transform(weights).astype(np.float64), notes


def pairwise_wasserstein(embedding: np.ndarray) -> np.ndarray:
    """1-Wasserstein distance between the rows, each taken as a 1-D empirical distribution.

    The rows have equal length and equal weights, so W1 is the mean absolute difference of
    the sorted rows (what POT's wasserstein_1d computes; tested against it): each row is
    sorted once, which keeps the no-reduction RD (rows of every weight) affordable."""
    ordered = np.sort(np.asarray(embedding, dtype=np.float64), axis=1)
    n = ordered.shape[0]
    out = np.zeros((n, n))
    for i in range(n - 1):
        out[i, i + 1:] = np.abs(ordered[i + 1:] - ordered[i]).mean(axis=1)
    return out + out.T


def smoothed_density(values: np.ndarray, bins: int, sigma_bins: float, upper: float | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    from scipy.ndimage import gaussian_filter1d
    upper = float(values.max()) if upper is None else upper
    if upper <= 0:  # every distance is zero: all mass in the first bin
        centres = np.linspace(0, 1, bins, endpoint=False) + 0.5 / bins
        dens = np.zeros(bins)
        dens[0] = bins
        return centres * 0, dens
    hist, edges = np.histogram(values, bins=bins, range=(0.0, upper))
    smooth = gaussian_filter1d(hist.astype(np.float64), sigma_bins, mode="constant") if sigma_bins > 0 \
        else hist.astype(np.float64)
    width = edges[1] - edges[0]
    return (edges[:-1] + edges[1:]) / 2, smooth / (smooth.sum() * width)


def density_mean(centres: np.ndarray, density: np.ndarray) -> float:
    if np.all(centres == 0):
        return 0.0
    width = centres[1] - centres[0]
    return float(np.sum(centres * density) * width)


def replica_distance(weights: np.ndarray, settings: RDSettings = RDSettings()) -> RDResult:
    """The RD metric of replicas' flattened final weights (rows = replicas)."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 2 or weights.shape[0] < 3:
        raise ValueError(f"need a (n_replicas >= 3, n_weights) array, got shape {weights.shape}")
    embedding, notes = reduce(weights, settings)
    dist = pairwise_wasserstein(embedding)
    n = dist.shape[0]
    iu = np.triu_indices(n, 1)
    upper = float(dist[iu].max())
    centres, dens = smoothed_density(dist[iu], settings.bins, settings.sigma_bins, upper)
    rd = density_mean(centres, dens)

    rng = np.random.default_rng(settings.bootstrap_seed)
    boots = []
    for _ in range(settings.bootstrap):
        pick = rng.integers(0, n, n)
        a, b = np.triu_indices(n, 1)
        keep = pick[a] != pick[b]
        d = dist[pick[a][keep], pick[b][keep]]
        if d.size:
            c, p = smoothed_density(d, settings.bins, settings.sigma_bins, upper)
            boots.append(density_mean(c, p))
    alpha = (1 - settings.ci) / 2
    lo, hi = (np.quantile(boots, [alpha, 1 - alpha]) if boots else (np.nan, np.nan))
    return RDResult(rd=rd, ci_low=float(lo), ci_high=float(hi), n_replicas=n, n_components=embedding.shape[1],
                    embedding=embedding, distances=dist, density_x=centres, density=dens, notes=notes)


def umap_spread(weights: np.ndarray, settings: RDSettings, headline: float) -> dict:
    """The RD under `umap_states` UMAP random states (the headline's first): `rd_umap_states`
    (a JSON list, one RD per state, in state order), their min, max and sample std. The same
    replicas, bins and smoothing; only UMAP's random_state differs."""
    values = [headline]
    for k in range(1, settings.umap_states):
        other = dataclasses.replace(settings, umap_seed=settings.umap_seed + k, bootstrap=0)
        values.append(replica_distance(weights, other).rd)
    arr = np.asarray(values)
    return {"rd_umap_states": json.dumps([float(v) for v in values]), "rd_umap_min": float(arr.min()),
            "rd_umap_max": float(arr.max()), "rd_umap_sd": float(arr.std(ddof=1)) if len(arr) > 1 else np.nan}


# ----------------------------------------------------------------------------- aggregation


def _groups(runs: pd.DataFrame):
    """Completed runs grouped by grid point (same config, different seeds), with a label."""
    done = completed(runs)
    varying = varying_config_columns(done)
    for config_json, part in done.groupby("config_json", sort=True):
        cfg = json.loads(config_json)
        label = cfg.get("model", "?")
        extra = [f"{c[4:]}={cfg[c[4:]]}" for c in varying if c != "cfg_model"]
        yield (label + (" " + " ".join(extra) if extra else "")), cfg, part.sort_values("seed")


RD_READING = (
    "rd: the paper's RD (UMAP, then Wasserstein between replicas). UMAP keeps neighbourhoods, not "
    "distances, so it says how the replicas are arranged relative to one another and is blind to how far "
    "apart they are in weight space. rd_no_reduction: the same on the flattened weights themselves; it grows "
    "with that spread. The two need not rank models alike. rd_umap_states: the paper's RD under several UMAP "
    "random states (rd_umap_min/max/sd); ci_low/ci_high resample replicas under one state only. "
    "rd_mean_distance: the mean pairwise distance itself, without histogram and smoothing.")


def aggregate_replicas(runs: pd.DataFrame, history: pd.DataFrame, load_artifact,
                       settings: RDSettings = RDSettings()) -> dict[str, pd.DataFrame]:
    """Tables `rd` (with the no-reduction RD beside the paper's), `rd_reading` (what each
    column measures), `rd_embeddings`, `rd_distances`, `rd_density` and `accuracy_curves`."""
    rd_rows, emb_rows, dist_rows, dens_rows = [], [], [], []
    plain = dataclasses.replace(settings, reduction="none")
    for label, cfg, part in _groups(runs):
        if cfg.get("mode", "subset") != "subset":
            continue
        if len(part) < 3:
            rd_rows.append({"model": label, "n_replicas": len(part), "rd": np.nan,
                            "note": "fewer than 3 replicas: no RD"})
            continue
        ids = list(part["run_id"])
        weights = np.stack([load_artifact(rid, "weights")["weights"] for rid in ids])
        res = replica_distance(weights, settings)
        row = {"model": label, "n_replicas": res.n_replicas, "n_components": res.n_components,
               "rd": res.rd, "ci_low": res.ci_low, "ci_high": res.ci_high,
               # the paper's "mean of the density" read without the histogram: the mean pairwise distance
               "rd_mean_distance": float(res.distances[np.triu_indices(res.n_replicas, 1)].mean())}
        if settings.reduction == "umap":
            row.update(umap_spread(weights, settings, res.rd))
        dens_rows.append(pd.DataFrame({"model": label, "reduction": settings.reduction,
                                       "distance": res.density_x, "density": res.density}))
        if settings.also_no_reduction and settings.reduction != "none":
            flat = replica_distance(weights, plain)
            row.update({"rd_no_reduction": flat.rd, "rd_no_reduction_ci_low": flat.ci_low,
                        "rd_no_reduction_ci_high": flat.ci_high})
            dens_rows.append(pd.DataFrame({"model": label, "reduction": "none",
                                           "distance": flat.density_x, "density": flat.density}))
        rd_rows.append({**row, "reduction": settings.reduction, "ci_level": settings.ci,
                        "bootstrap": settings.bootstrap, "bins": settings.bins, "sigma_bins": settings.sigma_bins,
                        "n_neighbors": settings.n_neighbors, "umap_seed": settings.umap_seed,
                        "umap_states": settings.umap_states if settings.reduction == "umap" else 1,
                        "note": "; ".join(res.notes)})
        for rid, vec in zip(ids, res.embedding):
            emb_rows.append({"model": label, "run_id": rid, **{f"dim_{k}": float(v) for k, v in enumerate(vec)}})
        a, b = np.triu_indices(len(ids), 1)
        dist_rows.append(pd.DataFrame({"model": label, "run_a": np.asarray(ids)[a], "run_b": np.asarray(ids)[b],
                                       "distance": res.distances[a, b]}))
    tables = {
        "rd": pd.DataFrame(rd_rows),
        "rd_embeddings": pd.DataFrame(emb_rows),
        "rd_distances": pd.concat(dist_rows, ignore_index=True) if dist_rows else pd.DataFrame(),
        "rd_density": pd.concat(dens_rows, ignore_index=True) if dens_rows else pd.DataFrame(),
        "accuracy_curves": accuracy_curves(runs, history),
    }
    if rd_rows and "rd_no_reduction" in tables["rd"]:
        tables["rd_reading"] = pd.DataFrame([{"reading": RD_READING}])
    return tables


def accuracy_curves(runs: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over replicas of test accuracy per epoch, per model (curves mode)."""
    if history.empty:
        return pd.DataFrame()
    rows = []
    for label, _cfg, part in _groups(runs):
        h = history[(history["run_id"].isin(part["run_id"])) & (history["metric"] == "test_acc")]
        if h.empty:
            continue
        # per epoch, the summary's rule (symsweep.stats.describe_groups): std NaN for one replica, not 0
        d = describe_groups(h, ["step"], "value")
        rows.append(pd.DataFrame({"model": label, "epoch": d["step"].to_numpy(), "test_acc_mean": d["mean"].to_numpy(float),
                                  "test_acc_std": d["std"].to_numpy(float), "n": d["n"].to_numpy(int)}))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def replica_figures(tables: dict[str, pd.DataFrame], runs, history) -> dict:
    from symsweep.tasks.common.plots import subplots
    figs = {}
    dens = tables.get("rd_density", pd.DataFrame())
    if not dens.empty:
        rd = tables["rd"].set_index("model")
        if "reduction" not in dens:
            dens = dens.assign(reduction="umap")
        kinds = [k for k in ("umap", "none") if k in set(dens["reduction"])]
        fig, axes = subplots(1, len(kinds), figsize=(6.5 * len(kinds), 4.6), squeeze=False)
        for ax, kind in zip(axes[0], kinds):
            headline = kind == rd["reduction"].iloc[0]
            value, low, high = ("rd", "ci_low", "ci_high") if headline else \
                ("rd_no_reduction", "rd_no_reduction_ci_low", "rd_no_reduction_ci_high")
            for model, part in dens[dens["reduction"] == kind].groupby("model"):
                r = rd.loc[model]
                ax.plot(part["distance"], part["density"],
                        label=f"{model}: {r[value]:.3g} [{r[low]:.3g}, {r[high]:.3g}]")
            ax.set_xlabel("pairwise Wasserstein distance between replicas"
                          + (" (UMAP embedding)" if kind == "umap" else " (flattened weights)"))
            ax.set_ylabel("density (smoothed)")
            ax.set_title("RD, the paper's (UMAP; cf. Fig. 8B)" if kind == "umap" else "RD without reduction")
            ax.legend(fontsize=7, title="model: RD [CI]", title_fontsize=7)
        if len(kinds) == 2:
            fig.text(0.01, 0.01, "UMAP keeps neighbourhoods, not distances: the left RD is blind to how far apart "
                                 "replicas are in weight space; the right one grows with it.", fontsize=8)
            fig.tight_layout(rect=(0, 0.05, 1, 1))
        else:
            fig.tight_layout()
        figs["rd_density"] = fig
    curves = tables.get("accuracy_curves", pd.DataFrame())
    if not curves.empty:
        fig, ax = subplots(figsize=(6, 4))
        for model, part in curves.groupby("model"):
            ax.plot(part["epoch"], part["test_acc_mean"], label=model)
            ax.fill_between(part["epoch"], part["test_acc_mean"] - part["test_acc_std"],
                            part["test_acc_mean"] + part["test_acc_std"], alpha=0.2)
        ax.set_xlabel("epoch")
        ax.set_ylabel("test accuracy (mean +- std over replicas)")
        ax.set_title("Test accuracy per epoch (cf. Fig. 8A)")
        ax.legend(fontsize=8)
        figs["accuracy_curves"] = fig
    return figs
