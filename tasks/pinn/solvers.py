"""Numerical reference solutions for PDEs whose PINNacle reference file is not available.

Each solver returns (x, u): evaluation points (n, input_dim) in the PDE's own variables
(time last) and the solution there (n, output_dim). All are standard schemes, float64:

- Kuramoto-Sivashinsky: Fourier pseudo-spectral on the periodic [0, 2 pi], ETDRK4
  (Kassam & Trefethen 2005, phi-functions by contour integrals), 2/3 dealiasing.
- Gray-Scott: the same in 2D on the periodic [-1, 1]^2.
- Burgers 2D: finite volumes on the periodic [0, 4]^2, MUSCL (minmod) + Rusanov flux for
  the self-advection terms (u^2/2)_x and (v^2/2)_y, limited upwinding for the cross terms
  v u_y and u v_x, central viscosity, SSP-RK3. At nu = 0.001 shocks are far thinner than
  any affordable grid, so this is the vanishing-viscosity solution at the grid's
  resolution, as PINNacle's COMSOL file also is at its mesh's (docs/tasks/pinn.md gives the measured
  difference between two resolutions).
- Wave 2D heterogeneous: second-order finite differences in space, leapfrog in time,
  mirrored ghost nodes for the zero-flux sides.
- Poisson 2D many-area: the 5-point Laplacian with ghost nodes for the Robin condition,
  one sparse direct solve.

Resolutions are fixed defaults (module constants) so a reference is the same in every
run; the solver functions take them as arguments for the convergence tests.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import fft

# ----------------------------------------------------------------------------- ETDRK4


def _etdrk4_coefficients(lin: np.ndarray, dt: float, contour_points: int = 32):
    """ETDRK4 weights for a diagonal linear operator, by the contour-integral average that
    avoids cancellation where dt * lin is small."""
    z = dt * lin[..., None] + np.exp(1j * np.pi * (np.arange(1, contour_points + 1) - 0.5) / contour_points)
    e, e2 = np.exp(dt * lin), np.exp(dt * lin / 2)
    q = dt * np.real(np.mean((np.exp(z / 2) - 1) / z, axis=-1))
    f1 = dt * np.real(np.mean((-4 - z + np.exp(z) * (4 - 3 * z + z ** 2)) / z ** 3, axis=-1))
    f2 = dt * np.real(np.mean((2 + z + np.exp(z) * (z - 2)) / z ** 3, axis=-1))
    f3 = dt * np.real(np.mean((-4 - 3 * z - z ** 2 + np.exp(z) * (4 - z)) / z ** 3, axis=-1))
    return e, e2, q, f1, f2, f3


def _etdrk4(v: np.ndarray, lin: np.ndarray, nonlinear: Callable, dt: float, steps: int, every: int,
            to_real: Callable) -> list[np.ndarray]:
    """Integrate v' = lin * v + nonlinear(v) in spectral space; snapshot (in real space) every `every` steps."""
    e, e2, q, f1, f2, f3 = _etdrk4_coefficients(lin, dt)
    snaps = [to_real(v)]
    for step in range(1, steps + 1):
        nv = nonlinear(v)
        a = e2 * v + q * nv
        na = nonlinear(a)
        b = e2 * v + q * na
        nb = nonlinear(b)
        c = e2 * a + q * (2 * nb - nv)
        nc = nonlinear(c)
        v = e * v + nv * f1 + 2 * (na + nb) * f2 + nc * f3
        if step % every == 0:
            snaps.append(to_real(v))
    return snaps


# ----------------------------------------------------------------------------- Kuramoto-Sivashinsky

KS_MODES, KS_DT, KS_SNAPSHOTS = 256, 1e-4, 101


