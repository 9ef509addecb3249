"""Shared fixtures: run the real `symsweep` CLI as a subprocess, write small specs."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def symsweep(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None
             ) -> subprocess.CompletedProcess:
    """Run `symsweep ARGS` the way a user does and capture what it prints."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], cwd=cwd or REPO,
                          capture_output=True, text=True, timeout=timeout, env=full_env)


def ledger(sweep_dir) -> "pd.DataFrame":
    """The runs table of a sweep folder as every reader sees it (one row per run id)."""
    from orchestrator.store import SweepStore
    return SweepStore(str(sweep_dir)).read_runs()


def raw_rows(sweep_dir) -> "pd.DataFrame":
    """Every row of every run file and segment, duplicates included."""
    import pandas as pd
    import pyarrow.parquet as pq
    files = sorted(Path(sweep_dir, "runs").glob("*.parquet"))
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True) if files else pd.DataFrame()


def assert_ran_once(sweep_dir, planned: int) -> "pd.DataFrame":
    """Every planned run has one row, and no run was executed twice: a copy of a row left by
    a crash between writing a segment and removing its small files is the same execution
    (same pid, same finish time); a second execution is not."""
    runs = ledger(sweep_dir)
    assert len(runs) == planned and runs["run_id"].is_unique, (len(runs), planned)
    raw = raw_rows(sweep_dir)
    executions = raw.drop_duplicates(["run_id", "finished_at", "pid"])
    twice = executions[executions["run_id"].duplicated()]["run_id"].tolist()
    assert not twice, f"runs executed more than once: {twice}"
    return runs


@pytest.fixture
def cli():
    return symsweep


@pytest.fixture
def write_spec(tmp_path):
    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path
    return write


@pytest.fixture(scope="session")
def ray_local():
    """One embedded local Ray for the in-process executor tests."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture
def one_torch_thread():
    """Tiny models train fastest on one thread, and the 2-core machine is often shared."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
