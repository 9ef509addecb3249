"""`symsweep query` and the notebook API: SQL over the Parquet tables, in place, across sweeps."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import symsweep
from orchestrator import QueryError, open_results
from orchestrator.store import HISTORY_SCHEMA

SYN = """
name: syn
task: synthetic
axes: {steps: [5, 10]}
seeds: 3
runs_per_trial: 3
"""


def _parquet_rows(folder: Path) -> pd.DataFrame:
    """The rows of every file in a folder (the sweep is folded into one segment at its end)."""
    files = sorted(folder.glob("*.parquet"))
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def _rows(stdout: str) -> list[list[str]]:
    """The printed table's rows (header dropped), split on whitespace."""
    return [line.split() for line in stdout.strip().splitlines()[1:]]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    """A results root with two sweeps of two tasks: their config columns differ."""
    root = tmp_path_factory.mktemp("results")
    spec = root.parent / "syn.yaml"
    spec.write_text(SYN)
    res = symsweep("run", str(spec), "--results", str(root), "--executor", "inline")
    assert res.returncode == 0, res.stderr
    res = symsweep("run", "sweeps/quickstart.yaml", "--set", "seeds=1", "--set", "epochs=1",
                   "--results", str(root), "--executor", "inline")
    assert res.returncode == 0, res.stderr
    return root


