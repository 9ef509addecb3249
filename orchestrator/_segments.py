"""Reading the ledger and history, and folding small files into segments (compaction).

Runs write one small file each (`runs/<run_id>.parquet`, `history/<run_id>.parquet`); the
driver folds them into segments: the segment is written first, then the small files are
removed, so a crash in between leaves duplicates, never a gap. Readers take the union of
small files and segments and keep one row per run id: the highest attempt, then the newest
file. A run's history is the records of the attempt its row holds, from the newest file
that has them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from symsweep._fs import map_io
from symsweep._store_files import HISTORY, RUNS, SEGMENT_PREFIX, UNREADABLE, StoreFiles, parquet_bytes, segment_name
from symsweep.errors import first_line

HISTORY_SCHEMA = pa.schema([("run_id", pa.string()), ("step", pa.int64()),
                            ("metric", pa.string()), ("value", pa.float64()), ("attempt", pa.int64())])
# Rows a driver folds into one segment at a time, and how many segments trigger a merge.
COMPACT_EVERY = 1000
MERGE_SEGMENTS_AT = 8


@dataclass
class LedgerView:
    """The runs table as read now (one row per run id), plus the files that could not be read."""

    runs: pd.DataFrame
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    """(path, error) of run files that could not be read."""

    def ids_with_status(self, *statuses: str) -> set[str]:
        if self.runs.empty:
            return set()
        return set(self.runs.loc[self.runs["status"].isin(statuses), "run_id"])


@dataclass
class Compaction:
    rows: int = 0
    """Run rows folded into a new segment."""
    history_rows: int = 0
    removed: int = 0
    """Small files removed after their segment was written."""
    merged: int = 0
    """Segments merged into one."""


class Segments(StoreFiles):
    """The runs/ and history/ folders: small files and segments, read as one table each."""

    def table_files(self, sub: str) -> tuple[list[str], list[str]]:
        """(small files, segments) of runs/ or history/, each sorted: segments oldest first."""
        small, segments = [], []
        for path in self.list_files(self.path(sub)):
            (segments if path.rsplit("/", 1)[-1].startswith(SEGMENT_PREFIX) else small).append(path)
        return small, segments

    def read_tables(self, paths: list[str], columns: list[str] | None = None, verify: bool = False
                     ) -> tuple[list[tuple[str, pa.Table]], list[tuple[str, str]]]:
        """(path, table) of the readable files, and (path, error) of the others. `verify`:
        every byte of each file is checked, not only the pages of `columns`."""
        def read(path: str):
            try:
                return self._read_parquet(path, columns, verify), None
            except FileNotFoundError:  # folded into a segment while we listed: read there
                return None, None
            except UNREADABLE as exc:
                return None, (path, first_line(exc))
        out = map_io(read, paths, self.io_workers)
        tables = [(p, t) for p, (t, _) in zip(paths, out) if t is not None]
        return tables, [e for _, e in out if e is not None]

    def _ranked(self, sub: str, columns: list[str] | None, verify: bool = False
                ) -> tuple[pa.Table | None, list[tuple[str, str]]]:
        """Every readable file of runs/ or history/ concatenated, with a `_rank` column:
        segments oldest first (0, 1, ...), small files last (newest)."""
        small, segments = self.table_files(sub)
        tables, corrupt = self.read_tables(segments + small, columns, verify)
        # a small file folded while we read is found in a segment listed after it: list again
        if len(tables) + len(corrupt) < len(segments) + len(small):
            _, segments2 = self.table_files(sub)
            extra = [p for p in segments2 if p not in set(segments)]
            more, bad = self.read_tables(extra, columns, verify)
            tables += more
            corrupt += bad
            segments = sorted(set(segments) | set(extra))
        if not tables:
            return None, corrupt
        rank = {p: i for i, p in enumerate(segments)}
        return concat_tables([_with_rank(t, rank.get(p, len(segments))) for p, t in tables]), corrupt

    # ------------------------------------------------------------------ the runs table
    def read_ledger_arrow(self, columns: list[str] | None = None, verify: bool = False
                          ) -> tuple[pa.Table | None, list[tuple[str, str]]]:
        """(runs table, unreadable files): one row per run id (highest attempt, then newest
        file). `verify`: a file with any damaged byte counts as unreadable."""
        wanted = None if columns is None else list(dict.fromkeys([*columns, "run_id", "attempt", "finished_at"]))
        table, corrupt = self._ranked(RUNS, wanted, verify)
        if table is None:
            return None, corrupt
        return _as_asked(newest_rows(table), wanted, columns), corrupt

    def read_ledger(self, columns: list[str] | None = None, verify: bool = False) -> LedgerView:
        table, corrupt = self.read_ledger_arrow(columns, verify)
        if table is None:
            return LedgerView(pd.DataFrame(columns=columns or ["run_id", "status"]), corrupt)
        return LedgerView(table.to_pandas(), corrupt)

    def read_runs(self) -> pd.DataFrame:
        return self.read_ledger().runs

    # ------------------------------------------------------------------ history
    def read_history_arrow(self, run_ids: Iterable[str] | None = None, columns: list[str] | None = None,
                           verify: bool = False, attempts: pa.Table | None = None
                           ) -> tuple[pa.Table | None, list[tuple[str, str]]]:
        """(history, unreadable files): each run's records of the attempt its row holds (a
        retried run that logged nothing has none), from the newest file holding them.
        `attempts`: the rows' (run_id, attempt) when the caller has read them already."""
        wanted = None if columns is None else list(dict.fromkeys([*columns, "run_id", "attempt"]))
        table, corrupt = self._ranked(HISTORY, wanted, verify)
        if table is None:
            return None, corrupt
        if run_ids is not None:
            table = table.filter(pc.is_in(table.column("run_id"), pa.array(list(set(run_ids)), pa.string())))
        if "attempt" in table.column_names and table.num_rows:
            rows = attempts if attempts is not None else self.read_ledger_arrow(["run_id", "attempt"])[0]
            table = own_attempt(table, rows)
        return _as_asked(newest_history(table), wanted, columns), corrupt

    def read_history_checked(self, run_ids: Iterable[str] | None = None,
                             columns: list[str] | None = None) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
        table, corrupt = self.read_history_arrow(run_ids, columns)
        if table is None:
            empty = HISTORY_SCHEMA.empty_table().to_pandas()
            return (empty if columns is None else empty[columns]), corrupt
        return table.to_pandas(), corrupt

    def read_history(self, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
        return self.read_history_checked(run_ids)[0]

    # ------------------------------------------------------------------ compaction
    def compact(self, run_ids: Iterable[str] | None = None, merge_at: int = MERGE_SEGMENTS_AT) -> Compaction:
        """Fold small run and history files into segments; merge segments when there are many.

        `run_ids`: fold only these runs' files (a driver folds the runs of finished trials,
        never those a live trial may still write). Unreadable small files are left where
        they are (a `run` quarantines them). Crash-safe: segments first, then removals.
        """
        out = Compaction()
        wanted = None if run_ids is None else {f"{r}.parquet" for r in run_ids}
        for sub in (HISTORY, RUNS):  # history first: a folded row always has its history folded
            small, segments = self.table_files(sub)
            if wanted is not None:
                small = [p for p in small if p.rsplit("/", 1)[-1] in wanted]
            tables, _ = self.read_tables(small, verify=True)
            if tables:
                table = concat_tables([t for _, t in tables])
                data = parquet_bytes(table)
                self._put(self.path(sub, segment_name(data)), data)
                if sub == RUNS:
                    out.rows += table.num_rows
                else:
                    out.history_rows += table.num_rows
                out.removed += self._delete([p for p, _ in tables])
            if len(segments) + (1 if tables else 0) >= merge_at:
                out.merged += self._merge_segments(sub)
        return out

    def _merge_segments(self, sub: str) -> int:
        """Rewrite every segment of runs/ or history/ as one (duplicates dropped)."""
        _, segments = self.table_files(sub)
        if len(segments) < 2:
            return 0
        tables, corrupt = self.read_tables(segments, verify=True)
        if corrupt:  # never fold what cannot be read: leave it for a human and the next run
            return 0
        rank = {p: i for i, p in enumerate(segments)}
        table = concat_tables([_with_rank(t, rank[p]) for p, t in tables])
        table = (newest_rows(table) if sub == RUNS else newest_history(table)).drop_columns(["_rank"])
        data = parquet_bytes(table)
        self._put(self.path(sub, segment_name(data)), data)
        self._delete(segments)
        return len(segments)

    def file_counts(self) -> dict[str, int]:
        """How many small files and segments runs/ and history/ hold (for status)."""
        out = {}
        for sub in (RUNS, HISTORY):
            small, segments = self.table_files(sub)
            out[f"{sub}_files"], out[f"{sub}_segments"] = len(small), len(segments)
        return out


# ----------------------------------------------------------------------------- table rules


def _with_rank(table: pa.Table, rank: int) -> pa.Table:
    """`table` with a `_rank` column: which file its rows came from (higher is newer)."""
    return table.append_column("_rank", pa.array(np.full(table.num_rows, rank, dtype=np.int32)))


def _as_asked(table: pa.Table, wanted: list[str] | None, columns: list[str] | None) -> pa.Table:
    """`table` without `_rank` and the columns read only to pick rows (`wanted` but not in `columns`)."""
    drop = ["_rank"] + ([c for c in wanted if c not in columns] if columns is not None else [])
    return table.drop_columns([c for c in drop if c in table.column_names])

def newest_rows(table: pa.Table) -> pa.Table:
    """One row per run id: the highest attempt, then the newest file (`_rank`), then the latest finish."""
    order = pa.table({"run_id": table.column("run_id")})
    keys = [("run_id", "ascending")]
    for c in ("attempt", "_rank", "finished_at"):
        if c in table.column_names:  # nulls (rows of old versions) rank last
            col = table.column(c)
            order = order.append_column(c, col.fill_null(pa.scalar(0, col.type) if c != "finished_at"
                                                         else pa.scalar(0, pa.int64()).cast(col.type)))
            keys.append((c, "descending"))
    table = table.take(pc.sort_indices(order, sort_keys=keys))
    ids = table.column("run_id").combine_chunks()
    if len(ids) < 2:
        return table
    first = pc.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1))
    return table.filter(pa.concat_arrays([pa.array([True]), first.fill_null(True)]))


