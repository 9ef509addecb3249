"""QCD equation of state from a quasi-particle model with neural masses (paper Sec. 2.2, 6.2.1; Fig. 3).

One run fits three mass networks m_ud(T), m_s(T), m_g(T) so that an ideal gas of quasi-quarks
and quasi-gluons with those masses reproduces the HotQCD 2014 lattice equation of state at
its 50 temperatures (155..400 MeV). The networks see T alone (raw) or (T, c) with a constant
c (expanded); everything else is identical.

Physics (per unit volume, natural units, GeV):
    ln Z_i/V = d_i / (2 pi^2) * int_0^inf p^2 eta_i ln(1 + eta_i exp(-E_i/T)) dp,  E_i = sqrt(p^2 + m_i^2)
    eta = +1 for quarks, -1 for gluons;  d_ud = 24, d_s = 12, d_g = 16
    P = T sum_i ln Z_i/V,   e = T^2 d(sum_i ln Z_i/V)/dT (total derivative, through the masses),
    s = (P + e)/T
The momentum integral is a 50-point Gauss quadrature in x = p/T: Gauss-Laguerre by default
(nodes on [0, inf), weight e^-x divided out), or Gauss-Legendre on [0, legendre_x_max].
The fit minimizes the MSE of the dimensionless P/T^4 and e/T^4 (by default) over the points.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import nn

from symsweep.api import Diverged, RunContext, RunResult, Task
from symsweep.stats import completed, describe
from symsweep.tasks.qcd_eos.hotqcd import STEFAN_BOLTZMANN_P_OVER_T4, TEMPERATURES_GEV, load_lattice, parametrized_eos

SPECIES = (("ud", 24, +1.0), ("s", 12, +1.0), ("g", 16, -1.0))  # name, degeneracy, eta
TARGETS = {"pressure": "p_over_t4", "energy_density": "e_over_t4", "entropy": "s_over_t3"}


@dataclass(frozen=True)
class QcdEosConfig:
    expanded: bool = False
    """Network input (T, c) instead of T."""
    expansion_c_gev: float = 0.2775
    """The constant c of the expanded input, in GeV (the paper's value is lost from its text;
    default: the mean of the fitted temperatures, the rule the paper uses for its PINN expansions)."""
    data: Literal["lattice", "parametrization"] = "lattice"
    """Targets: the 50 HotQCD lattice points (read from --data-root), or the HotQCD
    parametrization (Eq. 16 of arXiv:1407.6387, no file needed) at the same temperatures."""
    fit_targets: tuple[str, ...] = ("pressure", "energy_density")
    """Quantities whose MSE (of P/T^4, e/T^4, s/T^3) is summed into the loss: pressure, energy_density, entropy."""
    steps: int = 2000
    """Full-batch Adam steps."""
    lr: float = 1e-3
    """Adam learning rate."""
    lr_step: int = 2000
    """Multiply the learning rate by lr_gamma every lr_step steps."""
    lr_gamma: float = 0.9
    """Step-decay factor of the learning rate."""
    residual_blocks: int = 7
    """Residual blocks per mass network (paper: 7)."""
    width: int = 32
    """Neurons per layer of the mass networks (paper: 32)."""
    activation: Literal["silu", "sigmoid"] = "sigmoid"
    """Activation between blocks (inside a block it is always a sigmoid). sigmoid: the paper's
    ("residual blocks with 32 neurons and sigmoid activation functions", Sec. 6.2.1); silu =
    x * sigmoid(x), what the authors' notebook uses between blocks."""
    mass_max_gev: float = 3.0
    """Masses are mass_max * sigmoid(output), so in (0, mass_max) GeV."""
    quadrature: Literal["laguerre", "legendre"] = "laguerre"
    """Gauss rule of the momentum integral, in x = p/T."""
    quadrature_points: int = 50
    """Nodes of the Gauss rule (paper: 50)."""
    legendre_x_max: float = 40.0
    """Upper end of the Gauss-Legendre interval in x = p/T (the integrand there is ~e^-40)."""
    keep_best: bool = True
    """Report (and save) the parameters of the step with the lowest training loss, as the
    authors' notebook does, instead of the last step's (Adam's loss spikes now and then)."""
    low_t_gev: float = 0.2
    """Metrics with suffix _low cover the points with T below this (where the paper sees the gain)."""
    log_every: int = 100
    """History every this many steps (and at the last)."""

    # Budgets no one can mean (steps: 99999999999999999999999) are refused when a spec is read,
    # naming the range. A class attribute, not a field: run ids hash the fields only.
    BUDGET_RANGES = {"steps": (1, 10_000_000), "residual_blocks": (0, 1_000), "width": (1, 100_000)}

    def __post_init__(self) -> None:
        bad = [t for t in self.fit_targets if t not in TARGETS]
        if bad or not self.fit_targets:
            raise ValueError(f"fit_targets {list(self.fit_targets)}: choose from {', '.join(TARGETS)}")
        if self.steps < 1 or self.lr_step < 1 or self.log_every < 1:
            raise ValueError("steps, lr_step and log_every must be >= 1")
        if self.residual_blocks < 0 or self.width < 1:
            raise ValueError("residual_blocks must be >= 0 and width >= 1")
        if not 2 <= self.quadrature_points <= 200:
            raise ValueError(f"quadrature_points must be in 2..200, got {self.quadrature_points}")
        if self.mass_max_gev <= 0 or self.legendre_x_max <= 0 or self.lr <= 0:
            raise ValueError("mass_max_gev, legendre_x_max and lr must be > 0")


