"""The store's contract, one suite run on every backend: a local folder, a file:// URI and S3
(moto's server on loopback). What a reader sees must not depend on where the sweep lives,
on how often it was compacted, or on where a compaction was interrupted.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
import uuid

import numpy as np
import pandas as pd
import pytest

from symsweep._store_files import HISTORY, RUNS, StoreFiles
from symsweep.errors import LockError, StoreUnavailableError
from symsweep.store import SweepStore


@pytest.fixture(params=["local", "file", "s3"])
def where(request, tmp_path):
    """where(name) -> the URI of a new sweep folder on this backend."""
    if request.param == "local":
        return lambda name: str(tmp_path / name)
    if request.param == "file":
        return lambda name: f"file://{tmp_path}/{name}"
    s3 = request.getfixturevalue("s3")
    prefix = uuid.uuid4().hex[:8]
    return lambda name: s3.uri(f"{prefix}/{name}")


def _row(i: int, attempt: int = 1, status: str = "completed", **extra) -> dict:
    return {"run_id": f"{i:016x}", "status": status, "attempt": attempt, "seed": i,
            "finished_at": pd.Timestamp(1_700_000_000 + 10 * i + attempt, unit="s", tz="UTC"),
            "metric_loss": 1.0 / (i + 1), **extra}


def _history(i: int, attempt: int = 1) -> list[dict]:
    return [{"step": s, "loss": float(i + s + 10 * attempt)} for s in range(3)]


def _write(store: SweepStore, ids, attempt: int = 1, artifacts: bool = False) -> None:
    for i in ids:
        store.write_run(_row(i, attempt), _history(i, attempt),
                        {"weights": {"w": np.full(4, float(i))}} if artifacts else None)


def _ledger(store: SweepStore) -> pd.DataFrame:
    runs = store.read_runs()
    return runs[["run_id", "status", "attempt", "metric_loss"]].sort_values("run_id").reset_index(drop=True)


def _histories(store: SweepStore) -> pd.DataFrame:
    h = store.read_history()
    return h[["run_id", "step", "metric", "value"]].sort_values(["run_id", "step", "metric"]).reset_index(drop=True)


def _listing(store: StoreFiles) -> list[str]:
    import pyarrow.fs as pafs
    infos = store.fs.get_file_info(pafs.FileSelector(store.root, recursive=True, allow_not_found=True))
    return sorted(i.path[len(store.root) + 1:] for i in infos if i.type == pafs.FileType.File)


# ----------------------------------------------------------------------------- whole writes, one row per run


def test_rows_history_and_artifacts_are_written_whole(where):
    store = SweepStore(where("whole"))
    _write(store, range(3), artifacts=True)
    assert [n for n in _listing(store) if ".tmp-" in n] == []
    runs = store.read_runs().set_index("run_id")
    assert runs["history_rows"].tolist() == [3, 3, 3] and (runs["artifact_bytes"] > 0).all()
    assert store.run_record(f"{1:016x}") == {"status": "completed", "attempt": 1}
    assert store.run_record("f" * 16) is None
    h = _histories(store)
    assert h[h["run_id"] == f"{2:016x}"]["value"].tolist() == [12.0, 13.0, 14.0]
    load = store.artifact_loader(store.read_runs())
    assert load(f"{2:016x}", "weights")["w"].tolist() == [2.0] * 4
    assert store.check_outputs(store.read_runs(), full=True).damaged == []


def test_one_row_per_run_highest_attempt_then_newest_file_and_its_own_history(where):
    store = SweepStore(where("attempts"))
    _write(store, range(4))
    store.compact()
    # run 0 retried and completed again; run 1 retried and logged nothing; run 2's row written twice
    store.write_run(_row(0, attempt=2), _history(0, attempt=2))
    store.write_run(_row(1, attempt=2), [])
    store.compact()
    store.write_run(_row(2, attempt=1, metric_loss=0.123), _history(2))
    runs = store.read_runs().set_index("run_id")
    assert len(runs) == 4 and runs.index.is_unique
    assert runs.loc[f"{0:016x}", "attempt"] == 2 and runs.loc[f"{1:016x}", "attempt"] == 2
    assert runs.loc[f"{2:016x}", "metric_loss"] == 0.123  # same attempt: the newest file wins
    h = store.read_history()
    assert h[h["run_id"] == f"{0:016x}"]["value"].tolist() == [20.0, 21.0, 22.0]  # attempt 2's own
    assert h[h["run_id"] == f"{1:016x}"].empty  # attempt 2 logged nothing: never attempt 1's records
    assert set(h["attempt"]) == {1, 2}
    assert store.check_outputs(store.read_runs()).damaged == []


# ----------------------------------------------------------------------------- compaction, crash at every step


class Crash(Exception):
    pass


def _crashing(store: SweepStore, after: int) -> dict:
    """Make the store's writes and deletions fail from step `after` on (a step: one file put or
    one file removed), as a driver killed there would leave the folder. Returns the counter."""
    steps = {"n": 0}
    put, delete_file = store._put, store.fs.delete_file

    def step():
        if steps["n"] >= after:
            raise Crash(f"crash at step {after}")
        steps["n"] += 1

    def crashing_put(path, data):
        step()
        put(path, data)

    def crashing_delete(paths):
        done = 0
        for p in paths:
            step()
            try:
                delete_file(p)
                done += 1
            except FileNotFoundError:
                pass
        return done

    store._put, store._delete = crashing_put, crashing_delete
    return steps


def _compactable(where, name: str) -> SweepStore:
    """Three segments and a few small files of runs and history: the next compaction folds
    the small files into a fourth segment, then merges the four into one."""
    store = SweepStore(where(name))
    for batch in (range(0, 2), range(2, 3), range(3, 4)):
        _write(store, batch)
        store.compact(merge_at=100)
    store.write_run(_row(1, attempt=2), _history(1, attempt=2))  # a retry among the small files
    _write(store, range(4, 5))
    return store


def test_compaction_interrupted_at_every_step_loses_nothing_and_doubles_nothing(where):
    reference = _compactable(where, "reference")
    rows, history = _ledger(reference), _histories(reference)
    steps = _crashing(reference, after=10**6)
    reference.compact(merge_at=4)
    total = steps["n"]
    assert total >= 14  # per folder: a segment, 2 small files removed, a merge, 4 segments removed
    assert reference.file_counts() == {"runs_files": 0, "runs_segments": 1, "history_files": 0, "history_segments": 1}
    for k in range(total):
        store = _compactable(where, f"crash{k}")
        _crashing(store, after=k)
        with pytest.raises(Crash):
            store.compact(merge_at=4)
        fresh = SweepStore(store.uri)  # a new driver reading what the crash left
        pd.testing.assert_frame_equal(_ledger(fresh), rows)
        pd.testing.assert_frame_equal(_histories(fresh), history)
        assert fresh.check_outputs(fresh.read_runs()).damaged == []
        fresh.compact(merge_at=4)  # the next driver finishes the job
        pd.testing.assert_frame_equal(_ledger(fresh), rows)
        pd.testing.assert_frame_equal(_histories(fresh), history)
        counts = fresh.file_counts()
        assert counts["runs_files"] == counts["history_files"] == 0, (k, counts)


# ----------------------------------------------------------------------------- damage


def _flip(store: SweepStore, path: str, at: float = 0.5, width: int = 16) -> None:
    """Damage `width` bytes in place, bypassing the store's writer (a bad disk or a bad copy)."""
    with store.fs.open_input_stream(path) as f:
        data = bytearray(f.read())
    i = int(len(data) * at)
    data[i:i + width] = bytes(b ^ 0xFF for b in data[i:i + width])
    with store.fs.open_output_stream(path) as f:
        f.write(bytes(data))


