"""One PINN run: build the PDE, the (raw or expanded) FNN, train with Adam, measure.

PINNacle's protocol (benchmark.py and src/pde/baseclass.py): dde.data.PDE / TimePDE with
the PDE's collocation counts (Hammersley points, DeepXDE's default, so they are the same
for every seed), FNN [in] + [100] * 5 + [out], tanh, Glorot normal weights and zero biases,
Adam lr 1e-3, loss = unweighted sum of the mean squared residual of each PDE term and of
each condition. The seed (dde.config.set_random_seed) fixes the initial weights.

Expansion: the network's feature transform appends constant columns, (x, t) ->
(x, t, c_x, c_t), inside the network, so DeepXDE differentiates with respect to the
original inputs and the residuals are exactly those of the raw network's PDE.
"""
from __future__ import annotations

import contextlib
import io
import math
import time
from contextlib import contextmanager

import numpy as np
import torch

from symsweep.api import RunContext, RunResult
from symsweep.tasks.pinn import reference as refs
from symsweep.tasks.pinn.config import PinnConfig
from symsweep.tasks.pinn.data import DataFiles
from symsweep.tasks.pinn.pdes import build
from symsweep.tasks.pinn.problem import BOUNDARY, DOMAIN, INITIAL, Problem, Reference, dde

PREDICT_BATCH = 65536


def make_data(problem: Problem, config: PinnConfig):
    counts = dict(num_domain=config.n_domain or DOMAIN * problem.mul,
                  num_boundary=config.n_boundary or BOUNDARY * problem.mul)
    conditions = [bc for _, bc in problem.conditions]
    if problem.time_dependent:
        return dde.data.TimePDE(problem.geom, problem.residual, conditions,
                                num_initial=config.n_initial or INITIAL * problem.mul, **counts)
    return dde.data.PDE(problem.geom, problem.residual, conditions, **counts)


DOMAIN_MEAN_SAMPLES = 2 ** 17


def expansion_constants(problem: Problem, data, which: str) -> np.ndarray:
    """One constant per input variable (see PinnConfig.expansion_constant)."""
    if which == "bbox_center":
        return problem.bbox_center()
    if which == "collocation_mean":
        return np.asarray(data.train_x_all, dtype=np.float64).mean(axis=0)
    return domain_mean(problem)


def domain_mean(problem: Problem) -> np.ndarray:
    """The mean of each input variable over the (space-time) domain, i.e. its centroid.

    Holes make it differ from the box centre. Quasi-Monte Carlo: 2^17 scrambled Sobol
    points in the spatial bounding box (seed 0, so every run of a PDE gets the same
    constants), kept where inside the region; time is uniform, so its mean is the midpoint.
    """
    from scipy.stats import qmc
    space = problem.geom.geometry if problem.time_dependent else problem.geom
    low, high = (np.asarray(b, dtype=np.float64).ravel() for b in space.bbox)
    unit = qmc.Sobol(len(low), scramble=True, seed=0).random_base2(int(np.log2(DOMAIN_MEAN_SAMPLES)))
    points = low + (high - low) * unit
    mean = points[space.inside(points)].mean(axis=0)
    if problem.time_dependent:
        mean = np.append(mean, (problem.geom.timedomain.t0 + problem.geom.timedomain.t1) / 2)
    return mean


def make_net(problem: Problem, config: PinnConfig, constants: np.ndarray | None):
    width_in = problem.input_dim * (2 if constants is not None else 1)
    sizes = [width_in] + [config.width] * config.hidden_layers + [problem.output_dim]
    net = dde.nn.FNN(sizes, config.activation, config.initializer)
    if constants is not None:
        const = torch.as_tensor(constants, dtype=torch.get_default_dtype())

        def expand(x: torch.Tensor) -> torch.Tensor:
            # constants carry no dependence on x: d(net)/dx is the derivative w.r.t. the original inputs
            return torch.cat([x, const.to(x).expand(x.shape[0], -1)], dim=1)

        net.apply_feature_transform(expand)
    return net


