"""The device a run gets, what it used of it, and how many trials fit on one GPU.

A run trains on CUDA when its trial was given GPUs (`resources.gpus > 0`) and CUDA is
there; otherwise on the CPU. Ray already hides GPUs from a trial that asked for none,
and the inline executor follows the same rule, so both executors run a spec on the same
device. Everything here works, and is tested, without a GPU.
"""
from __future__ import annotations

import math
import platform
import sys

CUDA_CONTEXT_MB = 500.0
"""Memory a CUDA context takes per process before any tensor (roughly; it varies by GPU and driver)."""
HEADROOM = 0.9
"""The share of a GPU's memory trials may plan to fill (the rest: fragmentation, spikes)."""

_warned = False


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pick_device(gpus_per_trial: float) -> str:
    """`cuda` for a trial that was given GPUs, when CUDA is there; else `cpu` (said once)."""
    global _warned
    if gpus_per_trial <= 0:
        return "cpu"
    if cuda_available():
        return "cuda"
    if not _warned:
        print(f"warning: resources.gpus={gpus_per_trial:g} but this process sees no CUDA device: runs use the CPU",
              file=sys.stderr, flush=True)
        _warned = True
    return "cpu"


def device_name(device: str) -> str:
    if device == "cuda":
        import torch
        return f"cuda:{torch.cuda.get_device_name()}"
    return f"cpu:{platform.machine()}"


def peak_memory_mb(device: str) -> float | None:
    """Peak CUDA memory allocated since the last call (and reset it); None on the CPU."""
    if device != "cuda":
        return None
    import torch
    peak = torch.cuda.max_memory_allocated() / 2**20
    torch.cuda.reset_peak_memory_stats()
    return float(peak)


def total_memory_mb(device: str) -> float | None:
    if device != "cuda":
        return None
    import torch
    return float(torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory / 2**20)


def packing_advice(peak_mb: float, gpu_mb: float, context_mb: float = CUDA_CONTEXT_MB,
                   headroom: float = HEADROOM) -> tuple[int, float]:
    """(trials per GPU, the `resources.gpus` that packs them) for runs peaking at `peak_mb`
    on a GPU of `gpu_mb`: each trial process holds a CUDA context plus its run's peak."""
    if not (peak_mb >= 0 and gpu_mb > 0):
        raise ValueError(f"need peak_mb >= 0 and gpu_mb > 0, got {peak_mb}, {gpu_mb}")
    per_trial = peak_mb + context_mb
    n = max(1, math.floor(gpu_mb * headroom / per_trial))
    return n, _fraction(n)


def _fraction(n: int) -> float:
    """1/n rounded down to 4 decimals, so that n trials always fit in Ray's accounting."""
    return math.floor(10_000 / n) / 10_000


def advice_line(runs) -> str | None:
    """One line of packing advice from run rows (`peak_gpu_mem_mb`, `gpu_mem_total_mb`,
    `device`), or None when no run used a GPU."""
    if runs is None or runs.empty or "peak_gpu_mem_mb" not in runs:
        return None
    # a batched run (vectorized seeds) has its batch's peak instead: a trial holds the batch
    peaks = runs["peak_gpu_mem_mb"]
    if "batch_peak_gpu_mem_mb" in runs:
        peaks = peaks.fillna(runs["batch_peak_gpu_mem_mb"])
    used = runs.assign(peak_gpu_mem_mb=peaks).dropna(subset=["peak_gpu_mem_mb"])
    if used.empty:
        return None
    peak = float(used["peak_gpu_mem_mb"].max())
    totals = used["gpu_mem_total_mb"].dropna() if "gpu_mem_total_mb" in used else []
    if len(totals) == 0:
        return f"GPU memory: runs peak at {peak:.0f} MB (GPU size unknown: rows of an older version)"
    total = float(min(totals))
    n, fraction = packing_advice(peak, total)
    gpu = str(used["device"].iloc[0]) if "device" in used else "the GPU"
    return (f"GPU memory: runs peak at {peak:.0f} MB on {gpu} ({total:.0f} MB): about {n} trials fit on one GPU "
            f"(resources.gpus: {fraction:g}; {CUDA_CONTEXT_MB:.0f} MB CUDA context per trial, "
            f"{HEADROOM:.0%} of its memory)")
