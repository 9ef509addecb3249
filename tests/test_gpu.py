"""The GPU path: what can be checked without a GPU is checked here (device choice, `gpus`
validation, packing advice, the device bench at its CPU size); the `gpu`-marked tests run
the CUDA paths and skip with a reason where there is no CUDA device."""
from __future__ import annotations

import pandas as pd
import pytest

from symsweep import SpecError, spec_from_dict
from symsweep.gpu import CUDA_CONTEXT_MB, advice_line, cuda_available, packing_advice, pick_device

BASE = {"name": "g", "task": "synthetic", "seeds": 1}


def test_a_trial_without_gpus_runs_on_the_cpu_and_one_with_gpus_on_cuda_when_there():
    assert pick_device(0.0) == "cpu"
    assert pick_device(0.5) == ("cuda" if cuda_available() else "cpu")


@pytest.mark.parametrize("gpus, ok", [(0.25, True), (0.5, True), (1, True), (2, True), (1.5, False), (2.5, False)])
def test_gpus_above_one_must_be_whole(gpus, ok):
    raw = {**BASE, "resources": {"cpus": 1, "gpus": gpus}}
    if ok:
        assert spec_from_dict(raw).resources.gpus == gpus
    else:
        with pytest.raises(SpecError, match=r"above 1 a trial takes whole GPUs"):
            spec_from_dict(raw)


