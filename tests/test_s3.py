"""Results on S3, against a real S3 API (moto's standalone server on 127.0.0.1): every
command, a driver SIGKILLed mid-sweep (inline and Ray), URIs that carry their own
settings, the lock under two drivers, and bad locations that must fail in one line."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, assert_ran_once, free_port, ledger, one_line, raw_rows, symsweep, wait_for_port

SYN = """
name: syn
task: synthetic
fixed: {{sleep_s: {sleep}}}
axes: {{steps: [5, 10]}}
seeds: {seeds}
runs_per_trial: {per_trial}
"""


def _spec(tmp_path, sleep=0.0, seeds=3, per_trial=3):
    path = tmp_path / "syn.yaml"
    path.write_text(SYN.format(sleep=sleep, seeds=seeds, per_trial=per_trial))
    return path


def _kill_mid_sweep(args: list[str], sweep_uri: str, at_least: int) -> int:
    """Start `symsweep ARGS`, SIGKILL it (and its process group: the embedded Ray) once
    `at_least` runs are in the ledger; return how many were."""
    driver = subprocess.Popen([sys.executable, "-m", "symsweep.cli", *args], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 120
        done = 0
        while time.time() < deadline:
            try:
                done = len(ledger(sweep_uri))
            except Exception:  # noqa: BLE001 - the folder may not exist yet
                done = 0
            if done >= at_least:
                break
            time.sleep(0.2)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    return done


# ray: slow tier (the loopback cluster test kills a Ray worker with results on S3 by default)
@pytest.mark.parametrize("executor", ["inline", pytest.param("ray", marks=pytest.mark.slow)])
def test_kill_then_run_again_runs_everything_exactly_once_on_s3(s3, tmp_path, executor):
    results = s3.uri(f"kill-{executor}")
    sweep = f"{results}/syn"
    spec = _spec(tmp_path, sleep=0.3, seeds=8, per_trial=4)
    before = _kill_mid_sweep(["run", str(spec), "--results", results, "--executor", executor, "--num-cpus", "2"],
                             sweep, at_least=3)
    assert 3 <= before < 16
    time.sleep(1)
    res = symsweep("run", str(spec), "--results", results, "--executor", executor, "--num-cpus", "2")
    assert res.returncode == 0, res.stderr
    assert "took over a stale lock" in res.stdout
    runs = assert_ran_once(sweep, 16)
    assert set(runs["status"]) == {"completed"} and (runs["attempt"] == 1).all()
    assert not any(".tmp-" in k for k in s3.keys(f"kill-{executor}/"))


def test_every_command_works_on_s3(s3, tmp_path):
    results = s3.uri("commands")
    sweep = f"{results}/syn"
    spec = _spec(tmp_path)
    res = symsweep("run", str(spec), "--results", results, "--executor", "inline")
    assert res.returncode == 0, res.stderr
    assert "done: 6 completed" in res.stdout
    keys = s3.keys("commands/syn/")
    assert "commands/syn/spec.yaml" in keys and any(k.startswith("commands/syn/runs/seg-") for k in keys)

    status = symsweep("status", sweep)
    assert status.returncode == 0 and "planned: 6  completed: 6" in status.stdout
    again = symsweep("resume", sweep, "--executor", "inline")
    assert again.returncode == 0 and "6 already done, 0 to run" in again.stdout
    agg = symsweep("aggregate", sweep)
    assert agg.returncode == 0 and "summary.parquet: 2 rows" in agg.stdout
    for where in (sweep, results):  # one sweep, and a results root of sweeps
        q = symsweep("query", "SELECT count(*) AS n, count(DISTINCT run_id) AS ids FROM runs", "--results", where)
        assert q.returncode == 0, q.stderr
        assert q.stdout.split() == ["n", "ids", "6", "6"]
    h = symsweep("query", "SELECT count(*) AS n FROM history h JOIN summary s USING (sweep)", "--results", sweep)
    assert h.returncode == 0, h.stderr
    rep = symsweep("report", sweep)
    assert rep.returncode == 0, rep.stderr
    assert "commands/syn/report/report.html" in s3.keys("commands/syn/report/")
    comp = symsweep("compact", sweep)
    assert comp.returncode == 0 and "runs: 0 files + 1 segments" in comp.stdout


def test_a_uri_carrying_its_own_settings_joins_the_sweep_into_the_path(s3, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT")}
    results = f"s3://{s3.bucket}/settings?endpoint_override=127.0.0.1:{s3.port}&scheme=http&region=us-east-1"
    spec = _spec(tmp_path)
    run = subprocess.run([sys.executable, "-m", "symsweep.cli", "run", str(spec), "--results", results,
                          "--executor", "inline"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert f"-> s3://{s3.bucket}/settings/syn?endpoint_override=" in run.stdout
    assert "settings/syn/spec.yaml" in s3.keys("settings/")
    sweep = f"s3://{s3.bucket}/settings/syn?endpoint_override=127.0.0.1:{s3.port}&scheme=http&region=us-east-1"
    status = subprocess.run([sys.executable, "-m", "symsweep.cli", "status", sweep], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert status.returncode == 0 and "completed: 6" in status.stdout, status.stderr


def test_two_drivers_on_one_s3_sweep_the_second_is_refused(s3, tmp_path):
    results = s3.uri("locked")
    spec = _spec(tmp_path, sleep=0.5, seeds=6, per_trial=6)
    first = subprocess.Popen([sys.executable, "-m", "symsweep.cli", "run", str(spec), "--results", results,
                              "--executor", "inline"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and "locked/syn/.lock" not in s3.keys("locked/syn/"):
            time.sleep(0.1)
        second = symsweep("run", str(spec), "--results", results, "--executor", "inline")
        assert second.returncode == 3, second.stderr
        assert f"is being run by pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
    finally:
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    assert_ran_once(f"{results}/syn", 12)
    holder = s3.client.list_objects_v2(Bucket=s3.bucket, Prefix="locked/syn/.lock").get("KeyCount")
    assert holder == 0  # released


def test_duplicates_and_a_partial_segment_never_change_what_status_counts(s3, tmp_path):
    results = s3.uri("dupes")
    res = symsweep("run", str(_spec(tmp_path)), "--results", results, "--executor", "inline")
    assert res.returncode == 0, res.stderr
    (segment,) = [k for k in s3.keys("dupes/syn/runs/") if "/seg-" in k]
    body = s3.client.get_object(Bucket=s3.bucket, Key=segment)["Body"].read()
    # a crash between writing a new segment and removing what it folded: the same rows twice
    s3.client.put_object(Bucket=s3.bucket, Key=segment.replace("seg-", "seg-9"), Body=body)
    # a segment cut short (a store that does not put atomically), beside the whole one
    s3.client.put_object(Bucket=s3.bucket, Key=segment.replace("seg-", "seg-99"), Body=body[: len(body) // 2])
    status = symsweep("status", f"{results}/syn")
    assert status.returncode == 0
    assert "planned: 6  completed: 6  failed: 0  diverged: 0  pending: 0" in status.stdout
    assert "unreadable file s3://" in status.stdout
    assert len(raw_rows(f"{results}/syn", readable_only=True)) == 12 and len(ledger(f"{results}/syn")) == 6


# ----------------------------------------------------------------------------- bad locations


def test_a_missing_bucket_is_one_line(s3, tmp_path):
    spec = _spec(tmp_path)
    for args in (["run", str(spec), "--results", "s3://no-such-bucket/x", "--executor", "inline"],
                 ["status", "s3://no-such-bucket/x/syn"],
                 ["query", "SELECT 1", "--results", "s3://no-such-bucket/x"]):
        err = one_line(symsweep(*args))
        assert "s3://no-such-bucket/x" in err and "bucket 'no-such-bucket' does not exist" in err


def test_an_unreachable_endpoint_is_one_line_within_seconds(s3, tmp_path):
    port = free_port()
    start = time.monotonic()
    res = symsweep("run", str(_spec(tmp_path)), "--results", s3.uri("x"), "--executor", "inline",
                   env={"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"})
    err = one_line(res)
    assert f"cannot reach store {s3.uri('x')}" in err
    assert time.monotonic() - start < 60


def test_an_unknown_option_in_the_uri_lists_the_allowed_ones(s3, tmp_path):
    err = one_line(symsweep("status", s3.uri("x/syn") + "?endpoint=foo"))
    assert "unknown S3 option 'endpoint' in the store URI; allowed: region, scheme, endpoint_override" in err


def test_wrong_credentials_are_one_line(tmp_path):
    """A second moto server that checks credentials (none are valid)."""
    pytest.importorskip("moto.server")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "wrong",
               "AWS_SECRET_ACCESS_KEY": "wrong", "AWS_DEFAULT_REGION": "us-east-1"}
        err = one_line(symsweep("run", str(_spec(tmp_path)), "--results", "s3://some-bucket/x",
                                "--executor", "inline", env=env))
        assert "s3://some-bucket/x" in err
        assert "access denied" in err and "check the credentials" in err, err
    finally:
        server.kill()
        server.wait()


def test_a_transient_error_reading_the_lock_is_retried_and_never_breaks_it(s3, monkeypatch):
    """A live driver's lock on S3 read through a flaky connection: the reads are retried; while
    they keep failing the second driver stops in one line. It never takes the error for an
    unreadable lock (which it would take over while the first driver runs)."""
    import socket

    from symsweep import _fs
    from symsweep.errors import LockError, StoreUnavailableError
    from symsweep.store import SweepStore
    monkeypatch.setattr("symsweep._store_files.READ_BACKOFF_S", (0.0,))
    uri = s3.uri("flaky-lock/syn")
    SweepStore(uri).acquire_lock()  # the live driver (this process, this host)
    real = _fs.s3_client

    class Flaky:
        def __init__(self, client, failures):
            self.client, self.failures = client, failures

        def get_object(self, **kw):
            if self.failures > 0:
                self.failures -= 1
                raise OSError("connection reset by peer")
            return self.client.get_object(**kw)

        def __getattr__(self, name):
            return getattr(self.client, name)

    flaky = Flaky(real(SweepStore(uri).location), failures=3)
    monkeypatch.setattr(_fs, "s3_client", lambda location: flaky)
    with pytest.raises(LockError, match=f"being run by pid {os.getpid()} on {socket.gethostname()}"):
        SweepStore(uri).acquire_lock()  # 3 failures, then the read goes through: refused
    flaky.failures = 100
    with pytest.raises(StoreUnavailableError, match="tried 4 times"):
        SweepStore(uri).acquire_lock()
    flaky.failures = 0
    assert SweepStore(uri).lock_holder()["pid"] == os.getpid()  # the live driver's lock is intact