def test_damage_in_any_page_is_found_and_the_file_quarantined(where):
    store = SweepStore(where("damage"))
    _write(store, range(20))
    store.compact()
    (seg,) = store.table_files(RUNS)[1]
    (hseg,) = store.table_files(HISTORY)[1]
    _flip(store, seg)
    _flip(store, hseg)
    ledger = store.read_ledger(columns=["run_id", "status"], verify=True)
    assert [p for p, _ in ledger.corrupt] == [seg]
    check = store.check_outputs(pd.DataFrame({"run_id": [f"{i:016x}" for i in range(20)], "history_rows": 3}))
    assert [p for p, _ in check.unreadable] == [hseg] and len(check.damaged) == 20
    moved = store.quarantine([seg, hseg])
    assert len(moved) == 2 and store.table_files(RUNS) == ([], []) and store.table_files(HISTORY) == ([], [])
    assert sorted(n.split("/")[0] for n in _listing(store)) == ["quarantine", "quarantine"]


def test_a_damaged_small_file_is_found_whatever_column_is_hit(where):
    store = SweepStore(where("small"))
    _write(store, range(2))
    path = store.table_files(RUNS)[0][0]
    _flip(store, path, at=0.15, width=8)
    assert [p for p, _ in store.read_ledger(verify=True).corrupt] == [path]


