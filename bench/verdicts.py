"""How often each verdict rule of `symsweep reproduce` says something false, and how often it
finds a real effect: simulated reproduction tables through the rules themselves
(symsweep.reproduce.judge), with no effect and with effects of the paper's size.

    python bench/verdicts.py                 # 1,000 tables per cell (~25 min on 2 cores)
    python bench/verdicts.py --tables 5000 --case order_runs   # one case, finer

Prints key=value: `<rule>_<case>_n<seeds>_<verdict>=<share of tables>`. Under no effect the
shares of "reproduced" and of "contradicted" are false-verdict rates (each designed to stay
at or below 0.025: two-sided 95 % intervals, one side each); under an effect the share of
"reproduced" is the power. The cases (what "no effect" and "the paper's size" mean here):

- compare, k settings (k = 1: Fig. 1 for one model; k = 5: Fig. 1's five models). Seeds pair
  up: a seed effect N(0, 0.02) shared by both sides, run noise N(0, 0.003) (CIFAR-10 test
  accuracy varies ~0.2-0.3 pp over seeds). Effect: +0.01 (the paper's ResNet-18, ~93 -> 94 %).
  `lattice`: accuracy on 200 test items, Binomial(200, p_seed) / 200 with p_seed ~ Beta(80, 20)
  shared by both sides: most differences are a few items, often equal (the floor's case).
- order from runs (Fig. 8A: 5 models by test accuracy). Run noise N(0, 0.005), no seed
  effect. Effect: adjacent levels 0.01 apart (2 run standard deviations; the paper gives no
  numbers, its figure shows gaps of about this size against the spread).
- order from a table (Fig. 8B: 5 RDs with bootstrap intervals). Each level's estimate
  N(true, 0.0005) with interval +- 1.96 x 0.0005 (the half-width measured on CIFAR-10, 5 x 200
  replicas). Effect: adjacent levels 0.0017 apart (the smallest adjacent gap measured there).
- fraction (Fig. 4: 20 PDEs). log(error) N(0, 0.3) per run, independent sides. Effect: 15 of
  20 PDEs with errors x 0.7 (the paper: ~75 % improve), the other 5 unchanged.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from symsweep.reproduce import Claim, judge  # noqa: E402

LEVELS = ["a", "b", "c", "d", "e"]


def claim(rule: str, **options) -> Claim:
    return Claim(id=rule, figure="", claim="", paper="", paper_scale="", specs=("sim",), rule=rule,
                 metric=options.pop("metric", "m"), options=options)


COMPARE = claim("compare", axis="x", baseline=1, better="higher")
ORDER = claim("order", by="model", expected=LEVELS, better="higher")
ORDER_TABLE = claim("order", by="model", expected=LEVELS, better="higher", table="rd")
FRACTION = claim("fraction", axis="x", baseline=1, better="lower", unit="pde", fraction=0.75, metric="err")


def _frame(rows: dict[str, np.ndarray], seeds: int) -> pd.DataFrame:
    """A runs table: one row per value, columns as the ledger has them."""
    n = len(next(iter(rows.values())))
    frame = pd.DataFrame(rows)
    frame["seed"] = np.tile(np.arange(seeds), n // seeds)
    frame["status"] = "completed"
    return frame


def compare_table(rng: np.random.Generator, seeds: int, k: int, effect: float, lattice: bool) -> pd.DataFrame:
    """k settings (group column g) of x = 2 against x = 1, paired by seed."""
    if lattice:
        p = rng.beta(80, 20, size=(k, seeds))
        base = rng.binomial(200, p) / 200
        other = rng.binomial(200, np.clip(p + effect, 0, 1)) / 200
    else:
        shared = rng.normal(0, 0.02, size=(k, seeds))
        base = 0.9 + shared + rng.normal(0, 0.003, size=(k, seeds))
        other = 0.9 + effect + shared + rng.normal(0, 0.003, size=(k, seeds))
    g = np.repeat(np.arange(k), seeds)
    rows = {"cfg_g": np.concatenate([g, g]), "cfg_x": np.repeat([1, 2], k * seeds),
            "metric_m": np.concatenate([base.ravel(), other.ravel()])}
    frame = _frame(rows, seeds)
    return frame if k > 1 else frame.drop(columns="cfg_g")


def order_table(rng: np.random.Generator, seeds: int, gap: float) -> pd.DataFrame:
    means = 0.6 - gap * np.arange(len(LEVELS))
    values = means[:, None] + rng.normal(0, 0.005, size=(len(LEVELS), seeds))
    return _frame({"cfg_model": np.repeat(LEVELS, seeds), "metric_m": values.ravel()}, seeds)


def rd_table(rng: np.random.Generator, gap: float, se: float = 0.0005) -> pd.DataFrame:
    values = 0.05 - gap * np.arange(len(LEVELS)) + rng.normal(0, se, len(LEVELS))
    return pd.DataFrame({"model": LEVELS, "m": values, "ci_low": values - 1.96 * se, "ci_high": values + 1.96 * se})


def fraction_table(rng: np.random.Generator, seeds: int, improving: int, units: int = 20) -> pd.DataFrame:
    base = np.exp(rng.normal(0, 0.3, size=(units, seeds)))
    factor = np.where(np.arange(units) < improving, 0.7, 1.0)[:, None]
    other = factor * np.exp(rng.normal(0, 0.3, size=(units, seeds)))
    pde = np.repeat([f"p{u:02d}" for u in range(units)], seeds)
    rows = {"cfg_pde": np.concatenate([pde, pde]), "cfg_x": np.repeat([1, 2], units * seeds),
            "metric_err": np.concatenate([base.ravel(), other.ravel()])}
    return _frame(rows, seeds)


def simulate(case: str, seeds: int, effect: bool, tables: int, seed: int = 0) -> dict[str, float]:
    """Shares of each verdict over `tables` simulated tables of one case."""
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    for _ in range(tables):
        if case.startswith("compare"):
            k = 5 if "k5" in case else 1
            lattice = "lattice" in case
            frame = compare_table(rng, seeds, k, (0.03 if lattice else 0.01) if effect else 0.0, lattice)
            verdict, _ = judge(COMPARE, frame)
        elif case == "order_runs":
            verdict, _ = judge(ORDER, order_table(rng, seeds, 0.01 if effect else 0.0))
        elif case == "order_table":
            verdict, _ = judge(ORDER_TABLE, pd.DataFrame(), rd_table(rng, 0.0017 if effect else 0.0))
        elif case == "fraction":
            verdict, _ = judge(FRACTION, fraction_table(rng, seeds, 15 if effect else 0))
        else:
            raise ValueError(case)
        counts[verdict] = counts.get(verdict, 0) + 1
    return {v: c / tables for v, c in counts.items()}


CASES = [("compare_k1", (3, 5, 10, 30)), ("compare_k5", (3, 5, 10, 30)), ("compare_k1_lattice", (2, 3, 5)),
         ("order_runs", (3, 5, 10, 30)), ("order_table", (200,)), ("fraction", (3, 5, 10, 30))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tables", type=int, default=1000, help="simulated tables per cell")
    ap.add_argument("--case", action="append", help="only these cases (default: all): "
                    + ", ".join(c for c, _ in CASES))
    args = ap.parse_args()
    t0 = time.perf_counter()
    print(f"tables_per_cell={args.tables}")
    for i, (case, seed_counts) in enumerate(CASES):
        if args.case and case not in args.case:
            continue
        for n in seed_counts:
            for effect in (False, True):
                # each cell its own random stream (one stream for all would correlate the cells)
                shares = simulate(case, n, effect, args.tables, seed=1000 * i + 2 * n + effect)
                tag = f"{case}_n{n}_{'effect' if effect else 'null'}"
                for verdict in ("reproduced", "contradicted"):
                    print(f"{tag}_{verdict.replace(' ', '_')}={shares.get(verdict, 0.0):.4f}", flush=True)
    print(f"wall_s={time.perf_counter() - t0:.0f}")


if __name__ == "__main__":
    main()
