"""QCD equation of state: quadrature and thermodynamics against closed forms, data, a short fit."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.integrate import quad
from scipy.special import kn

from conftest import SHARED_DATA
from symsweep import SimpleContext, get_task
from symsweep.tasks.qcd_eos.hotqcd import STEFAN_BOLTZMANN_P_OVER_T4, TEMPERATURES_GEV, load_lattice, parametrized_eos
from symsweep.tasks.qcd_eos.task import SPECIES, QcdEosConfig, ln_z_over_v, quadrature_rule, thermodynamics

TASK = get_task("qcd_eos")
HOTQCD = SHARED_DATA / "hotqcd"
TINY = dict(steps=30, residual_blocks=2, width=8, log_every=10, data="parametrization")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def rule_of(kind: str, points: int = 50):
    return tuple(torch.tensor(a) for a in quadrature_rule(kind, points))


def integral(a: float, eta: float, kind: str) -> float:
    """int_0^inf x^2 eta ln(1 + eta exp(-sqrt(x^2 + a^2))) dx by the task's quadrature."""
    one = torch.ones(1, 1, dtype=torch.float64)
    return float(ln_z_over_v(one, a * one, 2 * math.pi ** 2, eta, rule_of(kind)))


# ----------------------------------------------------------------------------- quadrature


@pytest.mark.parametrize("kind", ["laguerre", "legendre"])
def test_massless_integrals_match_the_stefan_boltzmann_closed_forms(kind):
    assert integral(0.0, -1.0, kind) == pytest.approx(math.pi ** 4 / 45, rel=1e-5)       # bosons: 2 zeta(4)
    assert integral(0.0, +1.0, kind) == pytest.approx(7 * math.pi ** 4 / 360, rel=1e-9)  # fermions: 7/8 of it


@pytest.mark.parametrize("kind", ["laguerre", "legendre"])
@pytest.mark.parametrize("a", [0.5, 2.0, 8.0])
def test_massive_integrals_match_the_bessel_series(kind, a):
    """int x^2 eta ln(1 + eta e^-E) dx = a^2 sum_n (-eta)^(n+1) K_2(n a) / n^2."""
    for eta in (+1.0, -1.0):
        series = a * a * sum((-eta) ** (n + 1) * kn(2, n * a) / n ** 2 for n in range(1, 400))
        assert integral(a, eta, kind) == pytest.approx(series, rel=1e-6)


def test_massless_gas_is_stefan_boltzmann_with_no_trace_anomaly():
    t = torch.linspace(0.15, 0.4, 6, dtype=torch.float64)[:, None].requires_grad_(True)
    zero = [0 * t for _ in SPECIES]
    th = thermodynamics(t, zero, rule_of("laguerre"), create_graph=False)
    sb = STEFAN_BOLTZMANN_P_OVER_T4
    np.testing.assert_allclose(th["p_over_t4"].detach(), sb, rtol=1e-6)
    np.testing.assert_allclose(th["e_over_t4"].detach(), 3 * sb, rtol=1e-6)
    np.testing.assert_allclose(th["s_over_t3"].detach(), 4 * sb, rtol=1e-6)


def test_energy_density_by_autograd_matches_the_ideal_gas_integral_for_constant_masses():
    masses = (0.3, 0.5, 0.7)  # GeV, constant in T: e = sum_i d_i/(2 pi^2) int p^2 E / (e^(E/T) + eta) dp
    t0 = 0.2
    t = torch.tensor([[t0]], dtype=torch.float64, requires_grad=True)
    th = thermodynamics(t, [torch.full_like(t, m) for m in masses], rule_of("laguerre"), create_graph=False)
    e = 0.0
    for m, (_, d, eta) in zip(masses, SPECIES):
        f = lambda p: p * p * math.sqrt(p * p + m * m) / (math.exp(math.sqrt(p * p + m * m) / t0) + eta)  # noqa: E731
        e += d / (2 * math.pi ** 2) * quad(f, 0, 50 * t0, epsabs=0, epsrel=1e-12)[0]
    assert float(th["e_over_t4"]) == pytest.approx(e / t0 ** 4, rel=1e-7)


def test_entropy_is_dp_dt_with_temperature_dependent_masses():
    """s = (P + e)/T with e = T^2 d(lnZ/V)/dT (total derivative) is exactly dP/dT."""
    rule = rule_of("laguerre")

    def pressure(tt):
        t = torch.tensor([[tt]], dtype=torch.float64, requires_grad=True)
        masses = [0.2 + 2 * t, 0.4 + t ** 2, 0.8 - t]
        return thermodynamics(t, masses, rule, create_graph=False), tt

    th, tt = pressure(0.25)
    h = 1e-5
    dp_dt = (float(pressure(tt + h)[0]["p_over_t4"]) * (tt + h) ** 4
             - float(pressure(tt - h)[0]["p_over_t4"]) * (tt - h) ** 4) / (2 * h)
    assert float(th["s_over_t3"]) * tt ** 3 == pytest.approx(dp_dt, rel=1e-7)


# ----------------------------------------------------------------------------- data


needs_lattice = pytest.mark.skipif(not (HOTQCD / "hotqcd_1407.6387_err.csv").exists(),
                                   reason=f"shared HotQCD data not found at {HOTQCD}")


@needs_lattice
def test_lattice_points_load_from_the_data_root_and_are_consistent():
    for root in (HOTQCD, SHARED_DATA):  # the file's folder, or a root holding hotqcd/
        lattice = load_lattice(str(root))
        assert len(lattice["T"]) == 50
        np.testing.assert_allclose(lattice["T"], TEMPERATURES_GEV, atol=1e-12)
    # s/T^3 = P/T^4 + e/T^4 and (e - 3P)/T^4 = trace anomaly, up to the table's rounding
    np.testing.assert_allclose(lattice["s_over_t3"], lattice["p_over_t4"] + lattice["e_over_t4"], atol=0.02)
    np.testing.assert_allclose(lattice["trace_anomaly"], lattice["e_over_t4"] - 3 * lattice["p_over_t4"],
                               atol=0.02)


