"""Reference solutions: where each PDE's comes from, and the error metrics against it.

Sources, in the order `reference: auto` tries them:
1. analytic: the exact solution PINNacle gives, evaluated (as PINNacle's TesterCallback
   does) at `geom.uniform_points(n, boundary=False)`, n = 2500 for 2 inputs, else 20000;
2. file: PINNacle's reference file under the data root (symsweep.tasks.pinn.data.DataFiles);
3. solver: our numerical solution (symsweep.tasks.pinn.solvers), computed once per process;
4. none: the run reports losses only; l2re and mse are None (missing), never 0.

Metrics follow PINNacle: mse = mean over points and outputs of (u - u_ref)^2, and
l2re = sqrt(mse) / sqrt(mean(u_ref^2)) (all outputs together).
"""
from __future__ import annotations

import threading
from typing import Callable

import numpy as np

from symsweep.tasks.pinn.data import DataFiles, read_table, read_time_table
from symsweep.tasks.pinn.problem import Problem, Reference

Loader = Callable[[str], tuple[np.ndarray, np.ndarray]]


class ReferenceUnavailable(ValueError):
    """The requested reference source does not exist for this PDE."""


def columns(n_in: int, n_out: int) -> Loader:
    """A file of rows (inputs..., outputs...)."""
    def load(path: str) -> tuple[np.ndarray, np.ndarray]:
        table = read_table(path)
        if table.shape[1] != n_in + n_out:
            raise ValueError(f"{path}: expected {n_in + n_out} columns, found {table.shape[1]}")
        return table[:, :n_in], table[:, n_in:]
    return load


def time_table(n_space: int, n_out: int) -> Loader:
    """A COMSOL file with one column per (time, output); see data.read_time_table."""
    def load(path: str) -> tuple[np.ndarray, np.ndarray]:
        table = read_time_table(path, n_space, n_out)
        return table[:, :n_space + 1], table[:, n_space + 1:]
    return load


# Solver references are deterministic per PDE, so one computation per process serves
# every seed of a trial (and both expansions when a worker runs both).
_SOLVED: dict[str, tuple[np.ndarray, np.ndarray]] = {}
_SOLVING = threading.Lock()


def solved(problem: Problem) -> tuple[np.ndarray, np.ndarray]:
    with _SOLVING:
        if problem.name not in _SOLVED:
            _SOLVED[problem.name] = problem.solver()
        return _SOLVED[problem.name]


def resolve(problem: Problem, files: DataFiles, mode: str) -> Reference | None:
    """The reference for `problem` under `mode` (auto / file / solver / none)."""
    if mode == "none":
        return None
    if mode == "auto" and problem.analytic is not None:
        return analytic_reference(problem)
    path = files.find(problem.ref_file) if problem.ref_file else None
    if mode == "file" or (mode == "auto" and path is not None):
        if problem.ref_file is None:
            raise ReferenceUnavailable(f"{problem.name} has no PINNacle reference file (its reference is analytic)")
        path = files.require(problem.ref_file, f"{problem.name} reference solution")
        x, y = problem.ref_loader(str(path))
        keep = ~(np.isnan(x).any(axis=1) | np.isnan(y).any(axis=1))  # COMSOL writes NaN outside the mesh
        return Reference(x[keep], y[keep], f"file:{problem.ref_file}")
    if problem.solver is not None:
        x, y = solved(problem)
        return Reference(x, y, f"solver:{problem.name}")
    if mode == "solver":
        raise ReferenceUnavailable(f"{problem.name} has no numerical reference solver here")
    return None


def analytic_reference(problem: Problem) -> Reference:
    n = 2500 if problem.input_dim == 2 else 20000
    # Geometries without a uniform grid (the N-ball) fall back to random points inside
    # DeepXDE: draw them from a fixed seed so the reference is the same for every run.
    state = np.random.get_state()
    np.random.seed(0)
    try:
        x = problem.geom.uniform_points(n, boundary=False)
    finally:
        np.random.set_state(state)
    return Reference(x, problem.analytic(x), "analytic")


def errors(prediction: np.ndarray, ref: Reference) -> dict[str, float]:
    """PINNacle's MSE and L2 relative error of a prediction at the reference points."""
    diff = np.asarray(prediction, dtype=np.float64) - ref.y
    mse = float(np.mean(diff ** 2))
    return {"mse": mse, "l2re": float(np.sqrt(mse) / np.sqrt(np.mean(ref.y ** 2)))}


SOURCE_CODES = {"analytic": 0, "file": 1, "solver": 2}


def source_code(ref: Reference | None) -> int | None:
    """The metric `ref_source`: 0 analytic, 1 PINNacle file, 2 our solver, None without reference."""
    return None if ref is None else SOURCE_CODES[ref.source.split(":")[0]]
