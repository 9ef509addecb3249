"""The Parquet store of one sweep: the ledger of runs, their history and artifacts.

Layout of a sweep folder (local path or any URI `pyarrow.fs` opens):

    spec.yaml                  the frozen spec the sweep was planned from
    runs/<run_id>.parquet      one row per run: the ledger, the single source of truth
    history/<run_id>.parquet   long format: run_id, step, metric, value
    artifacts/<run_id>/<name>.npz
    aggregates/<name>.parquet  written by the aggregation stage
    quarantine/                unreadable files moved aside (their runs run again)
    .lock                      the live driver's pid, host and start time

A run is done when its row says `completed`. Each run writes history and artifacts
first and its row last, each file to a temporary name then renamed (a single put on
object stores), so a killed run leaves either a whole row or none: never half a run.
"""
from __future__ import annotations

import io
import json
import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute.cast
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import yaml

from orchestrator.errors import LockError, StoreError

RUNS, HISTORY, ARTIFACTS, AGGREGATES, QUARANTINE = "runs", "history", "artifacts", "aggregates", "quarantine"
# Columns every row of the `runs` table has (README "Store tables" documents each), besides
# one `cfg_<name>` column per config field and one `metric_<name>` column per final metric.
RUN_COLUMNS = (
    "run_id", "sweep", "task", "trial_id", "seed", "status", "attempt", "error", "traceback",
    "started_at", "finished_at", "duration_s", "batch_size_runs", "host", "device", "pid",
    "git_commit", "config_json", "peak_gpu_mem_mb", "peak_rss_mb", "cuda_visible_devices",
    "v_python", "v_symsweep", "v_torch", "v_numpy", "v_ray",
)
HISTORY_SCHEMA = pa.schema([("run_id", pa.string()), ("step", pa.int64()),
                            ("metric", pa.string()), ("value", pa.float64())])


def open_filesystem(uri: str) -> tuple[pafs.FileSystem, str, bool]:
    """(filesystem, path inside it, is_local) for a local path or a pyarrow.fs URI."""
    if "://" in uri:
        try:
            fs, path = pafs.FileSystem.from_uri(uri)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
            raise StoreError(f"cannot open store {uri!r}: {exc}") from None
        return fs, path.rstrip("/"), isinstance(fs, pafs.LocalFileSystem)
    return pafs.LocalFileSystem(), os.path.abspath(uri), True


@dataclass
class LedgerView:
    """The runs table as read now, plus the files that could not be read."""

    runs: pd.DataFrame
    corrupt: list[tuple[str, str]] = field(default_factory=list)
    """(path, error) of run files that could not be read."""

    def ids_with_status(self, *statuses: str) -> set[str]:
        if self.runs.empty:
            return set()
        return set(self.runs.loc[self.runs["status"].isin(statuses), "run_id"])


