"""Replicas per second: a plain PyTorch loop, the task one by one, and the vectorized ensemble.

    python bench/replicas.py [--replicas 16] [--epochs 50] [--models simple,dropout,...] [--device cpu|cuda]

Trains `--replicas` seeds of each model on the fixed 100-image digits subset (or
`--dataset cifar10` with --data-root) three ways on the same work and prints replicas/s
side by side: `plain_replica_rate` (the loop a user writes by hand, one seed after
another), the task with `vectorize: off`, and the task's vectorized ensemble.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from symsweep.tasks.replica.task import MODELS, ReplicaCNN, ReplicaConfig, _data, train_replicas


def replica_rate(cfg: ReplicaConfig, replicas: int, device: str, vectorized: bool,
                 data_root: str | None = None) -> tuple[float, dict]:
    """Replicas per second of the task's training of `replicas` seeds (one by one or as one
    vectorized ensemble) after a 2-seed warm-up, and the trained models by seed (read after
    the clock stops)."""
    list(train_replicas(cfg, [0, 1], data_root, device, vectorized))  # warm-up
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    models = {seed: model for seed, model, _ in train_replicas(cfg, list(range(replicas)), data_root, device,
                                                                vectorized)}
    sync()
    return replicas / (time.perf_counter() - start), models


def plain_replica_rate(cfg: ReplicaConfig, replicas: int, device: str, data_root: str | None = None) -> float:
    """Replicas per second of a plain eager loop on the task's training set: per seed the
    same network (`ReplicaCNN`), Adam and batch size, a `randperm` batch order, dropout keep
    masks and the half-batch transform drawn on the device, then the test accuracy once.
    What it leaves out is the task's: one random stream per replica drawn on the CPU (so the
    ensemble and one-by-one paths agree), augmentation (`augment: paper`), its metrics."""
    data = _data((cfg.dataset, cfg.mode, cfg.n_images, cfg.subset_seed, cfg.download), data_root)  # untimed
    dev = torch.device(device)
    x_all, y_all = data.train_x.to(dev), data.train_y.to(dev)
    test_x, test_y = data.test_x.to(dev), data.test_y.to(dev)
    n, keep = len(y_all), 1.0 - cfg.dropout

    def train(seed: int, epochs: int) -> float:
        torch.manual_seed(seed)
        net = ReplicaCNN(cfg.model, data.channels, data.image_size, data.num_classes, cfg.channels, cfg.hidden).to(dev)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        net.train()
        for _ in range(epochs):
            order = torch.randperm(n, device=dev)
            for s in range(0, n, cfg.batch_size):
                idx = order[s:s + cfg.batch_size]
                drop = transform = None
                if cfg.model == "dropout":
                    drop = (torch.rand(len(idx), cfg.hidden, device=dev) < keep).float() / keep
                if cfg.model in ("flip", "rot180"):
                    transform = torch.rand(len(idx), device=dev) < 0.5
                loss = F.cross_entropy(net(x_all[idx], drop, transform), y_all[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        net.eval()
        with torch.no_grad():
            return (net(test_x).argmax(1) == test_y).float().mean().item()

    train(replicas, 2)  # warm-up: kernels, allocator, the CUDA context
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for seed in range(replicas):
        train(seed, cfg.epochs)  # .item() at the end: each replica waits for its own last step
    sync()
    return replicas / (time.perf_counter() - start)


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
    print(f"device={args.device} threads={torch.get_num_threads()} replicas={args.replicas} "
          f"epochs={args.epochs} dataset={args.dataset} (100-image subset)")
    print(f"{'model':10s} {'plain loop':>14s} {'one-by-one':>14s} {'vectorized':>14s} {'vs plain':>9s} "
          f"{'speed-up':>9s}")
    for model in args.models.split(","):
        cfg = ReplicaConfig(model=model, dataset=args.dataset, epochs=args.epochs)
        rates = [replica_rate(cfg, args.replicas, args.device, v, args.data_root)[0] for v in (False, True)]
        plain = plain_replica_rate(cfg, args.replicas, args.device, args.data_root)
        print(f"{model:10s} {plain:10.2f} r/s {rates[0]:10.2f} r/s {rates[1]:10.2f} r/s {rates[0] / plain:8.2f}x "
              f"{rates[1] / rates[0]:8.2f}x")


if __name__ == "__main__":
    main()
