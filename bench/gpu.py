"""All the device figures in one run: the script a short GPU slot runs once.

    python bench/gpu.py                      # on the GPU (about 8 minutes on one H100/H200)
    python bench/gpu.py --device cpu --quick # the same code paths at toy sizes (the test suite runs it)

Prints `key=value` lines (and writes them to --out as JSON), each a ratio measured side by
side in the same run where a ratio fits:

  rd_sweep_wall_s          the paper-scale replica sweep (5 models x 200 replicas x 100
                           digits images x 200 epochs) through `symsweep run`, Ray start-up
                           excluded (timed from the "runs planned" line to the "done" line)
  rd_sweep_gpu_util        mean GPU utilization sampled with NVML while it runs (n/a without)
  ensemble_speedup_<model> vectorized ensemble vs one-by-one replicas per second, per model
  packing_speedup_<n>      runs/s with n trials sharing the device (gpus: 1/n on a GPU,
                           --max-concurrent n on the CPU) over one trial at a time;
                           peak_gpu_mem_mb per run, and packing_recommended_n
  image_ratio_vs_plain_*   ResNet-18 train images/s through the image task (raw 32 px and x2
                           expanded) over a plain PyTorch loop: same model, batch, precision,
                           data and device (1.0 = no orchestration tax)
  pinn_ratio_vs_plain      PINN iterations/s through the task over plain DeepXDE, Burgers 1D
                           at PINNacle's point counts (needs PINNacle's burgers1d.dat under
                           --data-root)
  landscape_configs_per_s  +-1 configurations of the expanded classifier per second on the device

A section that cannot run here prints `<key>=skipped (<why>)` and the rest go on.
"""
from __future__ import annotations

import argparse
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


def emit(key: str, value) -> None:
    FIGURES[key] = value
    print(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}", flush=True)


def section(name: str):
    """Run a bench section; a failure is one line, and the next section runs."""
    def wrap(fn):
        def run(*args, **kwargs):
            try:
                fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - report and go on: one slot, many figures
                emit(f"{name}", f"skipped ({type(exc).__name__}: {' '.join(str(exc).split())[:160]})")
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


