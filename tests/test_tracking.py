"""Experiment tracking: MLflow live (a real `mlflow server` on loopback, through the CLI,
inline and on Ray), TensorBoard and MLflow export after the fact, a plugin tracker, and a
tracking server that dies mid-sweep. The last test stops the module's server."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, free_port, ledger, symsweep

pytest.importorskip("mlflow", reason="mlflow is in the dev extra")

SYN = """
name: {name}
task: synthetic
fixed: {{sleep_s: {sleep}, fail_seeds: [1], diverge_seeds: [2]}}
axes: {{steps: [5, 10]}}
seeds: {seeds}
runs_per_trial: 3
"""


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """`mlflow server` on 127.0.0.1 with a sqlite backend; stopped by its process group."""
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = open(root / "server.log", "w")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("mlflow")), "server", "--host", "127.0.0.1",
                             "--port", str(port), "--backend-store-uri", f"sqlite:///{root}/db.sqlite",
                             "--default-artifact-root", str(root / "artifacts"), "--workers", "1"],
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{uri}/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
    proc.uri = uri
    yield proc
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _client(uri: str):
    from mlflow.tracking import MlflowClient
    return MlflowClient(tracking_uri=uri)


def _mlflow_runs(uri: str, experiment: str) -> list:
    client = _client(uri)
    exp = client.get_experiment_by_name(experiment)
    return [] if exp is None else client.search_runs([exp.experiment_id], max_results=1000)


def _spec(tmp_path, name, sleep=0.0, seeds=3) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(SYN.format(name=name, sleep=sleep, seeds=seeds))
    return path


def _check_mirror(uri: str, experiment: str, sweep_dir: Path) -> None:
    """Every ledger row has exactly one MLflow run, with its params, tags, history and status."""
    from symsweep import SweepStore
    runs = ledger(sweep_dir).set_index("run_id")
    history = SweepStore(str(sweep_dir)).read_history()
    mirrored = _mlflow_runs(uri, experiment)
    by_id = {r.data.tags["symsweep.run_id"]: r for r in mirrored}
    assert len(mirrored) == len(runs) and set(by_id) == set(runs.index)
    client = _client(uri)
    expected = {"completed": "FINISHED", "failed": "FAILED", "diverged": "FAILED"}
    for rid, row in runs.iterrows():
        r = by_id[rid]
        assert r.info.status == expected[row["status"]], (rid, row["status"], r.info.status)
        assert r.data.tags["symsweep.status"] == row["status"]
        assert r.data.tags["symsweep.seed"] == str(row["seed"]) and r.data.tags["symsweep.trial"] == row["trial_id"]
        assert {"symsweep.sweep", "symsweep.task", "symsweep.host", "symsweep.git_commit"} <= set(r.data.tags)
        assert r.data.params["steps"] == str(row["cfg_steps"]) and r.data.params["fail_seeds"] == "[1]"
        losses = client.get_metric_history(r.info.run_id, "loss")
        logged = history[(history["run_id"] == rid) & (history["metric"] == "loss")]
        finals = 1 if row["status"] == "completed" else 0  # the final metric, at the last step
        assert len(losses) == len(logged) + finals, (rid, len(losses), len(logged))
        if row["status"] == "completed":
            assert r.data.metrics["loss"] == pytest.approx(row["metric_loss"])
        if row["status"] == "failed":
            assert "synthetic failure requested" in r.data.tags["symsweep.error"]


def test_mlflow_mirrors_every_run_live_inline_and_a_resume_adds_none(mlflow_server, tmp_path):
    spec = _spec(tmp_path, "live")
    res = symsweep("run", str(spec), "--results", str(tmp_path / "res"), "--executor", "inline",
                   "--set", f"tracking.mlflow={mlflow_server.uri}")
    assert res.returncode == 1, res.stderr  # seed 1 fails on purpose
    assert "View run" not in res.stdout and "unavailable" not in res.stderr
    _check_mirror(mlflow_server.uri, "live", tmp_path / "res" / "live")
    again = symsweep("resume", str(tmp_path / "res" / "live"), "--executor", "inline")
    assert "6 already done, 0 to run" in again.stdout
    assert len(_mlflow_runs(mlflow_server.uri, "live")) == 6


def test_mlflow_mirrors_runs_made_by_ray_workers(mlflow_server, tmp_path):
    spec = _spec(tmp_path, "onray", seeds=2)
    res = symsweep("run", str(spec), "--results", str(tmp_path / "res"), "--num-cpus", "2",
                   "--set", f"tracking.mlflow={mlflow_server.uri}", "--set", "tracking.experiment=ray-exp")
    assert res.returncode == 1, res.stderr
    _check_mirror(mlflow_server.uri, "ray-exp", tmp_path / "res" / "onray")


@pytest.mark.parametrize("executor", ["inline", "ray"])
def test_an_unreachable_tracking_server_is_one_warning_from_the_driver(tmp_path, executor):
    """Nothing listens on the port: each worker gives MLflow up after one refused connection,
    and the driver says so once, also when the workers are Ray's (their stderr is not shown)."""
    spec = _spec(tmp_path, "nobody", seeds=2)
    res = symsweep("run", str(spec), "--results", str(tmp_path / "res"), "--executor", executor, "--num-cpus", "2",
                   "--set", f"tracking.mlflow=http://127.0.0.1:{free_port()}", isolated=True)
    assert res.returncode == 1, res.stderr  # seed 1 fails on purpose
    assert "done: 2 completed, 2 failed, 0 diverged, 0 pending of 4 planned" in res.stdout
    warnings = [line for line in res.stderr.splitlines() if "tracking: mlflow unavailable" in line]
    assert len(warnings) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "runs go on, recorded in the Parquet ledger only" in warnings[0]


