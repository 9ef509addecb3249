"""Speed of the exhaustive +-1 enumeration of the loss-landscape task, in configurations per second.

    python bench/landscape.py [--threads 2] [--repeats 3] [--n-samples 100] [--quick]

Times `iter_losses` plus the distinct-loss tally (what one landscape run does) for the
paper's networks: the random-number classifier raw (2^20), expanded (2^23, the issue's
target: seconds on 2 cores) and expanded with first-layer bias (2^26), and the 2x2-image
CNN baseline (2^26, cross entropy). Each case reports the best of --repeats timings (the
machine may be shared) and the per-sample path beside the Gram shortcut where it applies.
The last line is `expanded_classifier_configs_per_s=X`.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from symsweep.tasks.landscape.enumerate import LossTally, iter_losses
from symsweep.tasks.landscape.nets import CnnShape, build_classifier, build_cnn, classifier_inputs, cnn_dataset, dropout_mask


def timed(net, repeats: int, **kw) -> tuple[float, int]:
    best, distinct = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        tally = LossTally(8)
        for chunk in iter_losses(net, **kw):
            tally.add(chunk)
        best = min(best, time.perf_counter() - start)
        distinct = len(tally.distinct()[0])
    return best, distinct


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--repeats", type=int, default=3, help="timings per case; the best is reported")
    ap.add_argument("--n-samples", type=int, default=100, help="inputs x of the classifier")
    ap.add_argument("--quick", action="store_true", help="skip the 2^26 cases and the per-sample comparison")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    x = torch.from_numpy(np.random.default_rng(0).uniform(0, 1, args.n_samples))
    y = (x > 0.5).double()
    cases = [("classifier raw", build_classifier(classifier_inputs(x, False, 0.5), y, (3, 3, 2), False, "none")),
             ("classifier expanded", build_classifier(classifier_inputs(x, True, 0.5), y, (3, 3, 2), False, "none"))]
    if not args.quick:
        cases.append(("classifier expanded + bias",
                      build_classifier(classifier_inputs(x, True, 0.5), y, (3, 3, 2), True, "none")))
        images, labels = cnn_dataset()
        for name, shape in (("cnn baseline mean-pool 2ch", CnnShape("baseline", 2, 2, "relu", 0.3, "mean")),
                            ("cnn baseline flatten 1ch+bias", CnnShape("baseline", 1, 2, "relu", 0.3, "flatten", True))):
            cases.append((name, build_cnn(images, labels, shape, dropout_mask(shape, 12, 0, torch.float64))))

    print(f"threads={args.threads} n_samples={args.n_samples} cpu_count={os.cpu_count()} "
          f"loadavg={os.getloadavg()[0]:.2f} torch={torch.__version__}")
    print(f"{'network':30s} {'configs':>12s} {'path':>10s} {'seconds':>8s} {'configs/s':>12s} {'distinct':>9s}")
    rate_expanded = float("nan")
    for name, net in cases:
        paths = [("gram", True)]
        if name.startswith("classifier") and not args.quick and net.num_configs <= 2 ** 23:
            paths.append(("per-sample", False))
        for path, gram in paths:
            seconds, distinct = timed(net, args.repeats, gram=gram)
            rate = net.num_configs / seconds
            shown = path if name.startswith("classifier") else "direct"
            print(f"{name:30s} {net.num_configs:12,d} {shown:>10s} {seconds:8.2f} {rate:12.3g} {distinct:9,d}")
            if name == "classifier expanded" and gram:
                rate_expanded = rate
    print(f"expanded_classifier_configs_per_s={rate_expanded:.4g}")


if __name__ == "__main__":
    main()
