"""Launch-grade behaviour (issue 34): what a cluster does to a job. A scheduler stops jobs with
SIGTERM, requeues them onto another host, and polls their status while they start."""
from __future__ import annotations

import threading

import pytest

from symsweep import _lock
from symsweep.errors import LockError
from symsweep.store import SweepStore


@pytest.mark.parametrize("probe", ["proc_locks", "flock_probe"])
def test_a_status_poll_never_refuses_a_starting_driver(tmp_path, monkeypatch, probe):
    """`symsweep status` asks whether the lock is held while drivers start: it must never make
    one fail (exit 3). On Linux it reads /proc/locks and locks nothing; elsewhere it probes
    with a shared lock for microseconds, and a starting driver tries again for a moment."""
    if probe == "flock_probe":
        monkeypatch.setattr(_lock, "_flock_listed", lambda path, table="": None)
    elif _lock._flock_listed(__file__) is None:
        pytest.skip("no /proc/locks here")
    store = SweepStore(str(tmp_path / "sweep"))
    store.makedirs(store.root)
    stop, polls = threading.Event(), [0]

    def poll():
        poller = SweepStore(str(tmp_path / "sweep"))
        while not stop.is_set():
            poller.lock_holder()
            polls[0] += 1
    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    refused = 0
    try:
        for _ in range(300):
            driver = SweepStore(str(tmp_path / "sweep"))
            try:
                driver.acquire_lock()
            except LockError:
                refused += 1
                continue
            driver.release_lock()
    finally:
        stop.set()
        thread.join()
    assert polls[0] > 300 and refused == 0, (polls[0], refused)


def test_a_live_driver_is_still_refused_after_the_grace(tmp_path):
    first, second = SweepStore(str(tmp_path / "s")), SweepStore(str(tmp_path / "s"))
    first.acquire_lock()
    try:
        with pytest.raises(LockError, match="is being run by pid"):
            second.acquire_lock()
        assert first.lock_holder()["pid"] and not first.lock_holder().get("stale")
    finally:
        first.release_lock()
    assert first.lock_holder() is None


# ----------------------------------------------------------------------------- a run file's footer


def test_every_single_bit_flip_in_a_run_files_footer_is_found_or_harmless(tmp_path):
    """Page checksums cover the values, not the footer: a flipped bit there renamed columns
    (run_id -> sun_id) and the file still verified, losing a run's metric or status unseen.
    Now every flip is reported as damage, or changes nothing the file decodes to."""
    import io

    import pyarrow.parquet as pq

    from symsweep._store_files import DamagedFile, verify_parquet
    store = SweepStore(str(tmp_path / "s"))
    store.write_run({"run_id": "abc123", "status": "completed", "attempt": 1, "seed": 3, "cfg_lr": 0.1,
                     "metric_acc": 0.8125}, history=[{"step": 0, "acc": 0.5}])
    for sub in ("runs", "history"):
        data = (tmp_path / "s" / sub / "abc123.parquet").read_bytes()
        original = pq.read_table(io.BytesIO(data)).to_pylist()
        verify_parquet("abc123.parquet", data)
        footer = int.from_bytes(data[-8:-4], "little")
        start = len(data) - 8 - footer
        silent = []
        for i in range(start, len(data) - 8):
            for bit in range(8):
                flipped = bytearray(data)
                flipped[i] ^= 1 << bit
                try:
                    verify_parquet("abc123.parquet", bytes(flipped))
                except DamagedFile:
                    continue
                if pq.read_table(io.BytesIO(bytes(flipped))).to_pylist() != original:
                    silent.append((i, bit))
        assert not silent, f"{sub}: {len(silent)} flips changed the content unreported, e.g. {silent[:3]}"


def test_a_run_file_written_before_the_digest_still_verifies(tmp_path):
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from symsweep._store_files import verify_parquet
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist([{"run_id": "old", "status": "completed"}]), buf, write_page_checksum=True)
    verify_parquet("old.parquet", buf.getvalue())
