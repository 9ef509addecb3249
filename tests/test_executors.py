"""One contract suite for both executors: same runs, same rows, same numbers."""
from __future__ import annotations

import pytest

from symsweep import InlineExecutor, RayExecutor, SweepStore, TrialRunner, expand, pack, spec_from_dict
from symsweep.progress import Progress
from symsweep.spec import Resources


@pytest.fixture(params=["inline", "ray"])
def executor(request):
    if request.param == "ray":
        request.getfixturevalue("ray_local")
        return RayExecutor(Resources(cpus=1), max_failures=1)
    return InlineExecutor()


def _sweep(tmp_path, **fixed):
    spec = spec_from_dict({"name": "c", "task": "synthetic", "fixed": fixed,
                           "axes": {"steps": [3, 7]}, "seeds": 4, "runs_per_trial": 3})
    store = SweepStore(str(tmp_path / "c"))
    runner = TrialRunner(store_uri=store.uri, sweep="c", git_commit="abc")
    return spec, store, runner


def _execute(executor, spec, store, runner, trials=None):
    trials = trials if trials is not None else pack(expand(spec), spec.runs_per_trial)
    progress = Progress("c", total=len(expand(spec)))
    return executor.execute(trials, runner, progress), progress


def test_every_run_written_once_with_provenance(executor, tmp_path):
    spec, store, runner = _sweep(tmp_path)
    _, progress = _execute(executor, spec, store, runner)
    runs = store.read_runs()
    assert sorted(runs["run_id"]) == sorted(r.run_id for r in expand(spec))
    assert set(runs["status"]) == {"completed"}
    assert progress.counts()["finished"] == 8
    row = runs.iloc[0]
    for col in ("host", "device", "v_torch", "v_numpy", "v_python", "started_at", "duration_s", "config_json"):
        assert row[col] is not None, col
    assert row["git_commit"] == "abc"
    assert set(store.read_history()["run_id"]) == set(runs["run_id"])


def test_failures_and_divergence_are_rows_and_the_sweep_goes_on(executor, tmp_path):
    spec, store, runner = _sweep(tmp_path, fail_seeds=[1], diverge_seeds=[2])
    _execute(executor, spec, store, runner)
    runs = store.read_runs().set_index("seed")
    assert (runs.loc[1, "status"] == "failed").all()
    assert runs.loc[1, "error"].str.contains("RuntimeError: synthetic failure requested for seed 1").all()
    assert runs.loc[1, "traceback"].str.contains("Traceback").all()
    assert (runs.loc[2, "status"] == "diverged").all()
    assert (runs.loc[[0, 3], "status"] == "completed").all()


def test_same_run_reproduces_across_executors(executor, tmp_path):
    spec, store, runner = _sweep(tmp_path)
    _execute(executor, spec, store, runner)
    other, other_store, other_runner = _sweep(tmp_path / "again")
    _execute(InlineExecutor(), other, other_store, other_runner)
    a = store.read_runs().set_index("run_id")["metric_loss"].sort_index()
    b = other_store.read_runs().set_index("run_id")["metric_loss"].sort_index()
    assert a.to_dict() == b.to_dict()


def test_a_rerun_trial_skips_finished_runs(executor, tmp_path):
    spec, store, runner = _sweep(tmp_path)
    trials = pack(expand(spec), spec.runs_per_trial)
    _execute(executor, spec, store, runner, trials[:1])
    first = store.read_runs().set_index("run_id")["finished_at"]
    _execute(executor, spec, store, runner)  # as a retried trial would: every trial again
    runs = store.read_runs().set_index("run_id")
    assert len(runs) == 8
    assert (runs.loc[first.index, "finished_at"] == first).all()  # never rewritten
    assert (runs["attempt"] == 1).all()


def test_run_rows_carry_the_documented_columns(tmp_path):
    from conftest import REPO
    from symsweep.store import HISTORY_SCHEMA, RUN_COLUMNS
    spec, store, runner = _sweep(tmp_path)
    _execute(InlineExecutor(), spec, store, runner)
    runs = store.read_runs()
    assert set(RUN_COLUMNS) <= set(runs.columns)
    extra = set(runs.columns) - set(RUN_COLUMNS)
    assert extra == {f"cfg_{k}" for k in spec.to_dict()["fixed"]} | {f"cfg_{k}" for k in expand(spec)[0].config} \
        | {"metric_loss", "metric_weight_error"}
    readme = (REPO / "docs" / "store.md").read_text()
    for col in (*RUN_COLUMNS, *HISTORY_SCHEMA.names):
        assert f"`{col}`" in readme, f"docs/store.md does not document column {col}"


