"""The PINN task's configuration: one frozen dataclass, validated on construction."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

# The 20 PINNacle PDEs of the paper's Fig. 4 (Sec. 6.2.2), in PINNacle's benchmark order.
PdeName = Literal[
    "burgers1d", "burgers2d",
    "poisson2d_classic", "poisson_boltzmann2d", "poisson3d_complex_geometry", "poisson2d_many_area",
    "heat2d_varying_coef", "heat2d_multiscale", "heat2d_complex_geometry", "heat2d_long_time",
    "ns2d_lid_driven", "ns2d_back_step", "ns2d_long_time",
    "wave1d", "wave2d_heterogeneous", "wave2d_long_time",
    "kuramoto_sivashinsky", "gray_scott",
    "poisson_nd", "heat_nd",
]
PDE_NAMES: tuple[str, ...] = get_args(PdeName)
EXPANSIONS = ("raw", "expanded")
EXPANSION_CONSTANTS = ("domain_mean", "bbox_center", "collocation_mean")
REFERENCES = ("auto", "file", "solver", "none")


@dataclass(frozen=True)
class PinnConfig:
    pde: PdeName = "burgers1d"
    """Which PINNacle PDE (see docs/tasks/pinn.md for equations, domains and reference sources)."""
    expansion: Literal["raw", "expanded"] = "raw"
    """raw: the network sees (x, t); expanded: (x, t, c_x, c_t) with constant c_* (paper Sec. 2.2)."""
    expansion_constant: Literal["domain_mean", "bbox_center", "collocation_mean"] = "domain_mean"
    """Which mean the constants are: of each variable over the space-time domain (its centroid,
    holes excluded), the bounding box's centre, or the mean of the training collocation points
    (biased towards t = 0 by the initial points, and by PINNacle's sampling of holed domains)."""
    iterations: int = 20000
    """Adam steps (paper and PINNacle: 20000)."""
    log_every: int = 500
    """History interval in iterations: loss terms, and l2re/mse when a reference exists."""
    lr: float = 1e-3
    """Adam learning rate (PINNacle's default)."""
    hidden_layers: int = 5
    """Hidden layers of the FNN (paper: 5)."""
    width: int = 100
    """Units per hidden layer (paper: 100)."""
    activation: Literal["tanh", "sin", "relu", "silu"] = "tanh"
    """Hidden activation (PINNacle: tanh)."""
    initializer: Literal["Glorot normal", "Glorot uniform"] = "Glorot normal"
    """Weight initializer (PINNacle: Glorot normal; biases start at zero)."""
    n_domain: int | None = None
    """Interior collocation points; None = the PDE's PINNacle default (8192, x4 for some PDEs)."""
    n_boundary: int | None = None
    """Boundary collocation points; None = PINNacle default (2048, x4 for some PDEs)."""
    n_initial: int | None = None
    """Initial-time collocation points of time-dependent PDEs; None = PINNacle default."""
    reference: Literal["auto", "file", "solver", "none"] = "auto"
    """Reference for l2re/mse: auto = analytic, else PINNacle file under the data root, else our
    numerical solver, else none; file / solver force that source; none skips the error metrics."""
    float64: bool = False
    """Train in float64 (PINNacle: float32)."""
    vectorize: Literal["off", "on"] = "off"
    """on: the seeds a trial packs (`runs_per_trial`) train together as one network of stacked
    weights (tasks/pinn/ensemble.py), each from its own initial weights with its own Adam
    state; equal to its own run up to the order of floating-point sums (tested in float64).
    off: one after another, each exactly its own run."""

    # Settings added after sweeps had run: left out of the run id (and row) at their default.
    OMIT_AT_DEFAULT = {"vectorize": "off"}

    # Budgets no one can mean (steps: 99999999999999999999999) are refused when a spec is read,
    # naming the range. A class attribute, not a field: run ids hash the fields only.
    BUDGET_RANGES = {"iterations": (1, 10_000_000), "n_domain": (1, 10_000_000), "n_boundary": (1, 10_000_000),
                     "n_initial": (1, 10_000_000), "hidden_layers": (1, 1_000), "width": (1, 100_000)}

    def __post_init__(self) -> None:
        _check_choice("pde", self.pde, PDE_NAMES)
        _check_choice("expansion", self.expansion, EXPANSIONS)
        _check_choice("expansion_constant", self.expansion_constant, EXPANSION_CONSTANTS)
        _check_choice("reference", self.reference, REFERENCES)
        for name in ("iterations", "log_every", "hidden_layers", "width"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("n_domain", "n_boundary", "n_initial"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None (PINNacle default), got {value}")
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")

    @property
    def expanded(self) -> bool:
        return self.expansion == "expanded"


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} {value!r} is not one of: {', '.join(allowed)}")
