"""`symsweep report`: one sweep as a self-contained folder, report.md + report.html + figures/.

The report holds the sweep's frozen spec, status counts (and failed runs), timing (total
and mean run time, wall clock, per config, the slowest runs), the summary and comparison
tables, the task's other aggregate tables, and figures: the task's own
(aggregates/figures/*.png) plus each summary metric per config with its seeds and Student-t
CI, and, for a task that draws no figures, the mean history curves. report.html has inline CSS
and the images embedded (base64), so it opens offline and survives being mailed around;
report.md points at figures/ beside it.

Aggregates are recomputed first when they are missing or stale (the summary does not
cover every completed run, e.g. after `run --no-summary` or more seeds).
"""
from __future__ import annotations

import base64
import datetime as dt
import html
import io
from dataclasses import dataclass, field

import pandas as pd
import yaml

from symsweep.aggregate import aggregate_sweep, mean_std
from symsweep.compare import format_comparison
from symsweep.stats import completed, mean_ci, varying_config_columns
from symsweep.query import BUILTIN, open_results
from symsweep.registry import get_task
from symsweep._fs import atomic_put, filesystem, parse_location
from symsweep.store import AGGREGATES, HISTORY, SweepStore
from symsweep.sweep import make_plan, open_sweep, status_table

MAX_ROWS = 50  # rows shown per task table; the Parquet file has them all
SLOWEST = 5


# ---------------------------------------------------------------- document model
@dataclass
class Section:
    """A titled list of blocks, rendered the same way to Markdown and to HTML."""

    title: str
    blocks: list[tuple] = field(default_factory=list)
    """("text", str) | ("code", str) | ("table", DataFrame of strings) | ("image", name, png bytes)."""


def _display(df: pd.DataFrame, max_rows: int = MAX_ROWS) -> pd.DataFrame:
    """Strings for printing: floats to 4 significant digits, missing values blank."""
    def fmt(v):
        if v is None or (isinstance(v, float) and v != v):
            return ""
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    return df.head(max_rows).apply(lambda col: col.map(fmt))


