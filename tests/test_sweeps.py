"""Every spec in sweeps/ loads and runs through the real CLI at its smoke budget."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import REPO, ledger
from orchestrator import expand, load_spec

SPECS = sorted((REPO / "sweeps").glob("*.yaml"))


def smoke_args(path: Path) -> list[str]:
    smoke = yaml.safe_load(path.read_text()).get("smoke") or {}
    return [a for k, v in smoke.items() for a in ("--set", f"{k}={yaml.safe_dump(v, default_flow_style=True).strip()}")]


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_spec_is_valid_and_has_a_smoke_budget(path):
    spec = load_spec(path)
    assert spec.smoke, f"{path.name}: add a `smoke:` section of overrides that make it run in seconds"
    full, small = expand(spec), expand(load_spec(path, [a for a in smoke_args(path) if a != "--set"]))
    assert 0 < len(small) <= len(full)


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_spec_runs_at_smoke_budget(tmp_path, path, capsys, monkeypatch):
    # the CLI's own entry point, in this process: a subprocess per spec would spend most of
    # its time importing torch, sklearn and matplotlib again (tests/test_cli.py covers the
    # installed command itself)
    from orchestrator.cli import main
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    code = main(["run", str(path.relative_to(REPO)), *smoke_args(path), "--results", str(tmp_path),
                 "--executor", "inline"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert " 0 failed, " in out and " 0 pending " in out
    runs = ledger(tmp_path / load_spec(path).name)
    assert len(runs) == len(expand(load_spec(path, [a for a in smoke_args(path) if a != "--set"])))