def predict(net, x: np.ndarray) -> np.ndarray:
    net.eval()
    device, dtype = next(net.parameters()).device, next(net.parameters()).dtype
    out = []
    with torch.no_grad():
        for s in range(0, len(x), PREDICT_BATCH):
            out.append(net(torch.as_tensor(x[s:s + PREDICT_BATCH], dtype=dtype, device=device)).cpu().numpy())
    net.train()
    return np.concatenate(out) if out else np.empty((0, 1))


class _History(dde.callbacks.Callback):
    """Every log_every steps (and at 0 and the end): loss terms, total loss, error metrics."""

    def __init__(self, names: list[str], ref: Reference | None, log_every: int, log):
        super().__init__()
        self.names, self.ref, self.log_every, self.log = names, ref, log_every, log
        self.last: dict[str, float] = {}
        self.logged_step = -1

    def record(self) -> None:
        state = self.model.train_state
        if state.step == self.logged_step:
            return
        self.logged_step = state.step
        losses = np.asarray(state.loss_train, dtype=np.float64)
        if len(losses) != len(self.names):
            raise RuntimeError(f"DeepXDE returned {len(losses)} loss terms for {len(self.names)} names {self.names}")
        row = {f"loss_{n}": float(v) for n, v in zip(self.names, losses)}
        row["loss"] = float(losses.sum())
        if self.ref is not None:
            row.update(refs.errors(predict(self.model.net, self.ref.x), self.ref))
        self.last = row
        self.log(int(state.step), **row)

    def on_train_begin(self):
        self.record()

    def on_epoch_end(self):
        # DeepXDE refreshes loss_train at every display step (log_every) and at the last one
        if self.model.train_state.step % self.log_every == 0 or self.model.stop_training:
            self.record()

    def on_train_end(self):
        self.record()


@contextmanager
def _torch_defaults(device: str, float64: bool):
    """DeepXDE builds tensors on torch's default device and dtype: set both for this run."""
    old_device, old_bits = torch.get_default_device(), dde.config.real.precision
    _set_precision(64 if float64 else 32)  # what dde.config.set_default_float does, without its print
    torch.set_default_device(device)
    try:
        yield
    finally:
        torch.set_default_device(old_device)
        _set_precision(old_bits)


def _set_precision(bits: int) -> None:
    dde.config.real.set_float64() if bits == 64 else dde.config.real.set_float32()
    torch.set_default_dtype(torch.float64 if bits == 64 else torch.float32)


def run(config: PinnConfig, seed: int, ctx: RunContext) -> RunResult:
    files = DataFiles(ctx.data_root)
    with _torch_defaults(ctx.device, config.float64):
        problem = build(config.pde, files)  # inside: conditions may hold tensors (PointSetBC values)
        ref = refs.resolve(problem, files, config.reference)  # before training: a missing forced source fails fast
        dde.config.set_random_seed(seed)
        data = make_data(problem, config)
        constants = expansion_constants(problem, data, config.expansion_constant) if config.expanded else None
        net = make_net(problem, config, constants)
        model = dde.Model(data, net)
        with contextlib.redirect_stdout(io.StringIO()):  # DeepXDE prints "Compiling model..." per run
            model.compile("adam", lr=config.lr)  # no loss_weights: PINNacle's unweighted sum
        history = _History(problem.loss_names, ref, config.log_every, ctx.log)
        started = time.perf_counter()
        model.train(iterations=config.iterations, display_every=config.log_every, callbacks=[history], verbose=0)
        elapsed = time.perf_counter() - started
    steps = int(model.train_state.step)
    metrics: dict[str, float | int | None] = dict(history.last)
    metrics.setdefault("l2re", None)
    metrics.setdefault("mse", None)
    metrics.update({
        "ref_source": refs.source_code(ref),
        "ref_points": None if ref is None else len(ref.x),
        "iterations_done": steps,
        "iter_per_s": steps / elapsed if elapsed > 0 else None,
        "n_params": sum(p.numel() for p in net.parameters()),
    })
    if not math.isfinite(metrics["loss"]):
        return RunResult(metrics=metrics, status="diverged")
    return RunResult(metrics=metrics)
