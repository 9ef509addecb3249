"""The chaotic PDEs: Kuramoto-Sivashinsky and Gray-Scott, as PINNacle states them
(src/pde/chaotic.py). PINNacle gives them an initial condition only (no boundary loss);
our spectral references take the domains as periodic, the setting these equations are
usually solved in (both are rescaled chebfun `spin`/`spin2` demos)."""
from __future__ import annotations

import numpy as np

from symsweep.tasks.pinn import reference, solvers
from symsweep.tasks.pinn.data import DataFiles
from symsweep.tasks.pinn.problem import Problem, dde, initial, space_time

D = dde.grad

KS = {"alpha": 100 / 16, "beta": 100 / 16 ** 2, "gamma": 100 / 16 ** 4}
GS = {"b": 0.04, "d": 0.1, "eps_u": 1e-5, "eps_v": 5e-6}


def ks_initial(x: np.ndarray) -> np.ndarray:
    return np.cos(x) * (1 + np.sin(x))


def kuramoto_sivashinsky(files: DataFiles) -> Problem:
    """u_t + alpha u u_x + beta u_xx + gamma u_xxxx = 0 on [0, 2 pi] x [0, 1], alpha = 100/16,
    beta = 100/16^2, gamma = 100/16^4; u(x, 0) = cos(x) (1 + sin(x))."""
    a, b, g = KS["alpha"], KS["beta"], KS["gamma"]

    def residual(x, u):
        u_xx = D.hessian(u, x, i=0, j=0)
        u_xxxx = D.hessian(u_xx, x, i=0, j=0)
        return D.jacobian(u, x, i=0, j=1) + a * u * D.jacobian(u, x, i=0, j=0) + b * u_xx + g * u_xxxx

    geom = space_time(dde.geometry.Interval(0, 2 * np.pi), 0, 1)
    return Problem(
        "kuramoto_sivashinsky", geom, residual, ("pde",),
        [("ic", initial(geom, lambda x: ks_initial(x[:, 0:1])))],
        output_dim=1, bbox=(0, 2 * np.pi, 0, 1),
        ref_file="Kuramoto_Sivashinsky.dat", ref_loader=reference.columns(2, 1),
        solver=lambda: solvers.ks_reference(**KS, initial=ks_initial))


def gs_initial(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    u = 1 - np.exp(-80 * ((x + 0.05) ** 2 + (y + 0.02) ** 2))
    v = np.exp(-80 * ((x - 0.05) ** 2 + (y - 0.02) ** 2))
    return u, v


def gray_scott(files: DataFiles) -> Problem:
    """u_t = eps_u lap u + b (1 - u) - u v^2, v_t = eps_v lap v - d v + u v^2 on [-1, 1]^2 x [0, 200],
    b = 0.04, d = 0.1, eps = (1e-5, 5e-6); u = 1 - exp(-80 ((x + .05)^2 + (y + .02)^2)),
    v = exp(-80 ((x - .05)^2 + (y - .02)^2)) at t = 0."""
    p = GS

    def residual(x, w):
        u, v = w[:, 0:1], w[:, 1:2]
        lap = [D.hessian(w, x, component=c, i=0, j=0) + D.hessian(w, x, component=c, i=1, j=1) for c in (0, 1)]
        u_t, v_t = D.jacobian(w, x, i=0, j=2), D.jacobian(w, x, i=1, j=2)
        return [u_t - (p["eps_u"] * lap[0] + p["b"] * (1 - u) - u * v ** 2),
                v_t - (p["eps_v"] * lap[1] - p["d"] * v + u * v ** 2)]

    geom = space_time(dde.geometry.Rectangle([-1, -1], [1, 1]), 0, 200)
    return Problem(
        "gray_scott", geom, residual, ("pde_u", "pde_v"),
        [("ic_u", initial(geom, lambda x: gs_initial(x[:, 0:1], x[:, 1:2])[0], 0)),
         ("ic_v", initial(geom, lambda x: gs_initial(x[:, 0:1], x[:, 1:2])[1], 1))],
        output_dim=2, bbox=(-1, 1, -1, 1, 0, 200), mul=4,
        ref_file="grayscott.dat", ref_loader=reference.columns(3, 2),
        solver=lambda: solvers.gray_scott_reference(**GS, initial=gs_initial))