def test_query_one_sweep_prints_the_rows_in_every_format(results):
    sql = "SELECT cfg_steps, count(*) AS n, max(seed) AS last_seed FROM runs GROUP BY 1 ORDER BY 1"
    res = symsweep("query", sql, "--results", str(results / "syn"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines()[0].split() == ["cfg_steps", "n", "last_seed"]
    assert _rows(res.stdout) == [["5", "3", "2"], ["10", "3", "2"]]

    csv = symsweep("query", sql, "--results", str(results / "syn"), "--format", "csv")
    assert csv.stdout.splitlines() == ["cfg_steps,n,last_seed", "5,3,2", "10,3,2"]
    js = symsweep("query", sql, "--results", str(results / "syn"), "--format", "json")
    assert json.loads(js.stdout) == [{"cfg_steps": 5, "n": 3, "last_seed": 2},
                                     {"cfg_steps": 10, "n": 3, "last_seed": 2}]


def test_query_reads_the_same_numbers_as_the_parquet_files(results):
    runs = _parquet_rows(results / "syn" / "runs")
    history = _parquet_rows(results / "syn" / "history")
    sql = ("SELECT r.cfg_steps, round(avg(r.metric_loss), 9) AS loss, "
           "(SELECT count(*) FROM history h WHERE h.sweep = 'syn') AS history_rows "
           "FROM runs r WHERE r.sweep = 'syn' GROUP BY 1 ORDER BY 1")
    res = symsweep("query", sql, "--results", str(results), "--format", "json")
    assert res.returncode == 0, res.stderr
    expected = runs.groupby("cfg_steps")["metric_loss"].mean()
    got = json.loads(res.stdout)
    assert [r["cfg_steps"] for r in got] == [5, 10]
    assert [r["loss"] for r in got] == pytest.approx(list(expected), abs=1e-8)
    assert {r["history_rows"] for r in got} == {len(history)}
    summary = symsweep("query", "SELECT sweep, steps, n FROM summary ORDER BY steps", "--results", str(results / "syn"))
    assert _rows(summary.stdout) == [["syn", "5", "3"], ["syn", "10", "3"]]


def test_cross_sweep_query_unions_different_config_columns(results):
    sql = ("SELECT sweep, task, count(*) AS n, count(cfg_steps) AS with_steps, "
           "count(cfg_expansion_factor) AS with_factor FROM runs GROUP BY ALL ORDER BY sweep")
    res = symsweep("query", sql, "--results", str(results))
    assert res.returncode == 0, res.stderr
    assert _rows(res.stdout) == [["quickstart", "image_classification", "2", "0", "2"],
                                 ["syn", "synthetic", "6", "6", "0"]]
    # aggregate tables of several sweeps: one view, a `sweep` column, union by column name
    res = symsweep("query", "SELECT sweep, count(*) AS n, count(steps) AS s, count(expansion_factor) AS k "
                   "FROM summary GROUP BY 1 ORDER BY 1", "--results", str(results))
    assert _rows(res.stdout) == [["quickstart", "2", "0", "2"], ["syn", "2", "2", "0"]]


def test_bad_sql_and_unknown_tables_fail_with_one_line_listing_the_tables(results):
    cases = {
        "SELEC 1": "Parser Error: syntax error at or near",
        "SELECT * FROM nope": "Table with name nope does not exist",
        "SELECT no_such_column FROM runs": 'Referenced column "no_such_column" not found',
    }
    for sql, message in cases.items():
        res = symsweep("query", sql, "--results", str(results / "syn"))
        assert res.returncode == 2, (sql, res.stdout)
        assert res.stdout == "" and res.stderr.count("\n") == 1, res.stderr  # one line, no traceback
        assert message in res.stderr, res.stderr
        assert "available tables: runs(run_id, sweep, task" in res.stderr
        assert f"history(sweep, {', '.join(HISTORY_SCHEMA.names)})" in res.stderr
        assert "summary(sweep, steps, n, loss_mean, loss_std)" in res.stderr
    res = symsweep("query", "SELECT 1", "--results", str(results / "syn" / "runs"))
    assert res.returncode == 2 and "is neither a sweep folder (no spec.yaml) nor a results root" in res.stderr
    res = symsweep("query", "SELECT 1", "--results", str(results), "--format", "xml")
    assert res.returncode == 2 and "invalid choice: 'xml'" in res.stderr


def test_python_api_gives_dataframes_arrow_and_sql(results):
    with open_results(str(results)) as r:
        # runs, history, then the aggregates of both sweeps (the image task adds its own tables)
        assert r.table_names[:2] == ["runs", "history"] and {"comparison", "summary"} <= set(r.table_names)
        runs = r.runs()
        assert isinstance(runs, pd.DataFrame) and len(runs) == 8
        assert {"cfg_steps", "cfg_expansion_factor", "metric_loss", "metric_test_acc"} <= set(runs.columns)
        assert isinstance(r.table("history"), pa.Table)
        assert set(r.history()["sweep"]) == {"syn", "quickstart"}
        assert sorted(r.aggregate("summary")["sweep"]) == ["quickstart", "quickstart", "syn", "syn"]
        assert set(r.aggregate("comparison")["sweep"]) == {"quickstart"}  # synthetic has no baseline
        df = r.sql("SELECT count(*) AS n FROM runs WHERE status = 'completed'")
        assert df["n"].tolist() == [8]
        with pytest.raises(QueryError, match=r"no table 'nope' in .*; available tables: runs, history, .*summary"):
            r.aggregate("nope")
        with pytest.raises(QueryError, match=r"'runs' is not an aggregate table; use .runs\(\)"):
            r.aggregate("runs")


def test_views_read_the_files_in_place_so_new_runs_show_up(tmp_path):
    spec = tmp_path / "syn.yaml"
    spec.write_text(SYN)
    assert symsweep("run", str(spec), "--results", str(tmp_path), "--executor", "inline").returncode == 0
    with open_results(str(tmp_path / "syn")) as r:
        assert r.sql("SELECT count(*) AS n FROM runs")["n"].tolist() == [6]
        more = symsweep("run", str(spec), "--set", "seeds=4", "--force", "--results", str(tmp_path),
                        "--executor", "inline")
        assert more.returncode == 0, more.stderr
        assert r.sql("SELECT count(*) AS n FROM runs")["n"].tolist() == [8]  # no copy, no reopen


def test_the_documented_history_join_works_after_the_sweep_folder_is_renamed(tmp_path):
    """Every table's `sweep` is the folder's name, so (sweep, run_id) joins after a rename too."""
    spec = tmp_path / "syn.yaml"
    spec.write_text(SYN)
    assert symsweep("run", str(spec), "--results", str(tmp_path / "res"), "--executor", "inline").returncode == 0
    (tmp_path / "res" / "syn").rename(tmp_path / "res" / "syn-2024")
    sql = ("SELECT r.sweep, count(*) AS n, (SELECT count(*) FROM history) AS history_rows "
           "FROM history h JOIN runs r USING (sweep, run_id) GROUP BY ALL")
    for where in (tmp_path / "res" / "syn-2024", tmp_path / "res"):
        res = symsweep("query", sql, "--results", str(where), "--format", "json")
        assert res.returncode == 0, res.stderr
        (row,) = json.loads(res.stdout)
        assert row["sweep"] == "syn-2024" and row["n"] == row["history_rows"] > 0


def _three_runs_in_one_damaged_segment(tmp_path, sub: str) -> Path:
    """A 3-run sweep, folded into one segment at its end, whose one `sub` file is cut to 100 bytes."""
    tmp_path.mkdir(exist_ok=True)
    spec = tmp_path / "syn.yaml"
    spec.write_text("name: syn\ntask: synthetic\nseeds: 3\nruns_per_trial: 3\n")
    assert symsweep("run", str(spec), "--results", str(tmp_path / "res"), "--executor", "inline").returncode == 0
    (only,) = (tmp_path / "res" / "syn" / sub).glob("*.parquet")
    only.write_bytes(only.read_bytes()[:100])
    return only


def test_a_table_with_no_readable_file_is_empty_with_its_documented_columns(tmp_path):
    from orchestrator.store import HISTORY_SCHEMA, RUN_COLUMNS
    bad = _three_runs_in_one_damaged_segment(tmp_path, "runs")
    for where in (tmp_path / "res" / "syn", tmp_path / "res"):
        res = symsweep("query", "select count(*) from runs", "--results", str(where))
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == ["count_star()", "0"]
        assert f"warning: skipped unreadable file {bad}" in res.stderr and "Traceback" not in res.stderr
    res = symsweep("query", "SELECT * FROM runs", "--results", str(tmp_path / "res"), "--format", "csv")
    assert res.returncode == 0 and res.stdout.strip() == ",".join(RUN_COLUMNS), res.stderr
    res = symsweep("query", "SELECT seed + 1 AS s, max(duration_s) AS d FROM runs GROUP BY 1",
                   "--results", str(tmp_path / "res"))
    assert res.returncode == 0, res.stderr  # typed columns: arithmetic on them works, on no rows

    bad = _three_runs_in_one_damaged_segment(tmp_path / "h", "history")
    res = symsweep("query", "SELECT * FROM history", "--results", str(tmp_path / "h" / "res"), "--format", "csv")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ",".join(["sweep", *HISTORY_SCHEMA.names])
    assert f"warning: skipped unreadable file {bad}" in res.stderr