# ----------------------------------------------------------------------------- physics


def quadrature_rule(kind: str, points: int, legendre_x_max: float = 40.0) -> tuple[np.ndarray, np.ndarray]:
    """Nodes x and weights w with int_0^inf g(x) dx ~ sum_k w_k g(x_k), for g decaying like e^-x."""
    if kind == "laguerre":
        x, w = np.polynomial.laguerre.laggauss(points)
        return x, np.exp(np.log(w) + x)  # divide out the e^-x weight (w_k e^x_k overflows neither way)
    if kind == "legendre":
        x, w = np.polynomial.legendre.leggauss(points)
        return (x + 1) * legendre_x_max / 2, w * legendre_x_max / 2
    raise ValueError(f"quadrature {kind!r} unknown; allowed: laguerre, legendre")


def ln_z_over_v(t: torch.Tensor, mass: torch.Tensor, degeneracy: float, eta: float,
                rule: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """ln Z/V in GeV^3 of one species at temperatures t (B, 1) with masses (B, 1), by quadrature in x = p/T."""
    x, w = rule
    e_over_t = torch.sqrt(x ** 2 + (mass / t) ** 2)                   # (B, K)
    integrand = x ** 2 * eta * torch.log1p(eta * torch.exp(-e_over_t))
    return degeneracy / (2 * math.pi ** 2) * t ** 3 * (integrand * w).sum(dim=1, keepdim=True)


def thermodynamics(t: torch.Tensor, masses: list[torch.Tensor], rule, create_graph: bool = True
                   ) -> dict[str, torch.Tensor]:
    """P/T^4, e/T^4, s/T^3 at t (B, 1, requires grad) for the species masses (functions of t).

    create_graph: keep the graph for a backward pass through e; without it, values only."""
    ln_z = sum(ln_z_over_v(t, m, d, eta, rule) for m, (_, d, eta) in zip(masses, SPECIES))
    (dlnz_dt,) = torch.autograd.grad(ln_z.sum(), t, create_graph=create_graph)
    p = t * ln_z
    e = t ** 2 * dlnz_dt
    out = {"p_over_t4": p / t ** 4, "e_over_t4": e / t ** 4, "s_over_t3": (p + e) / t ** 4}
    return out if create_graph else {k: v.detach() for k, v in out.items()}


# ----------------------------------------------------------------------------- networks


class EnsembleLinear(nn.Module):
    """`members` independent linear layers applied at once: (M, B, in) -> (M, B, out)."""

    def __init__(self, members: int, n_in: int, n_out: int):
        super().__init__()
        layers = [nn.Linear(n_in, n_out) for _ in range(members)]  # torch's default init, per member
        self.weight = nn.Parameter(torch.stack([lin.weight.detach().T for lin in layers]))
        self.bias = nn.Parameter(torch.stack([lin.bias.detach()[None, :] for lin in layers]))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, h, self.weight)


