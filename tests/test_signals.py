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


def _start(tmp_path: Path, *args: str) -> subprocess.Popen:
    """`symsweep ARGS` in a session of its own, its output in tmp_path/stdout and stderr: files,
    not pipes, so that the time it takes to exit is the driver's own (Ray's processes, still
    ending after it, hold inherited pipes open)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("RAY_ADDRESS", None)
    with open(tmp_path / "stdout", "w") as out, open(tmp_path / "stderr", "w") as err:
        return subprocess.Popen([sys.executable, "-m", "symsweep.cli", *args], cwd=REPO, env=env,
                                stdout=out, stderr=err, start_new_session=True, preexec_fn=_default_sigint)


def _output(tmp_path: Path) -> tuple[str, str]:
    return (tmp_path / "stdout").read_text(), (tmp_path / "stderr").read_text()


def _ctrl_c(proc: subprocess.Popen, timeout_s: float = 60) -> float:
    """SIGINT to the process group (what Ctrl-C does); the seconds until the process exited."""
    sent = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=timeout_s)
    return time.monotonic() - sent


def _kill_group(proc: subprocess.Popen) -> None:
    """End whatever is left of the process group this test started (the embedded Ray's processes)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


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
    proc = _start(tmp_path, "query", ENDLESS, "--results", str(folder), "--timeout", "0")
    try:
        # DuckDB starts its thread pool when the connection opens, just before the query runs
        deadline = time.monotonic() + 60
        while _threads(proc.pid) < 4 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(1.0)
        assert proc.poll() is None, _output(tmp_path)
        took = _ctrl_c(proc)
    finally:
        _kill_group(proc)
    out, err = _output(tmp_path)
    assert proc.returncode == 130, err
    assert out == "" and err.splitlines() == ["symsweep: query interrupted"], err
    assert took < 5, f"exited {took:.1f} s after Ctrl-C"


# ----------------------------------------------------------------------------- a driver mid-sweep

SLOW = """
name: syn
task: synthetic
fixed: {sleep_s: 0.4}
axes: {steps: [5, 10]}
seeds: 8
runs_per_trial: 2
"""


def _mid_sweep(tmp_path: Path, executor: str) -> tuple[subprocess.Popen, Path, tuple[str, ...]]:
    """(driver, sweep folder, its arguments): SLOW started, once 2 of its 16 runs are in the ledger."""
    spec = tmp_path / "syn.yaml"
    spec.write_text(SLOW)
    sweep = tmp_path / "res" / "syn"
    args = ("run", str(spec), "--results", str(tmp_path / "res"), "--executor", executor, "--num-cpus", "2")
    proc = _start(tmp_path, *args)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if (sweep / "runs").is_dir() and len(ledger(sweep)) >= 2:
            break
        time.sleep(0.2)
    if proc.poll() is not None:
        _kill_group(proc)
        pytest.fail(f"the driver ended before it was stopped: {_output(tmp_path)}")
    return proc, sweep, args


@pytest.mark.parametrize("executor", ["inline", "ray"])
def test_ctrl_c_stops_a_driver_mid_sweep_with_130_and_resume_runs_every_run_once(tmp_path, executor):
    proc, sweep, args = _mid_sweep(tmp_path, executor)
    try:
        took = _ctrl_c(proc)
    finally:
        _kill_group(proc)
    out, err = _output(tmp_path)
    assert proc.returncode == 130, (out, err)
    assert err.strip().splitlines()[-1].startswith("symsweep: interrupted;") and "Traceback" not in err, err
    assert took < 10, f"exited {took:.1f} s after Ctrl-C"
    assert 2 <= len(ledger(sweep)) < 16  # stopped mid-sweep
    again = symsweep(*args)
    assert again.returncode == 0, again.stderr
    assert_ran_once(sweep, 16)


# ----------------------------------------------------------------------------- SIGTERM, as a scheduler sends it


# ray + the whole group: slow tier (the real-Slurm scancel test sends SIGTERM to every process of a job on Ray)
@pytest.mark.parametrize("executor, target", [("inline", "driver"), ("ray", "driver"),
                                              pytest.param("ray", "group", marks=pytest.mark.slow)])
def test_sigterm_stops_a_driver_mid_sweep_like_ctrl_c_with_143(tmp_path, executor, target):
    """`scancel`, Kubernetes and `docker stop` send SIGTERM: to the driver alone (docker's pid 1),
    or to every process of the job (scancel: the embedded Ray's processes too). The driver
    stops as on Ctrl-C, in one line, exit 143 (128 + 15), no stack dump; resume runs every run once."""
    proc, sweep, args = _mid_sweep(tmp_path, executor)
    try:
        sent = time.monotonic()
        (os.killpg if target == "group" else os.kill)(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        took = time.monotonic() - sent
    finally:
        _kill_group(proc)
    out, err = _output(tmp_path)
    assert proc.returncode == 143, (out, err)
    assert err.strip().splitlines()[-1].startswith("symsweep: stopped by SIGTERM;"), err
    assert "Traceback" not in err and "SIGTERM received" not in err and "PC: @" not in err, err
    assert took < 10, f"exited {took:.1f} s after SIGTERM"
    assert 2 <= len(ledger(sweep)) < 16
    assert not (sweep / ".lock").exists()
    again = symsweep(*args)
    assert again.returncode == 0, again.stderr
    assert_ran_once(sweep, 16)


def test_sigterm_while_the_embedded_ray_starts_is_a_clean_143(tmp_path):
    spec = tmp_path / "syn.yaml"
    spec.write_text(SLOW)
    proc = _start(tmp_path, "run", str(spec), "--results", str(tmp_path / "res"), "--executor", "ray",
                  "--num-cpus", "2")
    try:
        # the driver has read the spec and is starting Ray: Ray's GCS server has appeared
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None and not _starting_ray(proc.pid):
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        _kill_group(proc)
    out, err = _output(tmp_path)
    assert proc.returncode == 143, (out, err)
    assert err.strip().splitlines()[-1].startswith("symsweep: stopped by SIGTERM;") and "Traceback" not in err, err


def _starting_ray(pid: int) -> bool:
    """Whether Ray's GCS server runs among the process's descendants (ray.init is under way)."""
    from symsweep._machine import proc_stat
    from symsweep._reaper import descendants
    st = proc_stat(pid)
    for child in (descendants({pid: st[1]}) if st else {}):
        try:
            if b"gcs_server" in open(f"/proc/{child}/cmdline", "rb").read():
                return True
        except OSError:
            pass
    return False


def test_the_embedded_ray_does_not_outlive_a_killed_driver(tmp_path):
    """SIGKILL of the driver alone (an OOM kill, a node agent's hard stop): no ray.shutdown runs.
    Ray's agents used to live on for 60-90 s with parent pid 1; every process the driver had
    started is gone within seconds (symsweep._reaper)."""
    from symsweep._reaper import _stat, descendants
    proc, _, _ = _mid_sweep(tmp_path, "ray")
    started: dict[int, str] = {}
    try:
        started = descendants({proc.pid: _stat(proc.pid)[1]})
        started.pop(proc.pid)
        assert len(started) >= 4, started  # GCS, raylet, agents, workers, the watcher
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any((_stat(p) or (0, None))[1] == s for p, s in started.items()):
            time.sleep(0.2)
        left = {p: open(f"/proc/{p}/cmdline").read().replace("\0", " ")[:80]
                for p, s in started.items() if (_stat(p) or (0, None))[1] == s}
    finally:
        _kill_group(proc)
        for p, s in started.items():  # whatever the test itself started and is still there
            if (_stat(p) or (0, None))[1] == s:
                os.kill(p, signal.SIGKILL)
    assert not left, f"still running 10 s after the driver was killed: {left}"