def ks_reference(alpha: float, beta: float, gamma: float, initial: Callable, t_end: float = 1.0,
                 n: int = KS_MODES, dt: float = KS_DT, snapshots: int = KS_SNAPSHOTS, keep_every: int = 1):
    """u_t + alpha u u_x + beta u_xx + gamma u_xxxx = 0 on the periodic [0, 2 pi]."""
    x = 2 * np.pi * np.arange(n) / n
    k = fft.rfftfreq(n, 1.0 / n)
    lin = beta * k ** 2 - gamma * k ** 4
    dealias = k < n / 3

    def nonlinear(v):
        u = fft.irfft(v, n)
        return -0.5 * alpha * 1j * k * fft.rfft(u * u) * dealias

    steps = int(round(t_end / dt))
    every = steps // (snapshots - 1)
    if every * (snapshots - 1) != steps:
        raise ValueError(f"t_end/dt = {steps} steps is not a multiple of {snapshots - 1} snapshot intervals")
    snaps = _etdrk4(fft.rfft(initial(x)), lin.astype(complex), nonlinear, dt, steps, every,
                    lambda v: fft.irfft(v, n))
    times = np.linspace(0, t_end, snapshots)
    xs = x[::keep_every]
    tt, xx = np.meshgrid(times, xs, indexing="ij")
    u = np.stack(snaps)[:, ::keep_every]
    return np.stack([xx.ravel(), tt.ravel()], axis=1), u.reshape(-1, 1)


# ----------------------------------------------------------------------------- Gray-Scott

GS_MODES, GS_DT, GS_SNAPSHOTS = 256, 0.5, 21


def gray_scott_reference(b: float, d: float, eps_u: float, eps_v: float, initial: Callable,
                         t_end: float = 200.0, n: int = GS_MODES, dt: float = GS_DT,
                         snapshots: int = GS_SNAPSHOTS, keep_every: int = 4):
    """Gray-Scott on the periodic [-1, 1]^2 (period 2): diffusion exact, reaction explicit."""
    x = -1 + 2 * np.arange(n) / n
    xx, yy = np.meshgrid(x, x, indexing="ij")  # index [ix, iy]
    kx = np.pi * fft.fftfreq(n, 1.0 / n)
    ky = np.pi * fft.rfftfreq(n, 1.0 / n)
    k2 = kx[:, None] ** 2 + ky[None, :] ** 2
    lin = np.stack([-eps_u * k2, -eps_v * k2]).astype(complex)

    def to_real(v):
        return fft.irfft2(v, s=(n, n), axes=(-2, -1))

    def nonlinear(v):
        u, w = to_real(v)
        uvv = u * w * w
        return fft.rfft2(np.stack([b * (1 - u) - uvv, -d * w + uvv]), axes=(-2, -1))

    u0, v0 = initial(xx, yy)
    steps = int(round(t_end / dt))
    every = steps // (snapshots - 1)
    if every * (snapshots - 1) != steps:
        raise ValueError(f"t_end/dt = {steps} steps is not a multiple of {snapshots - 1} snapshot intervals")
    snaps = _etdrk4(fft.rfft2(np.stack([u0, v0]), axes=(-2, -1)), lin, nonlinear, dt, steps, every, to_real)
    times = np.linspace(0, t_end, snapshots)
    sub = slice(None, None, keep_every)
    points, values = [], []
    for t, (u, w) in zip(times, snaps):
        points.append(np.stack([xx[sub, sub].ravel(), yy[sub, sub].ravel(), np.full(xx[sub, sub].size, t)], 1))
        values.append(np.stack([u[sub, sub].ravel(), w[sub, sub].ravel()], 1))
    return np.concatenate(points), np.concatenate(values)


# ----------------------------------------------------------------------------- Burgers 2D

BURGERS_CELLS, BURGERS_SNAPSHOTS, BURGERS_CFL = 256, 11, 0.4


def _minmod(a, b):
    return np.where(a * b > 0, np.sign(a) * np.minimum(np.abs(a), np.abs(b)), 0.0)


def _flux_derivative(q: np.ndarray, axis: int, h: float) -> np.ndarray:
    """d/dx(q^2/2) by MUSCL-minmod reconstruction and the Rusanov flux (conservative)."""
    slope = _minmod(q - np.roll(q, 1, axis), np.roll(q, -1, axis) - q)
    left = q + 0.5 * slope                      # state at face i+1/2 from cell i
    right = np.roll(q - 0.5 * slope, -1, axis)  # ... and from cell i+1
    speed = np.maximum(np.abs(left), np.abs(right))
    face = 0.25 * (left ** 2 + right ** 2) - 0.5 * speed * (right - left)
    return (face - np.roll(face, 1, axis)) / h


