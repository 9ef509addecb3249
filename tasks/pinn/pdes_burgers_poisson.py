"""Burgers (1D, 2D) and Poisson-type PDEs (2D classic, Boltzmann 2D, 3D complex geometry,
2D many-area, N-D), as PINNacle states them (src/pde/burgers.py, src/pde/poisson.py).

Every definition: equation, domain, conditions, PINNacle's collocation multiplier and
reference source. Residuals are written as "left side - right side" so that a solution
gives zero.
"""
from __future__ import annotations

import numpy as np
import torch

from symsweep.tasks.pinn import coefficients, reference, solvers
from symsweep.tasks.pinn.data import DataFiles, read_grid
from symsweep.tasks.pinn.problem import (Problem, dde, dirichlet, initial, neumann, on_box_sides, on_boundary,
                                space_time)

D = dde.grad


def burgers1d(files: DataFiles) -> Problem:
    """u_t + u u_x = nu u_xx, x in [-1, 1], t in [0, 1], nu = 0.01/pi; u(x, 0) = -sin(pi x), u(+-1, t) = 0."""
    nu = 0.01 / np.pi
    geom = space_time(dde.geometry.Interval(-1, 1), 0, 1)

    def residual(x, u):
        return D.jacobian(u, x, i=0, j=1) + u * D.jacobian(u, x, i=0, j=0) - nu * D.hessian(u, x, i=0, j=0)

    return Problem(
        "burgers1d", geom, residual, ("pde",),
        [("ic", initial(geom, lambda x: -np.sin(np.pi * x[:, 0:1]))),
         ("bc", dirichlet(geom, 0.0, on_boundary))],
        output_dim=1, bbox=(-1, 1, 0, 1),
        ref_file="burgers1d.dat", ref_loader=reference.time_table(1, 1))


def burgers2d(files: DataFiles) -> Problem:
    """(u, v)_t + (u.grad)(u, v) = nu lap (u, v) on [0, 4]^2 x [0, 1], nu = 0.001, periodic in x and y;
    initial (u, v) from PINNacle's random-Fourier fields burgers2d_init_{u,v}_0.dat (512^2 grid)."""
    nu, length = 0.001, 4.0
    init_u = read_grid(str(files.require("burgers2d_init_u_0.dat", "Burgers 2D initial u")))
    init_v = read_grid(str(files.require("burgers2d_init_v_0.dat", "Burgers 2D initial v")))
    geom = space_time(dde.geometry.Rectangle([0, 0], [length, length]), 0, 1)

    def residual(x, w):
        u, v = w[:, 0:1], w[:, 1:2]
        out = []
        for c, _q in ((0, u), (1, v)):
            q_x, q_y, q_t = (D.jacobian(w, x, i=c, j=j) for j in range(3))
            lap = D.hessian(w, x, component=c, i=0, j=0) + D.hessian(w, x, component=c, i=1, j=1)
            out.append(q_t + u * q_x + v * q_y - nu * lap)
        return out

    box = (0, length, 0, length)
    conditions = [("ic_u", initial(geom, lambda x: coefficients.bilinear_np(init_u, x[:, :2]), 0)),
                  ("ic_v", initial(geom, lambda x: coefficients.bilinear_np(init_v, x[:, :2]), 1))]
    for axis, side in ((0, "x"), (1, "y")):
        for c, comp in ((0, "u"), (1, "v")):
            bc = dde.icbc.PeriodicBC(geom, axis, on_box_sides(box, (axis,)), component=c)
            conditions.append((f"periodic_{side}_{comp}", bc))
    return Problem(
        "burgers2d", geom, residual, ("pde_u", "pde_v"), conditions, output_dim=2,
        bbox=(0, length, 0, length, 0, 1), mul=4,
        ref_file="burgers2d_0.dat", ref_loader=reference.time_table(2, 2),
        solver=lambda: solvers.burgers2d_reference(init_u, init_v, nu=nu, length=length))


def _disk_difference(outer, disks):
    geom = outer
    for cx, cy, r in disks:
        geom = dde.geometry.CSGDifference(geom, dde.geometry.Disk([cx, cy], r))
    return geom


def poisson2d_classic(files: DataFiles) -> Problem:
    """lap u = 0 on [-0.5, 0.5]^2 minus four disks (r 0.1 at (+-0.3, +-0.3)); u = 1 on the square, 0 on the disks."""
    box = (-0.5, 0.5, -0.5, 0.5)
    geom = _disk_difference(dde.geometry.Rectangle([-0.5, -0.5], [0.5, 0.5]),
                            [(0.3, 0.3, 0.1), (-0.3, 0.3, 0.1), (0.3, -0.3, 0.1), (-0.3, -0.3, 0.1)])
    square = on_box_sides(box, (0, 1))

    def residual(x, u):
        return D.hessian(u, x, i=0, j=0) + D.hessian(u, x, i=1, j=1)

    return Problem(
        "poisson2d_classic", geom, residual, ("pde",),
        [("bc_square", dirichlet(geom, 1.0, square)),
         ("bc_disks", dirichlet(geom, 0.0, lambda x, on: on and not square(x, on)))],
        output_dim=1, bbox=box, ref_file="poisson1_cg_data.dat", ref_loader=reference.columns(2, 1))


