"""What the RD metric sees: synthetic replicas whose spread around a common centre is scaled.

    python bench/rd_scale.py [--replicas 50] [--weights 2000] [--scales 0.01 1 100] [--seed 0]

Replica i = centre + scale * deviation_i (centre and deviations standard normal, fixed by
--seed). The paper's RD (UMAP to 100 dimensions, fewer with fewer replicas, then pairwise
Wasserstein) and the RD without reduction are printed per scale, with their 95% bootstrap
intervals. A metric of how far apart replicas are should grow with the scale.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from symsweep.tasks.replica.distance import RDSettings, replica_distance


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--replicas", type=int, default=50)
    ap.add_argument("--weights", type=int, default=2000)
    ap.add_argument("--scales", type=float, nargs="+", default=[0.01, 1.0, 100.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--bootstrap", type=int, default=200)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    centre = rng.normal(size=args.weights)
    deviation = rng.normal(size=(args.replicas, args.weights))
    print(f"{args.replicas} replicas x {args.weights} weights, seed {args.seed}")
    print(f"{'scale':>8s} {'RD (UMAP)':>24s} {'RD (no reduction)':>30s} {'s':>5s}")
    for scale in args.scales:
        w = centre + scale * deviation
        start = time.perf_counter()
        umap = replica_distance(w, RDSettings(bootstrap=args.bootstrap))
        flat = replica_distance(w, RDSettings(reduction="none", bootstrap=args.bootstrap))
        print(f"{scale:8g} {umap.rd:9.4f} [{umap.ci_low:.4f}, {umap.ci_high:.4f}] "
              f"{flat.rd:12.4g} [{flat.ci_low:.4g}, {flat.ci_high:.4g}] {time.perf_counter() - start:5.1f}")


if __name__ == "__main__":
    main()