class MassNets(nn.Module):
    """The three mass networks (u/d, s, gluon), evaluated together.

    Each: linear(d_in -> width) -> act -> residual_blocks x [h + W2 sigmoid(W1 h)] -> act ...
    -> linear(width -> 1) -> mass_max * sigmoid.
    """

    def __init__(self, d_in: int, config: QcdEosConfig):
        super().__init__()
        m = len(SPECIES)
        self.inp = EnsembleLinear(m, d_in, config.width)
        self.blocks = nn.ModuleList(nn.ModuleList([EnsembleLinear(m, config.width, config.width),
                                                   EnsembleLinear(m, config.width, config.width)])
                                    for _ in range(config.residual_blocks))
        self.out = EnsembleLinear(m, config.width, 1)
        self.act = nn.SiLU() if config.activation == "silu" else nn.Sigmoid()
        self.mass_max = config.mass_max_gev

    def forward(self, features: torch.Tensor) -> list[torch.Tensor]:
        h = self.act(self.inp(features.unsqueeze(0).expand(len(SPECIES), -1, -1)))
        for l1, l2 in self.blocks:
            h = self.act(h + l2(torch.sigmoid(l1(h))))
        masses = self.mass_max * torch.sigmoid(self.out(h))                 # (3, B, 1)
        return list(masses.unbind(0))


def features(t: torch.Tensor, config: QcdEosConfig) -> torch.Tensor:
    return torch.cat([t, torch.full_like(t, config.expansion_c_gev)], dim=1) if config.expanded else t


def targets(config: QcdEosConfig, data_root: str | None = None) -> dict[str, np.ndarray]:
    """The fitted temperatures and P/T^4, e/T^4, s/T^3 there."""
    if config.data == "lattice":
        lattice = load_lattice(data_root)
        return {"T": lattice["T"], **{k: lattice[k] for k in TARGETS.values()},
                **{f"d_{k}": lattice[f"d_{k}"] for k in TARGETS.values()}}
    eos = parametrized_eos(TEMPERATURES_GEV)
    return {"T": TEMPERATURES_GEV, **{k: eos[k] for k in TARGETS.values()}}


# ----------------------------------------------------------------------------- run


def _mse(pred: dict[str, torch.Tensor], true: dict[str, torch.Tensor], rows: torch.Tensor | slice) -> dict[str, float]:
    return {f"mse_{name}": float(((pred[key].detach() - true[key])[rows] ** 2).mean()) for name, key in TARGETS.items()}


def _np(column: torch.Tensor) -> np.ndarray:
    return column.detach().cpu().numpy()[:, 0]


