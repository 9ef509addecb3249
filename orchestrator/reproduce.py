"""The reproduction table: each claim of the paper as data, its verdict computed from results.

A claims file (YAML: a list of claims; the paper's is `tasks/claims.yaml`, registered in the
`symsweep.claims` entry-point group) says, per claim, what the paper states and measured, which sweeps test it
(best first: the paper's scale, then smaller stand-ins), what to read and the rule that
turns it into a verdict. `symsweep reproduce RESULTS` reads whatever sweeps exist under
RESULTS and writes one row per claim and sweep found. A verdict never claims more than its
intervals:

    reproduced      every part of the claim holds with its interval on the claimed side
    contradicted    some part of it has its interval on the other side (at a level
                    corrected for the number of parts, so that the false rate stays <= 2.5 %)
    inconclusive    neither: intervals that span both sides, too few seeds, levels or
                    baselines missing (the text says which)
    not run         no results (the row names the spec to run), or no aggregate table of
                    the runs the ledger holds now

Rules (each on completed runs, restricted by `where`):
- compare: `metric` of every level of `axis` against `baseline`, per group of the other
  varying config columns (symsweep.compare: a run meets the baseline runs equal to it on
  every config field but the axis and the task's `unused_at_baseline`). A setting supports
  the claim when the 95 % Student-t interval of its difference (paired by seed where the
  seeds pair up; never narrower than the metric's measurement step allows) lies on the
  `better` side of 0, and is against it when its interval at level 1 - 0.05 / k (k settings:
  Bonferroni) lies on the other side. All support: reproduced (an intersection-union test:
  each part at 2.5 % one-sided, so the whole at most 2.5 %); any against: contradicted; else
  inconclusive. `step`: read the metric from the history at that step.
- order: the levels of `by` (mean over seeds, or an aggregate `table`'s column with its
  `ci_low`/`ci_high`) against the paper's `expected` order (best first). Each pair is judged
  by the interval of its difference: from the runs, `difference_ci` (as compare); from a
  table, the two levels' independent intervals combined (MOVER: each side's half-widths
  in quadrature, rescaled to the level as normal quantiles; it assumes independent estimates
  whose intervals are close to normal ones). Every level measured and every adjacent pair
  of the paper's order separated on the claimed side (95 %): reproduced; some pair the paper
  orders separated the other way (Bonferroni over the pairs): contradicted; else
  inconclusive, naming the unresolved pairs. Ties are ties (`~`). Kendall's tau of the means
  is shown, and decides nothing. `also`: more metrics ranked beside it (e.g. the RD without
  UMAP), not used for the verdict, each with its own `METRIC_ci_low`/`METRIC_ci_high`
  interval only. A table must record the runs it was computed from and they must be the
  completed runs now (else "not run": `symsweep aggregate` again); the claim's `where`
  filters the table's rows, and a table that does not split by a `where` field the runs
  vary in is refused. `states`: a table column holding the metric under several states of
  a random choice the estimate depends on (the RD under several UMAP random states, the
  headline's first): the verdict must come out the same under each (each state's value
  with the headline's interval moved to it), else it is inconclusive.
- fraction: the `compare` rule per `unit` (e.g. per PDE): a unit is improved when every
  setting of it supports the claim, worse when one is against it, undecided otherwise (a
  unit without baseline runs among them: it stays in the denominator). Reproduced when the
  Wilson interval of the fraction improved lies above `chance` (default 0.5: "most") and
  reaches the paper's `fraction`; contradicted when even the units not shown worse cannot
  reach it (the Wilson upper bound of their fraction is below the paper's); else inconclusive.

The false-verdict rate of every rule under no effect, and its power at effects of the
paper's size, are simulated by `bench/verdicts.py` (docs/statistics.md has the figures).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from symsweep.errors import ClaimsError

REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_RUN = "reproduced", "contradicted", "inconclusive", "not run"
VERDICTS = (REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_RUN)
ALPHA = 0.05
"""Two-sided error of every interval a verdict reads (95 %); a family of k parts uses ALPHA / k."""
RULES = ("compare", "order", "fraction")
COMMON_KEYS = {"id", "figure", "claim", "paper", "paper_scale", "specs", "rule", "metric", "where", "scale"}
RULE_KEYS = {
    "compare": ({"axis", "baseline", "better"}, {"step"}),
    "order": ({"by", "expected", "better"}, {"table", "also", "states"}),
    "fraction": ({"axis", "baseline", "better", "unit", "fraction"}, {"step", "chance"}),
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
        chance = entry.get("chance", 0.5)
        if rule == "fraction" and not (isinstance(chance, (int, float)) and 0 <= chance < entry["fraction"]):
            raise ClaimsError(f"{where}: chance must be a number in [0, fraction), got {chance!r}")
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
    from symsweep.stats import completed
    every = store.read_runs()
    done = completed(_restrict(every, claim.where))
    scale = _scale(done, claim.scale) + _progress(store, done, claim.where)
    if done.empty:
        return Row(claim, spec, NOT_RUN, "no completed runs yet", scale)
    if claim.options.get("step") is not None:
        done = _metric_at_step(store, done, claim.metric, int(claim.options["step"]))
    table = None
    if claim.rule == "order" and claim.options.get("table"):
        table, problem = _checked_table(claim, store, completed(every))
        if problem:
            return Row(claim, spec, *problem, scale)
    return Row(claim, spec, *judge(claim, done, table), scale)


def judge(claim: Claim, done: pd.DataFrame, table: pd.DataFrame | None = None) -> tuple[str, str]:
    """(verdict, measured) of one claim on completed runs (a runs table: cfg_ columns, seed,
    metric_ columns), and for an order claim that names a `table`, that aggregate table (read,
    checked fresh and filtered by `_checked_table`). No store: bench/verdicts.py simulates the
    rules through here."""
    if claim.rule != "order":
        return _compare(claim, done)
    verdict, measured, tau = _order_one(claim, claim.metric, done, table)
    if tau is not None and table is not None and claim.options.get("states"):
        verdict, measured = _stable(claim, done, table, verdict, measured)
    if tau is not None:
        for extra in claim.options.get("also") or ():
            _, text, _ = _order_one(claim, str(extra), done, table)
            measured += f"; also {extra} (not used for the verdict): {text}"
    return verdict, measured


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


# ----------------------------------------------------------------------------- compare, fraction

SUPPORTS, AGAINST, UNDECIDED, FEW_SEEDS, NO_BASELINE = "supports", "against", "undecided", "too few seeds", "no baseline"


def _judge_settings(claim: Claim, done: pd.DataFrame, family: Any = None) -> pd.DataFrame:
    """The comparison table of a compare or fraction claim with a `state` per setting:
    supports (95 % interval of the difference on the claimed side), against (its interval at
    the family's Bonferroni level on the other side), undecided, too few seeds (no interval),
    no baseline. `family`: a column whose groups are the families (a fraction's unit); None:
    every setting is one family."""
    from symsweep.compare import comparison_table, unused_fields
    o = claim.options
    base = {o["axis"]: o["baseline"]}
    unused = unused_fields(done, base)  # the sweep's task says which fields mean nothing at the baseline
    table = comparison_table(done, base, [claim.metric], unused)
    if table.empty:
        return table
    sizes = table.groupby(family)[family].transform("size") if family in table else pd.Series(len(table), table.index)
    strict = {k: comparison_table(done, base, [claim.metric], unused, ci_level=1 - ALPHA / k)
              for k in sorted(set(sizes)) if k > 1}
    sign = 1.0 if o["better"] == "higher" else -1.0
    states = []
    for i, r in table.iterrows():
        low, high = sorted((sign * r["delta_ci_low"], sign * r["delta_ci_high"]))
        s = strict[sizes[i]].loc[i] if sizes[i] > 1 else r
        strict_high = max(sign * s["delta_ci_low"], sign * s["delta_ci_high"])
        if r["n_base"] == 0:
            states.append(NO_BASELINE)
        elif low != low:
            states.append(FEW_SEEDS)
        elif low > 0:
            states.append(SUPPORTS)
        elif strict_high < 0:
            states.append(AGAINST)
        else:
            states.append(UNDECIDED)
    return table.assign(state=states)


def _compare(claim: Claim, done: pd.DataFrame) -> tuple[str, str]:
    o = claim.options
    if claim.rule == "fraction" and f"cfg_{o['unit']}" not in done:
        return NOT_RUN, f"the sweep does not vary {o['unit']!r}"
    table = _judge_settings(claim, done, o["unit"] if claim.rule == "fraction" else None)
    if table.empty:
        return NOT_RUN, f"no completed runs of both {o['axis']} = {o['baseline']!r} and another level"
    if claim.rule == "fraction":
        if o["unit"] not in table:  # one unit in the sweep: not a varying column of the table
            table = table.assign(**{o["unit"]: str(done[f"cfg_{o['unit']}"].iloc[0])})
        return _fraction(claim, table)
    state = table["state"]
    n, supports, against = len(table), int((state == SUPPORTS).sum()), int((state == AGAINST).sum())
    verdict = REPRODUCED if supports == n else CONTRADICTED if against else INCONCLUSIVE
    counts = ", ".join(f"{int((state == s).sum())} {s}" for s in (UNDECIDED, FEW_SEEDS, NO_BASELINE) if (state == s).any())
    head = (f"{supports} of {n} settings {o['better']} than {o['axis']} = {o['baseline']} "
            f"(95 % interval of the difference on that side), {against} on the other side"
            + (f" (at 1 - 0.05/{n})" if n > 1 else "") + (f"; {counts}" if counts else ""))
    return verdict, head + "; " + _pairs_text(table, o["axis"])


def _pairs_text(table: pd.DataFrame, axis: str, most: int = 6) -> str:
    groups = list(table.columns[:list(table.columns).index("metric")])
    parts = []
    for _, r in table.head(most).iterrows():
        label = ", ".join([f"{g} {r[g]}" for g in groups] + [f"{axis} {r['level']}"])
        if r["n_base"] == 0:
            parts.append(f"{label}: {_num(r['mean'])}, no baseline runs with the same config, n {int(r['n'])}")
            continue
        parts.append(f"{label}: {_num(r['mean'])} vs {_num(r['mean_base'])}, "
                     f"Δ {_num(r['delta'], signed=True)} [{_num(r['delta_ci_low'], True)}, "
                     f"{_num(r['delta_ci_high'], True)}], n {int(r['n'])}/{int(r['n_base'])}")
    more = f"; ... {len(table) - most} more" if len(table) > most else ""
    return "; ".join(parts) + more


def _fraction(claim: Claim, table: pd.DataFrame) -> tuple[str, str]:
    from symsweep.stats import proportion_ci
    unit = claim.options["unit"]
    per_unit = table.groupby(unit)["state"].agg(
        lambda s: "improved" if (s == SUPPORTS).all() else "worse" if (s == AGAINST).any()
        else NO_BASELINE if (s == NO_BASELINE).all() else "undecided")
    n = len(per_unit)
    k, worse = int((per_unit == "improved").sum()), int((per_unit == "worse").sum())
    low, high = proportion_ci(k, n)
    _, high_not_worse = proportion_ci(n - worse, n)
    target, chance = float(claim.options["fraction"]), float(claim.options.get("chance", 0.5))
    verdict = (REPRODUCED if low > chance and high >= target else
               CONTRADICTED if high_not_worse < target else INCONCLUSIVE)

    def names(state: str) -> str:
        return ", ".join(str(u) for u, s in per_unit.items() if s == state) or "none"
    text = (f"improved on {k} of {n} {unit}s: {k / n:.2f}, Wilson 95 % [{low:.2f}, {high:.2f}] (paper: {target:.2f}; "
            f"reproduced needs the interval above {chance:.2f} and reaching {target:.2f}); worse on {worse}: "
            f"not-worse fraction at most {high_not_worse:.2f}; improved: {names('improved')}; worse: {names('worse')}")
    if (per_unit == NO_BASELINE).any():
        text += f"; no baseline: {names(NO_BASELINE)}"
    return verdict, text


# ----------------------------------------------------------------------------- order


def _checked_table(claim: Claim, store, every: pd.DataFrame) -> tuple[pd.DataFrame | None, tuple[str, str] | None]:
    """(table, None), or (None, (verdict, why)) when the claim's aggregate table cannot be read
    for a verdict: missing or stale ("not run"), or not split by a `where` field ("inconclusive")."""
    name = claim.options["table"]
    try:
        arrow = store.read_aggregate_arrow(name)
    except (OSError, ValueError):
        return None, (NOT_RUN, f"no `{name}` table yet: run `symsweep aggregate` on the sweep")
    problem = _stale(store, arrow, name, every)
    if problem:
        return None, (NOT_RUN, problem)
    table, problem = _where_on_table(arrow.to_pandas(), claim.where, every, name)
    return (None, (INCONCLUSIVE, problem)) if problem else (table, None)


def _stale(store, arrow, name: str, every: pd.DataFrame) -> str:
    """Why an aggregate table cannot be read for a verdict ("" when it can): it must record the
    runs it was computed from (store.runs_fingerprint), and they must be the completed runs now."""
    from symsweep.store import runs_fingerprint
    recorded, now = store.aggregate_sources(arrow), runs_fingerprint(every)
    if recorded is None:
        return (f"the `{name}` table does not record the runs it was computed from (written by an older "
                f"symsweep or by hand): run `symsweep aggregate` on the sweep")
    if recorded != now:
        return (f"the `{name}` table is stale: computed from {recorded.get('completed')} completed runs, the ledger "
                f"now holds {now['completed']} (or other ones): run `symsweep aggregate` on the sweep")
    return ""


def _where_on_table(table: pd.DataFrame, where: Mapping[str, Any], every: pd.DataFrame,
                    name: str) -> tuple[pd.DataFrame, str]:
    """The claim's `where` applied to an aggregate table's rows; a field the table does not
    split by is fine only when every completed run already holds the wanted value."""
    from symsweep.stats import level_mask
    for key, value in where.items():
        if key in table:
            table = table[level_mask(table[key], value)]
        elif f"cfg_{key}" not in every or not level_mask(every[f"cfg_{key}"], value).all():
            return table, (f"the `{name}` table does not split by {key}, and the sweep's runs are not all "
                           f"{key} = {value}: the claim's where cannot be applied to it")
    return table, ""


class _Levels:
    """One metric's estimate per level of `by`, and the interval of the difference of two levels:
    from the runs (per-seed values; stats.difference_ci) or from an aggregate table (value and an
    interval per level; MOVER)."""

    def __init__(self, values: dict[str, float], samples: dict[str, pd.Series] | None = None,
                 bounds: dict[str, tuple[float, float]] | None = None):
        self.values, self.samples, self.bounds = values, samples, bounds

    def interval(self, level: str) -> tuple[float, float]:
        from symsweep.stats import mean_ci
        if self.samples is not None:
            return mean_ci(self.samples[level].to_numpy(float))
        return self.bounds[level]

    def difference(self, a: str, b: str, level: float) -> tuple[float, float]:
        """Interval of value(a) - value(b) at `level` (nan, nan when there is none)."""
        from symsweep.stats import difference_ci
        if self.samples is not None:
            low, high, _ = difference_ci(self.samples[b], self.samples[a], level)
            return low, high
        from scipy.stats import norm
        scale = norm.ppf(0.5 + level / 2) / norm.ppf(1 - ALPHA / 2)
        (la, ha), (lb, hb) = self.bounds[a], self.bounds[b]
        va, vb = self.values[a], self.values[b]
        d = va - vb
        return (d - scale * math.hypot(va - la, hb - vb), d + scale * math.hypot(ha - va, vb - lb))


def _levels(claim: Claim, metric: str, done: pd.DataFrame, table: pd.DataFrame | None) -> tuple[_Levels | None, str]:
    o = claim.options
    by = o["by"]
    if table is not None:
        if by not in table or metric not in table:
            return None, f"the `{o['table']}` table has no {by!r} / {metric!r} column"
        # a metric's own interval columns (rd_no_reduction_ci_low); the table's ci_low/ci_high
        # belong to the claim's own metric only
        own = (f"{metric}_ci_low", f"{metric}_ci_high")
        cols = own if all(c in table for c in own) else ("ci_low", "ci_high") if metric == claim.metric else None
        values, bounds = {}, {}
        for _, r in table.iterrows():
            v = pd.to_numeric(pd.Series([r[metric]]), errors="coerce").iloc[0]
            if v == v:
                values[str(r[by])] = float(v)
                bounds[str(r[by])] = ((float(r[cols[0]]), float(r[cols[1]])) if cols and cols[0] in r
                                      else (float("nan"), float("nan")))
        return _Levels(values, bounds=bounds), ""
    col = f"cfg_{by}"
    if col not in done or f"metric_{metric}" not in done:
        return None, f"the runs have no {by!r} / {metric!r} column"
    samples = {}
    for level, part in done.groupby(done[col].astype(str)):
        values = pd.to_numeric(part[f"metric_{metric}"], errors="coerce")
        values.index = part["seed"] if "seed" in part else range(len(part))
        if values.notna().any():
            samples[level] = values.dropna()
    return _Levels({k: float(v.mean()) for k, v in samples.items()}, samples=samples), ""


def _order_one(claim: Claim, metric: str, done: pd.DataFrame,
               table: pd.DataFrame | None) -> tuple[str, str, float | None]:
    """(verdict, text, Kendall's tau) of the levels of `by` against the paper's order by one
    metric; tau None when there is nothing to rank (the verdict is then "not run")."""
    o = claim.options
    expected = [str(v) for v in o["expected"]]
    levels, problem = _levels(claim, metric, done, table)
    if levels is None:
        return NOT_RUN, problem, None
    paper = [lv for lv in expected if lv in levels.values]
    if len(paper) < 2:
        return NOT_RUN, f"fewer than two of {', '.join(expected)} measured", None
    missing = [lv for lv in expected if lv not in levels.values]
    sign = 1.0 if o["better"] == "higher" else -1.0

    def separated(a: str, b: str, level: float = 1 - ALPHA) -> bool:
        """a better than b with the interval of their difference on that side."""
        low, high = (sign * x for x in levels.difference(a, b, level))
        return min(low, high) > 0
    pairs = [(a, b) for i, a in enumerate(paper) for b in paper[i + 1:]]
    strict = 1 - ALPHA / len(pairs)
    against = [(a, b) for a, b in pairs if separated(b, a, strict)]
    unresolved = [(a, b) for a, b in zip(paper, paper[1:]) if not separated(a, b) and (a, b) not in against]
    if against:
        verdict = CONTRADICTED
    elif not missing and not unresolved:
        verdict = REPRODUCED
    else:
        verdict = INCONCLUSIVE
    # shown best first by value; equal values keep the paper's order, and a pair whose
    # difference's interval spans 0 is joined by "~", whatever its order
    shown_order = sorted(paper, key=lambda lv: (-sign * levels.values[lv], paper.index(lv)))
    better_sep = " > " if sign > 0 else " < "
    text = ""
    for i, lv in enumerate(shown_order):
        if i:
            text += better_sep if separated(shown_order[i - 1], lv) else " ~ "
        low, high = levels.interval(lv)
        text += f"{lv} {_num(levels.values[lv])}" + (f" [{_num(low)}, {_num(high)}]" if low == low else "")
    tau = _kendall(paper, levels.values, sign)
    text += f"; paper: {better_sep.join(paper)}"
    if unresolved:
        text += "; unresolved (95 % interval of the difference spans 0): " + ", ".join(f"{a} ~ {b}" for a, b in unresolved)
    if against:
        worse = " < " if sign > 0 else " > "
        text += ("; against the paper: " + ", ".join(f"{a}{worse}{b}" for a, b in against)
                 + f" (interval at 1 - 0.05/{len(pairs)} on the other side)")
    if missing:
        text += f"; levels missing: {', '.join(missing)}"
    return verdict, text + f"; Kendall's tau of the means {tau:+.2f}", tau


def _stable(claim: Claim, done: pd.DataFrame, table: pd.DataFrame, verdict: str, measured: str) -> tuple[str, str]:
    """The verdict under each state of the table's `states` column (a JSON list of the metric
    per state, e.g. the RD under several UMAP random states, the headline's first), each state
    with the headline's interval moved to its value. A verdict is kept only when every state
    gives it; else inconclusive, with the count of each."""
    import json
    column, metric = claim.options["states"], claim.metric
    if column not in table:
        return verdict, measured + f"; no `{column}` column: stability under its states not checked"
    per_row = [json.loads(v) if isinstance(v, str) else [] for v in table[column]]
    k = min((len(v) for v in per_row), default=0)
    if k < 2:
        return verdict, measured
    low_col, high_col = (f"{metric}_ci_low", f"{metric}_ci_high") if f"{metric}_ci_low" in table else ("ci_low", "ci_high")
    verdicts = []
    for i in range(k):
        values = np.array([v[i] for v in per_row], dtype=float)
        shift = values - table[metric].to_numpy(float)
        moved = table.assign(**{metric: values, low_col: table[low_col] + shift, high_col: table[high_col] + shift})
        verdicts.append(_order_one(claim, metric, done, moved)[0])
    counts = ", ".join(f"{v} in {verdicts.count(v)}" for v in VERDICTS if v in verdicts)
    if all(v == verdict for v in verdicts):
        return verdict, measured + f"; the same verdict under each of {k} states of `{column}`"
    return INCONCLUSIVE, (measured + f"; not stable under the states of `{column}`: {counts} of {k} (the headline "
                          f"state's: {verdict}), so inconclusive")


def _kendall(expected: list[str], values: Mapping[str, float], sign: float) -> float:
    """Kendall's tau between the paper's order and the measured values (+1 same order, -1
    reversed; a tie counts 0)."""
    pairs = [(a, b) for i, a in enumerate(expected) for b in expected[i + 1:]]
    if not pairs:
        return float("nan")
    return sum(float(np.sign(sign * (values[a] - values[b]))) for a, b in pairs) / len(pairs)


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
    hardware = _hardware(done)
    if hardware:
        parts.append(f"on {hardware}")
    return "; ".join(parts)


def _hardware(done: pd.DataFrame) -> str:
    """What the runs trained on, from their rows: the GPU's name, or the CPU's model."""
    if "device" not in done:
        return ""
    names = set()
    for device, cpu in zip(done["device"].astype(str), done.get("cpu_model", pd.Series([""] * len(done))).astype(str)):
        kind, _, name = device.partition(":")
        names.add(name if kind == "cuda" else f"CPU {cpu}" if cpu and cpu not in ("nan", "None") else f"CPU {name}")
    return ", ".join(sorted(names))


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
