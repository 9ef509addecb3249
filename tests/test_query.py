"""`symsweep query` and the notebook API: SQL over the Parquet tables, in place, across sweeps."""
from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import duckdb
from conftest import symsweep
from symsweep import QueryError, open_results
from symsweep.store import HISTORY_SCHEMA

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
    from symsweep.store import HISTORY_SCHEMA, RUN_COLUMNS
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


# ----------------------------------------------------------------------------- printing every type

# Every DuckDB type, special values included: (SQL, as table and CSV print it, as JSON prints it).
# None: NULL (table: NULL, CSV: empty). Times with a zone print in UTC.
TYPES = [
    ("true", "true", "true"),
    ("-7::TINYINT", "-7", "-7"),
    ("-300::SMALLINT", "-300", "-300"),
    ("-70000::INTEGER", "-70000", "-70000"),
    ("-5000000000::BIGINT", "-5000000000", "-5000000000"),
    ("170141183460469231731687303715884105727::HUGEINT", "170141183460469231731687303715884105727",
     "170141183460469231731687303715884105727"),
    ("255::UTINYINT", "255", "255"),
    ("65535::USMALLINT", "65535", "65535"),
    ("4294967295::UINTEGER", "4294967295", "4294967295"),
    ("18446744073709551615::UBIGINT", "18446744073709551615", "18446744073709551615"),
    ("340282366920938463463374607431768211455::UHUGEINT", "340282366920938463463374607431768211455",
     "340282366920938463463374607431768211455"),
    ("0.5::FLOAT", "0.5", "0.5"),
    ("0.1::DOUBLE", "0.1", "0.1"),
    ("'nan'::DOUBLE", "NaN", '"NaN"'),
    ("'nan'::FLOAT", "NaN", '"NaN"'),
    ("'inf'::DOUBLE", "inf", '"Infinity"'),
    ("'-inf'::FLOAT", "-inf", '"-Infinity"'),
    ("1.23::DECIMAL(10, 2)", "1.23", "1.23"),
    ("12345678901234567890123456789.123456789::DECIMAL(38, 9)", "12345678901234567890123456789.123456789",
     "12345678901234567890123456789.123456789"),
    ("'héllo, \"world\"'", 'héllo, "world"', '"héllo, \\"world\\""'),
    ("'\\xFF\\x00'::BLOB", "\\xFF\\x00", '"\\\\xFF\\\\x00"'),
    ("'abc'::BLOB", "abc", '"abc"'),
    ("DATE '2024-01-02'", "2024-01-02", '"2024-01-02"'),
    ("DATE '99999-01-01'", "99999-01-01", '"99999-01-01"'),
    ("'infinity'::DATE", "infinity", '"infinity"'),
    ("'-infinity'::DATE", "-infinity", '"-infinity"'),
    ("TIME '12:34:56'", "12:34:56", '"12:34:56"'),
    ("'12:00:00.123456789'::TIME_NS", "12:00:00.123456789", '"12:00:00.123456789"'),
    ("'12:00:00+02'::TIMETZ", "12:00:00+02", '"12:00:00+02"'),
    ("TIMESTAMP '2024-01-02 03:04:05'", "2024-01-02 03:04:05", '"2024-01-02 03:04:05"'),
    ("'infinity'::TIMESTAMP", "infinity", '"infinity"'),
    ("'-infinity'::TIMESTAMP", "-infinity", '"-infinity"'),
    ("TIMESTAMPTZ '2024-01-02 03:04:05+02'", "2024-01-02 01:04:05+00", '"2024-01-02 01:04:05+00"'),
    ("'infinity'::TIMESTAMPTZ", "infinity", '"infinity"'),
    ("'2024-01-02 03:04:05'::TIMESTAMP_S", "2024-01-02 03:04:05", '"2024-01-02 03:04:05"'),
    ("'2024-01-02 03:04:05.123'::TIMESTAMP_MS", "2024-01-02 03:04:05.123", '"2024-01-02 03:04:05.123"'),
    ("'2024-01-02 03:04:05.123456789'::TIMESTAMP_NS", "2024-01-02 03:04:05.123456789",
     '"2024-01-02 03:04:05.123456789"'),
    ("INTERVAL '1 year 2 months 3 days 04:05:06.5'", "1 year 2 months 3 days 04:05:06.5",
     '"1 year 2 months 3 days 04:05:06.5"'),
    ("'5a1f7d3e-9c1b-4e2a-8f00-0123456789ab'::UUID", "5a1f7d3e-9c1b-4e2a-8f00-0123456789ab",
     '"5a1f7d3e-9c1b-4e2a-8f00-0123456789ab"'),
    ("'0101'::BIT", "0101", '"0101"'),
    ("'b'::ENUM('a', 'b')", "b", '"b"'),
    ("[1, NULL, 3]", "[1, NULL, 3]", "[1,null,3]"),
    ("['x', 'y']", "[x, y]", '["x","y"]'),
    ("['nan'::DOUBLE, 'inf', '-inf']", "[nan, inf, -inf]", '["NaN","Infinity","-Infinity"]'),
    ("{'a': 1, 'd': 'infinity'::DATE}", "{'a': 1, 'd': infinity}", '{"a":1,"d":"infinity"}'),
    ("MAP {'k': 1}", "{k=1}", '{"k":1}'),
    ("union_value(num := 2)::UNION(num INTEGER, str VARCHAR)", "2", '{"num":2}'),
    ("[1, 2]::INTEGER[2]", "[1, 2]", "[1,2]"),
    ("'{\"a\": [1, 2]}'::JSON", '{"a": [1, 2]}', '{"a":[1,2]}'),
    ("12345678901234567890123456789::VARINT", "12345678901234567890123456789", "12345678901234567890123456789"),
    ("42::VARIANT", "42", "42"),
    ("'POINT(1 2)'::GEOMETRY", "POINT (1 2)", '"POINT (1 2)"'),
    ("NULL", None, "null"),
    ("NULL::DATE", None, "null"),
]


