"""The Parquet store of one sweep: the ledger of runs, their history and artifacts.

Layout of a sweep folder (local path or any URI `pyarrow.fs` opens):

    spec.yaml                    the frozen spec the sweep was planned from
    runs/<run_id>.parquet        one row: a run, written the moment it finished
    runs/seg-<time>-<id>-<sha>.parquet  many rows: small run files folded together (compaction)
    history/<run_id>.parquet     long format: run_id, step, metric, value, attempt
    history/seg-<time>-<id>-<sha>.parquet  the same, folded
    artifacts/<name>/<run_id>.npz   (stores written before 0.2: artifacts/<run_id>/<name>.npz)
    aggregates/<name>.parquet    written by the aggregation stage
    quarantine/                  unreadable or damaged files moved aside (their runs run again)
    .lock                        the live driver's lock (pid, host and start time inside)

A run is done when its row says `completed`. Each run writes history and artifacts
first and its row last, each file to a temporary name, fsynced, then renamed (a single put
on object stores), so a killed run leaves either a whole row or none: never half a run,
and a row `run` has reported survives a power loss.

`SweepStore` is the front; its parts live beside it, each small enough to read at once:
`_store_files` (paths, atomic writes, retried reads, verified Parquet), `_segments` (the
ledger and history readers, compaction), `_integrity` (damage checks, quarantine) and
`_lock` (one live driver per sweep).
"""
from __future__ import annotations

import hashlib
import io
import json
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import yaml

from symsweep._fs import Location, describe_os_error
from symsweep._integrity import Damage, Integrity, OutputCheck, damage_lines  # noqa: F401 - the store's API
from symsweep._lock import StoreLock
from symsweep._segments import (  # noqa: F401 - the store's API
    COMPACT_EVERY,
    HISTORY_SCHEMA,
    MERGE_SEGMENTS_AT,
    Compaction,
    LedgerView,
    concat_tables,
    newest_history,
    newest_rows,
)
from symsweep._store_files import (  # noqa: F401 - the store's API
    AGGREGATES,
    ARTIFACTS,
    HISTORY,
    QUARANTINE,
    RUNS,
    SEGMENT_PREFIX,
    DamagedFile,
    parquet_bytes,
    retrying,
)
from symsweep.errors import SpecError, StoreError, StoreUnavailableError

# Columns every row of the `runs` table has (docs "Store tables" documents each), besides
# one `cfg_<name>` column per config field, one `metric_<name>` column per final metric and
# one `info_<name>` column per text fact a task reports.
RUN_COLUMNS = (
    "run_id", "sweep", "task", "trial_id", "seed", "status", "attempt", "error", "traceback",
    "started_at", "finished_at", "duration_s", "batch_size_runs", "host", "device", "pid",
    "git_commit", "config_json", "peak_gpu_mem_mb", "gpu_mem_total_mb", "peak_rss_mb", "cuda_visible_devices",
    "history_rows", "artifact_bytes", "artifact_digests",
    "batch_duration_s", "batch_peak_gpu_mem_mb", "batch_error", "cpu_model", "torch_threads", "blas", "blas_threads",
    "v_python", "v_symsweep", "v_torch", "v_numpy", "v_ray",
)


SOURCES_KEY = "symsweep.sources"
"""Parquet metadata key of an aggregate table: the fingerprint of the runs it was computed from."""


def runs_fingerprint(runs: pd.DataFrame) -> dict[str, Any]:
    """What an aggregate was computed from: the count and a sha256 of the completed runs'
    (run_id, attempt), sorted. Equal for the same completed runs, whatever their order or the
    files (small or segment) that hold them; a run completed, added or retried since changes it."""
    done = runs[runs["status"] == "completed"] if "status" in runs else runs
    if "run_id" not in done:
        return {"completed": 0, "sha256": hashlib.sha256(b"").hexdigest()}
    # the attempt as an integer text: a read that upcasts the column to float must not change it
    attempts = (pd.to_numeric(done["attempt"], errors="coerce").astype("Int64").astype(str) if "attempt" in done
                else pd.Series(["<NA>"] * len(done), index=done.index))
    keys = sorted(f"{r}:{a}" for r, a in zip(done["run_id"].astype(str), attempts))
    return {"completed": len(keys), "sha256": hashlib.sha256("\n".join(keys).encode()).hexdigest()}


