"""Training throughput (images/s) raw vs expanded, per model, on this machine.

    python bench/image.py [--models resnet18,small_cnn] [--size 32] [--factor 2] [--batch 64]
                          [--steps 5] [--device cpu|cuda]

Times forward + backward + SGD step on random CIFAR-sized batches, after one warm-up
step, so users see what an expansion factor costs (a factor k has k^2 times the pixels).
On CUDA it uses the task's settings: bfloat16 autocast and channels-last.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from symsweep.tasks.common.models import MIN_INPUT, MODELS, build_model


def images_per_second(model_name: str, size: int, batch: int, steps: int, device: torch.device,
                      channels: int = 3, width: int = 32, lr: float = 0.1, momentum: float = 0.9,
                      weight_decay: float = 0.0, amp: bool = True, warmup: int = 1) -> float:
    """A plain eager training loop's images/s: one random batch already on the device,
    `warmup` untimed steps; on CUDA channels-last and (with `amp`) bfloat16 autocast, as the
    image task does."""
    model = build_model(model_name, channels, 10, width).to(device)
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    x = torch.rand(batch, channels, size, size, device=device)
    if cuda:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)

    def step():
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cuda and amp):
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--size", type=int, default=32, help="raw image side (CIFAR: 32)")
    ap.add_argument("--factor", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"device: {name}; batch {args.batch}; raw {args.size}px vs x{args.factor} = {args.size * args.factor}px")
    print(f"{'model':20s} {'raw img/s':>10s} {'expanded img/s':>15s} {'cost':>6s}")
    for m in args.models.split(","):
        if args.size < MIN_INPUT[m]:
            print(f"{m:20s} needs >= {MIN_INPUT[m]} px")
            continue
        raw = images_per_second(m, args.size, args.batch, args.steps, device)
        exp = images_per_second(m, args.size * args.factor, args.batch, args.steps, device)
        print(f"{m:20s} {raw:10.1f} {exp:15.1f} {raw / exp:5.1f}x")


if __name__ == "__main__":
    main()
