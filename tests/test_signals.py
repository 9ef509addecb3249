"""Ctrl-C, as a terminal sends it: SIGINT to the foreground process group of a real
`symsweep` process. A running query and a driver mid-sweep (inline and on the embedded Ray)
stop within seconds with exit 130 and one line, and a resumed sweep runs every run once.

Each test starts its command in a session of its own (so the signal reaches that process
group and nothing else) with SIGINT at its default, as a terminal's foreground job has it
(a shell that starts jobs in the background ignores it), and kills that group at the end.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, assert_ran_once, ledger, symsweep

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc to see the process start")

# A join DuckDB needs minutes for (1e12 pairs): it is running when Ctrl-C comes.
ENDLESS = "SELECT count(*) FROM range(1000000) a, range(1000000) b WHERE a.range + b.range = 7"


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(*args: str, env: dict | None = None) -> subprocess.Popen:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("RAY_ADDRESS", None)
    return subprocess.Popen([sys.executable, "-m", "orchestrator.cli", *args], cwd=REPO, env=full_env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=_default_sigint)


def _ctrl_c(proc: subprocess.Popen, timeout_s: float = 60) -> tuple[str, str, float]:
    """SIGINT to the process group (what Ctrl-C does); (stdout, stderr, seconds until it exited)."""
    sent = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=timeout_s)
    return out, err, time.monotonic() - sent


def _kill_group(proc: subprocess.Popen) -> None:
    """End whatever is left of the process group this test started (the embedded Ray's processes)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if proc.poll() is None:
        proc.communicate(timeout=30)


def _threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except FileNotFoundError:
        return 0


# ----------------------------------------------------------------------------- query


def test_ctrl_c_stops_a_running_query_within_seconds_in_one_line(tmp_path):
    folder = tmp_path / "sweep"
    folder.mkdir()
    (folder / "spec.yaml").write_text("name: sweep\n")
    proc = _start("query", ENDLESS, "--results", str(folder), "--timeout", "0")
    try:
        # DuckDB starts its thread pool when the connection opens, just before the query runs
        deadline = time.monotonic() + 60
        while _threads(proc.pid) < 4 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(1.0)
        assert proc.poll() is None, proc.communicate()
        out, err, took = _ctrl_c(proc)
    finally:
        _kill_group(proc)
    assert proc.returncode == 130, err
    assert out == "" and err.splitlines() == ["symsweep: query interrupted"], err
    assert took < 5, f"exited {took:.1f} s after Ctrl-C"
