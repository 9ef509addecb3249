"""The seeds of one PINN trained together (`vectorize: on`): one network of stacked weights.

A trial's seeds share the PDE and the reference; each seed keeps its own collocation points
(DeepXDE draws part of them from the seed), its own initial weights (both made exactly as its
own run makes them: `dde.config.set_random_seed(seed)`, the data, the FNN) and its own Adam
state. The stacked network computes every seed's FNN on that seed's points with batched
matrix products (`torch.baddbmm`); the inputs are one tensor of seeds x points rows, and each
row's output depends on that row only, so one reverse pass gives every seed's derivatives
(DeepXDE's `dde.grad.jacobian` on the whole tensor), the residual is computed once for all
seeds, and each condition's error is read at its rows of each seed. The loss is the sum over
seeds of each seed's PINNacle loss (the unweighted sum of its terms' mean squares): its
gradient with respect to a seed's weights is that seed's own gradient, and Adam is
elementwise, so each seed trains as it would alone.

What differs from the seed's own run: the order of floating-point sums in the batched
matrix products. In float64 the final losses equal the one-at-a-time runs' to ~1e-9
relative after a few hundred iterations (tested); in float32 rounding differences grow as
in any two runs on different kernels (docs/tasks/pinn.md says how much we measured).
"""
from __future__ import annotations

import math
import time
from typing import Iterator, Sequence

import numpy as np
import torch

from symsweep.api import RunResult
from symsweep.tasks.pinn import reference as refs
from symsweep.tasks.pinn.config import PinnConfig
from symsweep.tasks.pinn.data import DataFiles
from symsweep.tasks.pinn.pdes import build
from symsweep.tasks.pinn.problem import dde
from symsweep.tasks.pinn.train import PREDICT_BATCH, _torch_defaults, expansion_constants, make_data, make_net, run


def run_many(config: PinnConfig, seeds: Sequence[int], ctx_for_seed) -> Iterator[tuple[int, RunResult]]:
    """The task's runs of one trial: together when `vectorize: on` and there are several,
    else one after another (each exactly its own run)."""
    if config.vectorize != "on" or len(seeds) < 2:
        for seed in seeds:
            yield seed, run(config, seed, ctx_for_seed(seed))
        return
    yield from train_together(config, list(seeds), ctx_for_seed)


class StackedFNN(torch.nn.Module):
    """S copies of DeepXDE's FNN (same sizes and activation) as stacked weights: rows
    [s*N, (s+1)*N) of the input go through copy s. The expansion constants, when any (one
    row per copy, (S, d)), are appended to each row as the single network's feature
    transform does."""

    def __init__(self, nets: Sequence[torch.nn.Module], constants: np.ndarray | None):
        super().__init__()
        self.size = len(nets)
        layers = [list(net.linears) for net in nets]
        self.weights = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.stack([ls[i].weight.detach().transpose(0, 1) for ls in layers]).contiguous())
             for i in range(len(layers[0]))])
        self.biases = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.stack([ls[i].bias.detach() for ls in layers]).unsqueeze(1).contiguous())
             for i in range(len(layers[0]))])
        self.activation = nets[0].activation
        const = None if constants is None else torch.as_tensor(np.asarray(constants).reshape(self.size, 1, -1),
                                                                  dtype=torch.get_default_dtype())
        self.register_buffer("const", const)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.view(self.size, -1, x.shape[-1])
        if self.const is not None:
            h = torch.cat([h, self.const.to(h).expand(self.size, h.shape[1], -1)], dim=-1)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if i < last:
                h = self.activation(h)
        return h.reshape(-1, h.shape[-1])


# Conditions whose error is row by row (or, periodic, left half minus right half): one call
# reads every seed's rows of a condition. Others (a point set's fixed values) go seed by seed.
_ROWWISE = (dde.icbc.DirichletBC, dde.icbc.NeumannBC, dde.icbc.RobinBC, dde.icbc.OperatorBC, dde.icbc.IC)