def test_a_task_without_torch_never_imports_it_and_a_torch_task_is_seeded(tmp_path):
    """`uses_torch=False` (synthetic, ising) keeps torch out of the worker (~3 s per process);
    every other task gets torch seeded per run, so two runs of one seed draw the same numbers."""
    import subprocess
    import sys
    from conftest import REPO
    script = f"""
import sys
from symsweep import SweepStore, TrialRunner, expand, pack, spec_from_dict
spec = spec_from_dict({{"name": "s", "task": "synthetic", "seeds": 2}})
store = SweepStore({str(tmp_path / 's')!r})
for trial in pack(expand(spec), 2):
    TrialRunner(store_uri=store.uri, sweep="s")(trial)
assert len(store.read_runs()) == 2
print("torch imported:", "torch" in sys.modules)
"""
    res = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "torch imported: False" in res.stdout

    import torch
    from symsweep.worker import seed_everything
    seed_everything(5)
    first = torch.rand(3)
    seed_everything(5, torch_too=False)
    assert not torch.equal(torch.rand(3), first)  # left alone: the stream goes on
    seed_everything(5)
    assert torch.equal(torch.rand(3), first)


# ----------------------------------------------------------------------------- settings, not the environment

# what Tune and Ray read only from the driver's environment: the CLI sets them, the executor never
DRIVER_ONLY = ("TUNE_DISABLE_SIGINT_HANDLER", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "RAY_AIR_NEW_OUTPUT",
               "RAY_gcs_server_port_wait_time_s", "MLFLOW_HTTP_REQUEST_TIMEOUT")


def test_ray_executor_hands_worker_env_to_the_workers_and_writes_nothing_into_the_callers(tmp_path):
    """`worker_env` reaches the trial's worker through Ray's runtime_env; the process that
    uses the executor (a fresh one, with an embedded Ray) keeps its environment as it was."""
    import os
    import subprocess
    import sys
    from conftest import REPO
    seen = tmp_path / "seen"
    script = f"""
import os
from symsweep import RayExecutor, expand, pack, spec_from_dict
from symsweep.progress import Progress
from symsweep.spec import Resources

class Probe:  # stands in for a TrialRunner: says what the worker's environment holds
    def __call__(self, trial, report):
        with open({str(seen)!r}, "w") as f:
            f.write(os.environ.get("SYMSWEEP_PROBE", "unset"))

spec = spec_from_dict({{"name": "p", "task": "synthetic", "seeds": 1}})
RayExecutor(Resources(cpus=1), max_failures=0, num_cpus=1, worker_env={{"SYMSWEEP_PROBE": "yes"}}).execute(
    pack(expand(spec), 1), Probe(), Progress("p", total=1))
print("written:", [k for k in {DRIVER_ONLY!r} + ("SYMSWEEP_PROBE",) if k in os.environ])
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUNE_", "RAY_", "MLFLOW_"))}
    res = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    assert seen.read_text() == "yes"
    assert "written: []" in res.stdout, res.stdout


def test_ray_driver_env_names_what_the_program_sets_and_leaves_the_users_own(tmp_path):
    from symsweep.executors import ray_driver_env
    assert ray_driver_env(None, {}) == {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "RAY_AIR_NEW_OUTPUT": "0"}
    assert ray_driver_env(None, {"RAY_AIR_NEW_OUTPUT": "1"}) == {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}
    no_token = {"RAY_AUTH_TOKEN_PATH": str(tmp_path / "missing")}
    joined = ray_driver_env("10.0.0.1:6379", no_token)
    assert joined["RAY_gcs_server_port_wait_time_s"] == "5" and "RAY_AUTH_MODE" not in joined
    token = tmp_path / "token"
    token.write_text("t" * 32)
    # the cluster token is picked up as Ray's CLI does: a token at hand and RAY_AUTH_MODE unset
    assert ray_driver_env("10.0.0.1:6379", {"RAY_AUTH_TOKEN_PATH": str(token)})["RAY_AUTH_MODE"] == "token"
    assert ray_driver_env("10.0.0.1:6379", {**no_token, "RAY_AUTH_TOKEN": "t"})["RAY_AUTH_MODE"] == "token"
    assert "RAY_AUTH_MODE" not in ray_driver_env("10.0.0.1:6379", {"RAY_AUTH_TOKEN": "t", "RAY_AUTH_MODE": "disabled"})
