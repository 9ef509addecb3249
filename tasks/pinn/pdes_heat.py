"""Heat equations (2D varying coefficient, multiscale, complex geometry, long time, N-D), as
PINNacle states them (src/pde/heat.py). Time is the last input column."""
from __future__ import annotations

import numpy as np
import torch

from symsweep.tasks.pinn import reference
from symsweep.tasks.pinn.coefficients import GridField
from symsweep.tasks.pinn.data import DataFiles, read_grid
from symsweep.tasks.pinn.geometry import HolesGeometry
from symsweep.tasks.pinn.problem import Problem, dde, dirichlet, initial, neumann, on_boundary, space_time

D = dde.grad


def _lap2(u, x):
    return D.hessian(u, x, i=0, j=0) + D.hessian(u, x, i=1, j=1)


def heat2d_varying_coef(files: DataFiles) -> Problem:
    """u_t = a(x, y) lap u + 200 sin(pi x) sin(5 pi y) sin(pi t) on [0, 1]^2 x [0, 5]; a = exp(GRF) from
    heat_2d_coef_256.dat (nearest grid value, as PINNacle); u = 0 at t = 0 and on the sides."""
    diffusivity = GridField(read_grid(str(files.require("heat_2d_coef_256.dat", "heat diffusivity field"))),
                            "nearest")
    geom = space_time(dde.geometry.Rectangle([0, 0], [1, 1]), 0, 5)

    def residual(x, u):
        source = 200 * torch.sin(np.pi * x[:, 0:1]) * torch.sin(5 * np.pi * x[:, 1:2]) * torch.sin(np.pi * x[:, 2:3])
        return D.jacobian(u, x, i=0, j=2) - diffusivity.torch(x) * _lap2(u, x) - source

    return Problem(
        "heat2d_varying_coef", geom, residual, ("pde",),
        [("ic", initial(geom, 0.0)), ("bc", dirichlet(geom, 0.0, on_boundary))],
        output_dim=1, bbox=(0, 1, 0, 1, 0, 5), mul=4,
        ref_file="heat_darcy.dat", ref_loader=reference.time_table(2, 1))


def heat2d_multiscale(files: DataFiles) -> Problem:
    """u_t = u_xx / (500 pi)^2 + u_yy / pi^2 on [0, 1]^2 x [0, 5];
    exact u = sin(20 pi x) sin(pi y) exp(-((20/500)^2 + 1) t) (initial and zero boundary values)."""
    kx, ky = 1 / (500 * np.pi) ** 2, 1 / np.pi ** 2
    fx, fy = 20 * np.pi, np.pi
    decay = kx * fx ** 2 + ky * fy ** 2

    def exact(x):
        return np.sin(fx * x[:, 0:1]) * np.sin(fy * x[:, 1:2]) * np.exp(-decay * x[:, 2:3])

    def residual(x, u):
        return D.jacobian(u, x, i=0, j=2) - kx * D.hessian(u, x, i=0, j=0) - ky * D.hessian(u, x, i=1, j=1)

    geom = space_time(dde.geometry.Rectangle([0, 0], [1, 1]), 0, 5)
    return Problem(
        "heat2d_multiscale", geom, residual, ("pde",),
        [("ic", initial(geom, exact)), ("bc", dirichlet(geom, 0.0, on_boundary))],
        output_dim=1, bbox=(0, 1, 0, 1, 0, 5), mul=4, analytic=exact)


BIG_HOLES = [(-4, -3), (4, -3), (-4, 3), (4, 3), (-4, -9), (4, -9), (-4, 9), (4, 9), (0, 0), (0, 6), (0, -6)]
SMALL_HOLES = [(-3.2, -6), (-3.2, 6), (3.2, -6), (3.2, 6), (-3.2, 0), (3.2, 0)]


