"""PINN training speed: Adam iterations per second per PDE, raw vs expanded input.

    python bench/pinn.py [--pdes burgers1d,wave1d,...|all] [--iterations 50] [--n-domain N]
                         [--n-boundary N] [--n-initial N] [--device cpu|cuda] [--threads T]
                         [--data-root DIR]

Each (PDE, expansion) is one `pinn` run of seed 0 with the paper's network (5 x 100) and,
unless overridden, PINNacle's collocation counts; the rate is the task's own
`iter_per_s` (the training loop only, two loss evaluations included; no reference
metric, so no reference is built). The last column is the time one run of the full
sweep (20000 iterations) would take at that rate.
"""
from __future__ import annotations

import argparse
import os

import torch

from symsweep import SimpleContext
from symsweep.tasks.pinn import PDE_NAMES, PinnConfig, run
from symsweep.tasks.pinn.data import MissingDataError


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pdes", default="burgers1d,poisson2d_classic,heat2d_multiscale,ns2d_lid_driven,wave1d,"
                                      "kuramoto_sivashinsky,poisson_nd")
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--n-domain", type=int, default=None, help="default: the PDE's PINNacle count")
    ap.add_argument("--n-boundary", type=int, default=None)
    ap.add_argument("--n-initial", type=int, default=None)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--data-root", default=os.environ.get("SYMSWEEP_DATA"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pdes = PDE_NAMES if args.pdes == "all" else args.pdes.split(",")
    counts = "PINNacle defaults" if args.n_domain is None else \
        f"n_domain={args.n_domain} n_boundary={args.n_boundary} n_initial={args.n_initial}"
    print(f"device={args.device} threads={torch.get_num_threads()} iterations={args.iterations} {counts}")
    print(f"{'pde':28s} {'raw it/s':>9s} {'expanded it/s':>14s} {'ratio':>6s} {'20k iters (raw)':>16s}")
    ctx = SimpleContext(device=args.device, data_root=args.data_root)
    for pde in pdes:
        rates = []
        for expansion in ("raw", "expanded"):
            cfg = PinnConfig(pde=pde, expansion=expansion, iterations=args.iterations, log_every=args.iterations,
                             n_domain=args.n_domain, n_boundary=args.n_boundary, n_initial=args.n_initial,
                             reference="none")
            try:
                rates.append(run(cfg, 0, ctx).metrics["iter_per_s"])
            except MissingDataError as exc:
                print(f"{pde:28s} skipped: {str(exc).split(';')[0]} (pass --data-root)")
                break
        else:
            minutes = 20000 / rates[0] / 60
            print(f"{pde:28s} {rates[0]:9.1f} {rates[1]:14.1f} {rates[1] / rates[0]:6.2f} {minutes:12.1f} min")
        ctx.history.clear()


if __name__ == "__main__":
    main()