def test_export_to_tensorboard_reads_back_with_tensorboards_reader(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from symsweep import SweepStore
    spec = _spec(tmp_path, "tb", seeds=1)
    assert symsweep("run", str(spec), "--results", str(tmp_path / "res"), "--executor", "inline").returncode == 0
    sweep = tmp_path / "res" / "tb"
    res = symsweep("export", "tensorboard", str(sweep), "--out", str(tmp_path / "tb"))
    assert res.returncode == 0 and "wrote 2 runs" in res.stdout, res.stderr
    runs = ledger(sweep).set_index("run_id")
    history = SweepStore(str(sweep)).read_history()
    folders = sorted((tmp_path / "tb").iterdir())
    assert len(folders) == 2
    for folder in folders:
        rid = next(r for r in runs.index if folder.name.endswith(r[:8]))
        acc = EventAccumulator(str(folder))
        acc.Reload()
        steps = [(e.step, e.value) for e in acc.Scalars("loss")]
        logged = history[(history["run_id"] == rid) & (history["metric"] == "loss")].sort_values("step")
        assert [s for s, _ in steps] == logged["step"].tolist()
        assert [v for _, v in steps] == pytest.approx(logged["value"].tolist(), rel=1e-6)
        assert acc.Scalars("final/loss")[0].value == pytest.approx(runs.loc[rid, "metric_loss"], rel=1e-6)
        assert acc.PluginTagToContent("hparams")  # the HPARAMS tab's data: config and final metrics


def test_export_to_mlflow_replays_a_finished_sweep_once(mlflow_server, tmp_path):
    spec = _spec(tmp_path, "replay")
    symsweep("run", str(spec), "--results", str(tmp_path / "res"), "--executor", "inline")
    sweep = tmp_path / "res" / "replay"
    res = symsweep("export", "mlflow", str(sweep), "--uri", mlflow_server.uri)
    assert res.returncode == 0 and "exported 6 runs" in res.stdout, res.stderr
    _check_mirror(mlflow_server.uri, "replay", sweep)
    again = symsweep("export", "mlflow", str(sweep), "--uri", mlflow_server.uri)
    assert "exported 0 runs" in again.stdout and "(6 already there)" in again.stdout
    assert len(_mlflow_runs(mlflow_server.uri, "replay")) == 6


def test_a_live_run_and_its_export_carry_the_same_name_tags_params_and_status(mlflow_server, tmp_path):
    """One mapping of a run onto MLflow (symsweep.tracking), whether it is tracked live or replayed."""
    spec = _spec(tmp_path, "twin")
    res = symsweep("run", str(spec), "--results", str(tmp_path / "res"), "--executor", "inline",
                   "--set", f"tracking.mlflow={mlflow_server.uri}", "--set", "tracking.experiment=twin-live")
    assert res.returncode == 1, res.stderr  # seed 1 fails on purpose
    res = symsweep("export", "mlflow", str(tmp_path / "res" / "twin"), "--uri", mlflow_server.uri,
                   "--experiment", "twin-export")
    assert res.returncode == 0 and "exported 6 runs" in res.stdout, res.stderr

    def by_run_id(experiment):
        return {r.data.tags["symsweep.run_id"]: r for r in _mlflow_runs(mlflow_server.uri, experiment)}

    live, exported = by_run_id("twin-live"), by_run_id("twin-export")
    assert set(live) == set(exported) and len(live) == 6
    for rid, a in live.items():
        b = exported[rid]
        tags_a = {k: v for k, v in a.data.tags.items() if k.startswith("symsweep.")}
        tags_b = {k: v for k, v in b.data.tags.items() if k.startswith("symsweep.")}
        assert tags_b.pop("symsweep.exported") == "true"
        assert tags_a == tags_b
        assert a.data.params == b.data.params
        assert a.info.run_name == b.info.run_name
        assert a.info.status == b.info.status
        assert a.data.metrics == pytest.approx(b.data.metrics, nan_ok=True)


def test_a_plugin_tracker_gets_the_same_callbacks(tmp_path):
    """A tracker from another package, found through the symsweep.trackers entry point."""
    plugin = tmp_path / "plugin"
    (plugin / "jsonl_tracker-0.1.dist-info").mkdir(parents=True)
    (plugin / "jsonl_tracker-0.1.dist-info" / "METADATA").write_text("Name: jsonl-tracker\nVersion: 0.1\n")
    (plugin / "jsonl_tracker-0.1.dist-info" / "entry_points.txt").write_text(
        "[symsweep.trackers]\njsonl = jsonl_tracker:JsonlTracker\n")
    (plugin / "jsonl_tracker.py").write_text(textwrap.dedent("""
        import json
        class JsonlTracker:
            def __init__(self, settings, sweep):
                self.path = settings["path"]
            def _write(self, **event):
                with open(self.path, "a") as f:
                    f.write(json.dumps(event) + "\\n")
            def on_run_start(self, run):
                self._write(event="start", run_id=run.run_id, seed=run.seed)
            def on_log(self, step, metrics):
                self._write(event="log", step=step, **metrics)
            def on_run_end(self, status, metrics, error):
                self._write(event="end", status=status)
    """))
    events = tmp_path / "events.jsonl"
    spec = _spec(tmp_path, "plug", seeds=1)
    env = {"PYTHONPATH": f"{plugin}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    res = symsweep("run", str(spec), "--results", str(tmp_path / "res"), "--executor", "inline",
                   "--set", f"tracking.jsonl={{path: {events}}}", env=env)
    assert res.returncode == 0, res.stderr
    got = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["event"] for e in got if e["event"] != "log"] == ["start", "end", "start", "end"]
    assert sum(e["event"] == "log" for e in got) == len(SweepStore_history(tmp_path / "res" / "plug"))


