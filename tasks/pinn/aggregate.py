"""Raw vs expanded, per PDE (paper Sec. 2.2, Fig. 4): tables and box plots.

Tables (written under the sweep's aggregates/):
- `pinn_pde`: one row per PDE (and per combination of any other config values that
  vary in the sweep) and metric (l2re, mse, loss = final training loss): seeds per side,
  mean and median of each side, the relative change of the median, and a two-sided test:
  Wilcoxon signed-rank (scipy.stats.wilcoxon) when the seeds pair up (both sides hold the
  same seeds; a seed fixes the initial weights of both runs, so pairs share a start),
  otherwise Mann-Whitney U (the unpaired rank test); fewer than 2 values: no test.
- `pinn_overview`: one row per PDE with a reference on both sides, decided on the error
  against the reference only (the paper's Fig. 4 quantity, Sec. 6.2.2): `improved` = the
  expanded median l2re is lower (l2re and mse order the seeds alike), `significant` = p < 0.05.
- `pinn_unreferenced`: the PDEs without a reference, apart: their final training losses,
  shown for information and never counted as improved or not.
- `pinn_summary`: PDEs compared, how many improved and the fraction (the paper: about 75%)
  with two 95% intervals: Wilson's over PDEs (how far the fraction could be from that of
  PDEs like these in general) and a bootstrap over seeds (how far the seeds' noise moves
  it: the seeds of each PDE are resampled, in pairs when they pair up, and each PDE decided
  again); how many changed at p < 0.05 in either direction.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from symsweep.stats import (
    compare_samples, completed, match_key, match_keys, pair_by_seed, proportion_ci, varying_config_columns,
)

METRICS = ("l2re", "mse", "loss")
DECIDING = "l2re"
ALPHA = 0.05
CI = 0.95
BOOTSTRAP = 2000
RAW, EXPANDED = "raw", "expanded"


def _group_columns(done: pd.DataFrame) -> list[str]:
    return ["cfg_pde"] + varying_config_columns(done, exclude=("cfg_expansion", "cfg_pde"))


def _compare(values: dict[str, pd.Series]) -> dict:
    row = {}
    for side, v in values.items():
        row[f"n_{side}"] = int(v.count())
    for side, v in values.items():
        row[f"mean_{side}"] = float(v.mean()) if v.count() else float("nan")
    for side, v in values.items():
        row[f"median_{side}"] = float(v.median()) if v.count() else float("nan")
    base = row[f"median_{RAW}"]
    row["median_change"] = (row[f"median_{EXPANDED}"] - base) / abs(base) if base else float("nan")
    row["test"], row["p_value"] = compare_samples(values[RAW], values[EXPANDED])
    return row


def per_pde_table(runs: pd.DataFrame) -> pd.DataFrame:
    """`pinn_pde`: long format, one row per (PDE, other varying config, metric)."""
    done = completed(runs)
    if done.empty or "cfg_expansion" not in done or "cfg_pde" not in done:
        return pd.DataFrame()
    groups, rows = _group_columns(done), []
    for key, part in done.groupby(groups, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        sides = {s: part[part["cfg_expansion"] == s].set_index("seed") for s in (RAW, EXPANDED)}
        if sides[RAW].empty or sides[EXPANDED].empty:
            continue
        for m in METRICS:
            col = f"metric_{m}"
            values = {s: pd.to_numeric(df[col], errors="coerce") if col in df else pd.Series(dtype=float)
                      for s, df in sides.items()}
            rows.append({**{c[4:]: k for c, k in zip(groups, key)}, "metric": m, **_compare(values)})
    return pd.DataFrame(rows)


def _has_reference(part: pd.DataFrame) -> bool:
    row = part[part["metric"] == DECIDING]
    return not row.empty and bool(row["n_raw"].iloc[0]) and bool(row["n_expanded"].iloc[0])


def _group_keys(table: pd.DataFrame) -> list[str]:
    return [c for c in table.columns if c not in ("metric",) and c not in _compare_columns()]


def overview_table(table: pd.DataFrame) -> pd.DataFrame:
    """`pinn_overview`: per PDE with a reference on both sides, decided on l2re alone."""
    if table.empty:
        return pd.DataFrame()
    keys, rows = _group_keys(table), []
    for _, part in table.groupby(keys, dropna=False, sort=False):
        if not _has_reference(part):
            continue
        pick = part[part["metric"] == DECIDING].iloc[0]
        rows.append({**{k: pick[k] for k in keys}, "compared": DECIDING,
                     "n": int(min(pick["n_raw"], pick["n_expanded"])),
                     "median_raw": pick["median_raw"], "median_expanded": pick["median_expanded"],
                     "median_change": pick["median_change"], "test": pick["test"], "p_value": pick["p_value"],
                     "improved": bool(pick[f"median_{EXPANDED}"] < pick[f"median_{RAW}"]),
                     "significant": bool(pick["p_value"] < ALPHA)})
    return pd.DataFrame(rows)


def unreferenced_table(table: pd.DataFrame) -> pd.DataFrame:
    """`pinn_unreferenced`: PDEs without a reference on both sides, with their final losses."""
    if table.empty:
        return pd.DataFrame()
    keys, rows = _group_keys(table), []
    for _, part in table.groupby(keys, dropna=False, sort=False):
        if _has_reference(part):
            continue
        loss = part[part["metric"] == "loss"].iloc[0]
        rows.append({**{k: loss[k] for k in keys}, "shown": "loss", "n": int(min(loss["n_raw"], loss["n_expanded"])),
                     "median_raw": loss["median_raw"], "median_expanded": loss["median_expanded"],
                     "median_change": loss["median_change"], "test": loss["test"], "p_value": loss["p_value"]})
    return pd.DataFrame(rows)


def _compare_columns() -> list[str]:
    return list(_compare({RAW: pd.Series([1.0]), EXPANDED: pd.Series([1.0])}))


def wilson_interval(k: int, n: int, ci: float = CI) -> tuple[float, float]:
    """Wilson score interval of a binomial fraction k / n (scipy's, symsweep.stats.proportion_ci)."""
    return proportion_ci(k, n, ci)


def seed_bootstrap_interval(pairs: list[tuple[np.ndarray, np.ndarray, bool]], n_boot: int = BOOTSTRAP,
                            ci: float = CI, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of the fraction improved when each PDE's seeds are resampled.

    pairs: per PDE (raw values, expanded values, paired); paired values share an index
    (seed) and are resampled together. The fraction is not a mean over seeds, so this stays
    a bootstrap: it shows how far the seeds' noise moves the count of PDEs decided each way,
    assuming the few seeds of a PDE stand for its seed distribution. With 3-5 seeds that is
    a rough guide, not an interval with checked coverage; the verdict uses Wilson's."""
    if not pairs:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    improved = np.zeros((n_boot, len(pairs)), dtype=bool)
    for j, (raw, exp, paired) in enumerate(pairs):
        ir = rng.integers(0, len(raw), (n_boot, len(raw)))
        ie = ir if paired else rng.integers(0, len(exp), (n_boot, len(exp)))
        improved[:, j] = np.median(exp[ie], axis=1) < np.median(raw[ir], axis=1)
    frac = improved.mean(axis=1)
    return float(np.quantile(frac, (1 - ci) / 2)), float(np.quantile(frac, (1 + ci) / 2))


def _seed_values(runs: pd.DataFrame, overview: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray, bool]]:
    done = completed(runs)
    keys = [c for c in overview.columns if f"cfg_{c}" in done.columns and c != "expansion"]
    cols = [f"cfg_{k}" for k in keys]
    done_keys = match_keys(done, cols)  # the one matching rule (symsweep.stats)
    out = []
    for _, row in overview.iterrows():
        wanted = match_key(row, keys)
        part = done[[k == wanted for k in done_keys]]
        sides = {s: pd.to_numeric(part.loc[part["cfg_expansion"] == s].set_index("seed")[f"metric_{DECIDING}"],
                                  errors="coerce") for s in (RAW, EXPANDED)}
        raw, exp, paired = pair_by_seed(sides[RAW], sides[EXPANDED])
        out.append((raw.to_numpy(float), exp.to_numpy(float), paired))
    return out


def summary_row(overview: pd.DataFrame, runs: pd.DataFrame | None = None, unreferenced: int = 0) -> pd.DataFrame:
    """`pinn_summary`: the fraction of PDEs improved, on the reference error only, with its intervals
    (the seed bootstrap needs the runs)."""
    if overview.empty:
        return pd.DataFrame()
    better = overview["improved"] & overview["significant"]
    worse = ~overview["improved"] & overview["significant"]
    k, n = int(overview["improved"].sum()), len(overview)
    lo, hi = wilson_interval(k, n)
    seed_lo, seed_hi = seed_bootstrap_interval(_seed_values(runs, overview)) if runs is not None \
        else (float("nan"), float("nan"))
    return pd.DataFrame([{
        "n_compared": n, "n_improved": k, "fraction_improved": k / n,
        "wilson_low": lo, "wilson_high": hi, "seed_bootstrap_low": seed_lo, "seed_bootstrap_high": seed_hi,
        "ci": CI, "n_significantly_better": int(better.sum()), "n_significantly_worse": int(worse.sum()),
        "alpha": ALPHA, "n_without_reference": unreferenced,
        "decided_by": "median l2re against the reference (PDEs without one: pinn_unreferenced, not counted)",
    }])


def aggregate_pinn(runs: pd.DataFrame, history: pd.DataFrame, load_artifact) -> dict[str, pd.DataFrame]:
    table = per_pde_table(runs)
    overview = overview_table(table)
    unreferenced = unreferenced_table(table)
    return {"pinn_pde": table, "pinn_overview": overview, "pinn_unreferenced": unreferenced,
            "pinn_summary": summary_row(overview, runs, len(unreferenced))}


# ----------------------------------------------------------------------------- figures


def _box_panels(runs: pd.DataFrame, metric_for, title: str, table: pd.DataFrame | None):
    from symsweep.tasks.common.plots import subplots
    from symsweep.tasks.pinn.config import PDE_NAMES
    present = set(runs["cfg_pde"])
    pdes = [p for p in PDE_NAMES if p in present] + sorted(present - set(PDE_NAMES))
    cols = min(5, len(pdes))
    rows = -(-len(pdes) // cols)
    fig, axes = subplots(rows, cols, figsize=(2.7 * cols, 2.7 * rows), squeeze=False)
    for ax in axes.ravel()[len(pdes):]:
        ax.set_visible(False)
    for ax, pde in zip(axes.ravel(), pdes):
        part = runs[runs["cfg_pde"] == pde]
        metric, label = metric_for(part)
        data = [pd.to_numeric(part.loc[part["cfg_expansion"] == s, f"metric_{metric}"], errors="coerce").dropna()
                .to_numpy() for s in (RAW, EXPANDED)]
        ax.boxplot(data, widths=0.55, showfliers=False, medianprops={"color": "k"})
        for i, d in enumerate(data, start=1):  # every seed, jittered, over its box
            jitter = np.random.default_rng(i).uniform(-0.12, 0.12, len(d))
            ax.scatter(i + jitter, d, s=9, alpha=0.7, color=f"C{i - 1}", zorder=3)
        ax.set_xticks([1, 2], [RAW, EXPANDED])
        values = np.concatenate(data)
        if len(values) and (values > 0).all() and values.max() / values.min() > 10:
            ax.set_yscale("log")  # spreads over decades (diverging seeds): log; otherwise linear reads better
        ax.set_title(f"{pde}\n{label}{_p_text(table, pde, metric)}", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def _p_text(table: pd.DataFrame | None, pde: str, metric: str) -> str:
    if table is None or table.empty:
        return ""
    hit = table[(table["pde"] == pde) & (table["metric"] == metric)]
    if hit.empty or not np.isfinite(hit["p_value"].iloc[0]):
        return ""
    return f", {hit['test'].iloc[0]} p={hit['p_value'].iloc[0]:.2g}"


def pinn_figures(tables: dict, runs: pd.DataFrame, history: pd.DataFrame) -> dict:
    done = completed(runs)
    if done.empty or "cfg_expansion" not in done:
        return {}
    table = tables.get("pinn_pde")

    figs = {"pinn_loss_boxes": _box_panels(done, lambda part: ("loss", "final training loss"),
                                           "raw vs expanded input: final training loss (sum of terms) per PDE", table)}
    referenced = done.groupby("cfg_pde")["metric_mse"].transform(
        lambda v: pd.to_numeric(v, errors="coerce").notna().any()) if "metric_mse" in done else None
    if referenced is not None and referenced.any():  # PDEs without a reference are left out, never mixed in
        figs["pinn_error_boxes"] = _box_panels(done[referenced.astype(bool)], lambda part: ("mse", "MSE vs reference"),
                                               "raw vs expanded input: MSE against the reference per PDE, one point "
                                               "per seed (cf. paper Fig. 4)", table)
    return figs
