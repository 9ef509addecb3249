"""Navier-Stokes (lid-driven, back-step, long time) and wave equations (1D, heterogeneous
2D, long time), as PINNacle states them (src/pde/ns.py, src/pde/wave.py).

NS outputs are (u, v, p); kinematic viscosity nu = 0.01 throughout.
"""
from __future__ import annotations

import numpy as np
import torch

from symsweep.tasks.pinn import reference, solvers
from symsweep.tasks.pinn.coefficients import GridField
from symsweep.tasks.pinn.data import DataFiles, read_grid
from symsweep.tasks.pinn.problem import (Problem, dde, dirichlet, initial, neumann, on_boundary, on_box_sides, on_plane,
                                space_time)

D = dde.grad
NU = 0.01
NS_TERMS = ("momentum_x", "momentum_y", "continuity")


def _navier_stokes(x, w, time_axis: int | None = None, force_y=None):
    """Incompressible NS residuals; steady unless time_axis names the t column."""
    u, v = w[:, 0:1], w[:, 1:2]
    u_x, u_y = D.jacobian(w, x, i=0, j=0), D.jacobian(w, x, i=0, j=1)
    v_x, v_y = D.jacobian(w, x, i=1, j=0), D.jacobian(w, x, i=1, j=1)
    p_x, p_y = D.jacobian(w, x, i=2, j=0), D.jacobian(w, x, i=2, j=1)
    lap_u = D.hessian(w, x, component=0, i=0, j=0) + D.hessian(w, x, component=0, i=1, j=1)
    lap_v = D.hessian(w, x, component=1, i=0, j=0) + D.hessian(w, x, component=1, i=1, j=1)
    mom_x = u * u_x + v * u_y + p_x - NU * lap_u
    mom_y = u * v_x + v * v_y + p_y - NU * lap_v
    if time_axis is not None:
        mom_x = mom_x + D.jacobian(w, x, i=0, j=time_axis)
        mom_y = mom_y + D.jacobian(w, x, i=1, j=time_axis)
    if force_y is not None:
        mom_y = mom_y - force_y(x)
    return [mom_x, mom_y, u_x + v_y]


def _wall_conditions(geom, inlet_u, inlet, outlet, walls):
    """Inlet velocity (inlet_u, 0), outlet pressure 0, no-slip walls: PINNacle's channel conditions."""
    return [("bc_inlet_u", dirichlet(geom, inlet_u, inlet, 0)), ("bc_inlet_v", dirichlet(geom, 0.0, inlet, 1)),
            ("bc_outlet_p", dirichlet(geom, 0.0, outlet, 2)),
            ("bc_wall_u", dirichlet(geom, 0.0, walls, 0)), ("bc_wall_v", dirichlet(geom, 0.0, walls, 1))]


def ns2d_lid_driven(files: DataFiles) -> Problem:
    """Steady NS on [0, 1]^2; lid y = 1 moves with u = 4 x (1 - x), v = 0; other walls no-slip; p(0, 0) = 0."""
    geom = dde.geometry.Rectangle([0, 0], [1, 1])
    top = on_plane(1, 1.0)
    not_top = lambda x, on: on and not top(x, on)  # noqa: E731
    return Problem(
        "ns2d_lid_driven", geom, lambda x, w: _navier_stokes(x, w), NS_TERMS,
        [("bc_lid_u", dirichlet(geom, lambda x: 4 * x[:, 0:1] * (1 - x[:, 0:1]), top, 0)),
         ("bc_lid_v", dirichlet(geom, 0.0, top, 1)),
         ("bc_wall_u", dirichlet(geom, 0.0, not_top, 0)), ("bc_wall_v", dirichlet(geom, 0.0, not_top, 1)),
         ("p_anchor", dde.icbc.PointSetBC(np.array([[0.0, 0.0]]), np.array([[0.0]]), component=2))],
        output_dim=3, bbox=(0, 1, 0, 1), ref_file="lid_driven_a4.dat", ref_loader=reference.columns(2, 3))


def ns2d_back_step(files: DataFiles) -> Problem:
    """Steady NS in [0, 4] x [0, 2] minus the step [0, 2] x [1, 2]; inlet x = 0: u = 4 y (1 - y), v = 0;
    outlet x = 4: p = 0; all other walls no-slip."""
    eps = 1e-5  # the cut-out reaches past the box so the step leaves no sliver of boundary
    geom = dde.geometry.CSGDifference(dde.geometry.Rectangle([0, 0], [4, 2]),
                                      dde.geometry.Rectangle([-eps, 1], [2, 2 + eps]))
    inlet, outlet = on_plane(0, 0.0), on_plane(0, 4.0)
    walls = lambda x, on: on and not inlet(x, on) and not outlet(x, on)  # noqa: E731
    return Problem(
        "ns2d_back_step", geom, lambda x, w: _navier_stokes(x, w), NS_TERMS,
        _wall_conditions(geom, lambda x: 4 * x[:, 1:2] * (1 - x[:, 1:2]), inlet, outlet, walls),
        output_dim=3, bbox=(0, 4, 0, 2), ref_file="ns_0_obstacle.dat", ref_loader=reference.columns(2, 3))


