"""SQL and DataFrames over sweeps' tables, read through the store, answered by DuckDB.

A results path is one sweep folder (it has spec.yaml) or a results root holding several.
`open_results(path)` exposes the same tables over one sweep or many:

    runs     the runs table of every sweep (one row per run id), unioned by column name: a
             column that one sweep lacks (another task's cfg_/metric_ columns) is NULL there
    history  every run's history, with a leading `sweep` column: a run id is the same in
             two sweeps that ran the same run, so join on (sweep, run_id)
    <name>   each aggregate table, aggregates/<name>.parquet, with a leading `sweep` column

In every table `sweep` is the sweep folder's name, the runs table's too (its rows hold the
name the spec had when they ran): after a folder is renamed or copied, the tables still
join on (sweep, run_id) and the copies stay apart. A table with no readable file is empty,
with its columns (runs: the documented run columns, history: sweep + HISTORY_SCHEMA).

The tables are read by the store's own reader (local disk or any pyarrow filesystem: S3
needs no DuckDB extension), which skips unreadable files and lists them in `skipped`, and
are read again at each query, so a query during a running sweep sees the runs finished so
far. Only the tables a query names are read.

Queries are read-only: DuckDB is opened with external access disabled and its settings
locked, so SQL can read these tables and nothing else: no file reads or writes (COPY,
read_csv, ATTACH), no extension installs or loads. Temporary tables and views live in
memory and vanish with the connection. Several statements separated by `;` run in order;
`sql()` returns the last one's result, `symsweep query` prints every result.

Queries run in a helper thread while this one waits: Ctrl-C (and `timeout_s`) then stop
DuckDB at once through `interrupt()` (DuckDB itself notices a signal only now and then: a
long join ran on for two minutes). Printing (`show_all`, `format_shown`) converts every
value to text inside DuckDB, so every type prints in every format, infinity dates and
non-UTF-8 blobs included, which Arrow -> pandas cannot represent.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs

from symsweep._formats import FORMATS, Shown, check_format, format_shown  # noqa: F401 - query's API
from symsweep._fs import check_reachable, filesystem, parse_location
from symsweep.errors import QueryError, StoreUnavailableError, first_line
from symsweep.store import HISTORY, HISTORY_SCHEMA, RUN_COLUMNS, RUNS, SweepStore, concat_tables

TABLE_ROWS = 1000
"""Rows `symsweep query --format table` prints unless --limit says otherwise (a terminal is no place for more)."""
# Statement types whose result is a table of rows (the others: CREATE, DROP, SET, ...).
ROW_STATEMENTS = {"SELECT", "EXPLAIN", "PRAGMA", "CALL", "RELATION", "EXECUTE", "SHOW", "DESCRIBE", "SUMMARIZE"}
BUILTIN = (RUNS, HISTORY)
# The runs table of a results path with no readable run file: the documented columns, typed
# as the worker writes them (text unless listed), so that a query over it still binds.
_RUN_TYPES = {
    **dict.fromkeys(("seed", "attempt", "batch_size_runs", "pid", "history_rows", "artifact_bytes",
                     "torch_threads", "blas_threads"), pa.int64()),
    **dict.fromkeys(("duration_s", "batch_duration_s", "peak_gpu_mem_mb", "batch_peak_gpu_mem_mb",
                     "gpu_mem_total_mb", "peak_rss_mb"), pa.float64()),
    **dict.fromkeys(("started_at", "finished_at"), pa.timestamp("us", tz="UTC")),
}
EMPTY = {
    RUNS: pa.schema([(c, _RUN_TYPES.get(c, pa.string())) for c in RUN_COLUMNS]),
    HISTORY: pa.schema([("sweep", pa.string()), *HISTORY_SCHEMA]),
}
# Read-only, no files, no network, no extensions; `lock_configuration` (set by `_connect`, after
# the time zone) keeps SQL from undoing it.
LOCKED_CONFIG = {
    "enable_external_access": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
}
T = TypeVar("T")


def _connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB that reads nothing but what is registered, with its settings locked.
    Times with a zone are UTC, as the store writes them, so every machine prints the same."""
    con = duckdb.connect(config=dict(LOCKED_CONFIG))
    try:
        con.execute("SET TimeZone = 'UTC'")  # needs ICU (built into the Python wheels); without it, UTC anyway
    except duckdb.Error:
        pass
    con.execute("SET lock_configuration = true")
    return con