def newest_history(table: pa.Table) -> pa.Table:
    """Each run's records from one file only: the newest (`_rank`) that holds the run."""
    ranks = table.column("_rank")
    if len(ranks) == 0 or pc.min_max(ranks)["min"] == pc.min_max(ranks)["max"]:
        return table
    newest = table.group_by("run_id").aggregate([("_rank", "max")])
    keep = table.join(newest, keys="run_id").filter(pc.equal(pc.field("_rank"), pc.field("_rank_max")))
    return keep.drop_columns(["_rank_max"])


def own_attempt(history: pa.Table, rows: pa.Table | None) -> pa.Table:
    """History records of the attempt each run's row holds. Records without an attempt
    (written before 0.3) and runs without a readable row are kept as they are."""
    if rows is None or not rows.num_rows:
        return history
    attempts = rows.select(["run_id", "attempt"]).rename_columns(["run_id", "_row_attempt"])
    joined = history.join(attempts, keys="run_id", join_type="left outer")
    keep = pc.or_kleene(pc.or_kleene(pc.is_null(joined.column("attempt")), pc.is_null(joined.column("_row_attempt"))),
                        pc.equal(joined.column("attempt"), joined.column("_row_attempt")))
    return joined.filter(keep.fill_null(True)).drop_columns(["_row_attempt"])


def concat_tables(tables: list[pa.Table]) -> pa.Table:
    """Concatenate tables whose columns differ (run rows, history, aggregates of several
    sweeps); a column typed differently across files (e.g. written by an older version) is
    read as text rather than failing the whole read."""
    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        types: dict[str, set] = {}
        for t in tables:
            for f in t.schema:
                if not pa.types.is_null(f.type):
                    types.setdefault(f.name, set()).add(f.type)
        mixed = {name for name, ts in types.items() if len(ts) > 1}
        fixed = []
        for t in tables:
            for name in mixed & set(t.column_names):
                i = t.schema.get_field_index(name)
                t = t.set_column(i, name, pc.cast(t.column(name), pa.string()))
            fixed.append(t)
        return pa.concat_tables(fixed, promote_options="permissive")
