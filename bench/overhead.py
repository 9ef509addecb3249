"""Orchestration overhead for many short runs, measured three ways.

    python bench/overhead.py [--runs 200] [--runs-per-trial 100] [--skip-unpacked]

1. loop:     the task's run() called in a plain Python loop (no store, no Ray)
2. packed:   symsweep on an embedded local Ray, runs packed `--runs-per-trial` per trial,
             every run written to the Parquet store as it finishes
3. unpacked: symsweep with one run per Tune trial

Ray start-up is excluded (Ray is started once, before the timings). The last line is
`per_run_overhead_ms=X` for the packed path: (packed wall - loop wall) / runs.
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time

from symsweep import RayExecutor, SweepStore, TrialRunner, expand, pack, spec_from_dict
from symsweep.progress import Progress
from symsweep import SimpleContext, get_task
from symsweep.spec import config_from_dict
from symsweep.worker import seed_everything


def timed_sweep(runs_per_trial: int, n: int, results: str) -> float:
    spec = spec_from_dict({"name": f"bench{runs_per_trial}", "task": "synthetic", "seeds": n,
                           "runs_per_trial": runs_per_trial, "resources": {"cpus": 1}})
    store = SweepStore(os.path.join(results, spec.name))
    trials = pack(expand(spec), spec.runs_per_trial)
    runner = TrialRunner(store_uri=store.uri, sweep=spec.name)
    progress = Progress(spec.name, total=n, interval_s=3600)
    start = time.perf_counter()
    RayExecutor(spec.resources, max_failures=0).execute(trials, runner, progress)
    wall = time.perf_counter() - start
    done = store.read_ledger(columns=["run_id", "status"]).runs
    assert len(done) == n and set(done["status"]) == {"completed"}, "every run must have a completed row"
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--runs-per-trial", type=int, default=100)
    ap.add_argument("--num-cpus", type=int, default=2)
    ap.add_argument("--skip-unpacked", action="store_true", help="skip the slow one-run-per-trial path")
    args = ap.parse_args()

    task = get_task("synthetic")
    config = config_from_dict(task, {})
    start = time.perf_counter()
    for seed in range(args.runs):
        seed_everything(seed)
        task.run(config, seed, SimpleContext())
    loop = time.perf_counter() - start
    print(f"loop:     {args.runs} runs in {loop:.3f} s ({1000 * loop / args.runs:.2f} ms/run)")

    import ray
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    t0 = time.perf_counter()
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    print(f"ray start-up (excluded): {time.perf_counter() - t0:.2f} s")
    with tempfile.TemporaryDirectory() as results:
        packed = timed_sweep(args.runs_per_trial, args.runs, results)
        trials = -(-args.runs // args.runs_per_trial)
        print(f"packed:   {args.runs} runs in {trials} trials in {packed:.3f} s "
              f"({1000 * packed / args.runs:.2f} ms/run)")
        if not args.skip_unpacked:
            unpacked = timed_sweep(1, args.runs, results)
            print(f"unpacked: {args.runs} runs in {args.runs} trials in {unpacked:.3f} s "
                  f"({1000 * unpacked / args.runs:.2f} ms/run, "
                  f"overhead {1000 * (unpacked - loop) / args.runs:.1f} ms/run)")
    ray.shutdown()
    print(f"per_run_overhead_ms={1000 * (packed - loop) / args.runs:.2f}")


if __name__ == "__main__":
    main()
