"""`symsweep reproduce`: claims as data, verdicts computed from results (synthetic ones here)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO
from symsweep.reproduce import BEGIN, END, VERDICTS, evaluate, load_claims, markdown, write_table
from symsweep.store import SweepStore, runs_fingerprint

CLAIMS = """
- id: up
  figure: Fig. X
  claim: expansion raises accuracy
  paper_scale: big
  specs: [cmp]
  rule: compare
  metric: acc
  axis: factor
  baseline: 1
  better: higher
  scale: [epochs]
- id: order
  claim: models ordered a > b > c
  specs: [ord]
  rule: order
  metric: acc
  by: model
  expected: [a, b, c]
  better: higher
- id: most
  claim: most units improve
  specs: [frac]
  rule: fraction
  metric: err
  axis: input
  baseline: raw
  better: lower
  unit: pde
  fraction: 0.75
- id: missing
  claim: never run
  specs: [nowhere, nowhere-cpu]
  rule: compare
  metric: acc
  axis: factor
  baseline: 1
  better: higher
"""


def _sweep(root: Path, name: str, rows: list[dict]) -> None:
    store = SweepStore(str(root / name))
    store.write_spec({"name": name, "task": "synthetic"})
    for i, row in enumerate(rows):
        store.write_run({"run_id": f"{name}-{i}", "status": "completed", "attempt": 1, **row})


def _compare_rows(effects: dict[int, float], seeds: int = 6, spread: float = 0.01) -> list[dict]:
    """factor levels with their true effect on acc; seeds share a seed effect (paired)."""
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(0, 0.05, seeds)
    return [{"seed": s, "cfg_factor": f, "cfg_epochs": 3,
             "metric_acc": 0.8 + effects.get(f, 0.0) + seed_effect[s] + rng.normal(0, spread)}
            for f in [1, *effects] for s in range(seeds)]


def _claims(tmp_path: Path, text: str = CLAIMS) -> Path:
    path = tmp_path / "claims.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def _verdicts(tmp_path: Path, results: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in evaluate(load_claims(_claims(tmp_path)), str(results)):
        out.setdefault(row.claim.id, []).append(row.verdict)
    return out


@pytest.mark.parametrize("effects, verdict", [
    ({2: 0.05, 3: 0.04}, "reproduced"),         # both levels clearly better
    ({2: 0.05, 3: 0.0}, "inconclusive"),        # one better, one undecided
    ({2: 0.05, 3: -0.05}, "contradicted"),      # one better, one clearly worse: not every level improves
    ({2: -0.05, 3: -0.04}, "contradicted"),     # both worse
    ({2: 0.0}, "inconclusive"),                 # no difference: the interval spans 0
])
def test_compare_verdicts(tmp_path, effects, verdict):
    _sweep(tmp_path / "res", "cmp", _compare_rows(effects))
    assert _verdicts(tmp_path, tmp_path / "res")["up"] == [verdict]


@pytest.mark.parametrize("means, verdict", [
    ({"a": 0.9, "b": 0.8, "c": 0.7}, "reproduced"),
    ({"a": 0.9, "b": 0.7, "c": 0.8}, "contradicted"),   # b < c, separated: tau +1/3 does not rescue it
    ({"a": 0.7, "b": 0.8, "c": 0.9}, "contradicted"),   # reversed
    ({"a": 0.9, "b": 0.8, "c": 0.8}, "inconclusive"),   # b and c tied
])
def test_order_verdicts(tmp_path, means, verdict):
    rng = np.random.default_rng(1)
    rows = [{"seed": s, "cfg_model": m, "metric_acc": mu + rng.normal(0, 0.005)} for m, mu in means.items()
            for s in range(4)]
    _sweep(tmp_path / "res", "ord", rows)
    assert _verdicts(tmp_path, tmp_path / "res")["order"] == [verdict]


def test_an_order_on_an_aggregate_table_shows_the_also_metrics_with_their_own_intervals(tmp_path):
    """The verdict is the main metric's; an `also` metric is ranked beside it with the
    interval of its own METRIC_ci_low/high columns, and does not change the verdict."""
    claims = _claims(tmp_path, """
    - id: rd
      claim: a > b > c by rd
      specs: [reps]
      rule: order
      table: rd
      metric: rd
      also: [rd_flat]
      by: model
      expected: [a, b, c]
      better: higher
    """)
    _sweep(tmp_path / "res", "reps", [{"seed": s, "cfg_model": m} for m in "abc" for s in range(3)])
    store = SweepStore(str(tmp_path / "res" / "reps"))
    store.write_aggregate("rd", pd.DataFrame({
        "model": ["a", "b", "c"], "rd": [0.3, 0.2, 0.1], "ci_low": [0.29, 0.19, 0.09], "ci_high": [0.31, 0.21, 0.11],
        "rd_flat": [1.0, 3.0, 2.0], "rd_flat_ci_low": [0.5, 2.5, 1.5], "rd_flat_ci_high": [1.5, 3.5, 2.5]}),
        runs_fingerprint(store.read_runs()))
    (row,) = evaluate(load_claims(claims), str(tmp_path / "res"))
    assert row.verdict == "reproduced"
    main, also = row.measured.split("; also rd_flat (not used for the verdict): ")
    assert main.startswith("a 0.3 [0.29, 0.31] > b 0.2 [0.19, 0.21] > c 0.1 [0.09, 0.11]")
    assert also.startswith("b 3 [2.5, 3.5] > c 2 [1.5, 2.5] > a 1 [0.5, 1.5]") and "tau of the means -0.33" in also


@pytest.mark.parametrize("improved, verdict", [(4, "reproduced"), (1, "contradicted"), (0, "contradicted")])
def test_fraction_verdicts(tmp_path, improved, verdict):
    rng = np.random.default_rng(2)
    rows = []
    for u in range(4):
        shift = -0.2 if u < improved else 0.2
        for s in range(5):
            base = 1.0 + rng.normal(0, 0.01)
            rows += [{"seed": s, "cfg_pde": f"p{u}", "cfg_input": "raw", "metric_err": base},
                     {"seed": s, "cfg_pde": f"p{u}", "cfg_input": "expanded", "metric_err": base + shift}]
    _sweep(tmp_path / "res", "frac", rows)
    assert _verdicts(tmp_path, tmp_path / "res")["most"] == [verdict]


def test_a_claim_without_results_is_not_run_and_names_the_specs(tmp_path):
    (tmp_path / "res").mkdir()
    rows = evaluate(load_claims(_claims(tmp_path)), str(tmp_path / "res"))
    missing = next(r for r in rows if r.claim.id == "missing")
    assert missing.verdict == "not run" and "sweeps/nowhere.yaml" in missing.measured
    assert {r.verdict for r in rows} == {"not run"}


def test_each_sweep_found_gets_its_row_with_the_scale_it_ran_at(tmp_path, cli):
    _sweep(tmp_path / "res", "cmp", _compare_rows({2: 0.05}))
    notes = tmp_path / "reproduction.md"
    notes.write_text(f"# Reproduction\n\nintro kept\n\n{BEGIN}\nold table\n{END}\n\nreading notes kept\n")
    res = cli("reproduce", str(tmp_path / "res"), "--claims", str(_claims(tmp_path)), "--out", str(notes))
    assert res.returncode == 0, res.stderr
    assert "wrote 4 rows" in res.stdout and "1 reproduced" in res.stdout and "3 not run" in res.stdout
    text = notes.read_text()
    assert "intro kept" in text and "reading notes kept" in text and "old table" not in text
    row = next(line for line in text.splitlines() if line.startswith("| Fig. X"))
    assert "`cmp`: 12 runs; 6 seeds; epochs 3" in row and "**reproduced**" in row and "| big |" in row
    assert "1 of 1 settings higher than factor = 1" in row


@pytest.mark.parametrize("entry, message", [
    ("- {id: a, claim: c, specs: [s], rule: guess, metric: m}", "entry 1 (a): rule 'guess' is not one of"),
    ("- {id: a, claim: c, specs: [s], rule: compare, metric: m, axis: x, baseline: 1}",
     "entry 1 (a): missing better"),
    ("- {id: a, claim: c, specs: [s], rule: order, metric: m, by: x, expected: [p, q], better: up}",
     "entry 1 (a): better must be 'higher' or 'lower'"),
    ("- {id: a, claim: c, specs: [s], rule: order, metric: m, by: x, expected: [p, q], better: higher, colour: 1}",
     "entry 1 (a): unknown key 'colour'"),
    ("- {id: a, claim: c, specs: [], rule: order, metric: m, by: x, expected: [p, q], better: higher}",
     "entry 1 (a): specs must be"),
    ("- {id: a, claim: c, specs: [s], rule: order, metric: m, by: x, expected: [p, q], better: higher, also: m2}",
     "entry 1 (a): also must be a list of metric names"),
    ("- 3", "entry 1: a claim is a mapping"),
    ("{id: a}", "expected a list of claims"),
    ("- [unclosed", "not valid YAML"),
])
def test_a_bad_claims_file_fails_in_one_line_naming_the_entry(tmp_path, cli, entry, message):
    (tmp_path / "res").mkdir()
    res = cli("reproduce", str(tmp_path / "res"), "--claims", str(_claims(tmp_path, entry + "\n")))
    assert res.returncode == 2 and message in res.stderr, res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_the_papers_claims_file_is_valid_and_names_specs_that_exist():
    claims = load_claims(REPO / "tasks" / "claims.yaml")
    assert len(claims) >= 8
    for claim in claims:
        for spec in claim.specs:
            path = REPO / "sweeps" / f"{spec}.yaml"
            assert path.exists(), f"{claim.id}: no sweeps/{spec}.yaml"
            assert yaml.safe_load(path.read_text())["name"] == spec


def test_write_table_without_markers_writes_the_table_alone(tmp_path):
    rows = evaluate(load_claims(_claims(tmp_path)), str(tmp_path))
    out = tmp_path / "table.md"
    write_table(rows, str(out))
    assert out.read_text().startswith("| figure | claim (paper) |") and out.read_text().count("\n") == 2 + 4


def test_a_real_sweep_with_a_failed_run_is_shown_as_partial(tmp_path, cli):
    spec = tmp_path / "syn.yaml"
    spec.write_text("name: syn\ntask: synthetic\nfixed: {fail_seeds: [1]}\naxes: {steps: [2, 8]}\nseeds: 3\n")
    assert cli("run", str(spec), "--results", str(tmp_path / "res"), "--executor", "inline").returncode == 1
    claims = _claims(tmp_path, """
    - {id: s, claim: more steps lower the loss, specs: [syn], rule: compare, metric: loss, axis: steps,
       baseline: 2, better: lower, scale: [steps, sleep_s]}
    """)
    (row,) = evaluate(load_claims(claims), str(tmp_path / "res"))
    assert row.scale.startswith("4 runs; 2 seeds; steps 2, 8; sleep_s 0.0") and row.scale.endswith(
        "partial: 4 of 6 planned runs"), row.scale
    assert row.verdict in VERDICTS
    assert markdown([row]).rstrip().endswith("(so far: the sweep is partial) |")


def test_a_rows_scale_names_the_hardware_its_runs_trained_on():
    """Issue 33: every row names the scale, the data file and the hardware (read from the rows)."""
    import pandas as pd

    from symsweep.reproduce import _scale
    done = pd.DataFrame({"run_id": ["a", "b", "c"], "seed": [0, 1, 0], "cfg_epochs": [15, 15, 15],
                         "device": ["cuda:NVIDIA H200", "cuda:NVIDIA H200", "cpu:x86_64"],
                         "cpu_model": ["AMD EPYC", "AMD EPYC", "AMD EPYC"],
                         "info_dataset_source": ["cifar10-jpeg.tar.xz"] * 3})
    text = _scale(done, ("epochs",))
    assert "epochs 15" in text and "data cifar10-jpeg.tar.xz" in text
    assert text.endswith("on CPU AMD EPYC, NVIDIA H200")