class _Losses:
    """Every seed's loss terms, (seeds, terms), from one forward pass over all seeds' rows
    (`datas`: each seed's DeepXDE data, of equal counts).

    The rows are laid out term by term: each condition's rows of every seed, seed after seed
    (a periodic condition's left halves of every seed, then their right halves), then every
    seed's interior rows. DeepXDE's own condition code then reads all seeds' rows of a
    condition in one call; the network sees the rows seed by seed (a gather each way)."""

    def __init__(self, problem, datas: Sequence, size: int):
        self.problem, self.data, self.size = problem, datas[0], size
        n = self.n = len(self.data.train_x)
        starts = self.bcs_start = [int(v) for v in np.cumsum([0] + list(self.data.num_bcs))]
        order = []  # term-major row -> seed-major row (s * n + row of seed s)
        for i, bc in enumerate(self.data.bcs):
            beg, end = starts[i], starts[i + 1]
            halves = [(beg, beg + (end - beg) // 2), (beg + (end - beg) // 2, end)] \
                if isinstance(bc, dde.icbc.PeriodicBC) else [(beg, end)]
            for lo, hi in halves:
                order += [s * n + r for s in range(size) for r in range(lo, hi)]
        order += [s * n + r for s in range(size) for r in range(starts[-1], n)]
        seed_major = np.concatenate([d.train_x for d in datas])
        device = torch.get_default_device()
        order = np.asarray(order)
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        self.order, self.inverse = torch.as_tensor(order, device=device), torch.as_tensor(inverse, device=device)
        self.x_np = seed_major[order]
        self.x = torch.as_tensor(self.x_np, dtype=torch.get_default_dtype(), device=device)

    def __call__(self, net: StackedFNN) -> torch.Tensor:
        x = self.x.detach().requires_grad_()
        y = net(x[self.inverse])[self.order]
        f = self.problem.residual(x, y)
        f = list(f) if isinstance(f, (list, tuple)) else [f]
        size, starts, n = self.size, self.bcs_start, self.n
        interior = n - starts[-1]
        terms = [fi[size * starts[-1]:].reshape(size, interior, -1).square().mean(dim=(1, 2)) for fi in f]
        for i, bc in enumerate(self.data.bcs):
            beg, end = size * starts[i], size * starts[i + 1]
            rows = (end - beg) // size
            periodic = isinstance(bc, dde.icbc.PeriodicBC)
            if periodic or isinstance(bc, _ROWWISE):
                err = bc.error(self.x_np, x, y, beg, end)  # a periodic error: one row per left/right pair
                terms.append(err.reshape(size, rows // 2 if periodic else rows, -1).square().mean(dim=(1, 2)))
            else:
                terms.append(torch.stack([bc.error(self.x_np, x, y, beg + s * rows, beg + (s + 1) * rows)
                                          .square().mean() for s in range(size)]))
        dde.grad.clear()
        return torch.stack(terms, dim=1)


def train_together(config: PinnConfig, seeds: list[int], ctx_for_seed) -> Iterator[tuple[int, RunResult]]:
    """Train `seeds` together, in groups of equal collocation counts (a PDE whose boundary
    points are drawn by rejection can give seeds different counts per condition); a seed
    alone in its group runs as its own run."""
    ctx0 = ctx_for_seed(seeds[0])
    files = DataFiles(ctx0.data_root)
    with _torch_defaults(ctx0.device, config.float64):
        problem = build(config.pde, files)
        ref = refs.resolve(problem, files, config.reference)
        groups: dict[tuple, list] = {}
        for seed in seeds:  # each seed's points and initial weights exactly as its own run draws them
            dde.config.set_random_seed(seed)
            data = make_data(problem, config)
            constants = expansion_constants(problem, data, config.expansion_constant) if config.expanded else None
            net = make_net(problem, config, constants)
            groups.setdefault((data.train_x.shape, tuple(data.num_bcs)), []).append((seed, data, constants, net))
    for group in groups.values():
        if len(group) == 1:
            seed = group[0][0]
            yield seed, run(config, seed, ctx_for_seed(seed))
        else:
            yield from _train_group(config, problem, ref, group, ctx_for_seed)


def _train_group(config: PinnConfig, problem, ref, group: list, ctx_for_seed) -> Iterator[tuple[int, RunResult]]:
    seeds = [g[0] for g in group]
    with _torch_defaults(ctx_for_seed(seeds[0]).device, config.float64):
        net = StackedFNN([g[3] for g in group], np.stack([g[2] for g in group]) if config.expanded else None)
        net = net.to(torch.get_default_device())
        losses_of = _Losses(problem, [g[1] for g in group], len(seeds))
        opt = torch.optim.Adam(net.parameters(), lr=config.lr)  # DeepXDE's "adam": default betas and eps
        names = problem.loss_names
        last: list[dict] = [{} for _ in seeds]

        def record(step: int) -> None:
            """DeepXDE's display step: every seed's loss terms at its current weights, its errors."""
            terms = losses_of(net).detach().double().cpu().numpy()
            preds = _predict(net, ref.x) if ref is not None else None
            for s, seed in enumerate(seeds):
                row = {f"loss_{n}": float(v) for n, v in zip(names, terms[s])}
                row["loss"] = float(terms[s].sum())
                if ref is not None:
                    row.update(refs.errors(preds[s], ref))
                last[s] = row
                ctx_for_seed(seed).log(step, **row)

        record(0)
        started = time.perf_counter()
        for step in range(1, config.iterations + 1):  # no host sync in here but at display steps
            total = losses_of(net).sum()
            opt.zero_grad()
            total.backward()
            opt.step()
            if step % config.log_every == 0 or step == config.iterations:
                record(step)
        elapsed = time.perf_counter() - started
    n_params = sum(p.numel() for p in group[0][3].parameters())
    for s, seed in enumerate(seeds):
        metrics: dict[str, float | int | None] = dict(last[s])
        metrics.setdefault("l2re", None)
        metrics.setdefault("mse", None)
        metrics.update({
            "ref_source": refs.source_code(ref),
            "ref_points": None if ref is None else len(ref.x),
            "iterations_done": config.iterations,
            "iter_per_s": config.iterations / elapsed if elapsed > 0 else None,  # each seed's, together
            "n_params": n_params,
        })
        status = "completed" if math.isfinite(metrics["loss"]) else "diverged"
        yield seed, RunResult(metrics=metrics, status=status, info={"trained_with_seeds": len(seeds)})


def _predict(net: StackedFNN, x: np.ndarray) -> list[np.ndarray]:
    """Every seed's prediction at the points x (n, d)."""
    dtype, device = net.weights[0].dtype, net.weights[0].device
    out = [[] for _ in range(net.size)]
    step = max(1, PREDICT_BATCH // net.size)
    with torch.no_grad():
        for s in range(0, len(x), step):
            chunk = torch.as_tensor(x[s:s + step], dtype=dtype, device=device)
            y = net(chunk.repeat(net.size, 1)).view(net.size, len(chunk), -1).cpu().numpy()
            for i in range(net.size):
                out[i].append(y[i])
    return [np.concatenate(parts) for parts in out]
