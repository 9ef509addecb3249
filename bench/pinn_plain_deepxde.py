"""Check the PINN pipeline against a plain DeepXDE script of Burgers 1D (issue 13, item 5).

    python bench/pinn_plain_deepxde.py [--seeds 0 1 2] [--iterations 500] [--n-domain 8192]
                                       [--n-boundary 2048] [--n-initial 2048] [--data-root DIR]
                                       [--json]

`plain()` below is Burgers 1D written the way DeepXDE's own examples and PINNacle's
`src/pde/burgers.py` write it, with nothing from `tasks/`: the same equation, domain and
conditions, Hammersley collocation points (DeepXDE's default, so the same for every seed),
FNN 2 -> 5 x 100 tanh -> 1 with Glorot normal weights, Adam lr 1e-3, unweighted sum of the
loss terms, `dde.config.set_random_seed(seed)`, float32, and the error against PINNacle's
COMSOL reference (burgers1d.dat) read with numpy. The same seeds then run through the `pinn`
task (raw input). Both l2re columns are printed per seed, then mean +- std over seeds.

`--order` sets the order of the two conditions: `ic,bc` (default) is the task's, `bc,ic`
DeepXDE's examples'. With the task's order the two programs do the same arithmetic; with the
other, the loss terms are summed in another order, the float sums differ in the last bits
and the trajectories drift apart over many iterations, so agreement is then judged against
the spread between seeds, not per seed.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import time

import numpy as np

os.environ.setdefault("DDE_BACKEND", "pytorch")


def reference(path: str) -> tuple[np.ndarray, np.ndarray]:
    """PINNacle's burgers1d.dat: rows x, then u at t = 0, 0.1, ..., 1 -> points (x, t) and u."""
    table = np.loadtxt(path, comments="%")
    x, u = table[:, 0], table[:, 1:]
    t = np.linspace(0.0, 1.0, u.shape[1])
    xx, tt = np.meshgrid(x, t, indexing="ij")
    return np.stack([xx.ravel(), tt.ravel()], axis=1), u.reshape(-1, 1)


def plain(seed: int, iterations: int, n_domain: int, n_boundary: int, n_initial: int, ref_path: str,
          order: str = "ic,bc") -> dict:
    import deepxde as dde
    import torch

    dde.config.set_default_float("float32")
    nu = 0.01 / np.pi
    geomtime = dde.geometry.GeometryXTime(dde.geometry.Interval(-1, 1), dde.geometry.TimeDomain(0, 1))

    def pde(x, u):
        u_x = dde.grad.jacobian(u, x, i=0, j=0)
        u_t = dde.grad.jacobian(u, x, i=0, j=1)
        u_xx = dde.grad.hessian(u, x, i=0, j=0)
        return u_t + u * u_x - nu * u_xx

    bc = dde.icbc.DirichletBC(geomtime, lambda x: np.zeros((len(x), 1)), lambda _, on_boundary: on_boundary)
    ic = dde.icbc.IC(geomtime, lambda x: -np.sin(np.pi * x[:, 0:1]), lambda _, on_initial: on_initial)
    dde.config.set_random_seed(seed)
    conditions = {"ic": ic, "bc": bc}
    data = dde.data.TimePDE(geomtime, pde, [conditions[c] for c in order.split(",")], num_domain=n_domain,
                            num_boundary=n_boundary, num_initial=n_initial)
    net = dde.nn.FNN([2] + [100] * 5 + [1], "tanh", "Glorot normal")
    model = dde.Model(data, net)
    with contextlib.redirect_stdout(io.StringIO()):  # DeepXDE prints "Compiling model..."
        model.compile("adam", lr=1e-3)
    start = time.perf_counter()
    model.train(iterations=iterations, display_every=max(iterations, 1), verbose=0)
    seconds = time.perf_counter() - start
    x_ref, u_ref = reference(ref_path)
    with torch.no_grad():
        # the net may live on a GPU (DeepXDE follows torch's default device): in and out through it
        device = next(net.parameters()).device
        u = net(torch.as_tensor(x_ref, dtype=torch.float32, device=device)).cpu().numpy().astype(np.float64)
    mse = float(np.mean((u - u_ref) ** 2))
    return {"l2re": float(np.sqrt(mse) / np.sqrt(np.mean(u_ref ** 2))), "mse": mse,
            "loss": float(np.sum(model.train_state.loss_train)), "seconds": seconds}


def pipeline(seed: int, iterations: int, n_domain: int, n_boundary: int, n_initial: int, data_root: str,
             device: str = "cpu") -> dict:
    from symsweep import SimpleContext
    from symsweep.tasks.pinn import PinnConfig, run

    cfg = PinnConfig(pde="burgers1d", expansion="raw", iterations=iterations, log_every=max(iterations, 1),
                     n_domain=n_domain, n_boundary=n_boundary, n_initial=n_initial, reference="file")
    start = time.perf_counter()
    metrics = run(cfg, seed, SimpleContext(data_root=data_root, device=device)).metrics
    return {"l2re": metrics["l2re"], "mse": metrics["mse"], "loss": metrics["loss"],
            "seconds": time.perf_counter() - start}


def find_reference(data_root: str) -> str:
    for sub in ("", "pinnacle", "pinnacle/ref", "ref"):
        path = os.path.join(data_root, sub, "burgers1d.dat")
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"burgers1d.dat not found under {data_root} (or its pinnacle/, ref/)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--iterations", type=int, default=500)
    ap.add_argument("--n-domain", type=int, default=8192, help="PINNacle's count: 8192")
    ap.add_argument("--n-boundary", type=int, default=2048)
    ap.add_argument("--n-initial", type=int, default=2048)
    ap.add_argument("--data-root", default=os.environ.get("SYMSWEEP_DATA", "../shared/data"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--order", choices=["ic,bc", "bc,ic"], default="ic,bc", help="order of the conditions")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    ref_path = find_reference(args.data_root)
    counts = (args.n_domain, args.n_boundary, args.n_initial)
    rows = [{"seed": s, "plain": plain(s, args.iterations, *counts, ref_path, args.order),
             "pipeline": pipeline(s, args.iterations, *counts, args.data_root)} for s in args.seeds]
    summary = {side: {"mean": float(np.mean([r[side]["l2re"] for r in rows])),
                      "std": float(np.std([r[side]["l2re"] for r in rows], ddof=1)) if len(rows) > 1 else 0.0}
               for side in ("plain", "pipeline")}
    if args.json:
        print(json.dumps({"iterations": args.iterations, "points": counts, "rows": rows, "summary": summary}))
        return
    print(f"burgers1d raw, {args.iterations} Adam iterations, points {counts}, conditions {args.order}, "
          f"reference {ref_path}")
    print(f"{'seed':>4s} {'plain l2re':>11s} {'task l2re':>10s} {'rel diff':>9s} {'plain s':>8s} {'task s':>7s}")
    for r in rows:
        p, q = r["plain"], r["pipeline"]
        print(f"{r['seed']:4d} {p['l2re']:11.5f} {q['l2re']:10.5f} {(q['l2re'] - p['l2re']) / p['l2re']:+9.2%} "
              f"{p['seconds']:8.1f} {q['seconds']:7.1f}")
    for side in ("plain", "pipeline"):
        print(f"{side:>9s}: l2re {summary[side]['mean']:.5f} +- {summary[side]['std']:.5f} (mean +- std over seeds)")


if __name__ == "__main__":
    main()
