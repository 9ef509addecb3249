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
