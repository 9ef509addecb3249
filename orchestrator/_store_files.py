"""The files of one sweep folder: paths, atomic writes, reads that retry, verified Parquet.

The base of `SweepStore` (symsweep.store): everything here is about one file at a time.
Segments and compaction (`_segments.py`), damage checks and quarantine (`_integrity.py`) and
the lock (`_lock.py`) build on it.
"""
from __future__ import annotations

import hashlib
import json
import io
import os
import re
import time
from typing import Callable, TypeVar

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from symsweep._fs import (
    TEMP_PREFIX,
    Location,
    atomic_put,
    check_reachable,
    describe_os_error,
    filesystem,
    map_io,
    parse_location,
)
from symsweep.errors import StoreError, StoreUnavailableError, first_line

RUNS, HISTORY, ARTIFACTS, AGGREGATES, QUARANTINE = "runs", "history", "artifacts", "aggregates", "quarantine"
SEGMENT_PREFIX = "seg-"
# seg-<time ns>-<random>[-<sha256 of the file, 16 hex>].parquet: the digest (since 0.3) lets a
# check verify a whole segment by hashing its bytes, without decoding every column
SEGMENT_NAME = re.compile(r"seg-\d{20}-[0-9a-f]{8}(?:-(?P<digest>[0-9a-f]{16}))?\.parquet")
# Reads that fail with a transient error (a dropped connection, a throttled request) are tried
# this many times, with these pauses, before the error is reported (never taken as "absent").
READ_TRIES = 4
READ_BACKOFF_S = (0.2, 0.5, 1.0)

T = TypeVar("T")


class DamagedFile(ValueError):
    """A file whose bytes do not match its checksum (a page checksum or a segment's digest)."""


def retrying(read: Callable[[], T], what: str) -> T:
    """`read()`, tried again on transient errors; FileNotFoundError passes straight through
    (absent is an answer, not an error). After READ_TRIES failures: one line, StoreUnavailableError."""
    for i in range(READ_TRIES):
        try:
            return read()
        except FileNotFoundError:
            raise
        except OSError as exc:
            if i == READ_TRIES - 1:
                raise StoreUnavailableError(f"cannot read {what}: {describe_os_error(exc, what)} "
                                            f"(tried {READ_TRIES} times)") from None
            time.sleep(READ_BACKOFF_S[min(i, len(READ_BACKOFF_S) - 1)])
    raise AssertionError("unreachable")


def segment_name(data: bytes) -> str:
    """A new segment's file name: time-ordered, unique, carrying the sha256 of `data`."""
    import uuid
    return f"{SEGMENT_PREFIX}{time.time_ns():020d}-{uuid.uuid4().hex[:8]}-{digest16(data)}.parquet"