@pytest.fixture(scope="module")
def no_tables(tmp_path_factory) -> Path:
    """A sweep folder with no runs yet: enough to ask DuckDB about literals."""
    folder = tmp_path_factory.mktemp("empty") / "sweep"
    folder.mkdir()
    (folder / "spec.yaml").write_text("name: sweep\n")
    return folder


def _strict_json(text: str):
    """json.loads that refuses NaN / Infinity, which are not JSON."""
    def refuse(word):
        raise ValueError(f"not JSON: {word}")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
@pytest.mark.parametrize("sql,text,as_json", TYPES, ids=[t[0] for t in TYPES])
def test_every_duckdb_type_prints_in_every_format(no_tables, sql, text, as_json, fmt):
    try:
        duckdb.sql(f"SELECT {sql}")
    except duckdb.Error as exc:  # a type that this DuckDB version does not have
        pytest.skip(f"{sql}: {exc}")
    res = symsweep("query", f"SELECT {sql} AS x", "--results", str(no_tables), "--format", fmt)
    assert res.returncode == 0 and res.stderr == "", res.stderr
    if fmt == "table":
        assert [line.strip() for line in res.stdout.splitlines()] == ["x", "NULL" if text is None else text]
    elif fmt == "csv":
        assert list(csv.reader(io.StringIO(res.stdout))) == [["x"], ["" if text is None else text]]
    else:
        assert res.stdout.strip() == '[{"x": ' + as_json + '}]'
        _strict_json(res.stdout)


def test_duplicate_column_names_print_in_every_format(no_tables):
    sql = "SELECT 1 AS a, 2 AS a, 3 AS a_1"
    table = symsweep("query", sql, "--results", str(no_tables))
    assert table.returncode == 0 and _rows(table.stdout) == [["1", "2", "3"]]
    assert table.stdout.split()[:3] == ["a", "a", "a_1"]
    csv_ = symsweep("query", sql, "--results", str(no_tables), "--format", "csv")
    assert csv_.stdout.splitlines() == ["a,a,a_1", "1,2,3"]
    js = symsweep("query", sql, "--results", str(no_tables), "--format", "json")
    assert js.returncode == 0, js.stderr
    assert _strict_json(js.stdout) == [{"a": 1, "a_2": 2, "a_1": 3}]  # made unique: a_1 is taken