def heat2d_complex_geometry(files: DataFiles) -> Problem:
    """u_t = lap u on [-8, 8] x [-12, 12] minus 11 disks of radius 1 and 6 of radius 0.4, t in [0, 3];
    u = 0 at t = 0; Robin du/dn = 5 - u on the big disks, 1 - u on the small ones, 0.1 - u outside."""
    disks = [dde.geometry.Disk(c, 1.0) for c in BIG_HOLES] + [dde.geometry.Disk(c, 0.4) for c in SMALL_HOLES]
    geom = space_time(HolesGeometry(dde.geometry.Rectangle([-8, -12], [8, 12]), disks), 0, 3)

    def near(holes, radius):
        centers = np.array(holes, dtype=float)
        return lambda x: bool(np.any(np.isclose(np.hypot(*(x[:2] - centers).T), radius)))

    big, small = near(BIG_HOLES, 1.0), near(SMALL_HOLES, 0.4)

    def residual(x, u):
        return D.jacobian(u, x, i=0, j=2) - _lap2(u, x)

    def robin(value, where):
        return dde.icbc.RobinBC(geom, lambda _, u: value - u, where)

    return Problem(
        "heat2d_complex_geometry", geom, residual, ("pde",),
        [("ic", initial(geom, 0.0)),
         ("bc_big", robin(5.0, lambda x, on: on and big(x))),
         ("bc_small", robin(1.0, lambda x, on: on and small(x))),
         ("bc_outer", robin(0.1, lambda x, on: on and not big(x) and not small(x)))],
        output_dim=1, bbox=(-8, 8, -12, 12, 0, 3), mul=4,
        ref_file="heat_complex.dat", ref_loader=reference.time_table(2, 1))


def heat2d_long_time(files: DataFiles) -> Problem:
    """u_t = 0.001 lap u + 5 sin(u^2) (1 + 2 sin(pi t / 4)) sin(4 pi x) sin(2 pi y) on [0, 1]^2 x [0, 100];
    u = sin(4 pi x) sin(3 pi y) at t = 0, u = 0 on the sides."""
    def residual(x, u):
        forcing = 5 * torch.sin(u ** 2) * (1 + 2 * torch.sin(np.pi * x[:, 2:3] / 4)) \
            * torch.sin(4 * np.pi * x[:, 0:1]) * torch.sin(2 * np.pi * x[:, 1:2])
        return D.jacobian(u, x, i=0, j=2) - 0.001 * _lap2(u, x) - forcing

    geom = space_time(dde.geometry.Rectangle([0, 0], [1, 1]), 0, 100)
    return Problem(
        "heat2d_long_time", geom, residual, ("pde",),
        [("ic", initial(geom, lambda x: np.sin(4 * np.pi * x[:, 0:1]) * np.sin(3 * np.pi * x[:, 1:2]))),
         ("bc", dirichlet(geom, 0.0, on_boundary))],
        output_dim=1, bbox=(0, 1, 0, 1, 0, 100), mul=4,
        ref_file="heat_longtime.dat", ref_loader=reference.time_table(2, 1))


def heat_nd(files: DataFiles, dim: int = 5) -> Problem:
    """u_t = lap u / d - |x|^2 exp(|x|^2/2 + t) / d on the unit ball in d = 5 dimensions, t in [0, 1];
    exact u = exp(|x|^2/2 + t); Neumann du/dn = u on the sphere; u(x, 0) exact."""
    def exact(xt):
        return np.exp((xt[:, :dim] ** 2).sum(axis=1, keepdims=True) / 2 + xt[:, dim:dim + 1])

    def residual(x, u):
        r2 = (x[:, :dim] ** 2).sum(dim=1, keepdim=True)
        lap = sum(D.hessian(u, x, i=i, j=i) for i in range(dim))
        return lap / dim - r2 * torch.exp(r2 / 2 + x[:, dim:dim + 1]) / dim - D.jacobian(u, x, i=0, j=dim)

    geom = space_time(dde.geometry.Hypersphere([0] * dim, 1), 0, 1)
    return Problem(
        "heat_nd", geom, residual, ("pde",),
        [("bc", neumann(geom, exact, on_boundary)), ("ic", initial(geom, exact))],
        output_dim=1, bbox=(-1, 1) * dim + (0, 1), mul=4, analytic=exact)