def _md_table(df: pd.DataFrame) -> str:
    cell = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(map(cell, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def render_markdown(title: str, sections: list[Section]) -> str:
    out = [f"# {title}"]
    for s in sections:
        out.append(f"\n## {s.title}\n")
        for kind, *rest in s.blocks:
            if kind == "text":
                out.append(rest[0] + "\n")
            elif kind == "code":
                out.append(f"```\n{rest[0].rstrip()}\n```\n")
            elif kind == "table":
                out.append(_md_table(rest[0]) + "\n")
            elif kind == "image":
                out.append(f"![{rest[0]}](figures/{rest[0]}.png)\n")
    return "\n".join(out)


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
h1 { border-bottom: 2px solid #446; padding-bottom: .3em; }
h2 { color: #335; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccd; padding: 3px 8px; text-align: right; }
th { background: #eef; } tr:nth-child(even) td { background: #f8f8fc; }
pre { background: #f4f4f8; padding: .8em; overflow-x: auto; }
img { max-width: 100%; border: 1px solid #ddd; margin: .5em 0; }
"""


def render_html(title: str, sections: list[Section]) -> str:
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
           f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for s in sections:
        out.append(f"<h2>{html.escape(s.title)}</h2>")
        for kind, *rest in s.blocks:
            if kind == "text":
                out.append(f"<p>{html.escape(rest[0])}</p>")
            elif kind == "code":
                out.append(f"<pre>{html.escape(rest[0])}</pre>")
            elif kind == "table":
                out.append(rest[0].to_html(index=False, border=0, escape=True))
            elif kind == "image":
                data = base64.b64encode(rest[1]).decode()
                out.append(f"<figure><img alt='{html.escape(rest[0])}' src='data:image/png;base64,{data}'>"
                           f"<figcaption>{html.escape(rest[0])}</figcaption></figure>")
    out.append("</body></html>")
    return "\n".join(out)


# ---------------------------------------------------------------- figures
def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def _group_labels(done: pd.DataFrame, cols: list[str], sep: str = ", ") -> pd.Series:
    if not cols:
        return pd.Series("all runs", index=done.index)
    return done[cols].astype(str).apply(lambda r: sep.join(f"{c[4:]}={v}" for c, v in r.items()), axis=1)


def metrics_figure(done: pd.DataFrame, metrics: list[str]) -> bytes | None:
    """Each metric per config: one dot per seed, mean with its 95% Student-t interval."""
    from matplotlib.figure import Figure  # the OO API: no pyplot, no global backend switch
    metrics = [m for m in metrics if f"metric_{m}" in done]
    if done.empty or not metrics:
        return None
    labels = _group_labels(done, varying_config_columns(done), sep="\n")  # one line per config column
    order = sorted(labels.unique())
    fig = Figure(figsize=(4.2 * len(metrics), 3.4))
    for ax, m in zip(fig.subplots(1, len(metrics), squeeze=False)[0], metrics):
        for i, label in enumerate(order):
            v = pd.to_numeric(done.loc[labels == label, f"metric_{m}"], errors="coerce").dropna().to_numpy()
            ax.plot([i] * len(v), v, "o", color="#889", alpha=0.6, markersize=4)
            if len(v):
                mean, (low, high) = v.mean(), mean_ci(v)
                yerr = [[mean - low], [high - mean]] if low == low else None  # no interval from one seed
                ax.errorbar([i + 0.15], [mean], yerr=yerr, fmt="s", color="#c33", capsize=4)
        crowded = len(order) > 3
        ax.set_xticks(range(len(order)), order, rotation=20 if crowded else 0,
                      ha="right" if crowded else "center", fontsize=8)
        ax.set_xlim(-0.5, len(order) - 0.5)
        ax.set_title(f"{m}: seeds, mean, 95% CI", fontsize=10)
        ax.grid(alpha=0.3)
    return _png(fig)


def history_figure(done: pd.DataFrame, history: pd.DataFrame, metrics: list[str]) -> bytes | None:
    """Mean over seeds of each logged metric by step, one line per config."""
    from matplotlib.figure import Figure
    metrics = [m for m in metrics if m in set(history["metric"])] if not history.empty else []
    if not metrics:
        return None
    labels = _group_labels(done, varying_config_columns(done)).rename("config")
    h = history.merge(pd.concat([done["run_id"], labels], axis=1), on="run_id")
    fig = Figure(figsize=(4.2 * len(metrics), 3.2))
    for ax, m in zip(fig.subplots(1, len(metrics), squeeze=False)[0], metrics):
        curves = h[h["metric"] == m].groupby(["config", "step"])["value"].mean()
        for label, curve in curves.groupby(level="config"):
            ax.plot(curve.index.get_level_values("step"), curve.to_numpy(), marker=".", label=label)
        ax.set_xlabel("step")
        ax.set_title(f"{m} (mean over seeds)", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _png(fig)


def task_figures(store: SweepStore) -> dict[str, bytes]:
    """aggregates/figures/*.png written by the task's `figures` at aggregation."""
    paths = store.list_files(store.path(AGGREGATES, "figures"), ".png")
    return {p.rsplit("/", 1)[-1][:-len(".png")]: store.read_bytes(p) for p in paths}


# ---------------------------------------------------------------- sections
def _summary_display(summary: pd.DataFrame) -> pd.DataFrame:
    shown = pd.DataFrame({c: summary[c] for c in summary if not c.endswith(("_mean", "_std"))})
    for c in summary:
        if c.endswith("_mean"):
            m, std = summary[c], summary.get(c[:-5] + "_std", pd.Series(float("nan"), index=summary.index))
            shown[c[:-5]] = [mean_std(a, s) for a, s in zip(m, std)]
    return shown.drop(columns=["sweep"], errors="ignore").astype(str)


def run_times(runs: pd.DataFrame) -> pd.Series:
    """Each run's own time in seconds, such that a sum over runs counts a batch once: a run
    trained in a vectorized batch records its share of the batch's wall time as `duration_s`.
    Rows written before that (`batch_size_runs` > 1 without `batch_duration_s`) hold the
    batch's time, and are divided by the batch's size here."""
    d = pd.to_numeric(runs["duration_s"], errors="coerce")
    size = pd.to_numeric(runs["batch_size_runs"], errors="coerce").fillna(1) if "batch_size_runs" in runs else 1
    older = runs["batch_duration_s"].isna() if "batch_duration_s" in runs else pd.Series(True, index=runs.index)
    return d.where(~(older & (size > 1)), d / size)


def _batch_note(runs: pd.DataFrame) -> str:
    if "batch_size_runs" not in runs:
        return ""
    batched = runs[pd.to_numeric(runs["batch_size_runs"], errors="coerce") > 1]
    if batched.empty:
        return ""
    n = len(batched.drop_duplicates([c for c in ("trial_id", "host", "pid", "started_at") if c in batched]))
    return (f" {len(batched)} runs trained in {n} vectorized batch{'es' if n > 1 else ''}: each counts its share "
            f"of its batch's wall time (batch_duration_s).")


def timing_section(runs: pd.DataFrame) -> Section:
    s = Section("Timing")
    if runs.empty or "duration_s" not in runs:
        s.blocks.append(("text", "No runs yet."))
        return s
    d = run_times(runs)
    wall = (pd.to_datetime(runs["finished_at"]).max() - pd.to_datetime(runs["started_at"]).min()).total_seconds()
    s.blocks.append(("text", (f"{len(runs)} runs: total run time {d.sum():.3g} s (sum over runs), mean "
                              f"{d.mean():.3g} s, median {d.median():.3g} s, max {d.max():.3g} s; wall clock from "
                              f"the first start to the last finish {wall:.3g} s (parallelism {d.sum() / wall:.2g}x)."
                              if wall > 0 else f"{len(runs)} runs: total run time {d.sum():.3g} s.")
                     + _batch_note(runs)))
    cols = varying_config_columns(runs)
    if cols:
        per = runs.assign(duration_s=d).groupby(cols, dropna=False)["duration_s"].agg(["count", "mean", "sum"])
        per = per.reset_index().rename(columns={c: c[4:] for c in cols})
        per.columns = [*per.columns[:-3], "runs", "mean run time (s)", "total run time (s)"]
        s.blocks += [("text", "Run time per config:"), ("table", _display(per))]
    keep = ["run_id", *cols, "seed", "status", "duration_s", "device"]
    slow = runs.assign(duration_s=d).sort_values("duration_s", ascending=False).head(SLOWEST)
    slow = slow[[c for c in keep if c in slow]].rename(columns={c: c[4:] for c in cols})
    s.blocks += [("text", f"Slowest {len(slow)} runs:"), ("table", _display(slow))]
    return s


def status_section(runs: pd.DataFrame, plan) -> Section:
    s = Section("Status", [("table", pd.DataFrame([plan.counts()]).astype(str))])
    if plan.extra_rows:
        s.blocks.append(("text", f"{plan.extra_rows} rows belong to runs the current spec does not plan."))
    _, bad = status_table(plan, slowest=0)  # the same failed runs as `symsweep status`
    if not bad.empty:
        cols = varying_config_columns(runs)
        bad = bad.merge(runs[["run_id", *cols]], on="run_id", how="left")
        bad = bad.sort_values(["status", "seed"])[["run_id", *cols, "seed", "status", "error"]]
        bad = bad.rename(columns={c: c[4:] for c in cols}).assign(error=bad["error"].astype(str).str.slice(0, 160))
        s.blocks += [("text", "Failed and diverged runs:"), ("table", _display(bad, max_rows=20))]
    return s


def results_section(tables: dict[str, pd.DataFrame]) -> Section:
    """The summary, the comparison, then the task's own tables."""
    tables = dict(tables)
    s = Section("Results")
    if "summary" in tables:
        s.blocks += [("text", "Summary: mean ± std over seeds of completed runs, per config."),
                     ("table", _summary_display(tables.pop("summary")))]
    if "comparison" in tables:
        comp = tables.pop("comparison")
        s.blocks += [
            ("text", f"Comparison against the baseline {comp['axis'].iloc[0]}={comp['baseline'].iloc[0]}: mean "
                     f"[95% Student-t interval] (n), delta (relative), two-sided p-value of the named test "
                     f"(wilcoxon: paired by seed; mannwhitneyu: unpaired)."),
            ("table", format_comparison(comp).astype(str))]
    for name, df in tables.items():
        more = f" (first {MAX_ROWS} of {len(df)} rows)" if len(df) > MAX_ROWS else ""
        s.blocks += [("text", f"Table {name}{more}:"), ("table", _display(df))]
    if not s.blocks:
        s.blocks.append(("text", "No completed runs yet."))
    return s


def build_sections(spec, store: SweepStore, note: str) -> tuple[str, list[Section], dict[str, bytes]]:
    """(title, sections, figures) of a sweep; the figures are also the blocks of their section."""
    task = get_task(spec.task)
    runs = store.read_runs()
    done = completed(runs)
    metrics = list(task.summary_metrics) or [c[7:] for c in runs if c.startswith("metric_")]
    with open_results(store.uri) as results:  # the report reads what `symsweep query` reads
        tables = {n: results.aggregate(n).drop(columns="sweep") for n in results.table_names if n not in BUILTIN}
        history = pd.DataFrame()
        if HISTORY in results.table_names and not done.empty and metrics and task.figures is None:
            wanted = ", ".join("'" + m.replace("'", "''") + "'" for m in metrics)
            history = results.sql(f"SELECT run_id, step, metric, value FROM history WHERE metric IN ({wanted})")

    figures = task_figures(store)
    drawn = {"metrics_by_config": metrics_figure(done, metrics)}
    if task.figures is None:  # a task that draws figures draws its own curves
        drawn["history"] = history_figure(done, history, metrics)
    for name, png in drawn.items():
        if png is not None:
            figures.setdefault(name, png)  # a task figure of the same name wins

    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    commits = ", ".join(sorted(runs["git_commit"].dropna().astype(str).unique())) if "git_commit" in runs else ""
    devices = ", ".join(sorted(runs["device"].dropna().astype(str).unique())) if "device" in runs else ""
    sections = [
        Section("Sweep", [("text", spec.description or task.description),
                          ("text", f"Store: {store.shown}. Generated {now}. {note}".strip()),
                          ("text", f"Code: {commits or 'unknown'}. Devices: {devices or 'none yet'}.")]),
        status_section(runs, make_plan(spec, store)),
        timing_section(runs),
        results_section(tables),
        Section("Figures", [("image", n, png) for n, png in figures.items()] or [("text", "No figures.")]),
        Section("Spec (frozen spec.yaml)", [("code", yaml.safe_dump(store.read_spec(), sort_keys=False))]),
    ]
    return f"Sweep {spec.name} ({spec.task})", sections, figures


# ---------------------------------------------------------------- driver
def ensure_aggregates(spec, store: SweepStore) -> str:
    """Aggregate when the summary is missing or does not cover every completed run; say so."""
    runs = store.read_ledger(columns=["status"]).runs
    n_completed = len(completed(runs)) if not runs.empty else 0
    if n_completed == 0:
        return ""
    try:
        covered = int(store.read_aggregate("summary")["n"].sum())
    except (FileNotFoundError, KeyError, OSError, ValueError):  # missing or unreadable: aggregate again
        covered = None
    if covered == n_completed:
        return ""
    aggregate_sweep(spec, store)
    return ("Aggregates were missing: aggregated first." if covered is None else
            f"Aggregates covered {covered} of {n_completed} completed runs: aggregated again.")


def write_report(sweep_dir: str, out: str | None = None) -> tuple[str, str]:
    """Write report.md, report.html and figures/ to `out` (default SWEEP/report); (folder, note)."""
    spec, store = open_sweep(sweep_dir)
    note = ensure_aggregates(spec, store)
    title, sections, figures = build_sections(spec, store, note)
    files = {"report.md": render_markdown(title, sections).encode(),
             "report.html": render_html(title, sections).encode(),
             **{f"figures/{n}.png": png for n, png in figures.items()}}
    folder = parse_location(out) if out else store.location.join("report")
    fs = filesystem(folder)
    for rel, data in files.items():
        atomic_put(fs, folder, folder.join(*rel.split("/")).path, data, folder.path)
    return folder.uri, note