@dataclass(frozen=True)
class SweepFiles:
    """One sweep folder: its store and which tables it has files for."""

    name: str
    store: SweepStore
    has_runs: bool
    has_history: bool
    aggregates: tuple[str, ...]


# ---------------------------------------------------------------- discovery
def find_sweeps(path: str) -> list[SweepFiles]:
    """The sweep folders at `path`: itself if it has spec.yaml, else its subfolders that do."""
    location = parse_location(path)
    check_reachable(location)
    fs = filesystem(location)

    def is_file(p: str) -> bool:
        return fs.get_file_info(p).type == pafs.FileType.File

    def sweep(loc) -> SweepFiles:
        store = SweepStore(loc)
        return SweepFiles(name=loc.name, store=store, has_runs=bool(store.list_files(store.path(RUNS))),
                          has_history=bool(store.list_files(store.path(HISTORY))),
                          aggregates=tuple(store.aggregate_names()))

    try:
        if is_file(f"{location.path}/spec.yaml"):
            return [sweep(location)]
        infos = fs.get_file_info(pafs.FileSelector(location.path, allow_not_found=True))
        folders = sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory
                         and is_file(f"{i.path}/spec.yaml"))
    except OSError as exc:
        raise StoreUnavailableError(f"cannot read {location.uri}: {first_line(exc)}") from None
    if not folders:
        raise QueryError(f"{path} is neither a sweep folder (no spec.yaml) nor a results root holding "
                         f"sweep folders; pass --results RESULTS or RESULTS/<sweep>")
    return [sweep(location.join(name)) for name in folders]


def _with_sweep(table: pa.Table, name: str) -> pa.Table:
    """`table` with its `sweep` column set to the folder's name: in place where it has one
    (the runs table), else added first."""
    column = pa.array([name] * table.num_rows, pa.string())
    if "sweep" in table.column_names:
        return table.set_column(table.schema.get_field_index("sweep"), "sweep", column)
    return table.add_column(0, "sweep", column)


