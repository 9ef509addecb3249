"""`symsweep report`: the quickstart's report folder, its contents, and how it renders."""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from conftest import ledger, symsweep
from symsweep.compare import comparison_table

CHROMIUM = Path("/usr/bin/chromium")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory) -> Path:
    """The quickstart at a tiny budget, without its closing aggregation: the report does it."""
    root = tmp_path_factory.mktemp("results")
    res = symsweep("run", "sweeps/quickstart.yaml", "--set", "seeds=2", "--set", "epochs=1",
                   "--executor", "inline", "--no-summary", "--results", str(root))
    assert res.returncode == 0, res.stderr
    assert not (root / "quickstart" / "aggregates").exists()
    return root / "quickstart"


@pytest.fixture(scope="module")
def report(quickstart) -> Path:
    res = symsweep("report", str(quickstart))
    assert res.returncode == 0, res.stderr
    folder = quickstart / "report"
    assert res.stdout.splitlines() == ["Aggregates were missing: aggregated first.",
                                       f"report: {folder}/report.html", f"        {folder}/report.md"]
    return folder


def test_report_of_the_quickstart_holds_spec_status_timing_tables_and_figures(report, quickstart):
    md = (report / "report.md").read_text()
    for heading in ("# Sweep quickstart (image_classification)", "## Status", "## Timing", "## Results",
                    "## Figures", "## Spec (frozen spec.yaml)"):
        assert heading in md
    assert "| planned | completed | failed | diverged | pending |\n|---|---|---|---|---|\n| 4 | 4 | 0 | 0 | 0 |" in md
    assert re.search(r"4 runs: total run time [\d.]+ s \(sum over runs\), mean [\d.]+ s", md)
    assert "Slowest 4 runs:" in md
    assert "expansion_factor:\n  - 1\n  - 2" in md  # the frozen spec, verbatim YAML

    runs = ledger(quickstart)
    summary = pq.read_table(quickstart / "aggregates" / "summary.parquet").to_pandas()
    for k in (1, 2):
        acc = runs.loc[runs["cfg_expansion_factor"] == k, "metric_test_acc"]
        assert summary.loc[summary["expansion_factor"] == k, "n"].item() == 2
        row = [line for line in md.splitlines() if line.startswith(f"| {k} | ") and " ± " in line]
        assert len(row) == 1 and f" | 2 | {acc.mean():.4g} ± {acc.std():.2g} | " in row[0], row

    # the comparison table was written by aggregation, and the report shows its numbers
    comparison = pq.read_table(quickstart / "aggregates" / "comparison.parquet").to_pandas()
    expected = comparison_table(runs, {"expansion_factor": 1}, ["test_acc", "best_test_acc"])
    pd.testing.assert_frame_equal(comparison, expected)
    row = comparison[comparison["metric"] == "test_acc"].iloc[0]
    assert (row["test"], row["n"], row["n_base"]) == ("wilcoxon", 2, 2)  # the same seeds 0, 1 on both sides
    assert f"| test_acc | expansion_factor=2 vs 1 | {row['mean_base']:.4g} [{row['ci_low_base']:.4g}, " in md
    assert f"| {row['delta']:+.4g} ({row['rel_delta']:+.1%}) | wilcoxon | {row['p_value']:.3g} |" in md

    task_figures = {p.name for p in (quickstart / "aggregates" / "figures").glob("*.png")}
    assert task_figures and set(os.listdir(report / "figures")) == task_figures | {"metrics_by_config.png"}
    for name in os.listdir(report / "figures"):
        assert f"![{name[:-4]}](figures/{name})" in md
        assert (report / "figures" / name).read_bytes().startswith(PNG_MAGIC)


def test_report_html_is_self_contained(report):
    html = (report / "report.html").read_text()
    assert html.startswith("<!doctype html>") and "<style>" in html
    assert html.count("src='data:image/png;base64,") == len(os.listdir(report / "figures"))  # all embedded
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", html)  # nothing fetched from elsewhere
    assert "<th>compared</th>" in html and "expansion_factor=2 vs 1" in html


