"""Damage: finding it (rows against their history and artifacts, whole-file checks) and
setting damaged files aside in quarantine/ so that their runs run again.

A row records how many history records and which artifact bytes (size, sha256) its run
left. A check compares them with what the folder holds; `status`, `run` and `resume` run it
before planning, so a damaged run is re-run rather than trusted. Nothing is deleted: a
damaged file is moved to quarantine/ for a human to look at.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs

from symsweep._fs import describe_os_error, map_io
from symsweep._segments import Segments
from symsweep._store_files import ARTIFACTS, HISTORY, QUARANTINE, RUNS
from symsweep.errors import StoreError

RUN_ID_FOLDER = 16  # artifacts/<run_id>/<name>.npz (before 0.2): a folder named by a 16-hex run id


@dataclass(frozen=True)
class Damage:
    """A run whose row is fine but whose history or artifacts are missing or damaged."""

    run_id: str
    what: str
    """`history` or `artifact <name>`."""
    detail: str


@dataclass
class OutputCheck:
    """What a check of the runs' outputs found."""

    damaged: list[Damage] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    """(path, error) of history files that could not be read whole (their runs are among `damaged`)."""


class Integrity(Segments):
    """Checks of what the rows say against the files, and quarantine."""

    def check_outputs(self, runs: pd.DataFrame, full: bool = False) -> OutputCheck:
        """Runs whose history records or artifact files do not match what their row recorded.

        History: every history file is verified whole (a segment against the digest in its
        name, a small file by decoding every page), then each run's records are counted.
        Artifacts: each file's size is checked against the row; with `full`, every artifact
        is read and its sha256 compared (reading an artifact always checks it).
        """
        out = OutputCheck()
        if runs.empty:
            return out
        if "history_rows" in runs:
            expected = runs.dropna(subset=["history_rows"])
            expected = expected[expected["history_rows"] > 0]
            if not expected.empty:
                # the caller's rows give each run's attempt: no second read of the ledger
                attempts = None
                if "attempt" in runs:
                    attempts = pa.table({"run_id": pa.array(runs["run_id"].astype(str), pa.string()),
                                         "attempt": pa.array(runs["attempt"], pa.int64(), from_pandas=True)})
                history, out.unreadable = self.read_history_arrow(columns=["run_id"], verify=True,
                                                                  attempts=attempts)
                counts = pd.Series(dtype="int64")
                if history is not None and history.num_rows:
                    per_run = history.group_by("run_id").aggregate([("run_id", "count")])
                    counts = pd.Series(per_run.column("run_id_count").to_numpy(),
                                       index=per_run.column("run_id").to_numpy(zero_copy_only=False))
                found = counts.reindex(expected["run_id"].to_numpy()).fillna(0).astype("int64").to_numpy()
                wanted = expected["history_rows"].astype("int64").to_numpy()
                bad_files = {p.rsplit("/", 1)[-1]: err for p, err in out.unreadable}
                for rid, have, n in zip(expected["run_id"][found != wanted], found[found != wanted],
                                        wanted[found != wanted]):
                    err = bad_files.get(f"{rid}.parquet")
                    detail = f"unreadable ({err})" if err else f"{have} of {n} records"
                    out.damaged.append(Damage(rid, "history", detail))
        if "artifact_digests" in runs:
            out.damaged += self._check_artifacts(runs[runs["artifact_digests"].notna()], full)
        return out

    def _check_artifacts(self, with_artifacts: pd.DataFrame, full: bool) -> list[Damage]:
        if with_artifacts.empty:
            return []
        damaged = []
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

    def _artifact_path(self, run_id: str, name: str) -> str:
        # one folder per artifact name: a single listing sizes every run's file
        return self.path(ARTIFACTS, name, f"{run_id}.npz")

    def _artifact_bytes(self, run_id: str, name: str) -> bytes:
        path = self._artifact_path(run_id, name)
        try:
            return self.read_bytes(path)
        except FileNotFoundError:
            try:  # the layout of stores written before 0.2
                return self.read_bytes(self.path(ARTIFACTS, run_id, f"{name}.npz"))
            except FileNotFoundError:
                raise StoreError(f"artifact {name!r} of run {run_id} is missing ({self.shown_path(path)}); "
                                 f"`symsweep resume` re-runs the run") from None

    def _artifact_sizes(self) -> dict[tuple[str, str], int]:
        """(run_id, name) -> size of every artifact file, from one listing per artifact name."""
        base = self.path(ARTIFACTS)
        files: list[tuple[str, str, int]] = []  # (folder, file name, size)
        if self.is_local:  # os.scandir is several times faster than a recursive FileSelector
            try:
                folders = [d for d in os.scandir(base) if d.is_dir()]
            except FileNotFoundError:
                return {}
            chunks = []  # stat() in chunks of 1024 files on threads: stat() releases the GIL
            for d in folders:
                entries = [f for f in os.scandir(d.path) if f.name.endswith(".npz") and not f.name.startswith(".")]
                chunks += [(d.name, entries[i:i + 1024]) for i in range(0, len(entries), 1024)]

            def sizes(chunk: tuple[str, list[os.DirEntry]]) -> list[tuple[str, str, int]]:
                return [(chunk[0], f.name, f.stat().st_size) for f in chunk[1]]
            for part in map_io(sizes, chunks, workers=4):
                files += part
        else:
            infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
            for i in infos:
                parts = i.path[len(base) + 1:].split("/")
                if i.type == pafs.FileType.File and len(parts) == 2 and parts[1].endswith(".npz"):
                    files.append((parts[0], parts[1], i.size))
        out = {}
        old_layout = {folder for folder, _, _ in files if _is_run_id(folder)}
        for folder, name, size in files:
            if folder in old_layout:
                out[(folder, name[:-4])] = size  # artifacts/<run_id>/<name>.npz (before 0.2)
            else:
                out[(name[:-4], folder)] = size  # artifacts/<name>/<run_id>.npz
        return out

    # ------------------------------------------------------------------ quarantine
    def set_aside(self, damaged: Iterable[Damage]) -> list[str]:
        """Move a damaged run's own row file, history file and artifacts to quarantine/ so
        that the run runs again (a row or history held in a segment is superseded by the
        re-run's newer files)."""
        run_ids = sorted({d.run_id for d in damaged})
        if not run_ids:
            return []
        artifacts = self.fs.get_file_info(pafs.FileSelector(self.path(ARTIFACTS), recursive=True,
                                                            allow_not_found=True))
        artifact_files = [i.path for i in artifacts if i.type == pafs.FileType.File]
        wanted = set(run_ids)
        paths: list[str] = []
        for sub in (RUNS, HISTORY):
            small, _ = self.table_files(sub)
            paths += [p for p in small if p.rsplit("/", 1)[-1][:-len(".parquet")] in wanted]
        for p in artifact_files:  # artifacts/<name>/<run_id>.npz, or artifacts/<run_id>/<name>.npz before 0.2
            name, folder = p.rsplit("/", 1)[-1], p.rsplit("/", 2)[-2]
            if name[:-len(".npz")] in wanted or folder in wanted:
                paths.append(p)
        return self.quarantine(paths)

    def quarantine(self, paths: Iterable[str]) -> list[str]:
        """Move files aside (keeping them for inspection); return their new paths."""
        moved = []
        stamp = int(time.time())
        for path in paths:
            rel = path[len(self.root) + 1:].replace("/", "__")
            dest = self.path(QUARANTINE, f"{stamp}-{rel}")
            self.makedirs(self.path(QUARANTINE))
            try:
                self.fs.move(path, dest)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise StoreError(describe_os_error(exc, self.shown_path(path))) from None
            moved.append(dest)
        return moved


def _is_run_id(name: str) -> bool:
    return len(name) == RUN_ID_FOLDER and all(c in "0123456789abcdef" for c in name)


def damage_lines(corrupt: list[tuple[str, str]], damaged: list[Damage], shown: Callable[[str], str],
                 what_next: str, most: int = 5) -> list[str]:
    """Damage in a few lines: one per unreadable file up to `most`, then a count; runs with
    damaged outputs one per line up to `most`, then one line per kind with a count and an example."""
    lines = [f"unreadable file {shown(p)} ({err}); {what_next}" for p, err in corrupt[:most]]
    if len(corrupt) > most:
        lines.append(f"... and {len(corrupt) - most} more unreadable files; {what_next}")
    if len(damaged) <= most:
        lines += [f"run {d.run_id}: {d.what} ({d.detail}); {what_next}" for d in damaged]
        return lines
    kinds: dict[str, list[Damage]] = {}
    for d in damaged:
        kinds.setdefault(d.what, []).append(d)
    for what, ds in kinds.items():
        lines.append(f"{len(ds)} runs: {what} missing or damaged (e.g. run {ds[0].run_id}: {ds[0].detail}); "
                     f"{what_next}")
    return lines