# ---------------------------------------------------------------- the results object
class Results:
    """The tables of one sweep folder or of every sweep under a results root.

    >>> r = open_results("results/quickstart")
    >>> r.runs()                                  # pandas, one row per run
    >>> r.aggregate("comparison")                 # an aggregate table, pandas
    >>> r.table("history")                        # any table as a pyarrow Table
    >>> r.sql("SELECT cfg_expansion_factor, avg(metric_test_acc) FROM runs GROUP BY 1")
    >>> r.skipped                                 # (file, error) of unreadable files skipped
    """

    def __init__(self, path: str, timeout_s: float | None = None):
        self.path = path
        self.timeout_s = timeout_s or None
        """Seconds a query may run before it is stopped with a QueryError (None: no limit)."""
        self.sweeps = find_sweeps(path)
        names = []
        if any(s.has_runs for s in self.sweeps):
            names.append(RUNS)
        if any(s.has_history for s in self.sweeps):
            names.append(HISTORY)
        aggregates = sorted({a for s in self.sweeps for a in s.aggregates})
        for name in aggregates:
            if name in BUILTIN:
                raise QueryError(f"aggregate table {name!r} would hide the {name!r} table; rename it in the "
                                 f"task's aggregate() (names other than {', '.join(BUILTIN)} are allowed)")
        self.table_names: list[str] = names + aggregates
        self.skipped: list[tuple[str, str]] = []
        """(path, error) of files that could not be read, over every query so far."""
        self._con = _connect()

    def __repr__(self) -> str:
        return f"Results({self.path!r}: {len(self.sweeps)} sweeps, tables {', '.join(self.table_names) or 'none'})"

    def __enter__(self) -> "Results":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._con.close()

    # -------------------------------------------------------------- reading
    def _skip(self, corrupt: list[tuple[str, str]]) -> None:
        for item in corrupt:
            if item not in self.skipped:
                self.skipped.append(item)

    def _read(self, name: str) -> pa.Table:
        """One table, read now through each sweep's store."""
        parts = []
        for s in self.sweeps:
            if (name == RUNS and s.has_runs) or (name == HISTORY and s.has_history):
                table, corrupt = (s.store.read_ledger_arrow if name == RUNS else s.store.read_history_arrow)()
                self._skip([(s.store.shown_path(p), e) for p, e in corrupt])
                if table is not None:
                    parts.append(_with_sweep(table, s.name))
            elif name in s.aggregates:
                try:
                    parts.append(_with_sweep(s.store.read_aggregate_arrow(name), s.name))
                except (pa.ArrowInvalid, OSError) as exc:
                    self._skip([(f"{s.store.aggregates_dir()}/{name}.parquet", first_line(exc))])
        if not parts:
            return EMPTY.get(name, pa.schema([("sweep", pa.string())])).empty_table()
        return concat_tables(parts)

    def _register(self, query: str) -> None:
        """Read and register the tables `query` names (a word match; reading one more is harmless)."""
        for name in self.table_names:
            if re.search(rf"(?<![\w$]){re.escape(name)}(?![\w$])", query, flags=re.IGNORECASE):
                self._con.register(name, self._read(name))

    def columns(self) -> dict[str, list[str]]:
        """table -> its column names."""
        return {name: self._read(name).column_names for name in self.table_names}

    def describe_tables(self) -> str:
        """`runs(run_id, sweep, ...); history(...)`: what error messages list."""
        return "; ".join(f"{name}({', '.join(c)})" for name, c in self.columns().items()) \
            or "none (no Parquet files yet)"

    # -------------------------------------------------------------- SQL
    def statements(self, query: str) -> list[tuple[str, bool]]:
        """(text, returns rows) of each statement of `query`."""
        try:
            return [(s.query, s.type.name in ROW_STATEMENTS) for s in self._con.extract_statements(query)]
        except duckdb.Error as exc:
            raise QueryError(f"{first_line(exc)}; available tables: {self.describe_tables()}") from None

    def sql_arrow_all(self, query: str) -> list[pa.Table | None]:
        """Every statement's result, in order (None for statements without rows: CREATE, SET...)."""
        # DuckDB 2 renamed the table export (`.arrow()` now returns a reader); 1.x lacks the new name.
        return self._each_statement(query, lambda rel: (getattr(rel, "to_arrow_table", None) or rel.arrow)())

    def show_all(self, query: str, fmt: str = "table", limit: int | None = None) -> list["Shown | None"]:
        """Every statement's result as text ready to print in `fmt` (see `format_shown`), at most
        `limit` rows of each (None: all); None for statements without rows."""
        check_format(fmt)
        return self._each_statement(query, lambda rel: _shown(rel, fmt, limit))

    def _each_statement(self, query: str, result: Callable[[duckdb.DuckDBPyRelation], T]) -> list[T | None]:
        """Run the statements of `query` in order; `result(relation)` of each that returns rows.
        Each runs in a helper thread, stopped by Ctrl-C or when `timeout_s` has passed."""
        self._register(query)
        deadline = time.monotonic() + self.timeout_s if self.timeout_s else None
        out: list[T | None] = []
        for statement, returns_rows in self.statements(query):
            def one(statement=statement, returns_rows=returns_rows) -> T | None:
                rel = self._con.sql(statement)
                return None if rel is None or not returns_rows else result(rel)
            out.append(self._interruptible(one, deadline))
        return out

    def _interruptible(self, fn: Callable[[], T], deadline: float | None) -> T:
        """`fn()` (DuckDB work) in a helper thread; this thread waits, so Ctrl-C lands here at
        once and interrupts DuckDB, and so does the deadline. DuckDB errors become QueryError."""
        box: dict = {}
        done = threading.Event()  # not Thread.join: before Python 3.13 a join cut short by Ctrl-C marks the thread ended

        def work() -> None:
            try:
                box["value"] = fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=work, name="symsweep-query", daemon=True).start()
        try:
            finished = done.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        except KeyboardInterrupt:
            self._stop(done)
            raise
        if not finished:
            self._stop(done)
            raise QueryError(f"query stopped after {self.timeout_s:g} s (--timeout {self.timeout_s:g}; "
                             f"--timeout 0 for no limit)")
        exc = box.get("error")
        if isinstance(exc, duckdb.PermissionException):
            raise QueryError(f"{first_line(exc)}: queries may read the sweep tables only (no files, "
                             f"no extensions, no settings)") from None
        if isinstance(exc, duckdb.Error):
            raise QueryError(f"{first_line(exc)}; available tables: {self.describe_tables()}") from None
        if exc is not None:
            raise exc
        return box["value"]

    def _stop(self, done: threading.Event) -> None:
        """Interrupt the running query and let DuckDB unwind (it takes milliseconds), so that
        the connection is free again."""
        self._con.interrupt()
        done.wait(5)

    def sql_arrow(self, query: str) -> pa.Table:
        results = self.sql_arrow_all(query)
        return results[-1] if results and results[-1] is not None else pa.table({})

    def sql(self, query: str) -> pd.DataFrame:
        """Run SQL over the tables; the last statement's result as a pandas DataFrame."""
        return self.sql_arrow(query).to_pandas()

    def table(self, name: str) -> pa.Table:
        """One table (runs, history or an aggregate) as a pyarrow Table."""
        if name not in self.table_names:
            raise QueryError(f"no table {name!r} in {self.path}; available tables: "
                             f"{', '.join(self.table_names) or 'none'}")
        return self._read(name)

    def runs(self) -> pd.DataFrame:
        return self.table(RUNS).to_pandas()

    def history(self) -> pd.DataFrame:
        return self.table(HISTORY).to_pandas()

    def aggregate(self, name: str) -> pd.DataFrame:
        if name in BUILTIN:
            raise QueryError(f"{name!r} is not an aggregate table; use .{name}() (aggregates: "
                             f"{', '.join(n for n in self.table_names if n not in BUILTIN) or 'none'})")
        return self.table(name).to_pandas()


