"""What a PDE definition hands the trainer: geometry, residual, conditions, reference.

Each of the 20 PDEs (tasks/pinn/pdes_*.py) is a function `build(files) -> Problem`. A
Problem carries everything DeepXDE needs (geometry, residual function, conditions, the
PINNacle collocation counts) plus where its reference solution comes from. Loss terms
have names (`pde`, `momentum_x`, `ic_u`, `bc_top_u`, ...) so the run can report each
term as a metric `loss_<name>`.
"""
from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

os.environ["DDE_BACKEND"] = "pytorch"  # before deepxde's first import: this task is PyTorch-only
with contextlib.redirect_stderr(io.StringIO()):  # DeepXDE announces its backend on import; keep CLI output clean
    import deepxde as dde
    from deepxde.utils.internal import get_num_args

# PINNacle's base collocation counts (src/pde/baseclass.py); several PDEs use 4x ("mul=4").
DOMAIN, BOUNDARY, INITIAL = 8192, 2048, 2048


@dataclass
class Reference:
    """Reference solution at evaluation points: x (n, input_dim), y (n, output_dim)."""

    x: np.ndarray
    y: np.ndarray
    source: str  # "analytic", "file:<name>" or "solver:<name>"


@dataclass
class Problem:
    name: str
    geom: Any
    """deepxde geometry; a GeometryXTime when `time_dependent`."""
    residual: Callable
    """residual(x, u) -> tensor or list of tensors (one per PDE loss term)."""
    pde_terms: tuple[str, ...]
    conditions: list[tuple[str, Any]]
    """(loss name, deepxde IC/BC), in loss order after the PDE terms."""
    output_dim: int
    bbox: tuple[float, ...]
    """(lo_0, hi_0, lo_1, hi_1, ...) per input variable (time last)."""
    mul: int = 1
    """PINNacle's collocation multiplier: counts are DOMAIN/BOUNDARY/INITIAL x mul."""
    analytic: Callable[[np.ndarray], np.ndarray] | None = None
    """Exact solution u(x), when PINNacle gives one."""
    ref_file: str | None = None
    """PINNacle's reference file name, when it has one."""
    ref_loader: Callable[[str], tuple[np.ndarray, np.ndarray]] | None = None
    """Reads the reference file -> (x, y)."""
    solver: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None
    """Our numerical reference: () -> (x, y); slow, cached by symsweep.tasks.pinn.reference."""

    def __post_init__(self) -> None:
        # DeepXDE calls pde(x, u) only when it takes exactly two arguments and silently
        # drops the residual otherwise (three means auxiliary variables): check here.
        if get_num_args(self.residual) != 2:
            raise TypeError(f"{self.name}: residual must take exactly (x, u), got {get_num_args(self.residual)} arguments")

    @property
    def time_dependent(self) -> bool:
        return isinstance(self.geom, dde.geometry.GeometryXTime)

    @property
    def input_dim(self) -> int:
        return self.geom.dim

    @property
    def loss_names(self) -> list[str]:
        return list(self.pde_terms) + [name for name, _ in self.conditions]

    def bbox_center(self) -> np.ndarray:
        box = np.asarray(self.bbox, dtype=float).reshape(-1, 2)
        return box.mean(axis=1)


# ----------------------------------------------------------------------------- helpers


def space_time(space, t0: float, t1: float):
    return dde.geometry.GeometryXTime(space, dde.geometry.TimeDomain(t0, t1))


def on_boundary(_, on: bool) -> bool:
    return on


def on_initial(_, on: bool) -> bool:
    return on


def on_plane(axis: int, value: float) -> Callable:
    """Boundary points with x[axis] == value."""
    return lambda x, on: on and np.isclose(x[axis], value)


def on_box_sides(box: tuple[float, ...], axes: tuple[int, ...]) -> Callable:
    """Boundary points on a face of the box for any of the given axes."""
    def select(x, on):
        return on and any(np.isclose(x[a], box[2 * a]) or np.isclose(x[a], box[2 * a + 1]) for a in axes)
    return select


def dirichlet(geom, value, where, component: int = 0):
    return dde.icbc.DirichletBC(geom, _as_func(value), where, component=component)


def neumann(geom, value, where, component: int = 0):
    return dde.icbc.NeumannBC(geom, _as_func(value), where, component=component)


def initial(geom, value, component: int = 0):
    return dde.icbc.IC(geom, _as_func(value), on_initial, component=component)


def _as_func(value):
    if callable(value):
        return value
    return lambda x: np.full((len(x), 1), float(value))

