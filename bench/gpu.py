"""All the device figures in one run: the script a short GPU slot runs once.

    python bench/gpu.py                      # on the GPU (sized for about 8 minutes on one H200)
    python bench/gpu.py --device cpu --quick # the same code paths at toy sizes (the test suite runs it)

Prints `key=value` lines (and writes them to --out as JSON), each a ratio measured side by
side in the same run where a ratio fits:

  rd_sweep_wall_s          the paper-scale replica sweep (5 models x 200 replicas x 100
                           digits images x 200 epochs) through `symsweep run`, Ray start-up
                           excluded (timed from the "runs planned" line to the "done" line)
  rd_sweep_gpu_util        mean GPU utilization sampled with NVML while it runs (n/a without)
  rd_sweep_captured_wall_s the same sweep with `capture: cuda_graph` (and its _gpu_util; CUDA only)
  ensemble_speedup_<model> vectorized ensemble vs one-by-one replicas per second, per model
  replica_ratio_vs_plain   the task's replicas/s one by one (vectorize: off) over a plain eager
                           PyTorch loop of the same network, Adam and batch (bench/replicas.py),
                           geometric mean of the models (_<model> each); replica_ensemble_vs_plain:
                           the vectorized ensemble (the task's default for packed seeds) over it
  replica_captured_speedup the vectorized ensemble with `capture: cuda_graph` over the eager
                           ensemble (geometric mean; _<model> each; CUDA only), with
                           replica_captured_weight_max_diff_<model>: seed 0's final weights
                           captured vs eager (capturable Adam's rounding; 0 on the CPU)
  packing_speedup_<n>      runs/s with n trials sharing the GPU (gpus: 1/n) over one trial,
                           16 trials of an 8-replica ensemble, from the sweep's wall time;
                           _steady: the same once every trial process has run its first trial
                           (start-up excluded: what a long sweep sees, Tune reusing the
                           processes); _mps: with an NVIDIA MPS daemon (symsweep.mps) started
                           for the driver's embedded Ray; peak_gpu_mem_mb per run, and
                           packing_recommended_n. On the CPU: 2 trials (--max-concurrent 2)
  image_ratio_vs_plain_b<B>[_x2]
                           the image task's train images/s (ResNet-18 on CIFAR-10 from
                           --data-root, the paper's protocol: standard augmentation, cosine,
                           SGD; raw 32 px and x2 fill 0.5) over a plain eager PyTorch loop
                           (same model, batch, precision and device, one batch already on
                           the device), batch B = 64 and 512, each after a warm-up run
  captured_speedup_b64     the image task with `capture: cuda_graph` over the plain eager
                           loop, batch 64 (CUDA only)
  pinn_ratio_vs_plain      PINN iterations/s through the task over plain DeepXDE, Burgers 1D
                           at PINNacle's point counts (needs PINNacle's burgers1d.dat)
  pinn_seeds_speedup       runs per hour of N seeds trained together (vectorize: on) over one
                           seed at a time, Burgers 1D at PINNacle's counts; with
                           pinn_seeds_loss_rel_diff, seed 0's final loss together vs alone
  landscape_configs_per_s  +-1 configurations of the expanded classifier per second
  gpu_hours_<spec>         `symsweep plan SPEC --calibrate` on this device for each spec of the
                           paper's table (calibration budgets in PLANS), and their sum
                           gpu_hours_paper_table (the specs it covers: gpu_hours_specs)

A section that cannot run here prints `<key>=skipped (<why>)` and the rest go on. With --out
the JSON is rewritten at every figure, so a slot cut short keeps what it measured.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]  # the project, and the sibling bench scripts
FIGURES: dict[str, object] = {}
OUT: Path | None = None
"""--out: rewritten at every figure."""


def emit(key: str, value) -> None:
    FIGURES[key] = value
    print(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}", flush=True)
    if OUT is not None:
        OUT.write_text(json.dumps(FIGURES, indent=1, default=str))


def section(name: str):
    """Run a bench section; a failure is one line, and the next section runs."""
    def wrap(fn):
        def run(*args, **kwargs):
            start = time.perf_counter()
            try:
                fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - report and go on: one slot, many figures
                emit(f"{name}", f"skipped ({type(exc).__name__}: {' '.join(str(exc).split())[:160]})")
            emit(f"section_s_{fn.__name__}", time.perf_counter() - start)  # what each section costs the slot
        return run
    return wrap


# ----------------------------------------------------------------------------- the RD sweep


class GpuSampler:
    """Mean GPU utilization over a block, sampled with NVML every 0.5 s (None without NVML)."""

    def __enter__(self):
        self.samples, self.stop = [], threading.Event()
        try:
            import pynvml
            pynvml.nvmlInit()
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            self.nvml = pynvml
        except Exception:  # noqa: BLE001 - no NVML: no figure
            self.nvml = None
            return self
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        return self

    def _loop(self):
        while not self.stop.is_set():
            self.samples.append(self.nvml.nvmlDeviceGetUtilizationRates(self.handle).gpu)
            time.sleep(0.5)

    def __exit__(self, *exc):
        self.stop.set()
        if self.nvml is not None:
            self.thread.join()

    @property
    def mean(self):
        return statistics.fmean(self.samples) if self.samples else None


def run_cli(args: list[str], workdir: Path, env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    """`symsweep ARGS`; the wall time from the plan line to the done line (Ray start-up excluded)."""
    proc = subprocess.Popen([sys.executable, "-m", "symsweep.cli", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    planned = done = None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if planned is None and "runs planned" in line:
            planned = time.perf_counter()
        if line.startswith("done:"):
            done = time.perf_counter()
    err = proc.stderr.read()
    proc.wait()
    res = subprocess.CompletedProcess(proc.args, proc.returncode, "".join(lines), err)
    if proc.returncode != 0 or planned is None or done is None:
        raise RuntimeError(f"symsweep {' '.join(args[:2])} failed: {(err or ''.join(lines)).strip()[-300:]}")
    return res, done - planned


def replica_spec(name: str, models: list[str], replicas: int, epochs: int, gpus: float, per_trial: int,
                 capture: str = "none") -> str:
    return textwrap.dedent(f"""
        name: {name}
        task: replica
        fixed: {{dataset: digits, n_images: 100, epochs: {epochs}, capture: {capture}}}
        axes: {{model: [{', '.join(models)}]}}
        seeds: {replicas}
        runs_per_trial: {per_trial}
        resources: {{cpus: 1, gpus: {gpus}}}
        max_runs: 1000000
    """)


@section("rd_sweep_wall_s")
def rd_sweep(args, workdir: Path) -> None:
    models = ["simple", "dropout", "batchnorm", "flip", "rot180"]
    replicas, epochs = (200, 200) if not args.quick else (2, 2)
    if args.quick:
        models = models[:1]
    gpus = round(1 / len(models), 4) if args.device == "cuda" else 0
    emit("rd_sweep_runs", len(models) * replicas)
    for capture, tag in (("none", ""), ("cuda_graph", "_captured")):
        if capture != "none" and args.device != "cuda":
            emit(f"rd_sweep{tag}_wall_s", "skipped (CUDA graphs need CUDA)")
            continue
        spec = workdir / f"rd{tag}.yaml"
        spec.write_text(replica_spec(f"rd-sweep{tag}", models, replicas, epochs, gpus, replicas, capture))
        with GpuSampler() as sampler:
            _, wall = run_cli(["run", str(spec), "--results", str(workdir / "results"), "--no-summary"], workdir)
        emit(f"rd_sweep{tag}_wall_s", wall)
        emit(f"rd_sweep{tag}_gpu_util", sampler.mean if sampler.mean is not None else "n/a (no NVML)")


# ----------------------------------------------------------------------------- ensembles


@section("ensemble_speedup")
def ensembles(args, workdir: Path) -> None:
    from replicas import plain_replica_rate, replica_rate  # bench/replicas.py: the plain loop, the task
    from symsweep.tasks.replica.task import MODELS, ReplicaConfig
    replicas, epochs = (32, 50) if not args.quick else (3, 2)
    models = list(MODELS) if not args.quick else list(MODELS)[:2]
    ratios = {"ensemble_speedup": [], "replica_ratio_vs_plain": [], "replica_ensemble_vs_plain": []}
    for model in models:
        cfg = ReplicaConfig(model=model, dataset="digits", epochs=epochs)
        one, together = (replica_rate(cfg, replicas, args.device, vectorized)[0] for vectorized in (False, True))
        plain = plain_replica_rate(cfg, replicas, args.device)
        for key, ratio in zip(ratios, (together / one, one / plain, together / plain)):
            emit(f"{key}_{model}", ratio)
            ratios[key].append(ratio)
    for key, values in ratios.items():
        emit(key, statistics.geometric_mean(values))


@section("replica_captured_speedup")
def replica_capture(args, workdir: Path) -> None:
    """The vectorized ensemble with `capture: cuda_graph` over the eager ensemble, and seed
    0's final weights captured vs eager. Off CUDA no graph is recorded but the static-tensor
    path runs: the weights must be equal (max diff 0) and the ratio is no GPU figure."""
    from replicas import replica_rate
    from symsweep.tasks.replica.task import MODELS, ReplicaConfig, flat_weights
    replicas, epochs = (32, 50) if not args.quick else (3, 4)
    models = list(MODELS) if not args.quick else ["batchnorm"]
    cuda = args.device == "cuda"
    ratios = []
    for model in models:
        (eager, eager_models), (captured, captured_models) = (
            replica_rate(ReplicaConfig(model=model, dataset="digits", epochs=epochs, capture=capture), replicas,
                         args.device, True) for capture in ("none", "cuda_graph"))
        ratios.append(captured / eager)
        diff = abs(flat_weights(captured_models[0]) - flat_weights(eager_models[0])).max()
        emit(f"replica_captured_weight_max_diff_{model}", float(diff))
        if cuda:
            emit(f"replica_captured_speedup_{model}", ratios[-1])
    ratio = statistics.geometric_mean(ratios)
    emit("replica_captured_speedup", ratio if cuda else
         f"skipped (CUDA graphs need CUDA; no graph on the CPU, its static-tensor path ran at {ratio:.2f}x)")


# ----------------------------------------------------------------------------- packing


@section("packing_speedup")
def packing(args, workdir: Path) -> None:
    from symsweep.store import SweepStore
    cuda = args.device == "cuda"
    counts = ([1, 2, 4, 8] if not args.quick else [1, 4]) if cuda else [1, 2]
    # 16 trials: with 8 at once every trial process still runs two, so the steady rate exists
    trials, replicas, epochs = (16, 8, 60) if not args.quick else (4, 1, 1)

    def rates_with(env: dict, ns: list[int], tag: str) -> dict[int, tuple[float, float | None, float | None]]:
        out = {}
        for n in ns:
            name = f"pack{n}{tag}"
            gpus = round(1 / n, 4) if cuda else 0
            spec = workdir / f"{name}.yaml"
            spec.write_text(replica_spec(name, ["simple"], trials * replicas, epochs, gpus, replicas))
            extra = [] if cuda else ["--max-concurrent", str(n), "--num-cpus", str(max(n, 1))]
            _, wall = run_cli(["run", str(spec), "--results", str(workdir / "results"), "--no-summary", *extra],
                              workdir, env)
            runs = SweepStore(str(workdir / "results" / name)).read_runs()
            # a vectorized ensemble records its peak once for the batch (batch_peak_gpu_mem_mb)
            peaks = [float(runs[c].max()) for c in ("peak_gpu_mem_mb", "batch_peak_gpu_mem_mb")
                     if c in runs and runs[c].notna().any()]
            out[n] = (trials * replicas / wall, max(peaks) if peaks else None, steady_rate(runs))
        return out

    def speedup(rate: float | None, base: float | None) -> float | str:
        return rate / base if rate and base else "n/a (a trial process ran only one trial)"

    plain = rates_with({}, counts, "")
    for n in counts[1:]:
        emit(f"packing_speedup_{n}", plain[n][0] / plain[1][0])
        emit(f"packing_speedup_{n}_steady", speedup(plain[n][2], plain[1][2]))
    if 4 not in counts:
        emit("packing_speedup_4", "skipped (needs a GPU: trials share one at gpus 0.25)")
    emit("peak_gpu_mem_mb", plain[counts[-1]][1] if plain[counts[-1]][1] is not None else "n/a (cpu)")
    emit("packing_recommended_n", max(counts, key=lambda n: plain[n][0]))
    if not cuda:
        emit("packing_speedup_4_mps", "skipped (MPS needs an NVIDIA GPU)")
        return
    mps_dir = workdir / "mps"
    started = subprocess.run([sys.executable, "-m", "symsweep.mps", "start", str(mps_dir)], capture_output=True,
                             text=True)
    if started.returncode != 0 or not started.stdout:
        emit("packing_speedup_4_mps", f"skipped ({(started.stderr or 'MPS did not start').strip()[:160]})")
        return
    env = dict(line.removeprefix("export ").split("=", 1) for line in started.stdout.splitlines())
    try:
        with_mps = rates_with(env, [n for n in counts if n > 1], "mps")
    finally:
        subprocess.run([sys.executable, "-m", "symsweep.mps", "stop", str(mps_dir)], capture_output=True)
    for n, (rate, _, steady) in with_mps.items():
        emit(f"packing_speedup_{n}_mps", rate / plain[1][0])
        emit(f"packing_speedup_{n}_mps_steady", speedup(steady, plain[1][2]))


def steady_rate(runs) -> float | None:
    """Runs per second once every trial process has finished its first trial: what packing
    gives a long sweep, whose trial processes (Tune reuses them) pay their start-up (CUDA
    context, cuDNN, the data on the device) once. None when some process ran only one trial."""
    runs = runs[runs["status"] == "completed"]
    first_trial = runs.sort_values("finished_at").groupby("pid")["trial_id"].first()
    in_first = runs["trial_id"].isin(set(first_trial))
    later = runs[~in_first]
    if later.empty or later["pid"].nunique() < first_trial.size:
        return None
    since = runs[in_first]["finished_at"].max()
    after = later[later["finished_at"] > since]
    window = (after["finished_at"].max() - since).total_seconds()
    return len(after) / window if window > 0 else None


# ----------------------------------------------------------------------------- image task


def cifar10_here(data_root: str) -> bool:
    from symsweep.tasks.common.datasets import load_dataset
    try:
        load_dataset("cifar10", data_root)
    except Exception:  # noqa: BLE001 - not there (or unreadable): the bench says which set it used
        return False
    return True


@section("image_ratio_vs_plain")
def image(args, workdir: Path) -> None:
    import torch
    from symsweep import SimpleContext
    from symsweep.tasks.image_classification import ImageClassificationConfig, run
    from image import images_per_second  # bench/image.py: the plain loop

    cuda = args.device == "cuda"
    dataset = "cifar10" if not args.quick and cifar10_here(args.data_root) else "digits"
    emit("image_dataset", dataset)
    model_name = "resnet18" if not args.quick else "small_cnn"
    limit, epochs = (12_800, 2) if not args.quick else (128, 1)
    channels = 3 if dataset == "cifar10" else 1
    device = torch.device(args.device)

    def config(batch: int, factor: int, **kw) -> ImageClassificationConfig:
        return ImageClassificationConfig(dataset=dataset, model=model_name, image_size=32, expansion_factor=factor,
                                         fill=0.5, augment="standard", scheduler="cosine", epochs=epochs,
                                         batch_size=batch, train_limit=limit, test_limit=512 if not args.quick else 64,
                                         **kw)

    def task_rate(cfg: ImageClassificationConfig) -> float:
        ctx = SimpleContext(device=args.device, data_root=args.data_root)
        warm = dataclasses.replace(cfg, epochs=1, train_limit=min(cfg.batch_size * 4, cfg.train_limit))
        run(warm, 1, ctx)  # CUDA context, cuDNN's choices for these shapes, the data on the device
        return run(cfg, 0, ctx).metrics["train_images_per_s"]

    plain_b64 = None
    for batch in (64, 512):
        for factor in (1, 2):
            cfg = config(batch, factor)
            steps = max(20 if not args.quick else 1, limit // batch * epochs)
            # the batch the task trains on (--quick: the whole 128-image set in one batch at 512)
            plain = images_per_second(model_name, 32 * factor, min(batch, limit), steps, device, channels=channels,
                                      width=cfg.width, lr=cfg.lr, momentum=cfg.momentum,
                                      weight_decay=cfg.weight_decay, amp=cfg.amp, warmup=5 if not args.quick else 1)
            tag = f"b{batch}" + ("" if factor == 1 else "_x2")
            rate = task_rate(cfg)
            emit(f"image_task_images_per_s_{tag}", rate)
            emit(f"image_plain_images_per_s_{tag}", plain)
            emit(f"image_ratio_vs_plain_{tag}", rate / plain)
            if batch == 64 and factor == 1:
                plain_b64 = plain
    if not cuda:
        emit("captured_speedup_b64", "skipped (CUDA graphs need CUDA)")
        return
    rate = task_rate(config(64, 1, capture="cuda_graph"))
    emit("image_task_images_per_s_b64_captured", rate)
    emit("captured_speedup_b64", rate / plain_b64)


# ----------------------------------------------------------------------------- PINN


@section("pinn_ratio_vs_plain")
def pinn(args, workdir: Path) -> None:
    from pinn_plain_deepxde import find_reference, pipeline, plain
    iterations = 2000 if not args.quick else 20
    counts = (8192, 2048, 2048) if not args.quick else (256, 64, 64)
    ref = find_reference(args.data_root)
    p = plain(0, iterations, *counts, ref)  # DeepXDE picks CUDA by itself when there is one
    q = pipeline(0, iterations, *counts, args.data_root, device=args.device)
    emit("pinn_plain_it_per_s", iterations / p["seconds"])
    emit("pinn_task_it_per_s", iterations / q["seconds"])
    emit("pinn_ratio_vs_plain", p["seconds"] / q["seconds"])


@section("pinn_seeds_speedup")
def pinn_seeds(args, workdir: Path) -> None:
    """N seeds of one PINN together (vectorize: on) against one seed alone, both after a
    warm-up: runs per hour together over runs per hour one at a time."""
    from symsweep import SimpleContext
    from symsweep.tasks.pinn import PinnConfig, run
    from symsweep.tasks.pinn.ensemble import run_many
    n_seeds, iterations = (30, 300) if not args.quick else (3, 10)
    counts = {} if not args.quick else {"n_domain": 64, "n_boundary": 32, "n_initial": 32}
    cfg = PinnConfig(pde="burgers1d", iterations=iterations, log_every=iterations, reference="none",
                     vectorize="on", **counts)
    ctx = lambda seed: SimpleContext(device=args.device, data_root=args.data_root)  # noqa: E731
    run(dataclasses.replace(cfg, iterations=5), 0, ctx(0))
    dict(run_many(dataclasses.replace(cfg, iterations=5), [0, 1], ctx))  # warm-up: both paths
    start = time.perf_counter()
    alone = run(cfg, 0, ctx(0)).metrics
    one = time.perf_counter() - start
    start = time.perf_counter()
    together = dict(run_many(cfg, list(range(n_seeds)), ctx))
    many = time.perf_counter() - start
    emit("pinn_seeds_n", n_seeds)
    emit("pinn_seeds_speedup", (n_seeds / many) / (1 / one))
    emit("pinn_seeds_loss_rel_diff", abs(together[0].metrics["loss"] - alone["loss"]) / abs(alone["loss"]))


# The paper's table: each spec's calibration on this device (a few seconds of real training
# per run, the real dataset, the spec's GPU share), planned at the spec's own budget.
PLANS = {
    "expansion-cifar": ["dataset=cifar10", "model=[resnet18,resnet50,densenet121,efficientnet_b0,mobilenet_v3_large]",
                        "expansion_factor=[1,2]", "image_size=null", "epochs=1", "train_limit=2048",
                        "test_limit=512"],
    "ablation-expansion": ["dataset=cifar10", "model=resnet18", "expansion_factor=[1,2,3,4,5]", "fill=[0.5]",
                           "epochs=1", "train_limit=2048", "test_limit=512"],
    "replicas-cifar10-accuracy": ["dataset=cifar10", "epochs=1", "seeds=5"],
    "replicas-cifar10": ["dataset=cifar10", "epochs=20", "seeds=50"],
    "pinn-pinnacle": ["iterations=300", "log_every=300", "n_domain=null", "n_boundary=null", "n_initial=null",
                      "reference=none", "pde=[burgers1d,heat2d_multiscale,poisson_nd]"],
}
"""spec -> --calibrate-set overrides (on top of its smoke budget); `resources.gpus` is the spec's own."""
PAPER_TABLE_OTHERS = {"qcd-eos-full": "a CPU spec (resources.gpus 0)",
                      "sentiment-imdb": "needs IMDB and a BERT checkpoint under --data-root"}