def open_results(path: str, timeout_s: float | None = None) -> Results:
    """Open a sweep folder or a results root for SQL and DataFrames (see `Results`); a query
    that runs longer than `timeout_s` seconds is stopped with a QueryError."""
    return Results(path, timeout_s)


# ---------------------------------------------------------------- printing
# Values are turned into text by DuckDB itself, before anything reaches Python: Arrow and
# pandas cannot hold infinity dates, years past 9999, nanosecond times, unions, or tell a
# uhugeint from a negative number, and JSON has no NaN. Table and CSV get DuckDB's text
# (floats: NaN, inf, -inf); JSON gets DuckDB's to_json with NaN / Infinity / -Infinity as
# strings. _RESULT names the result inside the converting query; its columns are renamed
# c0, c1, ... by position, so duplicate or odd column names need no quoting. The text is laid
# out as a table, CSV or JSON by symsweep._formats.
_RESULT = "symsweep_result"
_JSON_NUMBER_WORD = re.compile(r'"(?:[^"\\]|\\.)*"|-?Infinity|NaN')


def _as_text(column: str, kind, fmt: str) -> str:
    """SQL turning one column into its printed form."""
    if fmt == "json":
        return f"CAST(to_json({column}) AS VARCHAR)"
    if getattr(kind, "id", str(kind).lower()) in ("float", "double"):
        return (f"CASE WHEN isnan({column}) THEN 'NaN' WHEN isinf({column}) THEN "
                f"CASE WHEN {column} > 0 THEN 'inf' ELSE '-inf' END ELSE CAST({column} AS VARCHAR) END")
    return f"CAST({column} AS VARCHAR)"


def _shown(rel: duckdb.DuckDBPyRelation, fmt: str, limit: int | None) -> Shown:
    names = [f"c{i}" for i in range(len(rel.columns))]
    select = ", ".join(_as_text(n, k, fmt) for n, k in zip(names, rel.types))
    sql = f"SELECT {select} FROM {_RESULT} AS {_RESULT}({', '.join(names)})"
    try:
        shown = rel.query(_RESULT, sql + (f" LIMIT {limit + 1}" if limit else ""))
    except duckdb.Error as exc:  # binding only: the query's own errors come when it runs, below
        types = ", ".join(f"{c} {k}" for c, k in zip(rel.columns, rel.types))
        raise QueryError(f"cannot print this result as {fmt} ({types}): {first_line(exc)}") from None
    rows = shown.fetchall()
    total = len(rows)
    if limit and total > limit:
        rows = rows[:limit]
        total = rel.query(_RESULT, f"SELECT count(*) FROM {_RESULT}").fetchall()[0][0]
    if fmt == "json":
        rows = [tuple(_json_numbers(v) for v in row) for row in rows]
    return Shown(list(rel.columns), rows, total)


def _json_numbers(value: str | None) -> str | None:
    """JSON text with DuckDB's bare NaN / Infinity / -Infinity (not JSON) quoted as strings."""
    if value is None or not ("NaN" in value or "Infinity" in value):
        return value
    return _JSON_NUMBER_WORD.sub(lambda m: m.group(0) if m.group(0).startswith('"') else f'"{m.group(0)}"', value)


def format_result(table: pa.Table, fmt: str = "table") -> str:
    """An Arrow table as `format_shown` prints it (aligned table, CSV or JSON records)."""
    check_format(fmt)
    con = _connect()
    try:
        return format_shown(_shown(con.from_arrow(table), fmt, None), fmt)
    finally:
        con.close()
