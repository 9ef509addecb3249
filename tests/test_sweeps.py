"""Every spec in sweeps/ loads and runs through the real CLI at its smoke budget."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import REPO, ledger
from symsweep import expand, load_spec

SPECS = sorted((REPO / "sweeps").glob("*.yaml"))


def smoke_args(path: Path) -> list[str]:
    smoke = yaml.safe_load(path.read_text()).get("smoke") or {}
    return [a for k, v in smoke.items() for a in ("--set", f"{k}={yaml.safe_dump(v, default_flow_style=True).strip()}")]


def smoke_spec(path: Path):
    return load_spec(path, [a for a in smoke_args(path) if a != "--set"])


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_spec_is_valid_and_has_a_smoke_budget(path):
    spec = load_spec(path)
    assert spec.smoke, f"{path.name}: add a `smoke:` section of overrides that make it run in seconds"
    full, small = expand(spec), expand(smoke_spec(path))
    assert 0 < len(small) <= len(full)


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_spec_runs_at_smoke_budget(cli, tmp_path, path):
    # an inline run: `cli` goes through the CLI's entry point in this process (conftest.symsweep)
    res = cli("run", str(path.relative_to(REPO)), *smoke_args(path), "--results", str(tmp_path), "--executor", "inline")
    assert res.returncode == 0, res.stdout + res.stderr
    assert " 0 failed, " in res.stdout and " 0 pending " in res.stdout
    small = smoke_spec(path)
    runs = ledger(tmp_path / small.name)
    assert len(runs) == len(expand(small))
    if small.task == "pinn" and small.fixed.get("vectorize") == "on":  # the seeds of a point trained together
        assert set(runs["info_trained_with_seeds"]) == {str(len(small.seeds))}, runs.filter(like="info_")