def ns2d_long_time(files: DataFiles) -> Problem:
    """Unsteady NS on [0, 2] x [0, 1] x [0, 5] with body force f_y = -sin(pi x) sin(pi y) sin(pi t);
    inlet x = 0: u = sin(pi y) (sin(pi t) + sin(3 pi t) + sin(5 pi t)), v = 0; outlet x = 2: p = 0;
    walls y = 0, 1 no-slip; u = v = p = 0 at t = 0."""
    geom = space_time(dde.geometry.Rectangle([0, 0], [2, 1]), 0, 5)
    inlet, outlet = on_plane(0, 0.0), on_plane(0, 2.0)
    walls = lambda x, on: on and not inlet(x, on) and not outlet(x, on)  # noqa: E731

    def force_y(x):
        return -torch.sin(np.pi * x[:, 0:1]) * torch.sin(np.pi * x[:, 1:2]) * torch.sin(np.pi * x[:, 2:3])

    def inlet_u(x):
        y, t = x[:, 1:2], x[:, 2:3]
        return np.sin(np.pi * y) * (np.sin(np.pi * t) + np.sin(3 * np.pi * t) + np.sin(5 * np.pi * t))

    return Problem(
        "ns2d_long_time", geom, lambda x, w: _navier_stokes(x, w, time_axis=2, force_y=force_y), NS_TERMS,
        _wall_conditions(geom, inlet_u, inlet, outlet, walls)
        + [(f"ic_{c}", initial(geom, 0.0, i)) for i, c in enumerate("uvp")],
        output_dim=3, bbox=(0, 2, 0, 1, 0, 5), mul=4,
        ref_file="ns_long.dat", ref_loader=reference.time_table(2, 3))


def wave1d(files: DataFiles) -> Problem:
    """u_tt = 4 u_xx on (x, t) in [0, 1]^2 (PINNacle treats it as a 2D domain);
    exact u = sin(pi x) cos(2 pi t) + 0.5 sin(4 pi x) cos(8 pi t); u and u_t = 0 given at t = 0,
    u exact at x = 0, 1."""
    def exact(x):
        return np.sin(np.pi * x[:, 0:1]) * np.cos(2 * np.pi * x[:, 1:2]) \
            + 0.5 * np.sin(4 * np.pi * x[:, 0:1]) * np.cos(8 * np.pi * x[:, 1:2])

    def residual(x, u):
        return D.hessian(u, x, i=1, j=1) - 4 * D.hessian(u, x, i=0, j=0)

    geom = dde.geometry.Rectangle([0, 0], [1, 1])
    start, ends = on_plane(1, 0.0), on_box_sides((0, 1, 0, 1), (0,))
    return Problem(
        "wave1d", geom, residual, ("pde",),
        [("ic_ut", neumann(geom, 0.0, start)), ("ic_u", dirichlet(geom, exact, start)),
         ("bc", dirichlet(geom, exact, ends))],
        output_dim=1, bbox=(0, 1, 0, 1), analytic=exact)


def wave2d_heterogeneous(files: DataFiles) -> Problem:
    """lap u = u_tt / c(x, y) on [-1, 1]^2 x [0, 5] (a 3D box, as PINNacle); c from darcy_2d_coef_256.dat on
    [0, 1]^2 mapped to [-1, 1]^2 (bilinear); u(x, y, 0) = exp(-((x + 0.5)^2 + y^2) / (2 0.3^2)), u_t = 0 at
    t = 0; zero normal derivative on the sides."""
    speed2 = GridField(read_grid(str(files.require("darcy_2d_coef_256.dat", "wave speed field"))),
                       "bilinear", scale=0.5, shift=0.5)

    def pulse(x):
        return np.exp(-((x[:, 0:1] + 0.5) ** 2 + x[:, 1:2] ** 2) / (2 * 0.3 ** 2))

    def residual(x, u):
        lap = D.hessian(u, x, i=0, j=0) + D.hessian(u, x, i=1, j=1)
        return lap - D.hessian(u, x, i=2, j=2) / speed2.torch(x)

    geom = dde.geometry.Hypercube([-1, -1, 0], [1, 1, 5])
    start = on_plane(2, 0.0)
    return Problem(
        "wave2d_heterogeneous", geom, residual, ("pde",),
        [("ic_u", dirichlet(geom, pulse, start)), ("ic_ut", neumann(geom, 0.0, start)),
         ("bc", neumann(geom, 0.0, on_box_sides((-1, 1, -1, 1), (0, 1))))],
        output_dim=1, bbox=(-1, 1, -1, 1, 0, 5), mul=4,
        ref_file="wave_darcy.dat", ref_loader=reference.time_table(2, 1),
        solver=lambda: solvers.wave2d_heterogeneous_reference(speed2, pulse))


def wave2d_long_time(files: DataFiles) -> Problem:
    """u_tt = u_xx + 2 u_yy on [0, 1]^2 x [0, 100]; PINNacle's "exact" solution
    sin(pi x) sinh(pi y) cos(pi t) + sinh(3 pi x) sin(2 pi y) cos(pi t) gives the initial and boundary
    values and the reference. NB: it does not satisfy this PDE (each term leaves a residual of
    -2 pi^2 times itself); kept as PINNacle has it, see docs/tasks/pinn.md."""
    def exact(x):
        return np.sin(np.pi * x[:, 0:1]) * np.sinh(np.pi * x[:, 1:2]) * np.cos(np.pi * x[:, 2:3]) \
            + np.sinh(3 * np.pi * x[:, 0:1]) * np.sin(2 * np.pi * x[:, 1:2]) * np.cos(np.pi * x[:, 2:3])

    def residual(x, u):
        return D.hessian(u, x, i=2, j=2) - (D.hessian(u, x, i=0, j=0) + 2 * D.hessian(u, x, i=1, j=1))

    geom = space_time(dde.geometry.Rectangle([0, 0], [1, 1]), 0, 100)
    return Problem(
        "wave2d_long_time", geom, residual, ("pde",),
        [("ic", initial(geom, exact)), ("bc", dirichlet(geom, exact, on_boundary))],
        output_dim=1, bbox=(0, 1, 0, 1, 0, 100), mul=4, analytic=exact)
