"""Replicas per second: the vectorized ensemble vs one-by-one, on the same work.

    python bench/replicas.py [--replicas 16] [--epochs 50] [--models simple,dropout,...] [--device cpu|cuda]

Trains `--replicas` seeds of each model on the fixed 100-image digits subset (or
`--dataset cifar10` with --data-root) both ways and prints replicas/s side by side.
"""
from __future__ import annotations

import argparse
import time

import torch

from symsweep.tasks.replica.task import MODELS, ReplicaConfig, train_replicas


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--replicas", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = list(range(args.replicas))
    print(f"device={args.device} threads={torch.get_num_threads()} replicas={args.replicas} "
          f"epochs={args.epochs} dataset={args.dataset} (100-image subset)")
    print(f"{'model':10s} {'one-by-one':>14s} {'vectorized':>14s} {'speed-up':>9s}")
    for model in args.models.split(","):
        cfg = ReplicaConfig(model=model, dataset=args.dataset, epochs=args.epochs)
        rates = []
        for vectorized in (False, True):
            list(train_replicas(cfg, seeds[:2], args.data_root, args.device, vectorized))  # warm-up
            if args.device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in train_replicas(cfg, seeds, args.data_root, args.device, vectorized):
                pass
            if args.device == "cuda":
                torch.cuda.synchronize()
            rates.append(args.replicas / (time.perf_counter() - start))
        print(f"{model:10s} {rates[0]:10.2f} r/s {rates[1]:10.2f} r/s {rates[1] / rates[0]:8.2f}x")


if __name__ == "__main__":
    main()