def _upwind_derivative(q: np.ndarray, velocity: np.ndarray, axis: int, h: float) -> np.ndarray:
    """velocity * dq/dx with limited second-order upwinding (non-conservative cross term)."""
    back = q - np.roll(q, 1, axis)
    fwd = np.roll(q, -1, axis) - q
    back2 = np.roll(back, 1, axis)
    fwd2 = np.roll(fwd, -1, axis)
    minus = (back + 0.5 * _minmod(back - back2, fwd - back)) / h   # upwind from the left
    plus = (fwd - 0.5 * _minmod(fwd2 - fwd, fwd - back)) / h       # upwind from the right
    return np.where(velocity > 0, velocity * minus, velocity * plus)


def _laplacian_periodic(q: np.ndarray, h: float) -> np.ndarray:
    return (np.roll(q, 1, 0) + np.roll(q, -1, 0) + np.roll(q, 1, 1) + np.roll(q, -1, 1) - 4 * q) / h ** 2


def _corner_values(q: np.ndarray, every: int) -> np.ndarray:
    """Values at every `every`-th cell corner (the mean of the four cells around it), so that
    grids of different resolution report at the same points x_j = j * length / (n / every)."""
    corners = 0.25 * (q + np.roll(q, 1, 0) + np.roll(q, 1, 1) + np.roll(np.roll(q, 1, 0), 1, 1))
    return corners[::every, ::every]


def burgers2d_reference(init_u, init_v, nu: float, length: float, t_end: float = 1.0,
                        n: int = BURGERS_CELLS, snapshots: int = BURGERS_SNAPSHOTS, out_nodes: int = 128):
    """2D viscous Burgers on the periodic square; init_* are (xs, ys, values[iy, ix]) grids.

    Reported at out_nodes^2 grid nodes (x = 0 .. length - length/out_nodes) per snapshot."""
    if n % out_nodes:
        raise ValueError(f"cells per side ({n}) must be a multiple of out_nodes ({out_nodes})")
    from symsweep.tasks.pinn.coefficients import bilinear_np
    h = length / n
    centers = (np.arange(n) + 0.5) * h
    xx, yy = np.meshgrid(centers, centers, indexing="ij")
    pts = np.stack([xx.ravel(), yy.ravel()], 1)
    u = bilinear_np(init_u, pts).reshape(n, n)
    v = bilinear_np(init_v, pts).reshape(n, n)

    def rhs(u, v):
        du = -_flux_derivative(u, 0, h) - _upwind_derivative(u, v, 1, h) + nu * _laplacian_periodic(u, h)
        dv = -_flux_derivative(v, 1, h) - _upwind_derivative(v, u, 0, h) + nu * _laplacian_periodic(v, h)
        return du, dv

    times = np.linspace(0, t_end, snapshots)
    snaps, t = [(u, v)], 0.0
    for target in times[1:]:
        while t < target - 1e-12:
            speed = np.abs(u).max() + np.abs(v).max()
            dt = min(BURGERS_CFL * h / speed, 0.2 * h * h / nu, target - t)
            # SSP-RK3 (Shu-Osher)
            a1, b1 = rhs(u, v)
            u1, v1 = u + dt * a1, v + dt * b1
            a2, b2 = rhs(u1, v1)
            u2, v2 = 0.75 * u + 0.25 * (u1 + dt * a2), 0.75 * v + 0.25 * (v1 + dt * b2)
            a3, b3 = rhs(u2, v2)
            u, v = u / 3 + 2 / 3 * (u2 + dt * a3), v / 3 + 2 / 3 * (v2 + dt * b3)
            t += dt
        snaps.append((u, v))
    every = n // out_nodes
    nodes = np.arange(out_nodes) * length / out_nodes
    nx, ny = (a.ravel() for a in np.meshgrid(nodes, nodes, indexing="ij"))
    points = [np.stack([nx, ny, np.full(nx.size, tt)], 1) for tt in times]
    values = [np.stack([_corner_values(su, every).ravel(), _corner_values(sv, every).ravel()], 1) for su, sv in snaps]
    return np.concatenate(points), np.concatenate(values)


# ----------------------------------------------------------------------------- wave 2D heterogeneous

WAVE_NODES, WAVE_SNAPSHOTS, WAVE_COURANT = 201, 51, 0.5