def test_report_reaggregates_stale_tables_and_writes_where_asked(tmp_path):
    spec = tmp_path / "syn.yaml"
    spec.write_text("name: syn\ntask: synthetic\naxes: {steps: [5, 10]}\nseeds: 2\n")
    assert symsweep("run", str(spec), "--results", str(tmp_path), "--executor", "inline").returncode == 0
    more = symsweep("run", str(spec), "--set", "seeds=3", "--force", "--no-summary", "--results", str(tmp_path),
                    "--executor", "inline")
    assert more.returncode == 0, more.stderr
    task_figure = tmp_path / "syn" / "aggregates" / "figures" / "custom.png"  # as a task's `figures` leaves it
    task_figure.parent.mkdir(parents=True)
    task_figure.write_bytes(PNG_MAGIC + b"a task figure")
    res = symsweep("report", str(tmp_path / "syn"), "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0] == "Aggregates covered 4 of 6 completed runs: aggregated again."
    md = (tmp_path / "out" / "report.md").read_text()
    assert "![custom](figures/custom.png)" in md
    assert (tmp_path / "out" / "figures" / "custom.png").read_bytes() == task_figure.read_bytes()
    assert "| 5 | 3 |" in md and "| 10 | 3 |" in md  # the summary now counts the third seed
    assert "![history](figures/history.png)" in md  # drawn for a task without figures of its own
    assert "Comparison against the baseline" not in md  # the synthetic task declares none
    assert not (tmp_path / "syn" / "report").exists()
    again = symsweep("report", str(tmp_path / "syn"))
    assert again.returncode == 0 and again.stdout.startswith("report: ")  # fresh: no re-aggregation


def test_report_of_a_folder_that_is_not_a_sweep_fails_clearly(tmp_path):
    res = symsweep("report", str(tmp_path))
    assert res.returncode == 2 and "is not a sweep folder (no spec.yaml)" in res.stderr
    assert res.stderr.count("\n") == 1


@pytest.mark.chromium
def test_report_html_renders_in_headless_chromium(report, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)")
    import matplotlib.image as mpimg
    import numpy as np

    shot = tmp_path / "report.png"
    subprocess.run([str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,3000",
                    (report / "report.html").as_uri()], capture_output=True, timeout=120, check=True)
    pixels = (mpimg.imread(shot)[..., :3] * 255).round().astype(int)
    assert pixels.shape == (3000, 1200, 3)
    assert (pixels.sum(axis=-1) < 300).mean() > 0.005  # dark text was drawn
    # the embedded figure rendered: its red mean markers (#cc3333) are on the page
    assert (np.abs(pixels - [204, 51, 51]).sum(axis=-1) < 30).sum() > 50


def _batch_rows(**columns) -> pd.DataFrame:
    """Three runs trained together in one 30 s batch, and one run alone for 10 s after it."""
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    started = [t0] * 3 + [t0 + pd.Timedelta(seconds=30)]
    finished = [t0 + pd.Timedelta(seconds=30)] * 3 + [t0 + pd.Timedelta(seconds=40)]
    return pd.DataFrame({"run_id": list("abcd"), "seed": [0, 1, 2, 3], "status": "completed", "device": "cpu:x",
                         "started_at": started, "finished_at": finished, "batch_size_runs": [3, 3, 3, 1],
                         **columns})


@pytest.mark.parametrize("rows", [
    _batch_rows(duration_s=[10.0, 10.0, 10.0, 10.0], batch_duration_s=[30.0, 30.0, 30.0, None]),
    _batch_rows(duration_s=[30.0, 30.0, 30.0, 10.0]),  # rows written before batch_duration_s: the batch's time
], ids=["shares", "older rows"])
def test_report_timing_counts_a_batch_once(rows):
    from symsweep.report import timing_section
    text = timing_section(rows).blocks[0][1]
    assert "4 runs: total run time 40 s (sum over runs)" in text, text
    assert "wall clock from the first start to the last finish 40 s (parallelism 1x)" in text, text
    assert "3 runs trained in 1 vectorized batch" in text, text