@section("gpu_hours")
def plans(args, workdir: Path) -> None:
    import re

    import yaml
    cuda = args.device == "cuda"
    chosen = PLANS if not args.quick else {"replicas-cifar10": ["epochs=1"]}
    hours = {}
    for name in PLANS:
        if name not in chosen:
            emit(f"gpu_hours_{name}", "skipped (--quick: one spec's plan)")
            continue
        spec_path = REPO / "sweeps" / f"{name}.yaml"
        gpus = yaml.safe_load(spec_path.read_text())["resources"]["gpus"]
        sets = [f"--calibrate-set={c}" for c in chosen[name]]
        # the calibration runs on this device with the spec's GPU share (the smoke budget has none)
        sets.append(f"--calibrate-set=resources.gpus={gpus if cuda else 0}")
        if not cuda:
            sets.append("--calibrate-set=dataset=digits")
        data = ["--data-root", args.data_root] if os.path.isdir(args.data_root) else []
        proc = subprocess.run([sys.executable, "-m", "symsweep.cli", "plan", str(spec_path), "--calibrate", *sets,
                               "--results", str(workdir / "plans"), *data], cwd=REPO, capture_output=True, text=True)
        found = re.search(r"([0-9.e+]+) GPU hours", proc.stdout)
        if proc.returncode != 0 or not found:
            emit(f"gpu_hours_{name}", f"skipped ({' '.join((proc.stderr or proc.stdout).split())[-160:]})")
            continue
        hours[name] = float(found.group(1))
        emit(f"gpu_hours_{name}", hours[name])
    for name, why in PAPER_TABLE_OTHERS.items():
        emit(f"gpu_hours_{name}", f"skipped ({why})")
    emit("gpu_hours_paper_table", sum(hours.values()) if hours else "skipped (no spec planned)")
    emit("gpu_hours_specs", ",".join(hours) or "none")


