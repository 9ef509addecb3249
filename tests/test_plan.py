"""`symsweep plan`: a dry run that counts, estimates from measured durations, and writes nothing."""
from __future__ import annotations

import os
import re
from pathlib import Path

from conftest import ledger

SLEEP_S = 0.2  # a run's time is dominated by this: measurable, and steady on a loaded machine

SPEC = f"""
name: planned
task: synthetic
fixed: {{sleep_s: {SLEEP_S}}}
axes:
  steps: [10, 20]
seeds: 3
smoke: {{seeds: 1}}
"""


def listing(root: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*"))


def run_seconds(text: str) -> float:
    """The estimated run time `plan` prints, in seconds."""
    match = re.search(r"run time ([\d.]+) (s|min|h)\b", text)
    assert match, text
    return float(match.group(1)) * {"s": 1, "min": 60, "h": 3600}[match.group(2)]


def test_estimate_from_finished_runs_matches_the_runs_it_estimates(cli, write_spec, tmp_path):
    spec, results = write_spec(SPEC), tmp_path / "results"
    first = cli("run", str(spec), "--results", str(results), "--executor", "inline", "--no-summary")
    assert first.returncode == 0, first.stderr
    before = listing(results)

    res = cli("plan", str(spec), "--set", "seeds=9", "--results", str(results))
    assert res.returncode == 0, res.stderr
    assert "6 already done" in res.stdout and "12 to run" in res.stdout, res.stdout
    assert "from 6 finished runs of this sweep" in res.stdout, res.stdout
    estimate = run_seconds(res.stdout)
    assert listing(results) == before  # a dry run: nothing written

    # what it estimates: the summed duration_s of the runs it says are to run
    done = set(ledger(results / "planned")["run_id"])
    more = cli("run", str(spec), "--set", "seeds=9", "--force", "--results", str(results), "--executor", "inline",
               "--no-summary")
    assert more.returncode == 0, more.stderr
    runs = ledger(results / "planned")
    new = runs[~runs["run_id"].isin(done)]
    assert len(new) == 12
    measured = float(new["duration_s"].sum())
    print(f"estimate {estimate:.2f} s, measured {measured:.2f} s")
    assert abs(estimate - measured) <= 0.3 * measured, (estimate, measured)


def test_plan_of_a_new_sweep_makes_no_folder_and_says_how_to_estimate(cli, write_spec, tmp_path):
    spec, results = write_spec(SPEC), tmp_path / "results"
    res = cli("plan", str(spec), "--results", str(results))
    assert res.returncode == 0, res.stderr
    assert "does not exist yet, nothing done; 6 to run in 6 trials" in res.stdout, res.stdout
    assert "pass --calibrate" in res.stdout and "run time" not in res.stdout
    assert not results.exists()


def test_calibrate_runs_the_smoke_budget_and_names_its_source(cli, write_spec, tmp_path):
    spec, results = write_spec(SPEC), tmp_path / "results"
    temp = tmp_path / "tmp"  # the calibration's temporary results folder goes here, and is deleted
    temp.mkdir()
    res = cli("plan", str(spec), "--results", str(results), "--calibrate", env={"TMPDIR": str(temp)})
    assert res.returncode == 0, res.stderr
    assert "from a calibration run of the smoke budget (2 runs), scaled by the task's cost model: " \
           "uncertain by about x2" in res.stdout, res.stdout
    assert "2 runs of the smoke budget (seeds=1)" in res.stdout, res.stdout
    # six runs of ~0.2 s each; the cost model (steps) scales the 10- and 20-step points
    assert 0.5 < run_seconds(res.stdout) < 5, res.stdout
    assert not results.exists() and os.listdir(temp) == []


def test_a_bad_key_fails_as_run_does(cli, write_spec, tmp_path):
    spec = write_spec(SPEC)
    for command in ("plan", "run"):
        res = cli(command, str(spec), "--set", "stpes=5", "--results", str(tmp_path / "r"), "--executor", "inline") \
            if command == "run" else cli(command, str(spec), "--set", "stpes=5", "--results", str(tmp_path / "r"))
        assert res.returncode == 2, (command, res.stdout, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and "stpes" in res.stderr, res.stderr
    assert not (tmp_path / "r").exists()