# ----------------------------------------------------------------------------- transient errors


class _Flaky:
    """A filesystem that fails the first `n` reads of matching paths with a transient error."""

    def __init__(self, fs, n: int, match: str):
        self.fs, self.n, self.match = fs, n, match

    def open_input_stream(self, path):
        if self.match in path and self.n > 0:
            self.n -= 1
            raise OSError("AWS Error NETWORK_CONNECTION during GetObject operation: connection reset")
        return self.fs.open_input_stream(path)

    def __getattr__(self, name):
        return getattr(self.fs, name)


def test_a_transient_read_error_is_retried_and_never_taken_for_a_missing_run(where, monkeypatch):
    monkeypatch.setattr("symsweep._store_files.READ_BACKOFF_S", (0.0,))
    store = SweepStore(where("flaky"))
    _write(store, range(2))
    rid = f"{1:016x}"
    store.fs = _Flaky(store.fs, 2, f"{RUNS}/{rid}")
    assert store.run_record(rid) == {"status": "completed", "attempt": 1}  # retried through
    store.fs = _Flaky(store.fs.fs, 100, f"{RUNS}/{rid}")
    with pytest.raises(StoreUnavailableError, match="tried 4 times"):
        store.run_record(rid)  # never None: None would make a finished run run again


# ----------------------------------------------------------------------------- the lock


def _locker(uri: str, env: dict, go, barrier, results, release) -> None:
    os.environ.update(env)
    store = SweepStore(uri)
    while True:
        if go.get() is None:
            return
        barrier.wait()
        try:
            store.acquire_lock()
            won = True
        except LockError:
            won = False
        results.put(won)
        release.get()
        if won:
            store.release_lock()
        results.put("released")


def _stale_lock_content(kind: str) -> bytes:
    if kind == "unreadable":
        return b'{"pid": 12, "host": garb'
    # a dead driver of this host: a pid no process has (S3 judges by pid; locally the kernel knows)
    import socket
    return json.dumps({"pid": 2**31 - 3, "host": socket.gethostname(), "started_at": 0}).encode()


@pytest.mark.parametrize("kind", ["none", "stale", "unreadable"])
def test_two_drivers_taking_over_at_once_exactly_one_proceeds(where, kind):
    uri = where(f"lock-{kind}")
    store = SweepStore(uri)
    store.makedirs(store.root)
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    gos, releases = [ctx.Queue() for _ in range(2)], [ctx.Queue() for _ in range(2)]
    procs = [ctx.Process(target=_locker, args=(uri, env, gos[i], barrier, results, releases[i]), daemon=True)
             for i in range(2)]
    for p in procs:
        p.start()
    rounds = 60 if kind != "none" else 20
    try:
        for r in range(rounds):
            if kind != "none":
                with store.fs.open_output_stream(store.path(".lock")) as f:
                    f.write(_stale_lock_content(kind))
            for q in gos:
                q.put("go")
            won = [results.get(timeout=60) for _ in range(2)]
            assert sorted(won) == [False, True], f"round {r}: {won}"
            for q in releases:
                q.put("release")
            assert [results.get(timeout=60) for _ in range(2)] == ["released", "released"]
    finally:
        for q in gos:
            q.put(None)
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