def run_cli(args: list[str], workdir: Path) -> tuple[subprocess.CompletedProcess, float]:
    """`symsweep ARGS`; the wall time from the plan line to the done line (Ray start-up excluded)."""
    proc = subprocess.Popen([sys.executable, "-m", "symsweep.cli", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
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


def replica_spec(name: str, models: list[str], replicas: int, epochs: int, gpus: float, per_trial: int) -> str:
    return textwrap.dedent(f"""
        name: {name}
        task: replica
        fixed: {{dataset: digits, n_images: 100, epochs: {epochs}}}
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
    spec = workdir / "rd.yaml"
    spec.write_text(replica_spec("rd-sweep", models, replicas, epochs, gpus, replicas))
    with GpuSampler() as sampler:
        _, wall = run_cli(["run", str(spec), "--results", str(workdir / "results"), "--no-summary"], workdir)
    emit("rd_sweep_wall_s", wall)
    emit("rd_sweep_runs", len(models) * replicas)
    emit("rd_sweep_gpu_util", sampler.mean if sampler.mean is not None else "n/a (no NVML)")


# ----------------------------------------------------------------------------- ensembles


@section("ensemble_speedup")
def ensembles(args, workdir: Path) -> None:
    import torch
    from symsweep.tasks.replica.task import MODELS, ReplicaConfig, train_replicas
    replicas, epochs = (32, 50) if not args.quick else (3, 2)
    models = list(MODELS) if not args.quick else list(MODELS)[:2]
    speedups = []
    for model in models:
        cfg = ReplicaConfig(model=model, dataset="digits", epochs=epochs)
        rates = []
        for vectorized in (False, True):
            list(train_replicas(cfg, [0, 1], None, args.device, vectorized))  # warm-up
            if args.device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in train_replicas(cfg, list(range(replicas)), None, args.device, vectorized):
                pass
            if args.device == "cuda":
                torch.cuda.synchronize()
            rates.append(replicas / (time.perf_counter() - start))
        emit(f"ensemble_speedup_{model}", rates[1] / rates[0])
        speedups.append(rates[1] / rates[0])
    emit("ensemble_speedup", statistics.geometric_mean(speedups))


# ----------------------------------------------------------------------------- packing


@section("packing_speedup")
def packing(args, workdir: Path) -> None:
    import pandas as pd
    from symsweep.store import SweepStore
    counts = [1, 2, 4, 8] if args.device == "cuda" and not args.quick else [1, 2]
    trials, replicas, epochs = (8, 8, 30) if not args.quick else (2, 1, 1)
    rates, peaks = {}, {}
    for n in counts:
        name = f"pack{n}"
        gpus = round(1 / n, 4) if args.device == "cuda" else 0
        spec = workdir / f"{name}.yaml"
        spec.write_text(replica_spec(name, ["simple"], trials * replicas, epochs, gpus, replicas))
        extra = [] if args.device == "cuda" else ["--max-concurrent", str(n), "--num-cpus", str(max(n, 1))]
        _, wall = run_cli(["run", str(spec), "--results", str(workdir / "results"), "--no-summary", *extra], workdir)
        rates[n] = trials * replicas / wall
        runs = SweepStore(str(workdir / "results" / name)).read_runs()
        # a vectorized ensemble records its peak once for the batch (batch_peak_gpu_mem_mb)
        peak = max((pd.to_numeric(runs[c], errors="coerce").max() for c in ("peak_gpu_mem_mb", "batch_peak_gpu_mem_mb")
                    if c in runs), default=float("nan"))
        peaks[n] = None if pd.isna(peak) else float(peak)
    for n in counts[1:]:
        emit(f"packing_speedup_{n}", rates[n] / rates[1])
    emit("peak_gpu_mem_mb", peaks[counts[-1]] if peaks[counts[-1]] is not None else "n/a (cpu)")
    emit("packing_recommended_n", max(counts, key=lambda n: rates[n]))


# ----------------------------------------------------------------------------- image task


@section("image_ratio_vs_plain")
def image(args, workdir: Path) -> None:
    import torch
    from symsweep import SimpleContext
    from symsweep.tasks.image_classification import ImageClassificationConfig, run
    from image import images_per_second  # bench/image.py: the plain loop

    model_name = "resnet18" if not args.quick else "small_cnn"
    limit, epochs = (4096, 2) if not args.quick else (128, 1)
    for factor in (1, 2):
        cfg = ImageClassificationConfig(dataset="digits", model=model_name, image_size=32, expansion_factor=factor,
                                        epochs=epochs, batch_size=128, train_limit=limit, test_limit=256,
                                        scheduler="none")
        task_rate = run(cfg, 0, SimpleContext(device=args.device)).metrics["train_images_per_s"]
        # the plain loop: same model, batch, optimizer, precision and device, data already on the device
        plain_rate = images_per_second(model_name, 32 * factor, cfg.batch_size, max(2, limit // cfg.batch_size) * epochs,
                                       torch.device(args.device), channels=1, width=cfg.width, lr=cfg.lr,
                                       momentum=cfg.momentum, weight_decay=cfg.weight_decay, amp=cfg.amp)
        tag = "raw32" if factor == 1 else "x2"
        emit(f"image_task_images_per_s_{tag}", task_rate)
        emit(f"image_plain_images_per_s_{tag}", plain_rate)
        emit(f"image_ratio_vs_plain_{tag}", task_rate / plain_rate)


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
    ap.add_argument("--only", default=None, help="comma-separated sections: rd,ensemble,packing,image,pinn,landscape")
    args = ap.parse_args()
    import torch
    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    name = torch.cuda.get_device_name() if args.device == "cuda" else f"cpu ({os.cpu_count()} cores)"
    emit("device", name)
    emit("quick", args.quick)
    sections = {"rd": rd_sweep, "ensemble": ensembles, "packing": packing, "image": image, "pinn": pinn,
                "landscape": landscape}
    chosen = args.only.split(",") if args.only else list(sections)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="symsweep-gpu-") as tmp:
        for key in chosen:
            sections[key](args, Path(tmp))
    emit("bench_wall_s", time.perf_counter() - start)
    if args.out:
        Path(args.out).write_text(json.dumps(FIGURES, indent=1, default=str))


if __name__ == "__main__":
    main()
