"""A multi-node Ray cluster on this machine's loopback, for the cluster tests and benchmark.

A head and worker nodes started with `ray start ... --block`, each in its own process
session so that one node can be killed (SIGKILL to its process group) like a lost machine.
Nodes use 127.0.0.2: Ray rewrites 127.0.0.1 to the machine's routable address, but keeps
other loopback addresses, so every connection stays on loopback. Token authentication
(RAY_AUTH_MODE=token) is on, with a fresh random token per cluster.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.2"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` now (the kernel's pick; another process may take it before
    it is used, so a test that binds it late can fail, rarely)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _ray_bin() -> str:
    local = Path(sys.executable).with_name("ray")
    return str(local) if local.exists() else (shutil.which("ray") or "ray")


def _session_pids(sid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # field 6 of stat: the session id
            pids.append(int(entry))
    return pids


@dataclass
class LoopbackCluster:
    head_cpus: float = 1
    port: int = field(default_factory=lambda: free_port(HOST))
    token: str = field(default_factory=lambda: secrets.token_hex(32))
    nodes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment of every process that joins the cluster (nodes and drivers)."""
        env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token,
               "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
        env.pop("RAY_ADDRESS", None)
        return env

    def _start(self, name: str, args: list[str], log_dir: Path) -> None:
        log = open(log_dir / f"{name}.log", "w")
        self.nodes[name] = subprocess.Popen([_ray_bin(), "start", "--block", "--node-ip-address", HOST,
                                             "--disable-usage-stats", *args],
                                            stdout=log, stderr=subprocess.STDOUT, env=self.env(),
                                            start_new_session=True)

    def start(self, log_dir: Path) -> "LoopbackCluster":
        log_dir.mkdir(parents=True, exist_ok=True)
        # A temp dir of its own keeps this cluster out of /tmp/ray/ray_current_cluster,
        # which a later plain ray.init() on this machine would try to join.
        self.temp_dir = tempfile.mkdtemp(prefix="rl-", dir="/tmp")
        self._start("head", ["--head", "--port", str(self.port), "--num-cpus", str(self.head_cpus),
                             "--num-gpus", "0", "--include-dashboard", "false", "--temp-dir", self.temp_dir],
                    log_dir)
        self.wait_for_nodes(1)
        return self

    def add_worker(self, name: str, log_dir: Path, cpus: float = 2, gpus: float = 0) -> None:
        self._start(name, ["--address", self.address, "--num-cpus", str(cpus), "--num-gpus", str(gpus)], log_dir)
        self.wait_for_nodes(len(self.nodes))

    def alive_nodes(self) -> int:
        code = ("import ray; ray.init(address='%s', logging_level='ERROR', log_to_driver=False);"
                "print(sum(n['Alive'] for n in ray.nodes()))" % self.address)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=self.env(),
                             timeout=60)
        return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 and out.stdout.strip() else 0

    def wait_for_nodes(self, n: int, timeout_s: float = 90) -> None:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            for name, proc in self.nodes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"ray node {name!r} exited with {proc.returncode}; see its log")
            if self.alive_nodes() >= n:
                return
            time.sleep(1)
        raise TimeoutError(f"fewer than {n} Ray nodes came up in {timeout_s} s")

    def kill(self, name: str) -> None:
        """SIGKILL every process of a node's session, like a machine that vanished."""
        proc = self.nodes.pop(name)
        for pid in _session_pids(proc.pid):  # Ray workers may sit in process groups of their own
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)

    def stop(self) -> None:
        for name in list(self.nodes)[::-1]:
            self.kill(name)
        if getattr(self, "temp_dir", None):
            shutil.rmtree(self.temp_dir, ignore_errors=True)
