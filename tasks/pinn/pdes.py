"""The registry of the 20 PDEs: config name -> builder, and what each needs from the data root."""
from __future__ import annotations

from typing import Callable

from symsweep.tasks.pinn import pdes_burgers_poisson as bp
from symsweep.tasks.pinn import pdes_chaotic as ch
from symsweep.tasks.pinn import pdes_flow_wave as fw
from symsweep.tasks.pinn import pdes_heat as ht
from symsweep.tasks.pinn.config import PDE_NAMES
from symsweep.tasks.pinn.data import DataFiles
from symsweep.tasks.pinn.problem import Problem

BUILDERS: dict[str, Callable[[DataFiles], Problem]] = {
    "burgers1d": bp.burgers1d,
    "burgers2d": bp.burgers2d,
    "poisson2d_classic": bp.poisson2d_classic,
    "poisson_boltzmann2d": bp.poisson_boltzmann2d,
    "poisson3d_complex_geometry": bp.poisson3d_complex_geometry,
    "poisson2d_many_area": bp.poisson2d_many_area,
    "heat2d_varying_coef": ht.heat2d_varying_coef,
    "heat2d_multiscale": ht.heat2d_multiscale,
    "heat2d_complex_geometry": ht.heat2d_complex_geometry,
    "heat2d_long_time": ht.heat2d_long_time,
    "ns2d_lid_driven": fw.ns2d_lid_driven,
    "ns2d_back_step": fw.ns2d_back_step,
    "ns2d_long_time": fw.ns2d_long_time,
    "wave1d": fw.wave1d,
    "wave2d_heterogeneous": fw.wave2d_heterogeneous,
    "wave2d_long_time": fw.wave2d_long_time,
    "kuramoto_sivashinsky": ch.kuramoto_sivashinsky,
    "gray_scott": ch.gray_scott,
    "poisson_nd": bp.poisson_nd,
    "heat_nd": ht.heat_nd,
}
assert tuple(BUILDERS) == PDE_NAMES, "registry and config Literal must list the same PDEs in the same order"

# Files a PDE cannot be *defined* without (coefficients, initial fields); reference files are optional.
DEFINING_FILES: dict[str, tuple[str, ...]] = {
    "burgers2d": ("burgers2d_init_u_0.dat", "burgers2d_init_v_0.dat"),
    "poisson2d_many_area": ("poisson_a_coef.dat", "poisson_f_coef.dat"),
    "heat2d_varying_coef": ("heat_2d_coef_256.dat",),
    "wave2d_heterogeneous": ("darcy_2d_coef_256.dat",),
}


def build(name: str, files: DataFiles) -> Problem:
    if name not in BUILDERS:
        raise ValueError(f"unknown PDE {name!r}; choose one of: {', '.join(PDE_NAMES)}")
    return BUILDERS[name](files)