def SweepStore_history(sweep):
    from symsweep import SweepStore
    h = SweepStore(str(sweep)).read_history()
    return h.drop_duplicates(["run_id", "step"])


def test_bad_tracking_settings_are_one_line(tmp_path):
    from symsweep import SpecError
    from symsweep.tracking import require
    spec = _spec(tmp_path, "bad", seeds=1)
    res = symsweep("run", str(spec), "--results", str(tmp_path / "res"), "--set", "tracking.wandb=x")
    assert res.returncode == 2 and "tracking: unknown key(s) 'wandb'; allowed: mlflow, experiment" in res.stderr
    res = symsweep("run", str(spec), "--results", str(tmp_path / "res"), "--set", "tracking.experiment=e")
    assert res.returncode == 2 and "set tracking.mlflow too" in res.stderr
    assert not (tmp_path / "res").exists()
    with pytest.raises(SpecError, match=r"needs the no_such_client package: pip install 'symsweep\[mlflow\]'"):
        require("no_such_client", extra="mlflow", what="tracking.mlflow")


def test_plan_calibrate_mirrors_nothing_to_the_specs_tracker(mlflow_server, tmp_path):
    """A plan writes nothing, the spec's MLflow included: its calibration runs of the smoke
    budget used to be logged there (two runs after a plan that "writes nothing")."""
    spec = tmp_path / "calib.yaml"
    spec.write_text("name: calib\ntask: synthetic\naxes: {steps: [5, 10]}\nseeds: 2\nsmoke: {seeds: 1}\n"
                    f"tracking: {{mlflow: '{mlflow_server.uri}', experiment: calib}}\n")
    res = symsweep("plan", str(spec), "--results", str(tmp_path / "res"), "--calibrate")
    assert res.returncode == 0 and "calibrating" in res.stdout and "run time" in res.stdout, res.stdout + res.stderr
    assert _mlflow_runs(mlflow_server.uri, "calib") == []
    ran = symsweep("run", str(spec), "--results", str(tmp_path / "res"), "--executor", "inline", "--no-summary")
    assert ran.returncode == 0, ran.stderr
    assert len(_mlflow_runs(mlflow_server.uri, "calib")) == 4  # the tracker is live: `run` logs there


def test_a_tracking_server_that_dies_mid_sweep_never_fails_or_stalls_a_run(mlflow_server, tmp_path):
    """Runs last: it stops the module's server."""
    spec = _spec(tmp_path, "dies", sleep=0.5, seeds=6)
    start = time.monotonic()
    driver = subprocess.Popen([sys.executable, "-m", "symsweep.cli", "run", str(spec), "--results",
                               str(tmp_path / "res"), "--executor", "inline", "--set",
                               f"tracking.mlflow={mlflow_server.uri}"], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(_mlflow_runs(mlflow_server.uri, "dies")) < 2:
        time.sleep(0.2)
    os.killpg(mlflow_server.pid, signal.SIGKILL)
    out, err = driver.communicate(timeout=300)
    assert driver.returncode == 1, err  # the planned failures only
    assert "done: 8 completed, 2 failed, 2 diverged, 0 pending of 12 planned" in out
    assert err.count("tracking: mlflow unavailable") == 1 and "Traceback" not in err, err
    assert time.monotonic() - start < 12 * 0.5 + 90


def test_an_export_reads_rows_from_before_the_attempt_column():
    """A ledger row without `attempt` (files written before the column) or without host is
    exported, not a ValueError."""
    import pandas as pd

    from symsweep.export import _run_info
    row = pd.Series({"run_id": "abc", "seed": 3, "task": "synthetic", "attempt": float("nan"), "config_json": "{}"})
    info = _run_info(row)
    assert (info.attempt, info.seed, info.sweep, info.host, info.git_commit) == (0, 3, "None", "None", None)
