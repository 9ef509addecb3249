"""PINN repeats on the 20 PINNacle PDEs with DeepXDE, raw vs expanded input (paper Sec. 2.2, 6.2.2).

A run trains DeepXDE's FNN (5 x 100, tanh, Glorot normal) with Adam (lr 1e-3) on one
PDE for `iterations` steps, on the raw input (x, t) or the expanded input
(x, t, c_x, c_t) with constant means c_*, and reports the final loss of every term and
the L2 relative error and MSE against the PDE's reference solution (None when there is
none). Modules:

    config      PinnConfig (the run's parameters)
    problem     Problem: what a PDE definition gives the trainer; DDE_BACKEND is set here
    pdes*       the 20 PDE definitions and their registry
    reference   reference sources (analytic / PINNacle file / our solver) and error metrics
    solvers     numerical references: KS and Gray-Scott spectral, Burgers 2D, wave, Poisson
    data        finding and parsing PINNacle's files under the data root
    train       one run
    ensemble    a trial's seeds trained together (vectorize: on)
    aggregate   raw vs expanded per PDE, paired tests, box plots (Fig. 4)
    download    download_pinnacle(dest): fetch the upstream files (needs internet)
"""
from __future__ import annotations

from symsweep.api import Task
from symsweep.tasks.pinn.aggregate import aggregate_pinn, pinn_figures
from symsweep.tasks.pinn.config import PDE_NAMES, PinnConfig
from symsweep.tasks.pinn.download import download_pinnacle
from symsweep.tasks.pinn.ensemble import run_many
from symsweep.tasks.pinn.train import run

__all__ = ["PDE_NAMES", "PinnConfig", "TASK", "run"]

def _cost(config) -> float:
    """The relative cost of a run for `symsweep plan`: its time scales with the iterations."""
    return config.iterations


TASK = Task(
    name="pinn",
    config_cls=PinnConfig,
    run=run,
    run_many=run_many,
    batches=lambda config: config.vectorize == "on",  # off: each seed exactly its own run, as before
    summary_metrics=("l2re", "mse", "loss"),
    aggregate=aggregate_pinn,
    figures=pinn_figures,
    baseline={"expansion": "raw"},
    downloads={"pinnacle": download_pinnacle},
    description="PINN on a PINNacle PDE (DeepXDE), raw or mean-expanded input (paper Sec. 2.2, 6.2.2)",
    cost=_cost,
)
