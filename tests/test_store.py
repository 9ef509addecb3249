"""The Parquet store: atomic rows, schema, history, artifacts, lock, corrupt files."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from orchestrator import LockError, SweepStore

ROW = {"run_id": "r1", "status": "completed", "attempt": 1, "metric_acc": 0.5, "cfg_lr": 0.1}


def test_write_and_read_a_run(tmp_path):
    store = SweepStore(str(tmp_path / "s"))
    store.write_run(ROW, [{"step": 0, "loss": 2.0, "acc": 0.1}, {"step": 1, "loss": 1.0}],
                    {"weights": {"w": np.arange(3.0)}})
    runs = store.read_runs()
    digest = {"weights": {"bytes": (tmp_path / "s" / "artifacts" / "r1" / "weights.npz").stat().st_size,
                          "sha256": hashlib.sha256((tmp_path / "s" / "artifacts" / "r1" / "weights.npz")
                                                   .read_bytes()).hexdigest()}}
    assert runs.to_dict("records") == [{**ROW, "history_rows": 3, "artifact_digests": json.dumps(digest)}]
    hist = store.read_history()
    assert sorted(hist.itertuples(index=False)) == [("r1", 0, "acc", 0.1), ("r1", 0, "loss", 2.0), ("r1", 1, "loss", 1.0)]
    np.testing.assert_array_equal(store.read_artifact("r1", "weights")["w"], np.arange(3.0))
    assert store.run_record("r1") == {"status": "completed", "attempt": 1}
    assert store.run_record("nope") is None
    leftovers = [f for _, _, files in os.walk(tmp_path) for f in files if f.startswith(".tmp")]
    assert leftovers == []


def test_rows_with_different_columns_unify(tmp_path):
    store = SweepStore(str(tmp_path / "s"))
    store.write_run(ROW)
    store.write_run({"run_id": "r2", "status": "failed", "attempt": 1, "error": "boom", "metric_acc": None})
    runs = store.read_runs().set_index("run_id")
    assert runs.loc["r2", "error"] == "boom" and runs.loc["r2", "cfg_lr"] != runs.loc["r2", "cfg_lr"]  # NaN
    assert runs.loc["r1", "metric_acc"] == 0.5


def test_corrupt_run_file_is_reported_and_quarantined(tmp_path):
    store = SweepStore(str(tmp_path / "s"))
    store.write_run(ROW)
    bad = tmp_path / "s" / "runs" / "r9.parquet"
    bad.write_bytes(b"PAR1 truncated")
    ledger = store.read_ledger()
    assert list(ledger.runs["run_id"]) == ["r1"]
    assert [p for p, _ in ledger.corrupt] == [str(bad)]
    moved = store.quarantine(p for p, _ in ledger.corrupt)
    assert not bad.exists() and len(moved) == 1 and os.path.exists(moved[0])
    assert store.read_ledger().corrupt == []


def test_lock_refuses_a_live_holder_and_takes_a_stale_one(tmp_path):
    store = SweepStore(str(tmp_path / "s"))
    store.acquire_lock()
    other = SweepStore(str(tmp_path / "s"))
    # Same process counts as live: a second driver is refused.
    with pytest.raises(LockError, match=r"being run by pid \d+ .*--force-unlock"):
        other.acquire_lock()
    store.release_lock()
    assert store.lock_holder() is None
    # A lock left by a process that is gone is stale.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "s" / ".lock").write_text(json.dumps({"pid": int(dead.stdout), "host": os.uname().nodename,
                                                       "started_at": 0, "proc_start": "1"}))
    assert store.acquire_lock().get("stale") is True
    store.release_lock()


def test_spec_round_trip_and_missing_folder(tmp_path):
    store = SweepStore(str(tmp_path / "s"))
    assert not store.exists()
    store.write_spec({"name": "s", "task": "synthetic"})
    assert store.exists() and store.read_spec()["task"] == "synthetic"


def test_uri_store_through_pyarrow_fs(tmp_path):
    store = SweepStore(f"file://{tmp_path}/u")
    store.write_run(ROW)
    assert list(store.read_runs()["run_id"]) == ["r1"]
