"""Ising energies and degeneracies against known answers and brute force."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from symsweep import SimpleContext, get_task
from symsweep.tasks.ising import IsingConfig, all_configurations, bond_sum_and_magnetization, energy

TASK = get_task("ising")

# Number of configurations at each energy of the 4x4 periodic Ising model with J = 1, h = 0
# (the classic exact density of states, e.g. Beale, PRL 76, 78 (1996)).
DOS_4X4 = {-32: 2, -24: 32, -20: 64, -16: 424, -12: 1728, -8: 6688, -4: 13568, 0: 20524,
           4: 13568, 8: 6688, 12: 1728, 16: 424, 20: 64, 24: 32, 32: 2}


def brute_energy(spins: np.ndarray, j: float, h: float) -> float:
    size = spins.shape[0]
    e = 0.0
    for r, c in itertools.product(range(size), repeat=2):
        e -= j * spins[r, c] * (spins[r, (c + 1) % size] + spins[(r + 1) % size, c])
        e -= h * spins[r, c]
    return e


@pytest.mark.parametrize("size", [2, 3, 5, 10])
@pytest.mark.parametrize("j,h", [(1.0, 0.0), (1.0, 0.5), (-0.7, 1.3)])
def test_all_up_energy_is_minus_2jn_minus_hn(size, j, h):
    n = size * size
    up = np.ones((1, size, size), dtype=np.int8)
    assert energy(up, j, h)[0] == pytest.approx(-2 * j * n - h * n)
    assert energy(-up, j, h)[0] == pytest.approx(-2 * j * n + h * n)


def test_vectorized_energy_matches_a_loop_on_every_3x3_configuration():
    spins = all_configurations(3, 0, 2 ** 9)
    assert len({s.tobytes() for s in spins}) == 512
    for s, e in zip(spins, energy(spins, 1.0, 0.25)):
        assert e == pytest.approx(brute_energy(s, 1.0, 0.25))


def test_exact_4x4_reproduces_the_known_density_of_states():
    res = TASK.run(IsingConfig(lattice_size=4, mode="exact", field_h=0.5), 0, ctx := SimpleContext())
    arr = ctx.artifacts["levels"]
    assert dict(zip(arr["energy_h0"].astype(int).tolist(), arr["count_h0"].tolist())) == DOS_4X4
    m = res.metrics
    assert m["num_configs"] == 2 ** 16 and m["exact"] == 1
    assert (m["ground_energy_h0"], m["ground_degeneracy_h0"]) == (-32, 2)      # all up, all down
    assert (m["ground_energy_h"], m["ground_degeneracy_h"]) == (-32 - 0.5 * 16, 1)  # the field picks all up
    assert m["num_distinct_energies_h"] > m["num_distinct_energies_h0"]
    assert int(arr["count_h"].sum()) == 2 ** 16


def test_zero_field_levels_are_flip_symmetric_and_a_field_splits_them():
    res = TASK.run(IsingConfig(lattice_size=3, mode="exact"), 0, ctx := SimpleContext())
    arr = ctx.artifacts["levels"]
    # h = 0: every level holds s and -s, so every degeneracy is even
    assert np.all(arr["count_h0"] % 2 == 0)
    assert res.metrics["max_degeneracy_h"] < res.metrics["max_degeneracy_h0"]
    brute = {}
    for s in all_configurations(3, 0, 512):
        key = round(brute_energy(s, 1.0, 0.0), 9)
        brute[key] = brute.get(key, 0) + 1
    assert dict(zip(arr["energy_h0"].tolist(), arr["count_h0"].tolist())) == brute


def test_sampling_is_seeded_and_counts_degeneracy_among_the_samples():
    cfg = IsingConfig(lattice_size=10, n_samples=1000)
    a = TASK.run(cfg, 7, ctx := SimpleContext())
    b = TASK.run(cfg, 7, SimpleContext())
    c = TASK.run(cfg, 8, SimpleContext())
    assert a.metrics == b.metrics and a.metrics != c.metrics
    assert a.metrics["num_configs"] == 1000 and a.metrics["exact"] == 0
    arr = ctx.artifacts["levels"]
    assert arr["sample_energy_h0"].shape == (1000,)
    values, counts = np.unique(arr["sample_energy_h"], return_counts=True)
    np.testing.assert_allclose(values, arr["energy_h"])
    np.testing.assert_array_equal(counts, arr["count_h"])
    bonds, mag = bond_sum_and_magnetization(np.ones((1, 10, 10), dtype=np.int8))
    assert (bonds[0], mag[0]) == (200, 100)


def test_aggregate_and_fig5b():
    rows, store = [], {}
    for i, size in enumerate([3, 6]):
        res = TASK.run(IsingConfig(lattice_size=size, n_samples=200), 0, ctx := SimpleContext())
        rows.append({"run_id": f"r{i}", "status": "completed", "seed": 0, "cfg_lattice_size": size,
                     "cfg_field_h": 0.5, **{f"metric_{k}": v for k, v in res.metrics.items()}})
        store[f"r{i}"] = ctx.artifacts
    runs = pd.DataFrame(rows)
    tables = TASK.aggregate(runs, pd.DataFrame(), lambda rid, name: store[rid][name])
    lv = tables["ising_levels"]
    assert lv[(lv["lattice_size"] == 3) & (lv["field"] == 0)]["degeneracy"].sum() == 512
    assert lv[(lv["lattice_size"] == 6) & (lv["field"] == 0.5)]["degeneracy"].sum() == 200
    figs = TASK.figures(tables, runs, pd.DataFrame())
    assert list(figs) == ["fig5b_energies"] and len(figs["fig5b_energies"].axes) == 4


@pytest.mark.parametrize("bad", [dict(lattice_size=1), dict(lattice_size=6, mode="exact"), dict(n_samples=0),
                                 dict(field_h=0.0)])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        IsingConfig(**bad)