# ----------------------------------------------------------------------------- landscape


@section("landscape_configs_per_s")
def landscape(args, workdir: Path) -> None:
    """The landscape task's own enumeration on the device: Fig. 6B's largest network (expanded
    input and first-layer bias, 2^26 configurations; --quick: raw input, 2^20)."""
    from symsweep import SimpleContext
    from symsweep.tasks.landscape.task import LandscapeConfig, run
    big = not args.quick
    cfg = LandscapeConfig(network="classifier", expanded=big, first_layer_bias=big)
    run(LandscapeConfig(network="classifier"), 0, SimpleContext(device=args.device))  # warm-up (kernels, caches)
    metrics = run(cfg, 0, SimpleContext(device=args.device)).metrics
    emit("landscape_configs", metrics["num_configs"])
    emit("landscape_configs_per_s", metrics["configs_per_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default=None, help="cuda or cpu (default: cuda when there is one)")
    ap.add_argument("--quick", action="store_true", help="toy sizes, same code paths (minutes on a CPU)")
    ap.add_argument("--data-root", default=os.environ.get("SYMSWEEP_DATA", str(REPO.parent / "shared" / "data")))
    ap.add_argument("--out", default=None, help="also write the figures as JSON here")
    ap.add_argument("--only", default=None,
                    help="comma-separated sections: rd,ensemble,capture,packing,image,pinn,seeds,landscape,plans")
    args = ap.parse_args()
    global OUT
    OUT = Path(args.out) if args.out else None
    import torch
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"cpu ({os.cpu_count()} cores)"
    emit("device", name)
    emit("quick", args.quick)
    sections = {"rd": rd_sweep, "ensemble": ensembles, "capture": replica_capture, "packing": packing,
                "image": image, "pinn": pinn, "seeds": pinn_seeds, "landscape": landscape, "plans": plans}
    chosen = args.only.split(",") if args.only else list(sections)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="symsweep-gpu-") as tmp:
        for key in chosen:
            sections[key](args, Path(tmp))
    emit("bench_wall_s", time.perf_counter() - start)


if __name__ == "__main__":
    main()
