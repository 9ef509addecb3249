"""The CLI as a user runs it: a subprocess, checked by what it prints and leaves behind."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from conftest import REPO, assert_ran_once, ledger

SYN = """
name: syn
task: synthetic
fixed: {sleep_s: 0.0}
axes: {steps: [5, 10]}
seeds: 3
runs_per_trial: 3
resources: {cpus: 1}
"""


def _runs(sweep_dir: Path) -> pd.DataFrame:
    return ledger(sweep_dir)


def test_quickstart_on_real_ray_at_a_tiny_budget(cli, tmp_path):
    res = cli("run", "sweeps/quickstart.yaml", "--set", "seeds=2", "--set", "epochs=2",
              "--results", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "done: 4 completed, 0 failed, 0 diverged, 0 pending of 4 planned" in res.stdout
    # the closing raw-vs-expanded table: one row per expansion factor, n = 2 seeds, mean ± std
    lines = [ln.split() for ln in res.stdout.splitlines()]
    header = next(ln for ln in lines if ln and ln[0] == "expansion_factor")
    table = {ln[0]: dict(zip(header, ln)) for ln in lines if ln and ln[0] in ("1", "2")}
    assert set(table) == {"1", "2"} and all(row["n"] == "2" for row in table.values())
    assert all(ln.count("±") == 2 for ln in lines if ln and ln[0] in ("1", "2"))
    runs = _runs(tmp_path / "quickstart")
    assert len(runs) == 4 and set(runs["status"]) == {"completed"}
    assert runs["metric_test_acc"].between(0.3, 1.0).all()  # two epochs on digits beat chance (0.1)
    assert set(runs["cfg_expansion_factor"]) == {1, 2}
    assert (runs["metric_n_params"].nunique()) == 1  # adaptive pooling: same model for raw and expanded
    assert (tmp_path / "quickstart" / "aggregates" / "summary.parquet").exists()
    assert "[quickstart] 4/4 runs" in res.stderr  # the progress line, not Tune's trial table
    assert "Trial status" not in res.stdout + res.stderr

    again = cli("run", "sweeps/quickstart.yaml", "--set", "seeds=2", "--set", "epochs=2",
                "--results", str(tmp_path), "--executor", "inline")
    assert again.returncode == 0
    assert "4 already done, 0 to run" in again.stdout
    assert len(_runs(tmp_path / "quickstart")) == 4


def test_bad_specs_exit_2_and_write_nothing(cli, tmp_path, write_spec):
    cases = {
        "name: b\ntask: nope\nseeds: 1\n": "unknown task 'nope'; registered tasks:",
        "name: b\ntask: synthetic\nfixed: {stepz: 1}\n": "unknown key(s) 'stepz'; allowed: n_features",
        "name: b\ntask: synthetic\nfixed: {steps: many}\n": "fixed.steps: expected an int, got 'many'",
        "name: b\ntask: synthetic\nworkers: 3\n": "unknown key(s) 'workers'; allowed: name, task",
        "name: b\ntask: synthetic\nseeds: [1, 1]\n": "seeds: list repeats a seed",
        "- just\n- a list\n": "a sweep spec must be a mapping",
    }
    for text, message in cases.items():
        res = cli("run", str(write_spec(text)), "--results", str(tmp_path / "out"))
        assert res.returncode == 2, (text, res.stderr)
        assert message in res.stderr, (message, res.stderr)
        assert res.stderr.count("\n") == 1  # one clear line, no traceback
    res = cli("run", str(write_spec("name: b\ntask: synthetic\n")), "--set", "steps=0", "--results", str(tmp_path / "out"))
    assert res.returncode == 2 and "steps must be >= 1" in res.stderr
    res = cli("run", "no/such/spec.yaml", "--results", str(tmp_path / "out"))
    assert res.returncode == 2 and "spec file not found" in res.stderr
    assert not (tmp_path / "out").exists()


def test_failed_and_diverged_runs_are_recorded_and_retried_on_request(cli, tmp_path, write_spec):
    spec = write_spec(SYN.replace("sleep_s: 0.0", "fail_seeds: [1], diverge_seeds: [2]"))
    res = cli("run", str(spec), "--results", str(tmp_path), "--executor", "inline")
    assert res.returncode == 1
    assert "2 completed, 2 failed, 2 diverged, 0 pending of 6 planned" in res.stdout
    status = cli("status", str(tmp_path / "syn"))
    assert status.returncode == 0
    assert "planned: 6  completed: 2  failed: 2  diverged: 2  pending: 0" in status.stdout
    assert "RuntimeError: synthetic failure requested for seed 1" in status.stdout
    again = cli("run", str(spec), "--results", str(tmp_path), "--executor", "inline")
    assert "6 already done, 0 to run" in again.stdout  # failures are kept by default
    retry = cli("run", str(spec), "--results", str(tmp_path), "--executor", "inline", "--retry-failed")
    assert "4 already done, 2 to run" in retry.stdout
    runs = _runs(tmp_path / "syn")
    assert len(runs) == 6 and sorted(runs.loc[runs["seed"] == 1, "attempt"]) == [2, 2]


def test_changed_spec_is_refused_unless_forced(cli, tmp_path, write_spec):
    spec = write_spec(SYN)
    assert cli("run", str(spec), "--results", str(tmp_path), "--executor", "inline").returncode == 0
    res = cli("run", str(spec), "--set", "seeds=4", "--results", str(tmp_path), "--executor", "inline")
    assert res.returncode == 2 and "was started with a different spec (seeds: [0, 1, 2] -> [0, 1, 2, 3])" in res.stderr
    res = cli("run", str(spec), "--set", "seeds=4", "--results", str(tmp_path), "--executor", "inline", "--force")
    assert res.returncode == 0 and "8 runs planned, 6 already done, 2 to run" in res.stdout
    # scheduling knobs are not science: changing them resumes without --force
    res = cli("resume", str(tmp_path / "syn"), "--executor", "inline")
    assert res.returncode == 0 and "8 already done" in res.stdout


def test_a_second_driver_is_refused_while_the_first_runs(cli, tmp_path, write_spec):
    spec = write_spec(SYN.replace("sleep_s: 0.0", "sleep_s: 0.5"))
    first = subprocess.Popen([sys.executable, "-m", "symsweep.cli", "run", str(spec), "--results",
                              str(tmp_path), "--executor", "inline"], cwd=REPO, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        lock = tmp_path / "syn" / ".lock"
        for _ in range(100):
            if lock.exists():
                break
            time.sleep(0.1)
        second = cli("run", str(spec), "--results", str(tmp_path), "--executor", "inline")
        assert second.returncode == 3
        assert f"being run by pid {first.pid}" in second.stderr
    finally:
        first.wait(timeout=120)
    assert first.returncode == 0 and not lock.exists()
    assert len(_runs(tmp_path / "syn")) == 6


def test_sigkill_mid_sweep_then_resume_runs_everything_exactly_once(cli, tmp_path, write_spec):
    spec = write_spec(SYN.replace("sleep_s: 0.0", "sleep_s: 0.4").replace("seeds: 3", "seeds: 8")
                      .replace("runs_per_trial: 3", "runs_per_trial: 4"))
    driver = subprocess.Popen([sys.executable, "-m", "symsweep.cli", "run", str(spec), "--results",
                               str(tmp_path), "--num-cpus", "2"], cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"})
    runs_dir = tmp_path / "syn" / "runs"
    try:
        deadline = time.time() + 120
        while time.time() < deadline and len(list(runs_dir.glob("*.parquet"))) < 3:  # 3 finished runs
            time.sleep(0.1)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
    finally:
        time.sleep(1)
        try:  # the embedded Ray's leftovers of the killed driver
            os.killpg(driver.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    before = len(ledger(tmp_path / "syn"))
    assert 3 <= before < 16, before
    assert json.loads((tmp_path / "syn" / ".lock").read_text())["pid"] == driver.pid  # left behind

    res = cli("resume", str(tmp_path / "syn"), "--num-cpus", "2")
    assert res.returncode == 0, res.stderr
    assert "took over a stale lock" in res.stdout
    assert f"{before} already done, {16 - before} to run" in res.stdout
    runs = assert_ran_once(tmp_path / "syn", 16)
    assert set(runs["status"]) == {"completed"} and (runs["attempt"] == 1).all()
    assert list(runs_dir.glob("*.parquet")) == list(runs_dir.glob("seg-*.parquet"))  # folded at the end
    assert not list((tmp_path / "syn").rglob(".tmp-*"))


def test_status_and_aggregate_of_a_missing_folder_fail_clearly(cli, tmp_path):
    res = cli("status", str(tmp_path / "nothing"))
    assert res.returncode == 2 and "is not a sweep folder" in res.stderr  # a bad location is bad input
    res = cli("aggregate", str(tmp_path / "nothing"))
    assert res.returncode == 2 and "is not a sweep folder" in res.stderr


def test_a_corrupt_run_file_is_reported_moved_aside_and_run_again(cli, tmp_path, write_spec):
    spec = write_spec(SYN)
    assert cli("run", str(spec), "--results", str(tmp_path), "--executor", "inline").returncode == 0
    # one run's own file, as a killed or damaged writer would leave it (the rest are in a segment)
    one = ledger(tmp_path / "syn").iloc[0]
    victim = tmp_path / "syn" / "runs" / f"{one['run_id']}.parquet"
    victim.write_bytes(b"PAR1" + b"\0" * 36)  # garbage where a row was being rewritten
    status = cli("status", str(tmp_path / "syn"))
    assert status.returncode == 0
    assert f"unreadable file {victim}" in status.stdout and "pending: 0" in status.stdout  # the segment still has it
    res = cli("run", str(spec), "--results", str(tmp_path), "--executor", "inline")
    assert res.returncode == 0
    assert "moved to quarantine/" in res.stdout and "6 already done, 0 to run" in res.stdout
    assert len(list((tmp_path / "syn" / "quarantine").iterdir())) == 1
    runs = _runs(tmp_path / "syn")
    assert len(runs) == 6 and runs["run_id"].is_unique and set(runs["status"]) == {"completed"}

    # a damaged segment: every run in it is unreadable, moved aside and run again
    (segment,) = (tmp_path / "syn" / "runs").glob("seg-*.parquet")
    segment.write_bytes(segment.read_bytes()[:100])
    status = cli("status", str(tmp_path / "syn"))
    assert f"unreadable file {segment}" in status.stdout and "pending: 6" in status.stdout
    res = cli("run", str(spec), "--results", str(tmp_path), "--executor", "inline")
    assert res.returncode == 0 and "0 already done, 6 to run" in res.stdout
    runs = _runs(tmp_path / "syn")
    assert len(runs) == 6 and set(runs["status"]) == {"completed"} and (runs["attempt"] == 1).all()


def test_the_embedded_ray_ignores_a_dead_cluster_left_by_ray_start(cli, write_spec, tmp_path):
    """`ray start` records its cluster in <tmp>/ray/ray_current_cluster, and a plain
    ray.init() would try to join it even after it died: symsweep starts its own."""
    import shutil
    import tempfile
    short_tmp = tempfile.mkdtemp(prefix="t", dir="/tmp")  # Ray's socket paths must stay short
    try:
        os.makedirs(os.path.join(short_tmp, "ray"))
        with open(os.path.join(short_tmp, "ray", "ray_current_cluster"), "w") as f:
            f.write("127.0.0.2:9\n")  # nothing listens there
        spec = write_spec(SYN)
        res = cli("run", str(spec), "--results", str(tmp_path), "--num-cpus", "2", env={"TMPDIR": short_tmp},
                  timeout=180)
        assert res.returncode == 0, res.stderr
        assert "done: 6 completed" in res.stdout
    finally:
        shutil.rmtree(short_tmp, ignore_errors=True)


def test_data_lists_downloadable_datasets_and_rejects_unknown_ones(cli, tmp_path):
    res = cli("data")
    assert res.returncode == 0
    listed = dict(line.split(None, 1) for line in res.stdout.splitlines() if line.strip())
    assert listed["pinnacle"] == "(task pinn)" and listed["cifar10"] == "(task image_classification)"
    res = cli("data", "imagenet", "--dest", str(tmp_path))
    assert res.returncode == 2 and "unknown dataset 'imagenet'; downloadable: cifar10, cifar100" in res.stderr
    res = cli("data", "pinnacle")
    assert res.returncode == 2 and "--dest DIR is required" in res.stderr
    assert list(tmp_path.iterdir()) == []