def run(config: QcdEosConfig, seed: int, ctx: RunContext) -> RunResult:
    torch.manual_seed(seed)
    dtype = torch.float64  # the energy density is a derivative of a quadrature: keep full precision
    device = torch.device(ctx.device)
    data = targets(config, ctx.data_root)
    t = torch.tensor(data["T"], dtype=dtype, device=device)[:, None].requires_grad_(True)
    true = {k: torch.tensor(data[k], dtype=dtype, device=device)[:, None] for k in TARGETS.values()}
    low = (t.detach()[:, 0] < config.low_t_gev).nonzero()[:, 0]
    rule = tuple(torch.tensor(a, dtype=dtype, device=device) for a in quadrature_rule(
        config.quadrature, config.quadrature_points, config.legendre_x_max))
    # Initialized on the CPU from the seed, then moved: the same start on every device.
    nets = MassNets(2 if config.expanded else 1, config).to(device, dtype)
    opt = torch.optim.Adam(nets.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=config.lr_step, gamma=config.lr_gamma)
    fit_keys = [TARGETS[name] for name in config.fit_targets]

    best_loss, best_step, best_state = math.inf, -1, None
    for step in range(config.steps + 1):
        pred = thermodynamics(t, nets(features(t, config)), rule, create_graph=step < config.steps)
        loss = sum(((pred[k] - true[k]) ** 2).mean() for k in fit_keys)
        if not torch.isfinite(loss):
            raise Diverged(f"loss {float(loss)} at step {step}")
        if config.keep_best and loss.item() < best_loss:
            best_loss, best_step = loss.item(), step
            best_state = {k: v.detach().clone() for k, v in nets.state_dict().items()}
        if step == config.steps:  # the evaluation of the last update, no step after it
            last_loss = loss.item()
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % config.log_every == 0 or step == config.steps - 1:
            ctx.log(step, loss=loss.item(), **_mse(pred, true, slice(None)))

    if config.keep_best and best_step < config.steps:
        nets.load_state_dict(best_state)
    reported_step = best_step if config.keep_best else config.steps
    pred = thermodynamics(t, masses := nets(features(t, config)), rule, create_graph=False)
    final_loss = float(sum(((pred[k] - true[k]) ** 2).mean() for k in fit_keys))
    metrics = {"loss": final_loss, "reported_step": reported_step, "last_loss": last_loss,
               **_mse(pred, true, slice(None)),
               **{f"{k}_low": v for k, v in _mse(pred, true, low).items()}}

    grid = torch.linspace(float(data["T"][0]), float(data["T"][-1]), 99, dtype=dtype, device=device)[:, None]
    grid.requires_grad_(True)
    curve = thermodynamics(grid, curve_masses := nets(features(grid, config)), rule, create_graph=False)
    ctx.save_artifact("eos", {
        "T": data["T"], **{f"true_{k}": data[k] for k in TARGETS.values()},
        **{f"err_{k}": data[f"d_{k}"] for k in TARGETS.values() if f"d_{k}" in data},
        **{f"pred_{k}": _np(pred[k]) for k in TARGETS.values()},
        **{f"mass_{name}": _np(m) for (name, _, _), m in zip(SPECIES, masses)},
        "grid_T": _np(grid),
        **{f"grid_{k}": _np(curve[k]) for k in TARGETS.values()},
        **{f"grid_mass_{name}": _np(m) for (name, _, _), m in zip(SPECIES, curve_masses)},
    })
    return RunResult(metrics=metrics)


# ----------------------------------------------------------------------------- aggregation

_METRICS = [f"mse_{n}{s}" for s in ("", "_low") for n in TARGETS]


def aggregate(runs: pd.DataFrame, history: pd.DataFrame, load_artifact) -> dict[str, pd.DataFrame]:
    """`qcd_comparison`: mean, std and n of every MSE, raw vs expanded, and expanded/raw;
    `qcd_curves`: every completed run's predicted P/T^4, e/T^4, s/T^3 and masses on a T grid."""
    done = completed(runs)
    rows = []
    for expanded, part in done.groupby("cfg_expanded"):
        row = {"input": "expanded (T, c)" if expanded else "raw T", "n": len(part)}
        for m in _METRICS:
            d = describe(part[f"metric_{m}"], interval=False)  # the summary's rule: std NaN for one seed
            row[f"{m}_mean"], row[f"{m}_std"] = d["mean"], d["std"]
        rows.append(row)
    comparison = pd.DataFrame(rows)
    if len(comparison) == 2:
        raw, exp = comparison.iloc[0], comparison.iloc[1]
        ratio = {"input": "expanded / raw", "n": int(exp["n"])}
        ratio.update({f"{m}_mean": exp[f"{m}_mean"] / raw[f"{m}_mean"] for m in _METRICS})
        comparison = pd.concat([comparison, pd.DataFrame([ratio])], ignore_index=True)
    curves, fitted = [], pd.DataFrame()
    for _, r in done.iterrows():
        arr = load_artifact(r["run_id"], "eos")
        if fitted.empty:  # the points every run fitted (the same data for all of them)
            fitted = pd.DataFrame({"T": arr["T"], **{k: arr[f"true_{k}"] for k in TARGETS.values()},
                                   **{f"d_{k}": arr[f"err_{k}"] for k in TARGETS.values() if f"err_{k}" in arr}})
        part = pd.DataFrame({k[5:]: v for k, v in arr.items() if k.startswith("grid_")})
        part.insert(0, "seed", int(r["seed"]))
        part.insert(0, "expanded", bool(r["cfg_expanded"]))
        curves.append(part)
    curves_table = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    return {"qcd_comparison": comparison, "qcd_curves": curves_table, "qcd_targets": fitted}


