"""CPU runs and the memory allocator: glibc malloc vs tcmalloc / jemalloc on the replica ensemble.

    python bench/allocator.py [--replicas 50] [--steps 4] [--eval-images 10000] [--batch 64]

A vectorized ensemble of 50 CIFAR-sized replicas allocates activations of ~400 MB per layer
and step. glibc's malloc serves every block above its mmap threshold (32 MB at most) with a
fresh mmap, so each step faults in and zeroes those pages again: the kernel time (sys) can
exceed the arithmetic. An allocator that keeps freed memory (tcmalloc) does not. This script
times the same training steps and one evaluation pass under each allocator it finds, each in
its own process (LD_PRELOAD), on random 3x32x32 images (no dataset needed), one torch
thread. Prints key=value lines: per allocator the seconds per step, per evaluation pass, and
the share of CPU time spent in the kernel.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

LIBS = {
    "tcmalloc": ["libtcmalloc_minimal.so.4", "libtcmalloc.so.4"],
    "jemalloc": ["libjemalloc.so.2"],
}
LIB_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"]


def find_lib(names: list[str]) -> str | None:
    for d in LIB_DIRS:
        for n in names:
            if Path(d, n).exists():
                return str(Path(d, n))
    return None


def measure(replicas: int, steps: int, eval_images: int, batch: int) -> dict:
    import torch

    from symsweep.tasks.replica.task import ReplicaCNN, ReplicaConfig, _ensemble, _evaluate, _vmapped_step
    torch.set_num_threads(1)
    cfg = ReplicaConfig(model="simple")
    models = []
    for s in range(replicas):
        torch.manual_seed(s)
        models.append(ReplicaCNN(cfg.model, 3, 32, 10, cfg.channels, cfg.hidden))
    params, buffers, forward = _ensemble(models)
    opt = torch.optim.Adam(list(params.values()), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(replicas, batch, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (replicas, batch), generator=gen)
    test_x = torch.randn(eval_images, 3, 32, 32, generator=gen)
    test_y = torch.randint(0, 10, (eval_images,), generator=gen)
    _vmapped_step(models, params, buffers, forward, opt, x, y, None, None)  # warm-up

    def cpu() -> tuple[float, float]:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime, r.ru_stime

    u0, s0 = cpu()
    t0 = time.perf_counter()
    for _ in range(steps):
        _vmapped_step(models, params, buffers, forward, opt, x, y, None, None)
    step_s = (time.perf_counter() - t0) / steps
    t1 = time.perf_counter()
    _evaluate(models[0], test_x, test_y)
    eval_s = time.perf_counter() - t1
    u1, s1 = cpu()
    return {"step_s": step_s, "eval_s": eval_s, "sys_share": (s1 - s0) / max((u1 - u0) + (s1 - s0), 1e-9)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--replicas", type=int, default=50)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--eval-images", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(measure(args.replicas, args.steps, args.eval_images, args.batch)))
        return
    variants = {"glibc": None, **{name: find_lib(names) for name, names in LIBS.items()}}
    print(f"replicas={args.replicas} batch={args.batch} steps={args.steps} eval_images={args.eval_images} threads=1")
    base = None
    for name, lib in variants.items():
        if name != "glibc" and lib is None:
            print(f"{name}=not_found")
            continue
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        if lib:
            env["LD_PRELOAD"] = lib
        out = subprocess.run([sys.executable, __file__, "--child", f"--replicas={args.replicas}",
                              f"--steps={args.steps}", f"--eval-images={args.eval_images}", f"--batch={args.batch}"],
                             env=env, capture_output=True, text=True, check=True)
        m = json.loads(out.stdout.strip().splitlines()[-1])
        base = base or m["step_s"]
        print(f"{name}_step_s={m['step_s']:.3f} {name}_eval_s={m['eval_s']:.2f} "
              f"{name}_sys_share={m['sys_share']:.2f} {name}_step_speedup={base / m['step_s']:.2f}")


if __name__ == "__main__":
    main()