def test_packing_advice_fits_the_trials_with_their_contexts():
    n, fraction = packing_advice(peak_mb=1500, gpu_mb=80_000)
    assert n == int(80_000 * 0.9 // (1500 + CUDA_CONTEXT_MB)) == 36
    assert fraction * n <= 1 and fraction * (n + 1) > 1 - 1e-3
    assert packing_advice(peak_mb=100_000, gpu_mb=80_000) == (1, 1.0)  # never less than one trial
    with pytest.raises(ValueError):
        packing_advice(peak_mb=-1, gpu_mb=1)


def test_status_advice_reads_the_run_rows():
    rows = pd.DataFrame({"peak_gpu_mem_mb": [700.0, 900.0, None], "gpu_mem_total_mb": [81559.0, 81559.0, None],
                         "device": ["cuda:NVIDIA H100", "cuda:NVIDIA H100", "cpu:x86_64"]})
    line = advice_line(rows)
    assert "runs peak at 900 MB on cuda:NVIDIA H100 (81559 MB): about 52 trials fit" in line
    assert "resources.gpus: 0.0192" in line
    assert advice_line(pd.DataFrame({"peak_gpu_mem_mb": [None], "device": ["cpu:x86_64"]})) is None
    # vectorized seeds: each row has the batch's peak, not one of its own; a trial holds the batch
    batched = rows.assign(peak_gpu_mem_mb=[None, None, None], batch_peak_gpu_mem_mb=[3000.0, 3100.0, None])
    assert "runs peak at 3100 MB" in advice_line(batched)


def test_a_gpu_spec_without_cuda_runs_on_the_cpu_and_says_so_once(cli, tmp_path):
    if cuda_available():
        pytest.skip("this machine has CUDA: the fallback is for machines without it")
    spec = tmp_path / "g.yaml"
    spec.write_text("name: g\ntask: synthetic\nseeds: 3\nruns_per_trial: 3\nresources: {cpus: 1, gpus: 0.5}\n")
    # its own process: the warning is said once per process
    res = cli("run", str(spec), "--results", str(tmp_path / "res"), "--executor", "inline", isolated=True)
    assert res.returncode == 0, res.stderr
    assert res.stderr.count("resources.gpus=0.5 but this process sees no CUDA device") == 1
    from conftest import ledger
    runs = ledger(tmp_path / "res" / "g")
    assert set(runs["device"].str.split(":").str[0]) == {"cpu"} and runs["peak_gpu_mem_mb"].isna().all()


# ----------------------------------------------------------------------------- the device bench


IN_PROCESS_SECTIONS = "ensemble,capture,image,pinn,seeds,landscape,plans"


@pytest.mark.parametrize("only", [IN_PROCESS_SECTIONS, pytest.param("", marks=pytest.mark.slow)],
                         ids=["in-process-sections", "all"])
def test_the_device_bench_runs_at_its_cpu_size(tmp_path, only):
    """bench/gpu.py --device cpu --quick: every section's code path, at toy sizes, so the
    script a GPU slot runs cannot rot. Every key the GPU issue asks for is printed: a number,
    or `skipped (why)` where only a GPU (or the full run) gives the figure. The default run
    leaves out the two sections that start sweeps on an embedded Ray (rd, packing: ~55 s
    here, the same CLI path the Ray tests run); the slow tier runs all."""
    import json
    import subprocess
    import sys
    from conftest import REPO, SHARED_DATA
    out = tmp_path / "figures.json"
    res = subprocess.run([sys.executable, "bench/gpu.py", "--device", "cpu", "--quick", "--out", str(out),
                          "--data-root", str(SHARED_DATA), *(["--only", only] if only else [])],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    figures = json.loads(out.read_text())
    gpu_only = {"captured_speedup_b64": "CUDA graphs need CUDA", "replica_captured_speedup": "CUDA graphs need CUDA"}
    if not only:
        gpu_only.update({"packing_speedup_4": "needs a GPU", "packing_speedup_4_mps": "MPS needs an NVIDIA GPU",
                         "rd_sweep_captured_wall_s": "CUDA graphs need CUDA"})
    for key, why in gpu_only.items():
        assert figures[key].startswith("skipped (") and why in figures[key], (key, figures[key])
    skipped = {k: v for k, v in figures.items() if isinstance(v, str) and v.startswith("skipped")
               and k not in gpu_only and not k.startswith("gpu_hours_")}
    if not (SHARED_DATA / "pinnacle").exists():
        skipped.pop("pinn_ratio_vs_plain", None)  # needs PINNacle's burgers1d.dat
    assert not skipped, skipped
    numbers = ["ensemble_speedup", "replica_ratio_vs_plain", "replica_ensemble_vs_plain", "image_ratio_vs_plain_b64",
               "image_ratio_vs_plain_b512", "image_ratio_vs_plain_b64_x2", "image_ratio_vs_plain_b512_x2",
               "pinn_seeds_speedup", "landscape_configs_per_s", "gpu_hours_replicas-cifar10", "gpu_hours_paper_table"]
    if not only:
        numbers += ["rd_sweep_wall_s", "packing_speedup_2"]
        assert figures["rd_sweep_runs"] == 2 and figures["packing_recommended_n"] in (1, 2)
    for key in numbers:
        assert isinstance(figures[key], float) and figures[key] > 0, (key, figures[key])
    assert figures["gpu_hours_paper_table"] == figures["gpu_hours_replicas-cifar10"]  # the one spec --quick plans
    assert figures["gpu_hours_specs"] == "replicas-cifar10"
    for key in ("gpu_hours_expansion-cifar", "gpu_hours_pinn-pinnacle", "gpu_hours_sentiment-imdb"):
        assert figures[key].startswith("skipped (")
    assert figures["pinn_seeds_loss_rel_diff"] < 1e-4  # float32, 10 iterations
    assert figures["replica_captured_weight_max_diff_batchnorm"] == 0.0  # no graph on the CPU: the eager numbers
    assert all(isinstance(v, float) for k, v in figures.items() if k.startswith("section_s_"))


# ----------------------------------------------------------------------------- CUDA (skipped without)

needs_cuda = pytest.mark.skipif(not cuda_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@needs_cuda
def test_vectorized_and_one_by_one_replicas_agree_per_seed_on_cuda():
    import numpy as np
    from symsweep.tasks.replica.task import MODELS, ReplicaConfig, flat_weights, train_replicas
    for model in MODELS:
        cfg = ReplicaConfig(model=model, dataset="digits", epochs=3, augment="paper")
        one = {s: flat_weights(m) for s, m, _ in train_replicas(cfg, [0, 1, 2], None, "cuda", False)}
        many = {s: flat_weights(m) for s, m, _ in train_replicas(cfg, [0, 1, 2], None, "cuda", True)}
        for seed in one:
            np.testing.assert_allclose(one[seed], many[seed], rtol=1e-3, atol=1e-4 if model != "batchnorm" else 2e-3)


@pytest.mark.gpu
@needs_cuda
def test_bf16_channels_last_image_training_learns_and_records_gpu_memory(cli, tmp_path):
    spec = tmp_path / "img.yaml"
    spec.write_text("name: img\ntask: image_classification\nfixed: {dataset: digits, model: resnet18, image_size: 32, "
                    "epochs: 2, amp: true, channels_last: true}\nseeds: 1\nresources: {cpus: 1, gpus: 1}\n")
    res = cli("run", str(spec), "--results", str(tmp_path / "res"), "--executor", "inline")
    assert res.returncode == 0, res.stderr
    from conftest import ledger
    row = ledger(tmp_path / "res" / "img").iloc[0]
    assert row["device"].startswith("cuda:") and row["metric_test_acc"] > 0.5
    assert row["peak_gpu_mem_mb"] > 0 and row["gpu_mem_total_mb"] > row["peak_gpu_mem_mb"]


@pytest.mark.gpu
@needs_cuda
def test_fractional_gpus_pack_trials_onto_one_real_gpu(cli, tmp_path):
    spec = tmp_path / "pack.yaml"
    spec.write_text("name: pack\ntask: synthetic\nfixed: {sleep_s: 1.0}\nseeds: 4\nruns_per_trial: 1\n"
                    "resources: {cpus: 0.5, gpus: 0.25}\n")
    res = cli("run", str(spec), "--results", str(tmp_path / "res"), "--num-cpus", "4")
    assert res.returncode == 0, res.stderr
    from conftest import ledger
    runs = ledger(tmp_path / "res" / "pack")
    assert set(runs["cuda_visible_devices"]) == {"0"}
    starts, ends = sorted(runs["started_at"]), sorted(runs["finished_at"])
    assert starts[-1] < ends[0]  # all four ran at once on the one GPU


@pytest.mark.gpu
@needs_cuda
def test_the_captured_image_step_matches_the_eager_one_on_cuda():
    """capture: cuda_graph on CUDA: the graph's numbers against the eager step's (fp32, no
    augmentation: the same inputs). Replays reorder nothing, so a loose tolerance is a defect."""
    from symsweep import SimpleContext
    from symsweep.tasks.image_classification import ImageClassificationConfig, run
    histories = []
    for capture in ("none", "cuda_graph"):
        cfg = ImageClassificationConfig(dataset="digits", model="resnet18", image_size=32, epochs=2, amp=False,
                                        train_limit=600, test_limit=200, batch_size=64, capture=capture)
        ctx = SimpleContext(device="cuda")
        run(cfg, 0, ctx)
        histories.append(ctx.history)
    for eager, captured in zip(*histories):
        assert captured["train_loss"] == pytest.approx(eager["train_loss"], rel=1e-4)
        assert abs(captured["test_acc"] - eager["test_acc"]) <= 0.02


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("model", ["batchnorm", "dropout"])
def test_the_captured_replica_ensemble_matches_the_eager_one_on_cuda(model):
    """capture: cuda_graph on CUDA: two graphs (batches of 64 and 36), capturable Adam; the
    weights against the eager ensemble's. Capturable Adam's float32 bias correction is the
    only change in arithmetic, so the difference stays at float32 rounding over 20 epochs."""
    import numpy as np
    from symsweep.tasks.replica.task import ReplicaConfig, flat_weights, train_replicas
    weights = []
    for capture in ("none", "cuda_graph"):
        cfg = ReplicaConfig(model=model, epochs=20, capture=capture)
        weights.append({s: flat_weights(m) for s, m, _ in train_replicas(cfg, [0, 1, 2], None, "cuda", True)})
    for seed in (0, 1, 2):
        np.testing.assert_allclose(weights[1][seed], weights[0][seed], rtol=1e-3, atol=1e-4)


@pytest.mark.gpu
@needs_cuda
def test_pinn_seeds_together_match_their_own_runs_on_cuda():
    from symsweep import SimpleContext
    from symsweep.tasks.pinn import PinnConfig, run
    from symsweep.tasks.pinn.ensemble import run_many
    config = PinnConfig(pde="burgers1d", iterations=50, log_every=50, hidden_layers=3, width=32, n_domain=512,
                        n_boundary=128, n_initial=128, float64=True, vectorize="on", reference="none")
    together = dict(run_many(config, [0, 1, 2], lambda s: SimpleContext(device="cuda")))
    for seed in (0, 1, 2):
        alone = run(config, seed, SimpleContext(device="cuda")).metrics
        assert together[seed].metrics["loss"] == pytest.approx(alone["loss"], rel=1e-9)


# ----------------------------------------------------------------------------- MPS (issue 32)


def test_mps_start_and_stop_commands_are_built_but_nothing_starts_on_the_cpu(tmp_path):
    """What the Slurm template runs on each node with SYMSWEEP_MPS=1: the dry run shows the
    daemon's commands and the variables Ray's workers inherit; on a machine without an NVIDIA
    GPU `start` says why in one line, prints no exports, starts nothing and exits 0."""
    import subprocess
    import sys

    from symsweep import mps
    folder = tmp_path / "mps"

    def call(*args):
        return subprocess.run([sys.executable, "-m", "symsweep.mps", *args], capture_output=True, text=True)
    dry = call("start", str(folder), "--dry-run")
    assert dry.returncode == 0
    assert f"export CUDA_MPS_PIPE_DIRECTORY={folder}/pipe" in dry.stdout
    assert f"export CUDA_MPS_LOG_DIRECTORY={folder}/log" in dry.stdout
    assert dry.stdout.strip().endswith("nvidia-cuda-mps-control -d")
    assert call("stop", str(folder), "--dry-run").stdout.strip().endswith("nvidia-cuda-mps-control <<< quit")
    if mps.why_not_here() is None:
        pytest.skip("this machine could start an MPS daemon: not started by a test")
    real = call("start", str(folder))
    assert real.returncode == 0 and real.stdout == "", real
    assert real.stderr.startswith("symsweep.mps: no ") and "MPS not started" in real.stderr
    assert len(real.stderr.strip().splitlines()) == 1 and not folder.exists()
    assert call("stop", str(folder)).returncode == 0
    bad = call("begin", str(folder))
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_the_steady_packing_rate_leaves_out_each_trial_processs_first_trial():
    """bench/gpu.py's packing_speedup_<n>_steady: runs/s once every trial process has run its
    first trial (its start-up), or None where some process ran only one."""
    import sys
    import pandas as pd
    from conftest import REPO
    sys.path.insert(0, str(REPO / "bench"))
    from gpu import steady_rate
    t = lambda s: pd.Timestamp("2026-12-04", tz="UTC") + pd.Timedelta(seconds=s)  # noqa: E731
    # two processes: first trials end at 10 s and 12 s (start-up), then 2 trials of 4 runs
    # each finish at 14 s and 16 s: 8 runs in the 4 s after 12 s
    rows = [("a", 1, 10), ("b", 2, 12), ("c", 1, 14), ("d", 2, 16)]
    runs = pd.DataFrame([{"trial_id": tr, "pid": pid, "finished_at": t(at), "status": "completed"}
                         for tr, pid, at in rows for _ in range(4)])
    assert steady_rate(runs) == pytest.approx(8 / 4)
    assert steady_rate(runs[runs["trial_id"] != "d"]) is None  # process 2 ran only its first trial


def test_the_device_bench_keeps_each_figure_on_disk_as_it_is_measured(tmp_path, monkeypatch):
    """A slot cut short (the call's time limit) keeps the figures measured so far: --out is
    rewritten at every figure, not once at the end."""
    import json
    import sys
    from conftest import REPO
    sys.path.insert(0, str(REPO / "bench"))
    import gpu
    out = tmp_path / "figures.json"
    monkeypatch.setattr(gpu, "OUT", out)
    monkeypatch.setattr(gpu, "FIGURES", {})
    gpu.emit("rd_sweep_wall_s", 12.5)
    assert json.loads(out.read_text()) == {"rd_sweep_wall_s": 12.5}
    gpu.emit("ensemble_speedup", "skipped (why)")
    assert json.loads(out.read_text()) == {"rd_sweep_wall_s": 12.5, "ensemble_speedup": "skipped (why)"}


def test_the_gpu_rows_script_runs_resumes_and_hands_back_a_sweep_the_table_reads(tmp_path):
    """bench/gpu_rows.py, the issue-33 slot script, at a spec's smoke budget on the CPU: the
    sweep runs, is aggregated and packed as OUT/<sweep>.tar.gz; the same command again runs
    nothing twice; a slot with under 30 s left starts nothing and says so; and the archive,
    unpacked elsewhere, gives `symsweep reproduce` the spec's row."""
    import subprocess
    import sys
    import tarfile
    from conftest import REPO, assert_ran_once, symsweep
    name = "replicas-cifar10-accuracy-gpu"
    (tmp_path / "no-data").mkdir()  # the smoke budget trains on the bundled digits

    def slot(*extra: str) -> dict[str, str]:
        res = subprocess.run([sys.executable, "bench/gpu_rows.py", "--quick", "--only", name, "--results",
                              str(tmp_path / "results"), "--data-root", str(tmp_path / "no-data"),
                              "--out", str(tmp_path / "out"), *extra],
                             cwd=REPO, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        return dict(line.split("=", 1) for line in res.stdout.splitlines() if "=" in line)

    planned = 10  # the smoke budget: 5 models x 2 seeds on digits
    for _ in range(2):  # the second slot resumes: nothing is missing, nothing runs again
        keys = slot()
        assert keys[f"{name}_rc"] == "0" and keys[f"{name}_aggregate_rc"] == "0", keys
        assert keys[f"{name}_done"].startswith(f"{planned} completed") and "0 pending" in keys[f"{name}_done"]
    assert_ran_once(tmp_path / "results" / name, planned)
    assert slot("--budget-s", "10")[f"{name}_rc"].startswith("skipped (no time left")

    unpacked = tmp_path / "unpacked"
    with tarfile.open(tmp_path / "out" / f"{name}.tar.gz") as tar:
        tar.extractall(unpacked, filter="data")
    res = symsweep("reproduce", str(unpacked), "--out", str(tmp_path / "table.md"))
    assert res.returncode == 0, res.stderr
    row = next(line for line in (tmp_path / "table.md").read_text().splitlines() if f"`{name}`: {planned} runs" in line)
    assert "Fig. 8A" in row and "dataset digits" in row
