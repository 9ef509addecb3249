"""Multi-node Ray on loopback: a head and a worker node started with `ray start`, the sweep
driver joining with --address. Kill the worker node, kill the driver, fake GPUs:
nothing lost, nothing doubled. Marked `cluster`; part of the default suite and CI."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO, assert_ran_once, ledger
from symsweep._loopback import LoopbackCluster

pytestmark = pytest.mark.cluster

SPEC = """
name: clu
task: synthetic
fixed: {{sleep_s: {sleep}}}
seeds: {seeds}
runs_per_trial: {per_trial}
resources: {{cpus: {cpus}, gpus: {gpus}}}
max_failures: 3
"""


@pytest.fixture
def cluster(tmp_path):
    c = LoopbackCluster(head_cpus=1).start(tmp_path / "ray-logs")
    yield c
    c.stop()




def _driver(cluster, spec: Path, results: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "symsweep.cli", "run", str(spec), "--results", str(results),
                             "--address", cluster.address, *extra], cwd=REPO, env=cluster.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_rows(sweep: Path, n: int, timeout_s: float = 120) -> int:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        count = len(ledger(sweep)) if (sweep / "runs").exists() else 0
        if count >= n:
            return count
        time.sleep(0.2)
    raise TimeoutError(f"fewer than {n} runs finished in {timeout_s} s")


def _assert_exactly_once(sweep: Path, planned: int) -> pd.DataFrame:
    runs = assert_ran_once(sweep, planned)
    assert set(runs["status"]) == {"completed"}
    assert not list(sweep.rglob(".tmp-*"))
    return runs


@pytest.mark.slow  # the default run kills the worker node with results on S3 (the same path, plus S3)
def test_killing_the_worker_node_mid_sweep_loses_and_doubles_nothing(cluster, tmp_path):
    cluster.add_worker("worker", tmp_path / "ray-logs", cpus=2)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(sleep=0.4, seeds=12, per_trial=2, cpus=1, gpus=0))
    driver = _driver(cluster, spec, tmp_path / "res")
    _wait_rows(tmp_path / "res" / "clu", 2)
    cluster.kill("worker")  # its trials die mid-run; Tune retries them on the head
    out, err = driver.communicate(timeout=300)
    if driver.returncode != 0:  # retries exhausted: the ledger keeps what finished, resume does the rest
        res = subprocess.run([sys.executable, "-m", "symsweep.cli", "resume", str(tmp_path / "res" / "clu"),
                              "--address", cluster.address], cwd=REPO, env=cluster.env(), capture_output=True,
                             text=True, timeout=300)
        assert res.returncode == 0, res.stderr
    else:
        assert "done: 12 completed, 0 failed, 0 diverged, 0 pending of 12 planned" in out
    runs = _assert_exactly_once(tmp_path / "res" / "clu", 12)
    assert runs["trial_id"].nunique() == 6


def test_killing_the_worker_node_with_results_on_s3_loses_and_doubles_nothing(s3, cluster, tmp_path):
    """The same, with every node reading and writing the results on an S3 server (the nodes
    got the AWS variables from the s3 fixture, which is set up before the cluster)."""
    cluster.add_worker("worker", tmp_path / "ray-logs", cpus=2)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(sleep=0.4, seeds=12, per_trial=2, cpus=1, gpus=0))
    results = s3.uri(f"cluster-{tmp_path.name}")
    driver = subprocess.Popen([sys.executable, "-m", "symsweep.cli", "run", str(spec), "--results", results,
                               "--address", cluster.address], cwd=REPO, env=cluster.env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(ledger(f"{results}/clu")) < 2:
        time.sleep(0.3)
    cluster.kill("worker")
    out, err = driver.communicate(timeout=300)
    if driver.returncode != 0:
        res = subprocess.run([sys.executable, "-m", "symsweep.cli", "resume", f"{results}/clu",
                              "--address", cluster.address], cwd=REPO, env=cluster.env(), capture_output=True,
                             text=True, timeout=300)
        assert res.returncode == 0, res.stderr
    runs = assert_ran_once(f"{results}/clu", 12)
    assert set(runs["status"]) == {"completed"}
    assert not any(".tmp-" in k for k in s3.keys(f"cluster-{tmp_path.name}/"))


def test_killing_the_driver_then_resume_completes_the_sweep(cluster, tmp_path):
    cluster.add_worker("worker", tmp_path / "ray-logs", cpus=2)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(sleep=0.4, seeds=12, per_trial=3, cpus=1, gpus=0))
    driver = _driver(cluster, spec, tmp_path / "res")
    before = _wait_rows(tmp_path / "res" / "clu", 2)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    time.sleep(2)  # the cluster reaps the dead driver's trial actors
    res = subprocess.run([sys.executable, "-m", "symsweep.cli", "resume", str(tmp_path / "res" / "clu"),
                          "--address", cluster.address], cwd=REPO, env=cluster.env(), capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "took over a stale lock" in res.stdout
    assert before >= 2
    _assert_exactly_once(tmp_path / "res" / "clu", 12)


def test_fractional_gpus_pack_two_trials_per_fake_gpu(cluster, tmp_path):
    cluster.add_worker("gpu-worker", tmp_path / "ray-logs", cpus=2, gpus=2)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(sleep=1.5, seeds=8, per_trial=1, cpus=0.5, gpus=0.5))
    driver = _driver(cluster, spec, tmp_path / "res")
    out, err = driver.communicate(timeout=300)
    assert driver.returncode == 0, err
    runs = _assert_exactly_once(tmp_path / "res" / "clu", 8)
    # every trial got one of the worker's two GPUs (the head has none) ...
    assert set(runs["cuda_visible_devices"]) <= {"0", "1"}
    # ... and at most two trials shared a GPU at any moment (gpus: 0.5), which did happen
    for gpu, part in runs.groupby("cuda_visible_devices"):
        events = sorted([(t, +1) for t in part["started_at"]] + [(t, -1) for t in part["finished_at"]],
                        key=lambda e: (e[0], e[1]))
        level = peak = 0
        for _, step in events:
            level += step
            peak = max(peak, level)
        assert peak == 2, (gpu, peak)
    assert "Trial status" not in out + err  # Tune stays quiet without --verbose


def test_a_driver_picks_up_the_cluster_token_as_rays_cli_does(cluster, tmp_path):
    """`ray start --head` turns token auth on; a new user's driver has only ~/.ray/auth_token."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(sleep=0, seeds=2, per_trial=2, cpus=1, gpus=0))
    env = {k: v for k, v in cluster.env().items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    home = tmp_path / "home"
    home.mkdir()
    res = subprocess.run([sys.executable, "-m", "symsweep.cli", "run", str(spec), "--results",
                          str(tmp_path / "res"), "--address", cluster.address, "--no-summary"],
                         cwd=REPO, env={**env, "HOME": str(home)}, capture_output=True, text=True, timeout=180)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1 and "requires token authentication" in res.stderr, res.stderr
    assert not (tmp_path / "res").exists()

    (home / ".ray").mkdir()
    (home / ".ray" / "auth_token").write_text(cluster.token)
    res = subprocess.run([sys.executable, "-m", "symsweep.cli", "run", str(spec), "--results",
                          str(tmp_path / "res"), "--address", cluster.address, "--no-summary"],
                         cwd=REPO, env={**env, "HOME": str(home)}, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr
    assert "done: 2 completed" in res.stdout