class SweepStore:
    """Read and write one sweep folder."""

    def __init__(self, uri: str):
        self.uri = uri if "://" in uri else os.path.abspath(uri)
        self.fs, self.root, self.is_local = open_filesystem(uri)

    def __repr__(self) -> str:
        return f"SweepStore({self.uri!r})"

    # ------------------------------------------------------------------ paths
    def _p(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def exists(self) -> bool:
        return self._info(self._p("spec.yaml")).type == pafs.FileType.File

    def _info(self, path: str) -> pafs.FileInfo:
        return self.fs.get_file_info(path)

    def _makedirs(self, path: str) -> None:
        self.fs.create_dir(path, recursive=True)

    # ------------------------------------------------------------------ atomic writes
    def _put(self, path: str, data: bytes) -> None:
        """Write `data` at `path` atomically: temp file + rename locally, one put elsewhere."""
        parent = path.rsplit("/", 1)[0]
        self._makedirs(parent)
        if self.is_local:
            tmp = f"{parent}/.tmp-{uuid.uuid4().hex}"
            with self.fs.open_output_stream(tmp) as f:
                f.write(data)
            os.replace(tmp, path)  # atomic on POSIX, same directory
        else:
            with self.fs.open_output_stream(path) as f:
                f.write(data)

    def _get(self, path: str) -> bytes:
        with self.fs.open_input_stream(path) as f:
            return f.read()

    @staticmethod
    def _parquet_bytes(table: pa.Table) -> bytes:
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return buf.getvalue()

    # ------------------------------------------------------------------ spec
    def write_spec(self, spec_dict: Mapping[str, Any]) -> None:
        self._put(self._p("spec.yaml"), yaml.safe_dump(dict(spec_dict), sort_keys=False).encode())

    def read_spec(self) -> dict:
        try:
            return yaml.safe_load(self._get(self._p("spec.yaml")))
        except FileNotFoundError:
            raise StoreError(f"{self.uri} is not a sweep folder (no spec.yaml)") from None

    # ------------------------------------------------------------------ runs
    def write_run(self, row: Mapping[str, Any], history: Iterable[Mapping[str, Any]] = (),
                  artifacts: Mapping[str, Mapping[str, np.ndarray]] | None = None) -> None:
        """Persist one finished run: history, artifacts, then the row (the commit point)."""
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
        for name, arrays in (artifacts or {}).items():
            buf = io.BytesIO()
            np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
            self._put(self._p(ARTIFACTS, run_id, f"{name}.npz"), buf.getvalue())
        self._put(self._p(RUNS, f"{run_id}.parquet"), self._parquet_bytes(pa.Table.from_pylist([dict(row)])))

    def run_record(self, run_id: str) -> dict | None:
        """Status and attempt of one run's row, or None when it has none (or it is unreadable)."""
        try:
            table = pq.read_table(io.BytesIO(self._get(self._p(RUNS, f"{run_id}.parquet"))),
                                  columns=["status", "attempt"])
            return table.to_pylist()[0]
        except (FileNotFoundError, pa.ArrowInvalid, OSError, KeyError):
            return None

    def _list(self, sub: str, suffix: str = ".parquet") -> list[str]:
        selector = pafs.FileSelector(self._p(sub), allow_not_found=True)
        return sorted(i.path for i in self.fs.get_file_info(selector)
                      if i.type == pafs.FileType.File and i.path.endswith(suffix)
                      and not i.path.rsplit("/", 1)[-1].startswith("."))

    def _read_tables(self, paths: list[str], columns: list[str] | None = None
                     ) -> tuple[list[pa.Table], list[tuple[str, str]]]:
        def read(path: str):
            try:
                return pq.read_table(io.BytesIO(self._get(path)), columns=columns), None
            except (pa.ArrowInvalid, OSError, KeyError) as exc:
                return None, (path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        with ThreadPoolExecutor(max_workers=8) as pool:
            out = list(pool.map(read, paths))
        return [t for t, _ in out if t is not None], [e for _, e in out if e is not None]

    def read_ledger(self, columns: list[str] | None = None) -> LedgerView:
        tables, corrupt = self._read_tables(self._list(RUNS), columns)
        if not tables:
            return LedgerView(pd.DataFrame(columns=columns or ["run_id", "status"]), corrupt)
        return LedgerView(_concat(tables).to_pandas(), corrupt)

    def read_runs(self) -> pd.DataFrame:
        return self.read_ledger().runs

    def read_history(self, run_ids: Iterable[str] | None = None) -> pd.DataFrame:
        paths = self._list(HISTORY)
        if run_ids is not None:
            wanted = set(run_ids)
            paths = [p for p in paths if p.rsplit("/", 1)[-1][:-8] in wanted]
        tables, _ = self._read_tables(paths)
        if not tables:
            return HISTORY_SCHEMA.empty_table().to_pandas()
        return pa.concat_tables(tables).to_pandas()

    def read_artifact(self, run_id: str, name: str) -> dict[str, np.ndarray]:
        data = self._get(self._p(ARTIFACTS, run_id, f"{name}.npz"))
        with np.load(io.BytesIO(data)) as npz:
            return {k: npz[k] for k in npz.files}

    def quarantine(self, paths: Iterable[str]) -> list[str]:
        """Move unreadable files aside so that their runs run again; return the new paths."""
        moved = []
        self._makedirs(self._p(QUARANTINE))
        for path in paths:
            rel = path[len(self.root) + 1:].replace("/", "__")
            dest = self._p(QUARANTINE, f"{int(time.time())}-{rel}")
            self.fs.move(path, dest)
            moved.append(dest)
        return moved

    # ------------------------------------------------------------------ aggregates
    def write_aggregate(self, name: str, df: pd.DataFrame) -> str:
        path = self._p(AGGREGATES, f"{name}.parquet")
        self._put(path, self._parquet_bytes(pa.Table.from_pandas(df, preserve_index=False)))
        return path

    def read_aggregate(self, name: str) -> pd.DataFrame:
        return pq.read_table(io.BytesIO(self._get(self._p(AGGREGATES, f"{name}.parquet")))).to_pandas()

    def write_file(self, relpath: str, data: bytes) -> str:
        """Write any file (a figure, a report) under the sweep folder, atomically."""
        path = self._p(*relpath.split("/"))
        self._put(path, data)
        return path

    def aggregates_dir(self) -> str:
        return self._p(AGGREGATES)

    # ------------------------------------------------------------------ lock
    def acquire_lock(self, force: bool = False) -> dict:
        """Take the sweep's lock; refuse while another live driver holds it.

        A lock whose process is gone (same host) is stale and taken over. A lock held on
        another host cannot be checked from here: it is refused unless `force`.
        """
        path = self._p(".lock")
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": time.time(),
              "proc_start": _proc_start(os.getpid())}
        self._makedirs(self.root)
        holder = self.lock_holder()
        if holder is not None and not force:
            if holder.get("host") == me["host"] and not _alive(holder):
                holder["stale"] = True
            else:
                since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started_at", 0)))
                raise LockError(
                    f"sweep {self.uri} is being run by pid {holder.get('pid')} on {holder.get('host')} "
                    f"since {since}; wait for it, or pass --force-unlock if that driver is gone"
                )
        data = json.dumps(me).encode()
        if self.is_local and holder is None:
            try:  # O_EXCL closes the race between two drivers starting together
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                raise LockError(f"sweep {self.uri} was locked by another driver just now") from None
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        else:
            self._put(path, data)
        return holder or {}

    def lock_holder(self) -> dict | None:
        try:
            return json.loads(self._get(self._p(".lock")))
        except FileNotFoundError:
            return None
        except (ValueError, OSError):
            return {"pid": None, "host": None, "started_at": 0, "unreadable": True}

    def release_lock(self) -> None:
        holder = self.lock_holder()
        if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
            self.fs.delete_file(self._p(".lock"))


def _concat(tables: list[pa.Table]) -> pa.Table:
    """Concatenate run rows whose columns differ; a column typed differently across files
    (e.g. written by an older version) is read as text rather than failing the whole read."""
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
