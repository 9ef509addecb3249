"""Sweep throughput on one Ray node vs a head + worker node, on this machine's loopback.

    python bench/cluster.py [--runs 48] [--sleep 0.25] [--cpus 2]

Both layouts have the same CPUs in total (`--cpus`): one node with all of them, or a head
and a worker node sharing them. Each runs the same sweep of short `synthetic` runs
(`--sleep` seconds each) twice: one run per Tune trial, and packed (`--pack` runs per
trial). Printed: wall time, runs/s, and the scheduling overhead per trial,
(wall - ideal) / trials, where ideal = runs x sleep / cpus. Ray start-up and the driver's
connection are excluded.
"""
from __future__ import annotations

import argparse
import logging
import os
import secrets
import tempfile
import time
from pathlib import Path

from symsweep import RayExecutor, SweepStore, TrialRunner, expand, pack, spec_from_dict
from symsweep.executors import ray_driver_env
from symsweep._loopback import LoopbackCluster
from symsweep.progress import Progress


def sweep_wall(address: str, runs: int, sleep: float, per_trial: int, results: str) -> float:
    import ray
    # what the CLI sets for its Ray driver (Tune's per-trial loggers off, ...): this script is a program too
    os.environ.update(ray_driver_env(address, os.environ))
    ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    try:
        spec = spec_from_dict({"name": f"b{per_trial}", "task": "synthetic", "seeds": runs,
                               "fixed": {"sleep_s": sleep}, "runs_per_trial": per_trial, "resources": {"cpus": 1}})
        store = SweepStore(os.path.join(results, spec.name))
        trials = pack(expand(spec), per_trial)
        start = time.perf_counter()
        RayExecutor(spec.resources, max_failures=0).execute(
            trials, TrialRunner(store.uri, spec.name), Progress(spec.name, runs, interval_s=3600))
        wall = time.perf_counter() - start
        assert len(store.read_ledger(columns=["run_id", "status"]).runs) == runs
        return wall
    finally:
        ray.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=48)
    ap.add_argument("--sleep", type=float, default=0.25)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--pack", type=int, default=8)
    args = ap.parse_args()
    ideal = args.runs * args.sleep / args.cpus
    print(f"{args.runs} runs of {args.sleep} s on {args.cpus} CPUs in total: ideal wall {ideal:.1f} s")
    print(f"{'layout':18s} {'runs/trial':>10s} {'wall s':>8s} {'runs/s':>7s} {'overhead/trial ms':>18s}")
    token = secrets.token_hex(32)
    # Ray reads the token once per process, when it is imported: one token for both clusters.
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token})
    with tempfile.TemporaryDirectory() as tmp:
        for layout in ("1 node", "head + worker"):
            head_cpus = args.cpus if layout == "1 node" else max(1, args.cpus // 2)
            cluster = LoopbackCluster(head_cpus=head_cpus, token=token).start(Path(tmp) / "logs")
            try:
                if layout != "1 node":
                    cluster.add_worker("worker", Path(tmp) / "logs", cpus=args.cpus - head_cpus)
                for per_trial in (1, args.pack):
                    results = tempfile.mkdtemp(dir=tmp)
                    wall = sweep_wall(cluster.address, args.runs, args.sleep, per_trial, results)
                    trials = -(-args.runs // per_trial)
                    print(f"{layout:18s} {per_trial:10d} {wall:8.2f} {args.runs / wall:7.2f} "
                          f"{1000 * (wall - ideal) / trials:18.0f}")
            finally:
                cluster.stop()


if __name__ == "__main__":
    main()
