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


def test_the_wall_estimate_is_a_schedule_not_an_average():
    from symsweep.plan import schedule_end
    assert schedule_end([3600.0] * 17, 16) == 7200.0  # the 17th trial waits for a slot: 2 h, not 64 min
    assert schedule_end([10.0, 1.0, 1.0, 1.0], 2) == 10.0
    assert schedule_end([1.0] * 4, 2) == 2.0 and schedule_end([], 4) == 0.0


def test_slots_follow_the_cpus_this_process_may_use(tmp_path, monkeypatch):
    """`taskset -c 0` (affinity) or a container's CPU quota leave fewer CPUs than the machine
    has: plan counts those, as the embedded Ray does."""
    from symsweep import _machine
    cgroup = tmp_path / "cg"
    cgroup.mkdir()
    (cgroup / "cpu.max").write_text("max 100000\n")
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert _machine.usable_cpus(str(cgroup)) == (1, "CPU affinity (the machine has 8)")
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    (cgroup / "cpu.max").write_text("250000 100000\n")  # docker --cpus 2.5
    assert _machine.usable_cpus(str(cgroup)) == (3, "cgroup CPU quota (the machine has 8)")
    (cgroup / "cpu.max").write_text("max 100000\n")
    assert _machine.usable_cpus(str(cgroup)) == (8, "")


def test_plan_under_taskset_counts_one_cpu(cli, write_spec, tmp_path):
    import shutil
    import subprocess
    import sys

    from conftest import REPO
    if not shutil.which("taskset"):
        import pytest
        pytest.skip("no taskset here")
    spec = write_spec(SPEC)
    res = subprocess.run(["taskset", "-c", "0", sys.executable, "-m", "symsweep.cli", "plan", str(spec), "--results",
                          str(tmp_path / "results")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "this machine (1 CPUs by its CPU affinity" in res.stdout and "runs 1 trial at once" in res.stdout, res.stdout