def test_nan_and_infinity_are_not_null(no_tables):
    sql = "SELECT * FROM (VALUES (1, 'nan'::DOUBLE), (2, NULL), (3, 'inf'), (4, '-inf'), (5, 1.5)) t(i, v) ORDER BY i"
    table = symsweep("query", sql, "--results", str(no_tables))
    assert _rows(table.stdout) == [["1", "NaN"], ["2", "NULL"], ["3", "inf"], ["4", "-inf"], ["5", "1.5"]]
    csv_ = symsweep("query", sql, "--results", str(no_tables), "--format", "csv")
    assert csv_.stdout.splitlines() == ["i,v", "1,NaN", "2,", "3,inf", "4,-inf", "5,1.5"]
    js = symsweep("query", sql, "--results", str(no_tables), "--format", "json")
    assert [r["v"] for r in _strict_json(js.stdout)] == ["NaN", None, "Infinity", "-Infinity", 1.5]
    assert pd.Series([r["v"] for r in _strict_json(js.stdout)], dtype=float).isna().tolist() == [
        True, True, False, False, False]  # the strings read back as floats


def test_a_table_prints_1000_rows_unless_told_and_says_how_many_were_left_out(no_tables):
    sql = "SELECT range AS i FROM range(2500)"
    res = symsweep("query", sql, "--results", str(no_tables))
    assert res.returncode == 0
    assert res.stdout.split() == ["i", *map(str, range(1000))]
    assert res.stderr.splitlines() == ["note: printed the first 1000 of 2500 rows (--limit N for more, "
                                       "--limit 0 for all)"]
    every = symsweep("query", sql, "--results", str(no_tables), "--limit", "0")
    assert every.stdout.split() == ["i", *map(str, range(2500))] and every.stderr == ""
    assert symsweep("query", sql, "--results", str(no_tables), "--format", "csv").stdout.count("\n") == 2501
    js = symsweep("query", sql, "--results", str(no_tables), "--format", "json", "--limit", "3")
    assert _strict_json(js.stdout) == [{"i": 0}, {"i": 1}, {"i": 2}] and "first 3 of 2500 rows" in js.stderr
    exact = symsweep("query", "SELECT 1 AS i UNION ALL SELECT 2", "--results", str(no_tables), "--limit", "2")
    assert exact.stdout.split() == ["i", "1", "2"] and exact.stderr == ""
    bad = symsweep("query", sql, "--results", str(no_tables), "--limit", "-1")
    assert bad.returncode == 2 and "expected a whole number >= 0, got -1" in bad.stderr


def test_a_runaway_query_stops_at_its_timeout_in_one_line(no_tables):
    endless = "SELECT count(*) FROM range(1000000) a, range(1000000) b WHERE a.range + b.range = 7"
    started = time.monotonic()
    res = symsweep("query", endless, "--results", str(no_tables), "--timeout", "1")
    assert time.monotonic() - started < 10
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.splitlines() == ["symsweep: error: query stopped after 1 s (--timeout 1; --timeout 0 for "
                                       "no limit)"]
    bad = symsweep("query", "SELECT 1", "--results", str(no_tables), "--timeout", "soon")
    assert bad.returncode == 2 and "expected seconds >= 0 (0: no limit), got 'soon'" in bad.stderr
    with open_results(str(no_tables), timeout_s=0.5) as r:
        with pytest.raises(QueryError, match=r"query stopped after 0.5 s"):
            r.sql(endless)
        assert r.sql("SELECT 42 AS x")["x"].tolist() == [42]  # the connection still answers


def test_an_error_while_the_query_runs_is_the_querys_error_in_every_format(no_tables):
    for fmt in ("table", "csv", "json"):
        res = symsweep("query", "SELECT 'abc'::INTEGER AS x", "--results", str(no_tables), "--format", fmt)
        assert res.returncode == 2 and res.stdout == "" and res.stderr.count("\n") == 1, res.stderr
        assert "Conversion Error: Could not convert string 'abc' to INT32; available tables" in res.stderr