def figures(tables: dict, runs: pd.DataFrame, history: pd.DataFrame) -> dict:
    """fig3_eos: P/T^4, e/T^4, s/T^3 and the masses against T, raw vs expanded (mean and
    min-max over seeds) with the lattice points; fig3_errors: squared error against T."""
    from symsweep.tasks.common.plots import subplots

    curves = tables.get("qcd_curves")
    if curves is None or curves.empty:
        return {}
    lat = tables.get("qcd_targets", pd.DataFrame())
    if lat.empty:
        return {}
    lat = {k: lat[k].to_numpy() for k in lat.columns}
    panels = [("p_over_t4", "P/T$^4$", "d_p_over_t4"), ("e_over_t4", "e/T$^4$", "d_e_over_t4"),
              ("s_over_t3", "s/T$^3$", "d_s_over_t3")]
    fig, axes = subplots(1, 4, figsize=(18, 4))
    err_fig, err_axes = subplots(1, 3, figsize=(15, 3.8))
    for expanded, color in ((False, "tab:blue"), (True, "tab:red")):
        part = curves[curves["expanded"] == expanded]
        if part.empty:
            continue
        label = "expanded (T, c)" if expanded else "raw T"
        g = part.groupby("T")
        for ax, eax, (key, name, _err) in zip(axes, err_axes, panels):
            mean = g[key].mean()
            ax.plot(mean.index, mean.values, color=color, label=f"{label} (n={part['seed'].nunique()})")
            ax.fill_between(mean.index, g[key].min().values, g[key].max().values, color=color, alpha=0.2)
            # squared error at the lattice temperatures (interpolated on the run's grid)
            sq = np.mean([(np.interp(lat["T"], s["T"], s[key]) - lat[key]) ** 2 for _, s in part.groupby("seed")],
                         axis=0)
            eax.semilogy(lat["T"], sq, "o-", ms=3, color=color, label=label)
            eax.set(xlabel="T [GeV]", ylabel=f"squared error of {name}")
        for name, style in (("ud", "-"), ("s", "--"), ("g", ":")):
            m = g[f"mass_{name}"].mean()
            axes[3].plot(m.index, m.values, style, color=color, label=f"m_{name}, {label}")
    for ax, (key, name, err) in zip(axes, panels):
        ax.errorbar(lat["T"], lat[key], yerr=lat.get(err), fmt="k.", ms=3, lw=0.8,
                    label="HotQCD 2014" if err in lat else "HotQCD parametrization")
        ax.axhline({"p_over_t4": 1, "e_over_t4": 3, "s_over_t3": 4}[key] * STEFAN_BOLTZMANN_P_OVER_T4,
                   color="grey", lw=0.8, ls="--")
        ax.set(xlabel="T [GeV]", ylabel=name)
        ax.legend(fontsize=7)
    axes[3].set(xlabel="T [GeV]", ylabel="quasi-particle mass [GeV]")
    axes[3].legend(fontsize=6)
    err_axes[0].legend(fontsize=8)
    fig.suptitle("Quasi-particle QCD EoS fit: raw vs expanded input (dashed: Stefan-Boltzmann limit)")
    fig.tight_layout()
    err_fig.tight_layout()
    return {"fig3_eos": fig, "fig3_errors": err_fig}


def _cost(config) -> float:
    """The relative cost of a run for `symsweep plan`: its time scales with the steps."""
    return config.steps


TASK = Task(
    name="qcd_eos",
    config_cls=QcdEosConfig,
    run=run,
    summary_metrics=("loss", "mse_pressure", "mse_energy_density", "mse_entropy",
                     "mse_pressure_low", "mse_energy_density_low"),
    aggregate=aggregate,
    figures=figures,
    baseline={"expanded": False},
    description="quasi-particle QCD EoS with neural masses fitted to HotQCD, raw T vs (T, c) (paper Sec. 2.2, 6.2.1)",
    cost=_cost,
)