def digest16(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


UNREADABLE = (pa.ArrowException, OSError, KeyError, ValueError, NotImplementedError)
"""What reading a damaged Parquet file can raise (a flipped bit in a footer can ask for an
unsupported type: ArrowNotImplementedError)."""

CONTENT_KEY = b"symsweep.content_sha256"
"""Parquet metadata key of a small file: the sha256 of what it decodes to (content_digest)."""


def content_digest(table: pa.Table) -> str:
    """sha256 of what a table decodes to: its column names and types and every value. Page
    checksums cover the values' bytes but not the footer, where one flipped bit can rename a
    column (`run_id` -> `sun_id`) and the file still decodes; this digest catches that."""
    fields = [[f.name, str(f.type)] for f in table.schema]
    text = json.dumps({"fields": fields, "rows": table.to_pylist()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def parquet_bytes(table: pa.Table, digest: bool = False) -> bytes:
    """A table as Parquet bytes, with page checksums (verified whenever a page is decoded).
    `digest` (a small run or history file, whose name carries no digest as a segment's does):
    with its `content_digest` in the metadata and no column statistics (a flipped bit in a
    one-row file's min/max would make a filtering reader skip the row)."""
    meta = {k: v for k, v in (table.schema.metadata or {}).items() if k != CONTENT_KEY}  # never another file's
    table = table.replace_schema_metadata(meta or None)
    if digest:
        table = table.replace_schema_metadata({**meta, CONTENT_KEY: content_digest(table)})
    buf = io.BytesIO()
    pq.write_table(table, buf, write_page_checksum=True, write_statistics=not digest)
    return buf.getvalue()


def verify_parquet(name: str, data: bytes) -> None:
    """Raise DamagedFile unless every byte a reader may need is intact: a segment's bytes
    against the digest in its name, any other file by decoding every page (checksums on)."""
    match = SEGMENT_NAME.fullmatch(name)
    if match and match["digest"]:
        if digest16(data) != match["digest"]:
            raise DamagedFile(f"sha256 of the file differs from the digest in its name ({len(data)} bytes)")
        return
    try:
        table = pq.ParquetFile(io.BytesIO(data), page_checksum_verification=True).read()
    except UNREADABLE as exc:
        raise DamagedFile(first_line(exc)) from None
    meta = dict(table.schema.metadata or {})
    recorded = meta.pop(CONTENT_KEY, None)
    if recorded is not None:  # files written before 0.3 have none: their pages are checked above
        try:
            content = content_digest(table.replace_schema_metadata(meta or None))
        except (TypeError, ValueError) as exc:
            raise DamagedFile(first_line(exc)) from None
        if content.encode() != recorded:
            raise DamagedFile("what the file decodes to differs from the digest in its metadata (a damaged footer)")


class StoreFiles:
    """One sweep folder's files: where they are and how each is written and read."""

    def __init__(self, uri: str | Location):
        self.location = uri if isinstance(uri, Location) else parse_location(uri)
        self.uri = self.location.uri
        self.shown = self.location.shown
        """The URI for messages (secrets masked)."""
        self.fs = filesystem(self.location)
        self.root = self.location.path
        self.is_local = self.location.is_local
        # threads for many small reads and deletes: a local disk is busy with a few; an object
        # store answers each request slowly but many at once
        self.io_workers = 8 if self.is_local else 32

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"

    # ------------------------------------------------------------------ paths
    def path(self, *parts: str) -> str:
        """A path inside the sweep folder, in the filesystem's terms (no URI scheme)."""
        return "/".join([self.root, *parts])

    def shown_path(self, path: str) -> str:
        """A path inside this store as the user knows it: `s3://bucket/...` on S3."""
        return path if self.location.scheme == "" else f"{self.location.scheme}://{path}"

    @property
    def spec_shown(self) -> str:
        """Where spec.yaml is, for messages."""
        return self.shown_path(self.path("spec.yaml"))

    def exists(self) -> bool:
        try:
            info = retrying(lambda: self.fs.get_file_info(self.path("spec.yaml")), self.spec_shown)
        except StoreUnavailableError as exc:
            raise StoreUnavailableError(f"cannot reach store {self.shown}: {exc}") from None
        return info.type == pafs.FileType.File

    def check_reachable(self) -> None:
        check_reachable(self.location)

    def makedirs(self, path: str) -> None:
        """Make a folder of this store and its parents (local only: object stores have none)."""
        if self.is_local:
            try:
                os.makedirs(path, exist_ok=True)
            except OSError as exc:
                raise StoreError(describe_os_error(exc, path)) from None

    def list_files(self, folder: str, suffix: str = ".parquet") -> list[str]:
        """Paths of the files in `folder` (a `path()`) whose names end in `suffix`, sorted;
        none when the folder is missing. Hidden files (a writer's temp files) are skipped."""
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        except OSError as exc:
            raise StoreUnavailableError(f"cannot list {self.shown_path(folder)}: "
                                        f"{describe_os_error(exc, self.shown)}") from None
        return sorted(i.path for i in infos if i.type == pafs.FileType.File and i.base_name.endswith(suffix)
                      and not i.base_name.startswith("."))

    # ------------------------------------------------------------------ writes and reads
    def _put(self, path: str, data: bytes) -> None:
        """Write `data` at `path` atomically and durably (temp file, fsync, rename, fsync of
        the folder locally; one put elsewhere)."""
        # temp files live in the top folder they are renamed into (runs/, artifacts/, ...):
        # same filesystem for the rename, and one place to sweep for a killed writer's leftovers
        rel = path[len(self.root) + 1:]
        atomic_put(self.fs, self.location, path, data, self.path(rel.split("/", 1)[0]) if "/" in rel else self.root)

    def read_bytes(self, path: str) -> bytes:
        """A file's bytes; transient errors are retried (see `retrying`)."""
        def read() -> bytes:
            with self.fs.open_input_stream(path) as f:
                return f.read()
        return retrying(read, self.shown_path(path))

    def _read_parquet(self, path: str, columns: list[str] | None = None, verify: bool = False) -> pa.Table:
        """One Parquet file, page checksums verified on the pages read; `columns` that the file
        lacks are skipped. `verify`: check the whole file first (`verify_parquet`)."""
        data = self.read_bytes(path)
        if verify:
            verify_parquet(path.rsplit("/", 1)[-1], data)
        f = pq.ParquetFile(io.BytesIO(data), page_checksum_verification=True)
        if columns is not None:
            columns = [c for c in columns if c in f.schema_arrow.names]
        return f.read(columns=columns)

    def _delete(self, paths: list[str]) -> int:
        def delete(path: str) -> int:
            try:
                self.fs.delete_file(path)
                return 1
            except FileNotFoundError:
                return 0
        return sum(map_io(delete, paths, self.io_workers))

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
