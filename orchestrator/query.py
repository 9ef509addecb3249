"""SQL and DataFrames over sweeps' Parquet tables, read in place by DuckDB.

A results path is one sweep folder (it has spec.yaml) or a results root holding several.
`open_results(path)` exposes the same views over one sweep or many:

    runs     runs/*.parquet of every sweep, unioned by column name: a column that one sweep
             lacks (another task's cfg_/metric_ columns) is NULL in the others' rows
    history  history/*.parquet with a leading `sweep` column (the folder's name): a run id
             is the same in two sweeps that ran the same run, so join on (sweep, run_id)
    <name>   each aggregate table, aggregates/<name>.parquet, with a leading `sweep` column

Nothing is copied and no server runs: every view is a `read_parquet` over the files, bound
again at each query, so a query during a running sweep sees the runs finished so far (the
set of sweeps and aggregate tables is read when the results are opened).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs

from orchestrator.errors import QueryError, StoreError
from orchestrator.store import AGGREGATES, HISTORY, RUNS, open_filesystem

FORMATS = ("table", "csv", "json")
BUILTIN = (RUNS, HISTORY)


@dataclass(frozen=True)
class SweepFiles:
    """One sweep folder as DuckDB sees it: what it has to read, where."""

    name: str
    location: str
    """A local path, or a URI that DuckDB opens (s3://, gs:// need its httpfs extension)."""
    has_runs: bool
    has_history: bool
    aggregates: tuple[str, ...]


# ---------------------------------------------------------------- discovery
def find_sweeps(path: str) -> list[SweepFiles]:
    """The sweep folders at `path`: itself if it has spec.yaml, else its subfolders that do."""
    fs, root, is_local = open_filesystem(path)
    scheme = "" if is_local else path.split("://", 1)[0] + "://"

    def is_file(p: str) -> bool:
        return fs.get_file_info(p).type == pafs.FileType.File

    def names(p: str, suffix: str) -> list[str]:
        infos = fs.get_file_info(pafs.FileSelector(p, allow_not_found=True))
        return sorted(i.base_name[:-len(suffix)] for i in infos if i.type == pafs.FileType.File
                      and i.base_name.endswith(suffix) and not i.base_name.startswith("."))

    def sweep(folder: str) -> SweepFiles:
        return SweepFiles(name=folder.rstrip("/").rsplit("/", 1)[-1], location=scheme + folder,
                          has_runs=bool(names(f"{folder}/{RUNS}", ".parquet")),
                          has_history=bool(names(f"{folder}/{HISTORY}", ".parquet")),
                          aggregates=tuple(names(f"{folder}/{AGGREGATES}", ".parquet")))

    if is_file(f"{root}/spec.yaml"):
        return [sweep(root)]
    try:
        infos = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    except OSError as exc:
        raise StoreError(f"cannot list {path}: {exc}") from None
    folders = sorted(i.path for i in infos if i.type == pafs.FileType.Directory and is_file(f"{i.path}/spec.yaml"))
    if not folders:
        raise QueryError(f"{path} is neither a sweep folder (no spec.yaml) nor a results root holding "
                         f"sweep folders; pass --results RESULTS or RESULTS/<sweep>")
    return [sweep(f) for f in folders]


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def view_sql(sweeps: list[SweepFiles]) -> dict[str, str]:
    """table name -> the SELECT its view runs; tables no sweep has files for are left out."""
    views = {}
    runs = [_lit(f"{s.location}/{RUNS}/*.parquet") for s in sweeps if s.has_runs]
    if runs:
        views[RUNS] = f"SELECT * FROM read_parquet([{', '.join(runs)}], union_by_name = true)"
    parts = [f"SELECT {_lit(s.name)} AS sweep, * FROM read_parquet({_lit(f'{s.location}/{HISTORY}/*.parquet')})"
             for s in sweeps if s.has_history]
    if parts:
        views[HISTORY] = "\nUNION ALL BY NAME\n".join(parts)
    for name in sorted({a for s in sweeps for a in s.aggregates}):
        if name in BUILTIN:
            raise QueryError(f"aggregate table {name!r} would hide the {name!r} view; rename it in the task's "
                             f"aggregate() (names other than {', '.join(BUILTIN)} are allowed)")
        # union_by_name: one task's aggregate table may gain columns between versions
        parts = [f"SELECT {_lit(s.name)} AS sweep, * FROM read_parquet("
                 f"{_lit(f'{s.location}/{AGGREGATES}/{name}.parquet')}, union_by_name = true)"
                 for s in sweeps if name in s.aggregates]
        views[name] = "\nUNION ALL BY NAME\n".join(parts)
    return views


# ---------------------------------------------------------------- the results object
class Results:
    """The tables of one sweep folder or of every sweep under a results root.

    >>> r = open_results("results/quickstart")
    >>> r.runs()                                  # pandas, one row per run
    >>> r.aggregate("comparison")                 # an aggregate table, pandas
    >>> r.table("history")                        # any table as a pyarrow Table
    >>> r.sql("SELECT cfg_expansion_factor, avg(metric_test_acc) FROM runs GROUP BY 1")
    """

    def __init__(self, path: str):
        self.path = path
        self.sweeps = find_sweeps(path)
        self._views = view_sql(self.sweeps)
        self._con = duckdb.connect()  # in memory: it holds views only, never a copy of the data
        for name, select in self._views.items():
            self._con.execute(f"CREATE VIEW {_ident(name)} AS {select}")
        self._columns: dict[str, list[str]] | None = None

    def __repr__(self) -> str:
        return f"Results({self.path!r}: {len(self.sweeps)} sweeps, tables {', '.join(self._views) or 'none'})"

    def __enter__(self) -> "Results":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._con.close()

    @property
    def table_names(self) -> list[str]:
        return list(self._views)

    def columns(self) -> dict[str, list[str]]:
        """table -> its column names (read from the files' footers on first use)."""
        if self._columns is None:
            self._columns = {name: [row[0] for row in self._con.execute(f"DESCRIBE {_ident(name)}").fetchall()]
                             for name in self._views}
        return self._columns

    def describe_tables(self) -> str:
        """`runs(run_id, sweep, ...); history(...)`: what error messages list."""
        try:
            cols = self.columns()
        except duckdb.Error as exc:  # a file unreadable at describe time: still name the tables
            return f"{', '.join(self._views)} (columns unreadable: {_first_line(exc)})"
        return "; ".join(f"{name}({', '.join(c)})" for name, c in cols.items()) or "none (no Parquet files yet)"

    def _relation(self, query: str):
        try:
            return self._con.sql(query)
        except duckdb.Error as exc:
            raise QueryError(f"{_first_line(exc)}; available tables: {self.describe_tables()}") from None

    def sql_arrow(self, query: str) -> pa.Table:
        rel = self._relation(query)
        if rel is None:  # a statement without a result (CREATE VIEW ..., SET ...)
            return pa.table({})
        try:
            # DuckDB 2 renamed the table export (`.arrow()` now returns a reader); 1.x lacks the new name.
            export = getattr(rel, "to_arrow_table", None) or rel.arrow
            return export()
        except duckdb.Error as exc:  # errors found while reading (a type mismatch, a bad file)
            raise QueryError(f"{_first_line(exc)}; available tables: {self.describe_tables()}") from None

    def sql(self, query: str) -> pd.DataFrame:
        """Run SQL over the views; the result as a pandas DataFrame."""
        return self.sql_arrow(query).to_pandas()

    def table(self, name: str) -> pa.Table:
        """One table (runs, history or an aggregate) as a pyarrow Table."""
        if name not in self._views:
            raise QueryError(f"no table {name!r} in {self.path}; available tables: {', '.join(self._views) or 'none'}")
        return self.sql_arrow(f"SELECT * FROM {_ident(name)}")

    def runs(self) -> pd.DataFrame:
        return self.table(RUNS).to_pandas()

    def history(self) -> pd.DataFrame:
        return self.table(HISTORY).to_pandas()

    def aggregate(self, name: str) -> pd.DataFrame:
        if name in BUILTIN:
            raise QueryError(f"{name!r} is not an aggregate table; use .{name}() (aggregates: "
                             f"{', '.join(n for n in self._views if n not in BUILTIN) or 'none'})")
        return self.table(name).to_pandas()


def open_results(path: str) -> Results:
    """Open a sweep folder or a results root for SQL and DataFrames (see `Results`)."""
    return Results(path)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# ---------------------------------------------------------------- printing
def format_result(table: pa.Table, fmt: str = "table") -> str:
    """A query result as an aligned table, CSV or a JSON array of records."""
    if fmt not in FORMATS:
        raise QueryError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    df = table.to_pandas()
    if fmt == "csv":
        return df.to_csv(index=False).rstrip("\n")
    if fmt == "json":
        # via pandas for ISO timestamps and NaN -> null; re-dumped to drop its escaped slashes
        return json.dumps(json.loads(df.to_json(orient="records", date_format="iso")))
    if df.empty:
        return "  ".join(df.columns) + "\n(0 rows)"
    return df.to_string(index=False, na_rep="NULL")
