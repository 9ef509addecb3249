"""The Parquet store of one sweep: the ledger of runs, their history and artifacts.

Layout of a sweep folder (local path or any URI `pyarrow.fs` opens):

    spec.yaml                    the frozen spec the sweep was planned from
    runs/<run_id>.parquet        one row: a run, written the moment it finished
    runs/seg-<time>-<id>.parquet many rows: small run files folded together (compaction)
    history/<run_id>.parquet     long format: run_id, step, metric, value
    history/seg-<time>-<id>.parquet  the same, folded
    artifacts/<name>/<run_id>.npz   (stores written before 0.2: artifacts/<run_id>/<name>.npz)
    aggregates/<name>.parquet    written by the aggregation stage
    quarantine/                  unreadable or damaged files moved aside (their runs run again)
    .lock                        the live driver's pid, host and start time

A run is done when its row says `completed`. Each run writes history and artifacts
first and its row last, each file to a temporary name then renamed (a single put on
object stores), so a killed run leaves either a whole row or none: never half a run.
The row records how many history records and which artifact bytes (size, sha256) the
run left, so damage to those files is found (`check_outputs`) and repaired by a re-run.

Compaction folds small files into a segment: the segment is written first, then the
small files are removed, so a crash in between leaves duplicates, never a gap. Readers
take the union of small files and segments and keep one row per run id: the highest
attempt, then the newest file. A run's history comes from one file only, the newest that
holds it. Every Parquet file carries page checksums, verified on read.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute.cast
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import yaml

from orchestrator._fs import (
    TEMP_PREFIX,
    Location,
    atomic_put,
    check_reachable,
    describe_os_error,
    exclusive_create,
    filesystem,
    parse_location,
)
from orchestrator.errors import LockError, SpecError, StoreError, StoreUnavailableError, yaml_error_line

RUNS, HISTORY, ARTIFACTS, AGGREGATES, QUARANTINE = "runs", "history", "artifacts", "aggregates", "quarantine"
SEGMENT_PREFIX = "seg-"
RUN_ID = re.compile(r"[0-9a-f]{16}")
# Columns every row of the `runs` table has (docs "Store tables" documents each), besides
# one `cfg_<name>` column per config field and one `metric_<name>` column per final metric.
RUN_COLUMNS = (
    "run_id", "sweep", "task", "trial_id", "seed", "status", "attempt", "error", "traceback",
    "started_at", "finished_at", "duration_s", "batch_size_runs", "host", "device", "pid",
    "git_commit", "config_json", "peak_gpu_mem_mb", "gpu_mem_total_mb", "peak_rss_mb", "cuda_visible_devices",
    "history_rows", "artifact_bytes", "artifact_digests",
    "v_python", "v_symsweep", "v_torch", "v_numpy", "v_ray",
)
HISTORY_SCHEMA = pa.schema([("run_id", pa.string()), ("step", pa.int64()),
                            ("metric", pa.string()), ("value", pa.float64())])
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


@dataclass(frozen=True)
class Damage:
    """A run whose row is fine but whose history or artifacts are missing or damaged."""

    run_id: str
    what: str
    """`history` or `artifact <name>`."""
    detail: str


@dataclass
class Compaction:
    rows: int = 0
    """Run rows folded into a new segment."""
    history_rows: int = 0
    removed: int = 0
    """Small files removed after their segment was written."""
    merged: int = 0
    """Segments merged into one."""


class SweepStore:
    """Read and write one sweep folder."""

    def __init__(self, uri: str | Location):
        self.location = uri if isinstance(uri, Location) else parse_location(uri)
        self.uri = self.location.uri
        self.shown = self.location.shown
        """The URI for messages (secrets masked)."""
        self.fs = filesystem(self.location)
        self.root = self.location.path
        self.is_local = self.location.is_local

    def __repr__(self) -> str:
        return f"SweepStore({self.uri!r})"

    # ------------------------------------------------------------------ paths
    def _p(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def _where(self, path: str) -> str:
        """A path as the user knows it (with the URI scheme)."""
        return path if self.location.scheme == "" else f"{self.location.scheme}://{path}"

    def shown_path(self, path: str) -> str:
        """A path inside this store as the user knows it: `s3://bucket/...` on S3."""
        return self._where(path)

    @property
    def spec_shown(self) -> str:
        """Where spec.yaml is, for messages."""
        return self._where(self._p("spec.yaml"))

    def exists(self) -> bool:
        try:
            return self.fs.get_file_info(self._p("spec.yaml")).type == pafs.FileType.File
        except OSError as exc:
            raise StoreUnavailableError(f"cannot reach store {self.shown}: {describe_os_error(exc, self.shown)}") \
                from None

    def check_reachable(self) -> None:
        check_reachable(self.location)

    def _makedirs(self, path: str) -> None:
        if self.is_local:
            try:
                os.makedirs(path, exist_ok=True)
            except OSError as exc:
                raise StoreError(describe_os_error(exc, path)) from None

    # ------------------------------------------------------------------ atomic writes
    def _put(self, path: str, data: bytes) -> None:
        """Write `data` at `path` atomically (temp file + rename locally, one put elsewhere)."""
        # temp files live in the top folder they are renamed into (runs/, artifacts/, ...):
        # same filesystem for the rename, and one place to sweep for a killed writer's leftovers
        rel = path[len(self.root) + 1:]
        atomic_put(self.fs, self.location, path, data, self._p(rel.split("/", 1)[0]) if "/" in rel else self.root)

    def _get(self, path: str) -> bytes:
        with self.fs.open_input_stream(path) as f:
            return f.read()

    @staticmethod
    def _parquet_bytes(table: pa.Table) -> bytes:
        buf = io.BytesIO()
        pq.write_table(table, buf, write_page_checksum=True)
        return buf.getvalue()

    def _read_parquet(self, path: str, columns: list[str] | None = None) -> pa.Table:
        """One Parquet file, page checksums verified; `columns` that the file lacks are skipped."""
        f = pq.ParquetFile(io.BytesIO(self._get(path)), page_checksum_verification=True)
        if columns is not None:
            columns = [c for c in columns if c in f.schema_arrow.names]
        return f.read(columns=columns)

    def remove_temp_files(self) -> list[str]:
        """Remove temp files that killed writers left behind (call with the lock held)."""
        if not self.is_local:
            return []
        removed = []
        try:
            folders = [self.root] + [e.path for e in os.scandir(self.root) if e.is_dir()]
        except OSError:
            return []
        for folder in folders:
            try:
                names = [n for n in os.listdir(folder) if n.startswith(TEMP_PREFIX)]
            except OSError:
                continue
            for name in names:
                try:
                    os.remove(os.path.join(folder, name))
                    removed.append(os.path.join(folder, name))
                except OSError:
                    pass
        return removed

    # ------------------------------------------------------------------ spec
    def write_spec(self, spec_dict: Mapping[str, Any]) -> None:
        self._makedirs(self.root)
        self._put(self._p("spec.yaml"), yaml.safe_dump(dict(spec_dict), sort_keys=False).encode())

    def read_spec(self) -> dict:
        where = self._where(self._p("spec.yaml"))
        try:
            data = self._get(self._p("spec.yaml"))
        except FileNotFoundError:
            raise StoreError(f"{self.shown} is not a sweep folder (no spec.yaml)") from None
        except OSError as exc:
            raise StoreUnavailableError(f"cannot read {where}: {describe_os_error(exc, where)}") from None
        try:
            spec = yaml.load(data, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            raise SpecError(yaml_error_line(where, exc) + "; the sweep's frozen spec is damaged: restore it, "
                            "or run the sweep again from its spec file (--force)") from None
        except UnicodeDecodeError:
            raise SpecError(f"{where}: not valid YAML (not text); the sweep's frozen spec is damaged") from None
        return spec

    # ------------------------------------------------------------------ runs
    def write_run(self, row: Mapping[str, Any], history: Iterable[Mapping[str, Any]] = (),
                  artifacts: Mapping[str, Mapping[str, np.ndarray]] | None = None) -> None:
        """Persist one finished run: history, artifacts, then the row (the commit point).
        The row records what the run left (history row count, artifact sizes and sha256)."""
        run_id = row["run_id"]
        records = []
        for rec in history:
            step = int(rec["step"])
            for k, v in rec.items():
                if k != "step" and v is not None:
                    records.append((run_id, step, k, float(v)))
        if records:
            cols = list(zip(*records))
            table = pa.Table.from_arrays([pa.array(c, t.type) for c, t in zip(cols, HISTORY_SCHEMA)],
                                         schema=HISTORY_SCHEMA)
            self._put(self._p(HISTORY, f"{run_id}.parquet"), self._parquet_bytes(table))
        digests = {}
        for name, arrays in (artifacts or {}).items():
            buf = io.BytesIO()
            np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
            data = buf.getvalue()
            self._put(self._artifact_path(run_id, name), data)
            digests[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        row = {**row, "history_rows": len(records), "artifact_bytes": sum(d["bytes"] for d in digests.values()),
               "artifact_digests": json.dumps(digests, sort_keys=True) if digests else None}
        self._put(self._p(RUNS, f"{run_id}.parquet"), self._parquet_bytes(pa.Table.from_pylist([row])))

    def run_record(self, run_id: str) -> dict | None:
        """Status and attempt of a run's own (not yet compacted) row file, or None."""
        try:
            return self._read_parquet(self._p(RUNS, f"{run_id}.parquet"), ["status", "attempt"]).to_pylist()[0]
        except (FileNotFoundError, pa.ArrowInvalid, OSError, KeyError, IndexError):
            return None

    def _sources(self, sub: str) -> tuple[list[str], list[str]]:
        """(small files, segments) of runs/ or history/, segments oldest first."""
        selector = pafs.FileSelector(self._p(sub), allow_not_found=True)
        try:
            infos = self.fs.get_file_info(selector)
        except OSError as exc:
            raise StoreUnavailableError(f"cannot list {self._where(self._p(sub))}: "
                                        f"{describe_os_error(exc, self.shown)}") from None
        small, segments = [], []
        for i in infos:
            name = i.base_name
            if i.type != pafs.FileType.File or not name.endswith(".parquet") or name.startswith("."):
                continue
            (segments if name.startswith(SEGMENT_PREFIX) else small).append(i.path)
        return sorted(small), sorted(segments)

    def _read_tables(self, paths: list[str], columns: list[str] | None = None
                     ) -> tuple[list[tuple[str, pa.Table]], list[tuple[str, str]]]:
        """(path, table) of the readable files, and (path, error) of the others."""
        def read(path: str):
            try:
                return self._read_parquet(path, columns), None
            except FileNotFoundError:  # folded into a segment while we listed: read there
                return None, None
            except (pa.ArrowInvalid, OSError, KeyError, ValueError) as exc:
                text = str(exc).strip()
                return None, (path, text.splitlines()[0] if text else type(exc).__name__)
        if len(paths) < 4:
            out = [read(p) for p in paths]
        else:
            with ThreadPoolExecutor(max_workers=8 if self.is_local else 32) as pool:
                out = list(pool.map(read, paths))
        tables = [(p, t) for p, (t, _) in zip(paths, out) if t is not None]
        return tables, [e for _, e in out if e is not None]

    def _ranked(self, sub: str, columns: list[str] | None) -> tuple[pa.Table | None, list[tuple[str, str]]]:
        """Every readable file of runs/ or history/ concatenated, with a `_rank` column:
        segments oldest first (0, 1, ...), small files last (newest)."""
        small, segments = self._sources(sub)
        # a small file folded while we read is found in a segment listed after it: list again
        tables, corrupt = self._read_tables(segments + small, columns)
        if len(tables) + len(corrupt) < len(segments) + len(small):
            small2, segments2 = self._sources(sub)
            extra = [p for p in segments2 if p not in set(segments)]
            more, bad = self._read_tables(extra, columns)
            tables += more
            corrupt += bad
            segments = sorted(set(segments) | set(extra))
        if not tables:
            return None, corrupt
        rank = {p: i for i, p in enumerate(segments)}
        ranked = [t.append_column("_rank", pa.array(np.full(t.num_rows, rank.get(p, len(segments)),
                                                            dtype=np.int32)))
                  for p, t in tables]
        return _concat(ranked), corrupt

    def read_ledger_arrow(self, columns: list[str] | None = None
                          ) -> tuple[pa.Table | None, list[tuple[str, str]]]:
        """(runs table, unreadable files): one row per run id (highest attempt, then newest file)."""
        wanted = None if columns is None else list(dict.fromkeys([*columns, "run_id", "attempt", "finished_at"]))
        table, corrupt = self._ranked(RUNS, wanted)
        if table is None:
            return None, corrupt
        table = _newest_rows(table)
        drop = ["_rank"] + ([c for c in wanted if c not in columns] if columns is not None else [])
        return table.drop_columns([c for c in drop if c in table.column_names]), corrupt

    def read_ledger(self, columns: list[str] | None = None) -> LedgerView:
        table, corrupt = self.read_ledger_arrow(columns)
        if table is None:
            return LedgerView(pd.DataFrame(columns=columns or ["run_id", "status"]), corrupt)
        return LedgerView(table.to_pandas(), corrupt)

    def read_runs(self) -> pd.DataFrame:
        return self.read_ledger().runs

    def read_history_arrow(self, run_ids: Iterable[str] | None = None, columns: list[str] | None = None
                           ) -> tuple[pa.Table | None, list[tuple[str, str]]]:
        """(history, unreadable files): each run's records from the newest file holding it."""
        table, corrupt = self._ranked(HISTORY, columns)
        if table is None:
            return None, corrupt
        if run_ids is not None:
            table = table.filter(pa.compute.is_in(table.column("run_id"), pa.array(list(set(run_ids)), pa.string())))
        return _newest_history(table).drop_columns(["_rank"]), corrupt

    def read_history_checked(self, run_ids: Iterable[str] | None = None,
                             columns: list[str] | None = None) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
        table, corrupt = self.read_history_arrow(run_ids, columns)
        if table is None:
            empty = HISTORY_SCHEMA.empty_table().to_pandas()
            return (empty if columns is None else empty[columns]), corrupt
        return table.to_pandas(), corrupt

    def read_history(self, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
        return self.read_history_checked(run_ids)[0]

    def _artifact_path(self, run_id: str, name: str) -> str:
        # one folder per artifact name: a single listing sizes every run's file
        return self._p(ARTIFACTS, name, f"{run_id}.npz")

    def _artifact_bytes(self, run_id: str, name: str) -> bytes:
        path = self._artifact_path(run_id, name)
        try:
            return self._get(path)
        except FileNotFoundError:
            try:  # the layout of stores written before 0.2
                return self._get(self._p(ARTIFACTS, run_id, f"{name}.npz"))
            except FileNotFoundError:
                raise StoreError(f"artifact {name!r} of run {run_id} is missing ({self._where(path)}); "
                                 f"`symsweep resume` re-runs the run") from None

    def read_artifact(self, run_id: str, name: str, digest: Mapping[str, Any] | None = None
                      ) -> dict[str, np.ndarray]:
        """A run's artifact; with `digest` ({"bytes", "sha256"} from its row) checked first."""
        path = self._artifact_path(run_id, name)
        data = self._artifact_bytes(run_id, name)
        if digest is not None and hashlib.sha256(data).hexdigest() != digest.get("sha256"):
            raise StoreError(f"artifact {name!r} of run {run_id} is damaged (sha256 differs from its row: "
                             f"{self._where(path)}); `symsweep resume` re-runs the run")
        with np.load(io.BytesIO(data)) as npz:
            return {k: npz[k] for k in npz.files}

    def artifact_loader(self, runs: pd.DataFrame) -> Callable[[str, str], dict[str, np.ndarray]]:
        """load(run_id, name) that checks each artifact against the digest in its run's row."""
        digests = {}
        if "artifact_digests" in runs:
            for rid, text in zip(runs["run_id"], runs["artifact_digests"]):
                if isinstance(text, str) and text:
                    digests[rid] = json.loads(text)
        return lambda run_id, name: self.read_artifact(run_id, name, digests.get(run_id, {}).get(name))

    # ------------------------------------------------------------------ damage
    def check_outputs(self, runs: pd.DataFrame, full: bool = False) -> list[Damage]:
        """Runs whose history rows or artifact files do not match what their row recorded.

        History: the records of each run are counted (page checksums verified). Artifacts:
        each file's size is checked against the row; with `full`, every artifact is read and
        its sha256 compared (reading an artifact always checks it).
        """
        if runs.empty:
            return []
        damaged: list[Damage] = []
        if "history_rows" in runs:
            expected = runs.dropna(subset=["history_rows"])
            expected = expected[expected["history_rows"] > 0]
            if not expected.empty:
                history, unreadable = self.read_history_arrow(columns=["run_id"])
                counts = pd.Series(dtype="int64")
                if history is not None and history.num_rows:
                    per_run = history.group_by("run_id").aggregate([("run_id", "count")])
                    counts = pd.Series(per_run.column("run_id_count").to_numpy(),
                                       index=per_run.column("run_id").to_numpy(zero_copy_only=False))
                found = counts.reindex(expected["run_id"].to_numpy()).fillna(0).astype("int64").to_numpy()
                wanted = expected["history_rows"].astype("int64").to_numpy()
                bad_files = {p.rsplit("/", 1)[-1]: err for p, err in unreadable}
                for rid, have, n in zip(expected["run_id"][found != wanted], found[found != wanted],
                                        wanted[found != wanted]):
                    err = bad_files.get(f"{rid}.parquet")
                    detail = f"unreadable ({err})" if err else f"{have} of {n} records"
                    damaged.append(Damage(rid, "history", detail))
        if "artifact_digests" in runs:
            with_artifacts = runs[runs["artifact_digests"].notna()]
            if not with_artifacts.empty:
                sizes = self._artifact_sizes()
                total = pd.Series(sizes.values(), index=[rid for rid, _ in sizes], dtype="int64")
                total = total.groupby(level=0).sum()
                have = total.reindex(with_artifacts["run_id"].to_numpy()).fillna(-1).astype("int64").to_numpy()
                if "artifact_bytes" in with_artifacts:  # rows of 0.1 have digests only
                    recorded = with_artifacts["artifact_bytes"].fillna(-2).astype("int64").to_numpy()
                    suspects = with_artifacts[(have != recorded) | full]
                else:
                    suspects = with_artifacts
                for rid, text in zip(suspects["run_id"], suspects["artifact_digests"]):
                    for name, d in json.loads(text).items():
                        size = sizes.get((rid, name))
                        if size != d["bytes"]:
                            detail = "missing" if size is None else f"{size} bytes, row says {d['bytes']}"
                            damaged.append(Damage(rid, f"artifact {name}", detail))
                        elif full:
                            data = self._artifact_bytes(rid, name)
                            if hashlib.sha256(data).hexdigest() != d["sha256"]:
                                damaged.append(Damage(rid, f"artifact {name}", "sha256 differs from the row"))
        return damaged

    def _artifact_sizes(self) -> dict[tuple[str, str], int]:
        """(run_id, name) -> size of every artifact file, from one listing per artifact name."""
        base = self._p(ARTIFACTS)
        files: list[tuple[str, str, int]] = []  # (folder, file name, size)
        if self.is_local:  # os.scandir is several times faster than a recursive FileSelector
            try:
                folders = [d for d in os.scandir(base) if d.is_dir()]
            except FileNotFoundError:
                return {}
            chunks = []
            for d in folders:
                entries = [f for f in os.scandir(d.path) if f.name.endswith(".npz") and not f.name.startswith(".")]
                chunks += [(d.name, entries[i:i + 4096]) for i in range(0, len(entries), 4096)]

            def sizes(chunk: tuple[str, list[os.DirEntry]]) -> list[tuple[str, str, int]]:
                return [(chunk[0], f.name, f.stat().st_size) for f in chunk[1]]
            with ThreadPoolExecutor(max_workers=4) as pool:  # stat() releases the GIL
                for part in pool.map(sizes, chunks):
                    files += part
        else:
            infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
            for i in infos:
                parts = i.path[len(base) + 1:].split("/")
                if i.type == pafs.FileType.File and len(parts) == 2 and parts[1].endswith(".npz"):
                    files.append((parts[0], parts[1], i.size))
        out = {}
        old_layout = {folder for folder, _, _ in files if RUN_ID.fullmatch(folder)}
        for folder, name, size in files:
            if folder in old_layout:
                out[(folder, name[:-4])] = size  # artifacts/<run_id>/<name>.npz (before 0.2)
            else:
                out[(name[:-4], folder)] = size  # artifacts/<name>/<run_id>.npz
        return out

    def set_aside(self, damaged: Iterable[Damage]) -> list[str]:
        """Move a damaged run's own row file, history file and artifacts to quarantine/ so
        that the run runs again (a row or history held in a segment is superseded by the
        re-run's newer files)."""
        run_ids = sorted({d.run_id for d in damaged})
        if not run_ids:
            return []
        artifacts = self.fs.get_file_info(pafs.FileSelector(self._p(ARTIFACTS), recursive=True,
                                                            allow_not_found=True))
        artifact_files = [i.path for i in artifacts if i.type == pafs.FileType.File]
        paths: list[str] = []
        for run_id in run_ids:
            for path in (self._p(RUNS, f"{run_id}.parquet"), self._p(HISTORY, f"{run_id}.parquet")):
                if self.fs.get_file_info(path).type == pafs.FileType.File:
                    paths.append(path)
            paths += [p for p in artifact_files  # artifacts/<name>/<run_id>.npz, or the layout before 0.2
                      if p.endswith(f"/{run_id}.npz") or f"/{ARTIFACTS}/{run_id}/" in p]
        return self.quarantine(paths)

    def quarantine(self, paths: Iterable[str]) -> list[str]:
        """Move files aside (keeping them for inspection); return their new paths."""
        moved = []
        stamp = int(time.time())
        for path in paths:
            rel = path[len(self.root) + 1:].replace("/", "__")
            dest = self._p(QUARANTINE, f"{stamp}-{rel}")
            self._makedirs(self._p(QUARANTINE))
            try:
                self.fs.move(path, dest)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StoreError(describe_os_error(exc, self._where(path))) from None
            moved.append(dest)
        return moved

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
            small, segments = self._sources(sub)
            if wanted is not None:
                small = [p for p in small if p.rsplit("/", 1)[-1] in wanted]
            tables, _ = self._read_tables(small)
            if tables:
                table = _concat([t for _, t in tables])
                self._put(self._p(sub, _segment_name()), self._parquet_bytes(table))
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
        _, segments = self._sources(sub)
        if len(segments) < 2:
            return 0
        tables, corrupt = self._read_tables(segments)
        if corrupt:  # never fold what cannot be read: leave it for a human and the next run
            return 0
        rank = {p: i for i, p in enumerate(segments)}
        table = _concat([t.append_column("_rank", pa.array(np.full(t.num_rows, rank[p], dtype=np.int32)))
                         for p, t in tables])
        table = (_newest_rows(table) if sub == RUNS else _newest_history(table)).drop_columns(["_rank"])
        self._put(self._p(sub, _segment_name()), self._parquet_bytes(table))
        self._delete(segments)
        return len(segments)

    def _delete(self, paths: list[str]) -> int:
        def delete(path: str) -> int:
            try:
                self.fs.delete_file(path)
                return 1
            except FileNotFoundError:
                return 0
        if len(paths) < 4:
            return sum(delete(p) for p in paths)
        with ThreadPoolExecutor(max_workers=8 if self.is_local else 32) as pool:
            return sum(pool.map(delete, paths))

    def file_counts(self) -> dict[str, int]:
        """How many small files and segments runs/ and history/ hold (for status)."""
        out = {}
        for sub in (RUNS, HISTORY):
            small, segments = self._sources(sub)
            out[f"{sub}_files"], out[f"{sub}_segments"] = len(small), len(segments)
        return out

    # ------------------------------------------------------------------ aggregates
    def write_aggregate(self, name: str, df: pd.DataFrame) -> str:
        path = self._p(AGGREGATES, f"{name}.parquet")
        self._put(path, self._parquet_bytes(pa.Table.from_pandas(df, preserve_index=False)))
        return path

    def read_aggregate_arrow(self, name: str) -> pa.Table:
        return self._read_parquet(self._p(AGGREGATES, f"{name}.parquet"))

    def read_aggregate(self, name: str) -> pd.DataFrame:
        return self.read_aggregate_arrow(name).to_pandas()

    def aggregate_names(self) -> list[str]:
        infos = self.fs.get_file_info(pafs.FileSelector(self._p(AGGREGATES), allow_not_found=True))
        return sorted(i.base_name[:-8] for i in infos if i.type == pafs.FileType.File
                      and i.base_name.endswith(".parquet") and not i.base_name.startswith("."))

    def write_file(self, relpath: str, data: bytes) -> str:
        """Write any file (a figure, a report) under the sweep folder, atomically."""
        path = self._p(*relpath.split("/"))
        self._put(path, data)
        return path

    def aggregates_dir(self) -> str:
        return self._where(self._p(AGGREGATES))

    # ------------------------------------------------------------------ lock
    def acquire_lock(self, force: bool = False) -> dict:
        """Take the sweep's lock; refuse while another live driver holds it.

        The lock file is created atomically and exclusively (a hard link locally, a
        conditional put on S3), so it is whole or absent. A lock whose process is gone
        (same host) is stale, and an unreadable one was never a live driver's: both are
        taken over. A lock held on another host cannot be checked from here: it is refused
        unless `force`. Returns the previous holder ({} if none), with `stale` or
        `unreadable` set when it was taken over.
        """
        path = self._p(".lock")
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": time.time(),
              "proc_start": _proc_start(os.getpid())}
        self._makedirs(self.root)
        data = json.dumps(me).encode()
        for _ in range(3):
            if exclusive_create(self.location, path, data, self.root):
                return {}
            holder = self.lock_holder()
            if holder is None:  # released in between: try again
                continue
            if holder.get("unreadable"):
                pass
            elif holder.get("host") == me["host"] and not _alive(holder):
                holder["stale"] = True
            elif not force:
                since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started_at", 0)))
                raise LockError(
                    f"sweep {self.shown} is being run by pid {holder.get('pid')} on {holder.get('host')} "
                    f"since {since}; wait for it, or pass --force-unlock if that driver is gone"
                )
            try:
                self.fs.delete_file(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise StoreError(describe_os_error(exc, self._where(path))) from None
            if exclusive_create(self.location, path, data, self.root):
                return holder
        raise LockError(f"sweep {self.shown}: another driver took the lock just now")

    def lock_holder(self) -> dict | None:
        try:
            holder = json.loads(self._get(self._p(".lock")))
        except FileNotFoundError:
            return None
        except (ValueError, OSError):
            return {"unreadable": True}
        if not isinstance(holder, dict) or not isinstance(holder.get("pid"), int):
            return {"unreadable": True}
        return holder

    def release_lock(self) -> None:
        holder = self.lock_holder()
        if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
            try:
                self.fs.delete_file(self._p(".lock"))
            except OSError:
                pass


def _newest_rows(table: pa.Table) -> pa.Table:
    """One row per run id: the highest attempt, then the newest file (`_rank`), then the latest finish."""
    order = pa.table({"run_id": table.column("run_id")})
    keys = [("run_id", "ascending")]
    for c in ("attempt", "_rank", "finished_at"):
        if c in table.column_names:  # nulls (rows of old versions) rank last
            col = table.column(c)
            order = order.append_column(c, col.fill_null(pa.scalar(0, col.type) if c != "finished_at"
                                                         else pa.scalar(0, pa.int64()).cast(col.type)))
            keys.append((c, "descending"))
    table = table.take(pa.compute.sort_indices(order, sort_keys=keys))
    ids = table.column("run_id").combine_chunks()
    if len(ids) < 2:
        return table
    first = pa.compute.not_equal(ids.slice(1), ids.slice(0, len(ids) - 1))
    return table.filter(pa.concat_arrays([pa.array([True]), first.fill_null(True)]))


def _newest_history(table: pa.Table) -> pa.Table:
    """Each run's records from one file only: the newest (`_rank`) that holds the run."""
    ranks = table.column("_rank")
    if len(ranks) == 0 or pa.compute.min_max(ranks)["min"] == pa.compute.min_max(ranks)["max"]:
        return table
    newest = table.group_by("run_id").aggregate([("_rank", "max")])
    keep = table.join(newest, keys="run_id").filter(
        pa.compute.equal(pa.compute.field("_rank"), pa.compute.field("_rank_max")))
    return keep.drop_columns(["_rank_max"])


def _segment_name() -> str:
    return f"{SEGMENT_PREFIX}{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.parquet"


def _concat(tables: list[pa.Table]) -> pa.Table:
    """Concatenate run rows whose columns differ; a column typed differently across files
    (e.g. written by an older version) is read as text rather than failing the whole read."""
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
                t = t.set_column(i, name, pa.compute.cast(t.column(name), pa.string()))
            fixed.append(t)
        return pa.concat_tables(fixed, promote_options="permissive")


def _proc_start(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None


def _alive(holder: Mapping[str, Any]) -> bool:
    pid = holder.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = holder.get("proc_start")
    # A recycled pid belongs to a process that started at another time.
    return started is None or _proc_start(pid) in (None, started)