def test_missing_lattice_file_says_where_it_looked_and_the_alternative(tmp_path):
    with pytest.raises(FileNotFoundError, match="pass --data-root .* or set data: parametrization"):
        load_lattice(str(tmp_path))


@pytest.mark.skipif(not (HOTQCD / "AnalysisToolbox_HotQCDEOS_parametrization_T130-300.txt").exists(),
                    reason=f"shared HotQCD data not found at {HOTQCD}")
def test_parametrization_reproduces_the_analysis_toolbox_table():
    ref = np.loadtxt(HOTQCD / "AnalysisToolbox_HotQCDEOS_parametrization_T130-300.txt")
    eos = parametrized_eos(ref[:, 0] / 1000)
    for key, col in (("p_over_t4", 1), ("e_over_t4", 2), ("s_over_t3", 3)):
        np.testing.assert_allclose(eos[key], ref[:, col], rtol=1e-6)


# ----------------------------------------------------------------------------- runs


@pytest.mark.parametrize("expanded", [False, True])
def test_short_fit_runs_reproducibly_and_learns(expanded):
    cfg = QcdEosConfig(expanded=expanded, **TINY)
    r1 = TASK.run(cfg, 3, ctx := SimpleContext())
    r2 = TASK.run(cfg, 3, SimpleContext())
    assert r1.metrics == r2.metrics
    m = r1.metrics
    assert all(math.isfinite(v) for v in m.values())
    assert m["loss"] == pytest.approx(m["mse_pressure"] + m["mse_energy_density"])
    assert m["loss"] < ctx.history[0]["loss"]
    eos = ctx.artifacts["eos"]
    assert eos["pred_p_over_t4"].shape == (50,) and eos["grid_T"].shape == (99,)
    assert all(0 < eos[f"mass_{s}"].min() and eos[f"mass_{s}"].max() < 3 for s, _, _ in SPECIES)


@needs_lattice
def test_a_lattice_fit_reads_the_points_and_their_errors_from_the_data_root():
    res = TASK.run(QcdEosConfig(**{**TINY, "data": "lattice"}), 0, ctx := SimpleContext(data_root=str(SHARED_DATA)))
    eos = ctx.artifacts["eos"]
    lattice = load_lattice(str(SHARED_DATA))
    np.testing.assert_array_equal(eos["true_e_over_t4"], lattice["e_over_t4"])
    np.testing.assert_array_equal(eos["err_e_over_t4"], lattice["d_e_over_t4"])
    assert math.isfinite(res.metrics["loss"])


def test_keep_best_reports_the_lowest_loss_seen():
    res = TASK.run(QcdEosConfig(**{**TINY, "log_every": 1, "lr": 3e-2}), 0, ctx := SimpleContext())
    assert res.metrics["loss"] <= min(h["loss"] for h in ctx.history) + 1e-12
    last = TASK.run(QcdEosConfig(**{**TINY, "lr": 3e-2, "keep_best": False}), 0, SimpleContext())
    assert last.metrics["reported_step"] == TINY["steps"]


def test_parametrization_targets_and_entropy_fit():
    res = TASK.run(QcdEosConfig(fit_targets=("entropy",), **TINY), 0, ctx := SimpleContext())
    assert res.metrics["loss"] == pytest.approx(res.metrics["mse_entropy"])
    np.testing.assert_allclose(ctx.artifacts["eos"]["true_p_over_t4"], parametrized_eos(TEMPERATURES_GEV)["p_over_t4"])


def test_aggregate_compares_raw_with_expanded_and_draws_fig3():
    rows, store = [], {}
    for i, (expanded, seed) in enumerate([(False, 0), (False, 1), (True, 0), (True, 1)]):
        res = TASK.run(QcdEosConfig(expanded=expanded, **TINY), seed, ctx := SimpleContext())
        rows.append({"run_id": f"r{i}", "status": "completed", "seed": seed, "cfg_expanded": expanded,
                     **{f"metric_{k}": v for k, v in res.metrics.items()}})
        store[f"r{i}"] = ctx.artifacts
    runs = pd.DataFrame(rows)
    tables = TASK.aggregate(runs, pd.DataFrame(), lambda rid, name: store[rid][name])
    comp = tables["qcd_comparison"]
    assert comp["input"].tolist() == ["raw T", "expanded (T, c)", "expanded / raw"]
    ratio = comp.loc[1, "mse_pressure_mean"] / comp.loc[0, "mse_pressure_mean"]
    assert comp.loc[2, "mse_pressure_mean"] == pytest.approx(ratio)
    assert len(tables["qcd_curves"]) == 4 * 99
    figs = TASK.figures(tables, runs, pd.DataFrame())
    assert set(figs) == {"fig3_eos", "fig3_errors"}


@pytest.mark.parametrize("bad", [dict(fit_targets=("pressure", "cv")), dict(fit_targets=()), dict(steps=0),
                                 dict(quadrature_points=1), dict(mass_max_gev=0.0)])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        QcdEosConfig(**bad)


def test_mass_nets_use_the_papers_sigmoid_between_blocks_by_default():
    from symsweep.tasks.qcd_eos.task import MassNets
    assert QcdEosConfig().activation == "sigmoid"
    assert isinstance(MassNets(1, QcdEosConfig()).act, torch.nn.Sigmoid)
    assert isinstance(MassNets(1, QcdEosConfig(activation="silu")).act, torch.nn.SiLU)
