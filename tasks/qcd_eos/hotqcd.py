"""HotQCD (2+1)-flavor lattice QCD equation of state at zero baryon density, as numbers.

Physics source: A. Bazavov et al. (HotQCD), "Equation of state in (2+1)-flavor QCD",
Phys. Rev. D 90, 094503 (2014), arXiv:1407.6387.

* `load_lattice`: the 50 continuum-extrapolated points T = 155..400 MeV (5 MeV steps) with
  1-sigma errors, as compiled by a co-author of the target paper (github leefp29/withLXWang,
  data/hotqcd_1407.6387_err.csv; see ../shared/data/hotqcd/SOURCE.md), read from the data
  root. That file carries no licence, so symsweep does not ship a copy.
* `pressure_over_t4`: the HotQCD pressure parametrization (Eq. 16 of the paper), valid for
  130-400 MeV, from which energy density and entropy follow by thermodynamics. It needs no
  data file (the `parametrization` data source of the qcd_eos task).
"""
from __future__ import annotations

import math

import numpy as np
import torch

TC_GEV = 0.154
"""The parametrization's T_c."""
STEFAN_BOLTZMANN_P_OVER_T4 = 95 * math.pi ** 2 / 180
"""Massless gas of gluons and u, d, s quarks: (16 + 7/8 * 36) * pi^2 / 90."""

LATTICE_FILE = "hotqcd_1407.6387_err.csv"
COLUMNS = {"T": "T", "trace_anomaly": "TraceA", "p_over_t4": "P/T^4", "e_over_t4": "E/T^4", "s_over_t3": "s/T^3",
           "d_trace_anomaly": "dTraceA", "d_p_over_t4": "dP", "d_e_over_t4": "dE", "d_s_over_t3": "ds"}
TEMPERATURES_GEV = np.round(np.arange(0.155, 0.4001, 0.005), 3)
"""The 50 temperatures of the lattice points, T = 155..400 MeV in 5 MeV steps."""


def load_lattice(data_root: str | None) -> dict[str, np.ndarray]:
    """The 50 HotQCD lattice points (T in GeV; the rest dimensionless) by column name.

    Read from `hotqcd_1407.6387_err.csv` under the data root or its `hotqcd/` folder. The
    file carries no licence, so it is not shipped with symsweep (see ../shared/data/hotqcd/
    SOURCE.md); `data: parametrization` needs no file.
    """
    import os
    candidates = [os.path.join(data_root, sub, LATTICE_FILE) for sub in ("", "hotqcd")] if data_root else []
    for path in candidates:
        if os.path.isfile(path):
            import pandas as pd
            table = pd.read_csv(path)
            missing = [c for c in COLUMNS.values() if c not in table]
            if missing:
                raise ValueError(f"{path}: missing columns {missing}; expected {list(COLUMNS.values())}")
            return {ours: table[theirs].to_numpy(dtype=np.float64) for ours, theirs in COLUMNS.items()}
    raise FileNotFoundError(
        f"HotQCD lattice points ({LATTICE_FILE}) not found in {candidates or 'no data root'}: pass --data-root "
        f"(the folder holding the file or its hotqcd/ folder) or set data: parametrization")


# Eq. 16 of arXiv:1407.6387.
_CT, _T0 = 3.8706, 0.9761
_AN, _BN, _CN, _DN = -8.7704, 3.9200, 0.0, 0.3419
_AD, _BD, _CD, _DD = -1.2600, 0.8425, 0.0, -0.0475


def pressure_over_t4(t_gev: torch.Tensor) -> torch.Tensor:
    """p/T^4 of the HotQCD parametrization (differentiable in T)."""
    t = t_gev / TC_GEV
    num = STEFAN_BOLTZMANN_P_OVER_T4 + _AN / t + _BN / t ** 2 + _CN / t ** 3 + _DN / t ** 4
    den = 1 + _AD / t + _BD / t ** 2 + _CD / t ** 3 + _DD / t ** 4
    return 0.5 * (1 + torch.tanh(_CT * (t - _T0))) * num / den


def parametrized_eos(t_gev: np.ndarray) -> dict[str, np.ndarray]:
    """p/T^4, e/T^4, s/T^3 and (e-3p)/T^4 of the parametrization at temperatures t_gev."""
    t = torch.tensor(np.asarray(t_gev, dtype=np.float64), requires_grad=True)
    p = pressure_over_t4(t)
    (dp_dt,) = torch.autograd.grad(p.sum(), t)
    trace = (t * dp_dt).detach().numpy()           # (e - 3p)/T^4 = T d(p/T^4)/dT
    p = p.detach().numpy()
    return {"p_over_t4": p, "e_over_t4": trace + 3 * p, "s_over_t3": trace + 4 * p, "trace_anomaly": trace}
