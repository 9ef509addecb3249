"""The Parquet store: atomic rows, schema, history, artifacts, lock, corrupt files."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from symsweep import LockError, SweepStore

ROW = {"run_id": "r1", "status": "completed", "attempt": 1, "metric_acc": 0.5, "cfg_lr": 0.1}


def test_write_and_read_a_run(tmp_path):
    store = SweepStore(str(tmp_path / "s"))
    store.write_run(ROW, [{"step": 0, "loss": 2.0, "acc": 0.1}, {"step": 1, "loss": 1.0}],
                    {"weights": {"w": np.arange(3.0)}})
    runs = store.read_runs()
    digest = {"weights": {"bytes": (tmp_path / "s" / "artifacts" / "weights" / "r1.npz").stat().st_size,
                          "sha256": hashlib.sha256((tmp_path / "s" / "artifacts" / "weights" / "r1.npz")
                                                   .read_bytes()).hexdigest()}}
    assert runs.to_dict("records") == [{**ROW, "history_rows": 3, "artifact_bytes": digest["weights"]["bytes"],
                                        "artifact_digests": json.dumps(digest)}]
    hist = store.read_history()
    assert sorted(hist.itertuples(index=False)) == [("r1", 0, "acc", 0.1, 1), ("r1", 0, "loss", 2.0, 1),
                                                    ("r1", 1, "loss", 1.0, 1)]
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


# ----------------------------------------------------------------------------- segments


def _row(rid: str, status: str = "completed", attempt: int = 1, t: float = 0.0) -> dict:
    import datetime as dt
    return {"run_id": rid, "status": status, "attempt": attempt,
            "finished_at": dt.datetime.fromtimestamp(1e9 + t, dt.timezone.utc), "metric_acc": float(attempt)}


def test_compaction_folds_small_files_and_readers_see_the_same_rows(tmp_path):
    store = SweepStore(str(tmp_path / "s"))
    for i in range(5):
        store.write_run(_row(f"r{i}"), [{"step": 0, "loss": float(i)}], {"w": {"a": np.arange(i + 1)}})
    before, history = store.read_runs().sort_values("run_id"), store.read_history().sort_values("run_id")
    done = store.compact(["r0", "r1", "r2"])  # a driver folds only finished trials' runs
    assert (done.rows, done.history_rows, done.removed) == (3, 3, 6)
    assert store.file_counts() == {"runs_files": 2, "runs_segments": 1, "history_files": 2, "history_segments": 1}
    store.compact()
    assert store.file_counts() == {"runs_files": 0, "runs_segments": 2, "history_files": 0, "history_segments": 2}
    after = store.read_runs().sort_values("run_id")
    assert after.reset_index(drop=True).equals(before.reset_index(drop=True))
    assert store.read_history().sort_values("run_id").reset_index(drop=True).equals(history.reset_index(drop=True))
    assert store.check_outputs(after).damaged == []
    assert store.run_record("r0") is None  # folded: a retried trial never sees it (it never retries one)


def test_a_crash_between_segment_and_removal_leaves_duplicates_that_readers_drop(tmp_path):
    store = SweepStore(str(tmp_path / "s"))
    for i in range(3):
        store.write_run(_row(f"r{i}"), [{"step": 0, "loss": 1.0}])
    smalls = {p: open(p, "rb").read() for p in map(str, (tmp_path / "s").rglob("r*.parquet"))}
    store.compact()
    for p, data in smalls.items():  # as if the removal had never happened
        open(p, "wb").write(data)
    runs = store.read_runs()
    assert sorted(runs["run_id"]) == ["r0", "r1", "r2"] and len(store.read_history()) == 3
    assert store.check_outputs(runs).damaged == []


def test_a_rerun_supersedes_the_row_and_history_in_a_segment(tmp_path):
    store = SweepStore(str(tmp_path / "s"))
    store.write_run(_row("r1", "failed", 1), [{"step": 0, "loss": 9.0}, {"step": 1, "loss": 8.0}])
    store.compact()
    store.write_run(_row("r1", "completed", 2, t=5), [{"step": 0, "loss": 1.0}])  # --retry-failed
    runs = store.read_runs()
    assert runs[["status", "attempt"]].values.tolist() == [["completed", 2]]
    assert store.read_history()["value"].tolist() == [1.0]  # the newest file's records only
    store.compact()
    assert store.read_runs()["attempt"].tolist() == [2] and store.read_history()["value"].tolist() == [1.0]


def test_many_segments_are_merged_into_one(tmp_path):
    store = SweepStore(str(tmp_path / "s"))
    for i in range(10):
        store.write_run(_row(f"r{i}"), [{"step": 0, "loss": float(i)}])
        store.compact()
    counts = store.file_counts()
    assert counts["runs_segments"] < 8 and counts["history_segments"] < 8
    assert sorted(store.read_runs()["run_id"]) == [f"r{i}" for i in range(10)]
    assert sorted(store.read_history()["value"]) == [float(i) for i in range(10)]


def test_a_row_is_fsynced_with_its_folder_before_run_reports_it(tmp_path, monkeypatch):
    """A row `run` has counted must survive a power loss: every file is fsynced before its
    rename and its folder after it (history, artifact and row)."""
    synced = []
    real = os.fsync

    def record(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)
    monkeypatch.setattr(os, "fsync", record)
    store = SweepStore(str(tmp_path / "s"))
    store.write_run(ROW, [{"step": 0, "loss": 1.0}], {"weights": {"w": np.arange(3.0)}})
    folders = {str(tmp_path / "s" / sub) for sub in ("runs", "history", "artifacts/weights")}
    assert folders <= set(synced), synced
    temp_files = [p for p in synced if "/.tmp-" in p]
    assert len(temp_files) == 3  # each file's bytes, before its name points at them
    assert synced.index(str(tmp_path / "s" / "runs")) > max(synced.index(p) for p in temp_files)


def test_the_frozen_spec_is_checked_again_under_the_lock(tmp_path, monkeypatch):
    """Two drivers with different specs starting together: the one that gets the lock second
    must see the spec the first froze, not the empty folder it checked before locking."""
    from symsweep import InlineExecutor, spec_from_dict
    from symsweep.errors import SpecChangedError
    from symsweep.sweep import run_sweep
    mine = spec_from_dict({"name": "s", "task": "synthetic", "axes": {"steps": [2]}, "seeds": 2})
    theirs = spec_from_dict({"name": "s", "task": "synthetic", "axes": {"steps": [3]}, "seeds": 2})
    store = SweepStore(str(tmp_path / "s"))
    real_acquire = SweepStore.acquire_lock

    def acquire_after_the_other_driver(self, force=False):
        self.write_spec(theirs.to_dict())  # the other driver froze its spec, then let go
        return real_acquire(self, force)
    monkeypatch.setattr(SweepStore, "acquire_lock", acquire_after_the_other_driver)
    with pytest.raises(SpecChangedError):
        run_sweep(mine, store, InlineExecutor(), echo=lambda line: None)
    assert store.read_runs().empty and not (tmp_path / "s" / ".lock").exists()
