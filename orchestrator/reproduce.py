"""The reproduction table: each claim of the paper as data, its verdict computed from results.

A claims file (YAML: a list of claims; the paper's is `tasks/claims.yaml`, registered in the
`symsweep.claims` entry-point group) says, per claim, what the paper states and measured, which sweeps test it
(best first: the paper's scale, then smaller stand-ins), what to read and the rule that
turns it into a verdict. `symsweep reproduce RESULTS` reads whatever sweeps exist under
RESULTS and writes one row per claim and sweep found:

    reproduced      the rule holds with the statistic's interval on the claimed side
    partly          some of it holds (some settings, or the order in part)
    not reproduced  none of it holds
    not run         no results (the row names the spec to run) or no aggregate yet

Rules (each on completed runs, restricted by `where`):
- compare: `metric` of every level of `axis` against `baseline`, per group of the other
  varying config columns (symsweep.compare). A setting supports the claim when the 95 %
  Student-t interval of its difference (paired by seed where the seeds pair up) lies on the
  `better` side of 0, contradicts it when it lies on the other side. All support:
  reproduced; none: not reproduced; else partly. `step`: read the metric from the history
  at that step (e.g. accuracy after the first epochs, for a convergence claim).
- order: the levels of `by` ranked by `metric` (mean over seeds with its t-interval, or an
  aggregate `table`'s column with its `ci_low`/`ci_high`), against the paper's `expected`
  order (best first). The same order: reproduced; more pairs in the paper's order than
  against it (Kendall's tau > 0): partly; else not reproduced. `also`: more metrics ranked
  the same way and shown beside it (e.g. the RD without UMAP), not used for the verdict; an
  aggregate table's `METRIC_ci_low`/`METRIC_ci_high` columns are that metric's interval.
- fraction: the `compare` rule per `unit` (e.g. per PDE): a unit counts as improved when
  every setting of it supports the claim. The Wilson interval of the fraction improved
  reaching the paper's `fraction`: reproduced; below it but some improved: partly; none:
  not reproduced.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from symsweep.errors import ClaimsError

REPRODUCED, PARTLY, NOT_REPRODUCED, NOT_RUN = "reproduced", "partly", "not reproduced", "not run"
RULES = ("compare", "order", "fraction")
COMMON_KEYS = {"id", "figure", "claim", "paper", "paper_scale", "specs", "rule", "metric", "where", "scale"}
RULE_KEYS = {
    "compare": ({"axis", "baseline", "better"}, {"step"}),
    "order": ({"by", "expected", "better"}, {"table", "also"}),
    "fraction": ({"axis", "baseline", "better", "unit", "fraction"}, {"step"}),
}
BEGIN, END = "<!-- symsweep reproduce: begin -->", "<!-- symsweep reproduce: end -->"


@dataclass(frozen=True)
class Claim:
    id: str
    figure: str
    claim: str
    paper: str
    paper_scale: str
    specs: tuple[str, ...]
    rule: str
    metric: str
    options: Mapping[str, Any] = field(default_factory=dict)
    where: Mapping[str, Any] = field(default_factory=dict)
    scale: tuple[str, ...] = ()
    """Config fields whose values say at what scale a sweep ran (dataset, epochs, ...)."""


@dataclass
class Row:
    claim: Claim
    spec: str
    verdict: str
    measured: str
    scale: str


# ----------------------------------------------------------------------------- the claims file


def default_claims() -> list[Path]:
    """The claims files installed packages register in the `symsweep.claims` entry-point group
    (symsweep's own: the paper's, `symsweep.tasks:CLAIMS`), by name."""
    from symsweep.errors import SpecError
    from symsweep.registry import registered_claims
    paths = [path for _, path in registered_claims()]
    if not paths:
        raise SpecError("no claims file is registered (entry-point group symsweep.claims); pass --claims FILE")
    return paths


def load_claims(path: str | Path) -> list[Claim]:
    """Claims from a YAML file; anything wrong stops in one line naming the entry."""
    from symsweep.errors import SpecError
    from symsweep.spec import load_yaml  # the spec files' loader: duplicate keys, alias bombs refused
    path = Path(path)
    try:
        raw = load_yaml(path.read_bytes(), str(path))
    except OSError as exc:
        raise ClaimsError(f"cannot read claims file {path}: {exc.strerror or exc}") from None
    except SpecError as exc:
        raise ClaimsError(str(exc)) from None
    if not isinstance(raw, list) or not raw:
        raise ClaimsError(f"{path}: expected a list of claims (each a mapping with id, rule, ...)")
    claims, seen = [], set()
    for i, entry in enumerate(raw, 1):
        name = entry.get("id") if isinstance(entry, dict) else None
        where = f"{path}: entry {i}" + (f" ({name})" if name else "")
        if not isinstance(entry, dict):
            raise ClaimsError(f"{where}: a claim is a mapping of keys, got {type(entry).__name__}")
        rule = entry.get("rule")
        if rule not in RULES:
            raise ClaimsError(f"{where}: rule {rule!r} is not one of {', '.join(RULES)}")
        required, optional = RULE_KEYS[rule]
        needed = {"id", "claim", "specs", "metric"} | required
        missing = sorted(needed - set(entry))
        if missing:
            raise ClaimsError(f"{where}: missing {', '.join(missing)} (rule {rule} needs {', '.join(sorted(needed))})")
        unknown = sorted(set(entry) - COMMON_KEYS - required - optional)
        if unknown:
            raise ClaimsError(f"{where}: unknown key {unknown[0]!r}; allowed for rule {rule}: "
                              f"{', '.join(sorted(COMMON_KEYS | required | optional))}")
        if not isinstance(name, str) or not name or name in seen:
            raise ClaimsError(f"{where}: id must be a unique non-empty text")
        seen.add(name)
        specs = entry["specs"]
        if isinstance(specs, str):
            specs = [specs]
        if not isinstance(specs, list) or not specs or not all(isinstance(s, str) and s for s in specs):
            raise ClaimsError(f"{where}: specs must be a sweep name or a list of them")
        if entry.get("better") not in ("higher", "lower"):
            raise ClaimsError(f"{where}: better must be 'higher' or 'lower', got {entry.get('better')!r}")
        if rule == "order" and (not isinstance(entry["expected"], list) or len(entry["expected"]) < 2):
            raise ClaimsError(f"{where}: expected must list at least two levels of {entry['by']!r}, best first")
        also = entry.get("also", [])
        if not isinstance(also, list) or not all(isinstance(m, str) and m for m in also):
            raise ClaimsError(f"{where}: also must be a list of metric names, got {also!r}")
        if rule == "fraction" and not (isinstance(entry["fraction"], (int, float)) and 0 < entry["fraction"] <= 1):
            raise ClaimsError(f"{where}: fraction must be a number in (0, 1], got {entry['fraction']!r}")
        if not isinstance(entry.get("where", {}), dict):
            raise ClaimsError(f"{where}: where must be a mapping of config field -> value")
        options = {k: entry[k] for k in required | optional if k in entry}
        claims.append(Claim(id=name, figure=str(entry.get("figure", "")), claim=str(entry["claim"]),
                            paper=str(entry.get("paper", "")), paper_scale=str(entry.get("paper_scale", "")),
                            specs=tuple(specs), rule=rule, metric=str(entry["metric"]), options=options,
                            where=dict(entry.get("where") or {}), scale=tuple(entry.get("scale") or ())))
    return claims


# ----------------------------------------------------------------------------- verdicts


def evaluate(claims: list[Claim], results: str) -> list[Row]:
    """One row per claim and sweep found under `results` (a "not run" row when none is)."""
    from symsweep.store import SweepStore
    from symsweep.sweep import sweep_location
    rows = []
    for claim in claims:
        found = []
        for spec in claim.specs:
            store = SweepStore(sweep_location(results, spec))
            if store.exists():
                found.append((spec, store))
        if not found:
            rows.append(Row(claim, " / ".join(claim.specs), NOT_RUN,
                            "no results: run " + " or ".join(f"`sweeps/{s}.yaml`" for s in claim.specs), ""))
        for spec, store in found:
            rows.append(_evaluate_one(claim, spec, store))
    return rows


def _evaluate_one(claim: Claim, spec: str, store) -> Row:
    runs = _restrict(store.read_runs(), claim.where)
    done = runs[runs["status"] == "completed"] if "status" in runs else runs
    scale = _scale(done, claim.scale) + _progress(store, done, claim.where)
    if done.empty:
        return Row(claim, spec, NOT_RUN, "no completed runs yet", scale)
    if claim.options.get("step") is not None:
        done = _metric_at_step(store, done, claim.metric, int(claim.options["step"]))
    if claim.rule == "order":
        verdict, measured = _order(claim, done, store)
    else:
        verdict, measured = _compare(claim, done)
    return Row(claim, spec, verdict, measured, scale)


def _restrict(runs: pd.DataFrame, where: Mapping[str, Any]) -> pd.DataFrame:
    from symsweep.stats import level_mask
    for key, value in where.items():
        col = f"cfg_{key}"
        runs = runs[level_mask(runs[col], value)] if col in runs else runs.iloc[0:0]
    return runs


def _metric_at_step(store, runs: pd.DataFrame, metric: str, step: int) -> pd.DataFrame:
    history = store.read_history(runs["run_id"].tolist())
    at = history[(history["metric"] == metric) & (history["step"] == step)].set_index("run_id")["value"]
    return runs.assign(**{f"metric_{metric}": runs["run_id"].map(at)})


def _compare(claim: Claim, done: pd.DataFrame) -> tuple[str, str]:
    from symsweep.compare import comparison_table
    o = claim.options
    table = comparison_table(done, {o["axis"]: o["baseline"]}, [claim.metric])
    if table.empty:
        return NOT_RUN, f"no completed runs of both {o['axis']} = {o['baseline']!r} and another level"
    low, high = table["delta_ci_low"].to_numpy(float), table["delta_ci_high"].to_numpy(float)
    if o["better"] == "lower":
        low, high = -high, -low  # "better" is now "above 0" either way
    table = table.assign(side=np.where(low > 0, 1, np.where(high < 0, -1, 0)))
    side = table["side"].to_numpy()
    if claim.rule == "fraction":
        return _fraction(claim, table)
    n, supports, against = len(table), int((side == 1).sum()), int((side == -1).sum())
    verdict = REPRODUCED if supports == n else NOT_REPRODUCED if supports == 0 else PARTLY
    head = (f"{supports} of {n} settings {o['better']} than {o['axis']} = {o['baseline']} "
            f"(95 % interval of the difference on that side), {against} on the other side")
    return verdict, head + "; " + _pairs_text(table, o["axis"])


def _pairs_text(table: pd.DataFrame, axis: str, most: int = 6) -> str:
    groups = list(table.columns[:list(table.columns).index("metric")])
    parts = []
    for _, r in table.head(most).iterrows():
        label = ", ".join([f"{g} {r[g]}" for g in groups] + [f"{axis} {r['level']}"])
        parts.append(f"{label}: {_num(r['mean'])} vs {_num(r['mean_base'])}, "
                     f"Δ {_num(r['delta'], signed=True)} [{_num(r['delta_ci_low'], True)}, "
                     f"{_num(r['delta_ci_high'], True)}], n {int(r['n'])}/{int(r['n_base'])}")
    more = f"; ... {len(table) - most} more" if len(table) > most else ""
    return "; ".join(parts) + more


def _fraction(claim: Claim, table: pd.DataFrame) -> tuple[str, str]:
    from symsweep.stats import proportion_ci
    unit = claim.options["unit"]
    if unit not in table:
        return NOT_RUN, f"the sweep does not vary {unit!r}"
    per_unit = table.groupby(unit)["side"].agg(lambda s: bool((s == 1).all()))
    k, n = int(per_unit.sum()), len(per_unit)
    low, high = proportion_ci(k, n)
    target = float(claim.options["fraction"])
    verdict = REPRODUCED if high >= target else PARTLY if k > 0 else NOT_REPRODUCED
    improved = ", ".join(str(u) for u, ok in per_unit.items() if ok) or "none"
    return verdict, (f"improved on {k} of {n} {unit}s: {k / n:.2f}, Wilson 95 % [{low:.2f}, {high:.2f}] "
                     f"(paper: {target:.2f}); improved: {improved}")


def _order(claim: Claim, done: pd.DataFrame, store) -> tuple[str, str]:
    table = None
    if claim.options.get("table"):  # read once for the verdict's metric and every `also`
        try:
            table = store.read_aggregate(claim.options["table"])
        except (OSError, ValueError):
            return NOT_RUN, f"no `{claim.options['table']}` table yet: run `symsweep aggregate` on the sweep"
    verdict, measured, tau = _order_one(claim, claim.metric, done, table)
    if tau is None:
        return verdict, measured
    for extra in claim.options.get("also") or ():
        _, text, _ = _order_one(claim, str(extra), done, table)
        measured += f"; also {extra} (not used for the verdict): {text}"
    return verdict, measured


def _order_one(claim: Claim, metric: str, done: pd.DataFrame,
               table: pd.DataFrame | None) -> tuple[str, str, float | None]:
    """(verdict, text, Kendall's tau) of the levels of `by` ranked by one metric, read from the
    aggregate `table` when the claim names one, else from the runs; tau None when there is
    nothing to rank (the verdict is then "not run")."""
    from symsweep.stats import mean_ci
    o = claim.options
    by, expected = o["by"], [str(v) for v in o["expected"]]
    if table is not None:
        if by not in table or metric not in table:
            return NOT_RUN, f"the `{o['table']}` table has no {by!r} / {metric!r} column", None
        # a metric's own interval columns (rd_no_reduction_ci_low), else the table's (ci_low)
        low = f"{metric}_ci_low" if f"{metric}_ci_low" in table else "ci_low"
        high = f"{metric}_ci_high" if f"{metric}_ci_high" in table else "ci_high"
        stats = pd.DataFrame({"level": table[by].astype(str), "value": table[metric],
                              "low": table.get(low, np.nan), "high": table.get(high, np.nan)})
    else:
        col = f"cfg_{by}"
        if col not in done or f"metric_{metric}" not in done:
            return NOT_RUN, f"the runs have no {by!r} / {metric!r} column", None
        rows = []
        for level, part in done.groupby(done[col].astype(str)):
            values = pd.to_numeric(part[f"metric_{metric}"], errors="coerce").dropna().to_numpy()
            low, high = mean_ci(values)
            rows.append({"level": level, "value": values.mean() if len(values) else np.nan, "low": low, "high": high})
        stats = pd.DataFrame(rows)
    stats = stats[stats["level"].isin(expected)].dropna(subset=["value"])
    if len(stats) < 2:
        return NOT_RUN, f"fewer than two of {', '.join(expected)} measured", None
    stats = stats.sort_values("value", ascending=o["better"] == "lower")
    measured = stats["level"].tolist()
    paper = [lv for lv in expected if lv in measured]
    tau = _kendall(paper, measured)
    verdict = REPRODUCED if measured == paper else PARTLY if tau > 0 else NOT_REPRODUCED
    sep = " > " if o["better"] == "higher" else " < "
    shown = sep.join(f"{r.level} {_num(r.value)}" + (f" [{_num(r.low)}, {_num(r.high)}]" if r.low == r.low else "")
                     for r in stats.itertuples())
    return verdict, f"{shown}; paper: {sep.join(paper)}; Kendall's tau {tau:+.2f}", tau


def _kendall(expected: list[str], measured: list[str]) -> float:
    """Kendall's tau between two orders of the same items (+1 same order, -1 reversed)."""
    pos = {v: i for i, v in enumerate(measured)}
    pairs = [(a, b) for i, a in enumerate(expected) for b in expected[i + 1:]]
    if not pairs:
        return float("nan")
    return sum(1 if pos[a] < pos[b] else -1 for a, b in pairs) / len(pairs)


def _scale(done: pd.DataFrame, fields: tuple[str, ...]) -> str:
    if done.empty:
        return ""
    parts = [f"{len(done)} runs"]
    if "seed" in done:
        group = [c for c in done.columns if c.startswith("cfg_") and done[c].astype(str).nunique() > 1]
        seeds = done.groupby(group)["seed"].nunique() if group else pd.Series([done["seed"].nunique()])
        parts.append(f"{int(seeds.min())}-{int(seeds.max())} seeds" if seeds.min() != seeds.max()
                     else f"{int(seeds.min())} seeds")
    for f in fields:
        col = f"cfg_{f}"
        if col in done:
            values = sorted({str(v) for v in done[col].dropna()})
            if values:
                parts.append(f"{f} {', '.join(values[:4])}" + (" ..." if len(values) > 4 else ""))
    if "info_dataset_source" in done:
        parts.append(f"data {', '.join(sorted(done['info_dataset_source'].dropna().astype(str).unique()))}")
    return "; ".join(parts)


def _progress(store, done: pd.DataFrame, where: Mapping[str, Any]) -> str:
    """"; partial: N of M planned runs" while the sweep's frozen spec plans runs not done yet."""
    from symsweep.spec import expand, spec_from_dict
    try:
        planned = {r.run_id for r in expand(spec_from_dict(store.read_spec(), source=store.spec_shown))
                   if all(str(r.config.get(k)) == str(v) for k, v in where.items())}
    except Exception:  # noqa: BLE001 - a spec this version cannot plan: say nothing about progress
        return ""
    ids = set(done["run_id"]) if "run_id" in done else set()
    have = len(ids & planned)
    return f"; partial: {have} of {len(planned)} planned runs" if 0 < have < len(planned) else ""


def _num(v: float, signed: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:+.4g}" if signed else f"{v:.4g}"


# ----------------------------------------------------------------------------- the table


def markdown(rows: list[Row]) -> str:
    """The reproduction table as Markdown: one row per claim and sweep."""
    def cell(text: str) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")
    lines = ["| figure | claim (paper) | paper's scale | sweep: scale run | measured | verdict |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        c = r.claim
        claim = c.claim + (f" ({c.paper})" if c.paper else "")
        ran = f"`{r.spec}`" + (f": {r.scale}" if r.scale else "")
        # a verdict on a sweep that is still running can change: say so beside it
        partial = " (so far: the sweep is partial)" if "; partial: " in r.scale else ""
        lines.append(f"| {cell(c.figure)} | {cell(claim)} | {cell(c.paper_scale)} | {cell(ran)} | "
                     f"{cell(r.measured)} | **{r.verdict}**{partial} |")
    return "\n".join(lines) + "\n"


def write_table(rows: list[Row], out: str | None) -> str:
    """The table on stdout (out None), into a file, or between the BEGIN/END markers of a file
    that has them (the rest of it, e.g. reading notes, is kept)."""
    table = markdown(rows)
    if out is None:
        return table
    path = Path(out)
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        text = f"{head}{BEGIN}\n{table}{END}{tail}"
    else:
        text = table
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return table