def poisson_boltzmann2d(files: DataFiles) -> Problem:
    """-lap u + k^2 u = A (mu1^2 + x^2 + mu2^2 + y^2) sin(mu1 pi x) sin(mu2 pi y) on [-1, 1]^2 minus four
    disks; k = 8, mu = (1, 4), A = 10; u = 0.2 on the square, 1 on the disks."""
    k, mu, amp = 8.0, (1.0, 4.0), 10.0
    box = (-1, 1, -1, 1)
    geom = _disk_difference(dde.geometry.Rectangle([-1, -1], [1, 1]),
                            [(0.5, 0.5, 0.2), (0.4, -0.4, 0.4), (-0.2, -0.7, 0.1), (-0.6, 0.5, 0.3)])
    square = on_box_sides(box, (0, 1))

    def residual(x, u):
        px, py = x[:, 0:1], x[:, 1:2]
        source = amp * (mu[0] ** 2 + px ** 2 + mu[1] ** 2 + py ** 2) * torch.sin(mu[0] * np.pi * px) \
            * torch.sin(mu[1] * np.pi * py)
        return -(D.hessian(u, x, i=0, j=0) + D.hessian(u, x, i=1, j=1)) + k ** 2 * u - source

    return Problem(
        "poisson_boltzmann2d", geom, residual, ("pde",),
        [("bc_square", dirichlet(geom, 0.2, square)),
         ("bc_disks", dirichlet(geom, 1.0, lambda x, on: on and not square(x, on)))],
        output_dim=1, bbox=box, ref_file="poisson_boltzmann2d.dat", ref_loader=reference.columns(2, 1))


def poisson3d_complex_geometry(files: DataFiles) -> Problem:
    """-mu lap u + k^2 u = f on the unit cube minus four balls, (mu, k) = (1, 8) for z < 0.5 else (1, 10);
    f = 20 exp(s) (|x|^2 - 1)/(|x|^2 + 1) + 100 prod sin(m_i pi x_i), s = sum sin(m_i pi x_i), m = (1, 10, 5);
    zero normal derivative on the whole boundary."""
    m, amp = (1.0, 10.0, 5.0), (20.0, 100.0)
    geom = dde.geometry.Hypercube([0, 0, 0], [1, 1, 1])
    for cx, cy, cz, r in [(0.4, 0.3, 0.6, 0.2), (0.6, 0.7, 0.6, 0.2), (0.2, 0.8, 0.7, 0.1), (0.6, 0.2, 0.3, 0.1)]:
        geom = dde.geometry.CSGDifference(geom, dde.geometry.Sphere([cx, cy, cz], r))

    def residual(x, u):
        sines = [torch.sin(m[i] * np.pi * x[:, i:i + 1]) for i in range(3)]
        r2 = (x ** 2).sum(dim=1, keepdim=True)
        source = amp[0] * torch.exp(sines[0] + sines[1] + sines[2]) * (r2 - 1) / (r2 + 1) \
            + amp[1] * sines[0] * sines[1] * sines[2]
        lower = x[:, 2:3] < 0.5
        k2 = torch.where(lower, torch.full_like(r2, 64.0), torch.full_like(r2, 100.0))
        lap = sum(D.hessian(u, x, i=i, j=i) for i in range(3))
        return -1.0 * lap + k2 * u - source  # mu = 1 on both sides of the interface

    return Problem(
        "poisson3d_complex_geometry", geom, residual, ("pde",),
        [("bc", neumann(geom, 0.0, on_boundary))],
        output_dim=1, bbox=(0, 1, 0, 1, 0, 1), mul=4,
        ref_file="poisson_3d.dat", ref_loader=reference.columns(3, 1))


def poisson2d_many_area(files: DataFiles) -> Problem:
    """a(x) lap u + f(x) = 0 on [-10, 10]^2 cut into 5 x 5 blocks: a constant per block
    (poisson_a_coef.dat), f = c00 + c11 sin(pi rx/s) sin(pi ry/s) per block (poisson_f_coef.dat; r the
    offset in the block, s its side); Robin du/dn = -u on the boundary."""
    field = coefficients.ManyAreaField.from_files(
        files.require("poisson_a_coef.dat", "many-area PDE coefficient a"),
        files.require("poisson_f_coef.dat", "many-area source coefficients"))

    def residual(x, u):
        a, f = field.torch(x)
        return a * (D.hessian(u, x, i=0, j=0) + D.hessian(u, x, i=1, j=1)) + f

    geom = dde.geometry.Rectangle([-10, -10], [10, 10])
    return Problem(
        "poisson2d_many_area", geom, residual, ("pde",),
        [("bc", dde.icbc.RobinBC(geom, lambda x, u: -u, on_boundary))],
        output_dim=1, bbox=(-10, 10, -10, 10),
        ref_file="poisson_manyarea.dat", ref_loader=reference.columns(2, 1),
        solver=lambda: solvers.many_area_reference(field))


def poisson_nd(files: DataFiles, dim: int = 5) -> Problem:
    """lap u + pi^2/4 sum_i sin(pi x_i / 2) = 0 on [0, 1]^5; exact u = sum_i sin(pi x_i / 2) (Dirichlet)."""
    def exact(x):
        return np.sin(np.pi / 2 * x).sum(axis=1, keepdims=True)

    def residual(x, u):
        lap = sum(D.hessian(u, x, i=i, j=i) for i in range(dim))
        return lap + np.pi ** 2 / 4 * torch.sin(np.pi / 2 * x).sum(dim=1, keepdim=True)

    geom = dde.geometry.Hypercube([0] * dim, [1] * dim)
    return Problem("poisson_nd", geom, residual, ("pde",), [("bc", dirichlet(geom, exact, on_boundary))],
                   output_dim=1, bbox=(0, 1) * dim, mul=4, analytic=exact)