def wave2d_heterogeneous_reference(speed2, pulse: Callable, t_end: float = 5.0, n: int = WAVE_NODES,
                                   snapshots: int = WAVE_SNAPSHOTS, keep_every: int = 4):
    """u_tt = c(x, y) lap u on [-1, 1]^2, zero normal derivative, u(., 0) = pulse, u_t(., 0) = 0.

    speed2: the squared wave speed field (symsweep.tasks.pinn.coefficients.GridField); pulse(points) -> (n, 1).
    """
    nodes = np.linspace(-1, 1, n)
    h = nodes[1] - nodes[0]
    xx, yy = np.meshgrid(nodes, nodes, indexing="ij")
    pts = np.stack([xx.ravel(), yy.ravel()], 1)
    c2 = speed2.numpy(pts).reshape(n, n)
    u = pulse(pts).reshape(n, n)

    def lap(q):
        g = np.pad(q, 1, mode="reflect")  # mirrored ghost nodes: zero normal derivative
        return (g[2:, 1:-1] + g[:-2, 1:-1] + g[1:-1, 2:] + g[1:-1, :-2] - 4 * q) / h ** 2

    interval = t_end / (snapshots - 1)
    per_snap = int(np.ceil(interval / (WAVE_COURANT * h / np.sqrt(2 * c2.max()))))
    dt = interval / per_snap
    prev, cur = u, u + 0.5 * dt ** 2 * c2 * lap(u)  # u(dt) by Taylor, with u_t(., 0) = 0
    snaps = [u]
    for step in range(1, per_snap * (snapshots - 1) + 1):  # cur holds u(step * dt)
        if step > 1:
            prev, cur = cur, 2 * cur - prev + dt ** 2 * c2 * lap(cur)
        if step % per_snap == 0:
            snaps.append(cur)
    times = np.linspace(0, t_end, snapshots)
    sub = slice(None, None, keep_every)
    points = [np.stack([xx[sub, sub].ravel(), yy[sub, sub].ravel(), np.full(xx[sub, sub].size, t)], 1) for t in times]
    values = [s[sub, sub].reshape(-1, 1) for s in snaps]
    return np.concatenate(points), np.concatenate(values)


# ----------------------------------------------------------------------------- Poisson many-area

MANY_AREA_NODES = 401


def many_area_reference(field, n: int = MANY_AREA_NODES, keep_every: int = 2):
    """a lap u + f = 0 on [-10, 10]^2 with du/dn = -u: 5-point stencil, ghost nodes for the Robin side.

    At a boundary node the ghost value is (inner neighbour) - 2 h u (central difference of
    du/dn = -u), which folds into the stencil as a doubled inner neighbour and a diagonal shift.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import spsolve
    nodes = np.linspace(field.low, field.high, n)
    h = nodes[1] - nodes[0]
    xx, yy = np.meshgrid(nodes, nodes, indexing="ij")
    pts = np.stack([xx.ravel(), yy.ravel()], 1)
    a, f = field.numpy(pts)
    index = np.arange(n * n).reshape(n, n)
    rows, cols, vals = [], [], []
    diag = np.full((n, n), -4.0)
    for axis in (0, 1):
        for step in (-1, 1):
            nb = np.roll(index, -step, axis)
            weight = np.ones((n, n))
            edge = [slice(None)] * 2
            edge[axis] = -1 if step == 1 else 0        # nodes whose neighbour in this direction is a ghost
            mirror = [slice(None)] * 2
            mirror[axis] = 0 if step == 1 else -1      # nodes whose neighbour here is doubled by the ghost
            weight[tuple(edge)] = 0.0
            weight[tuple(mirror)] = 2.0
            diag[tuple(edge)] -= 2 * h
            rows.append(index.ravel())
            cols.append(nb.ravel())
            vals.append(weight.ravel())
    rows.append(index.ravel())
    cols.append(index.ravel())
    vals.append(diag.ravel())
    matrix = coo_matrix((np.concatenate(vals) / h ** 2, (np.concatenate(rows), np.concatenate(cols))),
                        shape=(n * n, n * n)).tocsc()
    u = spsolve(matrix, -(f / a).ravel()).reshape(n, n)
    sub = slice(None, None, keep_every)
    return np.stack([xx[sub, sub].ravel(), yy[sub, sub].ravel()], 1), u[sub, sub].reshape(-1, 1)