class SweepStore(Integrity):
    """Read and write one sweep folder."""

    def __init__(self, uri: str | Location):
        super().__init__(uri)
        self.lock = StoreLock(self)

    # ------------------------------------------------------------------ spec
    def write_spec(self, spec_dict: Mapping[str, Any]) -> None:
        self.makedirs(self.root)
        self._put(self.path("spec.yaml"), yaml.safe_dump(dict(spec_dict), sort_keys=False).encode())

    def read_spec(self) -> dict:
        where = self.spec_shown
        try:
            data = self.read_bytes(self.path("spec.yaml"))
        except FileNotFoundError:
            raise StoreError(f"{self.shown} is not a sweep folder (no spec.yaml)") from None
        except OSError as exc:
            raise StoreUnavailableError(f"cannot read {where}: {describe_os_error(exc, where)}") from None
        from symsweep.spec import load_yaml  # the spec files' loader and limits (no alias bombs, ...)
        try:
            return load_yaml(data, where)
        except SpecError as exc:
            raise SpecError(f"{exc}; the sweep's frozen spec is damaged: restore it, "
                            "or run the sweep again from its spec file (--force)") from None
        except UnicodeDecodeError:
            raise SpecError(f"{where}: not valid YAML (not text); the sweep's frozen spec is damaged") from None

    # ------------------------------------------------------------------ runs
    def write_run(self, row: Mapping[str, Any], history: Iterable[Mapping[str, Any]] = (),
                  artifacts: Mapping[str, Mapping[str, np.ndarray]] | None = None) -> None:
        """Persist one finished run: history, artifacts, then the row (the commit point).
        The row records what the run left (history row count, artifact sizes and sha256);
        history records carry the row's attempt, so a retried run is never served another
        attempt's history."""
        run_id = row["run_id"]
        attempt = row.get("attempt")
        records = []
        for rec in history:
            step = int(rec["step"])
            for k, v in rec.items():
                if k != "step" and v is not None:
                    records.append((run_id, step, k, float(v), attempt))
        if records:
            cols = list(zip(*records))
            table = pa.Table.from_arrays([pa.array(c, t.type) for c, t in zip(cols, HISTORY_SCHEMA)],
                                         schema=HISTORY_SCHEMA)
            self._put(self.path(HISTORY, f"{run_id}.parquet"), parquet_bytes(table, digest=True))
        digests = {}
        for name, arrays in (artifacts or {}).items():
            buf = io.BytesIO()
            np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
            data = buf.getvalue()
            self._put(self._artifact_path(run_id, name), data)
            digests[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        row = {**row, "history_rows": len(records), "artifact_bytes": sum(d["bytes"] for d in digests.values()),
               "artifact_digests": json.dumps(digests, sort_keys=True) if digests else None}
        self._put(self.path(RUNS, f"{run_id}.parquet"), parquet_bytes(pa.Table.from_pylist([row]), digest=True))

    def run_record(self, run_id: str) -> dict | None:
        """Status and attempt of a run's own (not yet compacted) row file; None when there is
        none or it is damaged (the run then runs again). A transient read error is retried,
        then raised (StoreUnavailableError): it never makes a finished run run again."""
        try:
            return self._read_parquet(self.path(RUNS, f"{run_id}.parquet"), ["status", "attempt"]).to_pylist()[0]
        except FileNotFoundError:
            return None
        except (pa.ArrowException, KeyError, IndexError, ValueError, NotImplementedError):
            return None  # not OSError: a read that keeps failing is raised, never taken as no row

    # ------------------------------------------------------------------ artifacts
    def read_artifact(self, run_id: str, name: str, digest: Mapping[str, Any] | None = None
                      ) -> dict[str, np.ndarray]:
        """A run's artifact; with `digest` ({"bytes", "sha256"} from its row) checked first."""
        path = self._artifact_path(run_id, name)
        data = self._artifact_bytes(run_id, name)
        if digest is not None and hashlib.sha256(data).hexdigest() != digest.get("sha256"):
            raise StoreError(f"artifact {name!r} of run {run_id} is damaged (sha256 differs from its row: "
                             f"{self.shown_path(path)}); `symsweep resume` re-runs the run")
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

    # ------------------------------------------------------------------ aggregates
    def write_aggregate(self, name: str, df: pd.DataFrame, sources: Mapping[str, Any] | None = None) -> str:
        """Write an aggregate table; `sources` (`runs_fingerprint` of the runs it was computed
        from) goes into the file's metadata, so a reader can tell a stale table (`aggregate_sources`)."""
        table = pa.Table.from_pandas(df, preserve_index=False)
        if sources is not None:
            meta = dict(table.schema.metadata or {})
            meta[SOURCES_KEY] = json.dumps(dict(sources), sort_keys=True).encode()
            table = table.replace_schema_metadata(meta)
        path = self.path(AGGREGATES, f"{name}.parquet")
        self._put(path, parquet_bytes(table))
        return path

    def read_aggregate_arrow(self, name: str) -> pa.Table:
        return self._read_parquet(self.path(AGGREGATES, f"{name}.parquet"))

    def read_aggregate(self, name: str) -> pd.DataFrame:
        return self.read_aggregate_arrow(name).to_pandas()

    def aggregate_sources(self, table: pa.Table) -> dict | None:
        """The `runs_fingerprint` an aggregate table was written with; None for a table written
        without one (by symsweep before 0.3, or by hand)."""
        raw = (table.schema.metadata or {}).get(SOURCES_KEY.encode())
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None

    def aggregate_names(self) -> list[str]:
        return [p.rsplit("/", 1)[-1][:-len(".parquet")] for p in self.list_files(self.path(AGGREGATES))]

    def write_file(self, relpath: str, data: bytes) -> str:
        """Write any file (a figure, a report) under the sweep folder, atomically."""
        path = self.path(*relpath.split("/"))
        self._put(path, data)
        return path

    def aggregates_dir(self) -> str:
        return self.shown_path(self.path(AGGREGATES))

    # ------------------------------------------------------------------ lock (symsweep._lock)
    def acquire_lock(self, force: bool = False) -> dict:
        """Take the sweep's lock, refused while another live driver holds it; returns the
        previous holder ({} if none) with `stale` / `unreadable` / `forced` when taken over."""
        return self.lock.acquire(force)

    def lock_holder(self) -> dict | None:
        return self.lock.holder()

    def release_lock(self) -> None:
        self.lock.release()
