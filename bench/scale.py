"""How the ledger's cost grows with the sweep: status, no-op resume, a count query and
aggregate on synthetic sweeps of 10, 1k, 10k and 100k runs, each as the real CLI command.

    python bench/scale.py                       # sizes 10,1000,10000,100000 (populating 100k
                                                # runs takes a while the first time)
    python bench/scale.py --sizes 10,1000 --workdir /tmp/scale

Sweeps are populated by really running them (`symsweep run --executor inline`, synthetic
task, steps=1) into --workdir and kept there, so a second invocation only measures. Each
command runs --repeat times; the median wall time is printed as `key=value`, and for every
size above the smallest the extra time over the smallest (the goal in issue 12: at 100k,
status <= 3 s, no-op resume <= 5 s, count query <= 1 s, aggregate <= 10 s, and --help,
status and query start in well under 2 s).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPEC = """
name: scale{n}
task: synthetic
fixed: {{steps: 1, n_samples: 8}}
axes: {{lr: [0.1, 0.2]}}
seeds: {seeds}
runs_per_trial: 1000
max_runs: 1000000
"""


def cli(*args: str) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "symsweep.cli", *args], cwd=REPO, capture_output=True,
                         text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return time.perf_counter() - start, res


def populate(workdir: Path, n: int) -> Path:
    spec = workdir / f"scale{n}.yaml"
    spec.write_text(SPEC.format(n=n, seeds=max(1, n // 2)))
    wall, res = cli("run", str(spec), "--results", str(workdir / "results"), "--executor", "inline",
                    "--no-summary")
    if res.returncode != 0:
        raise SystemExit(f"populating {n} runs failed:\n{res.stdout}\n{res.stderr}")
    if " 0 to run" not in res.stdout.split("already done")[-1][:20]:
        print(f"populate_wall_s_{n}={wall:.1f}", flush=True)
    return workdir / "results" / f"scale{n}"


def measure(sweep: Path, repeat: int) -> dict[str, float]:
    commands = {
        "status": ("status", str(sweep)),
        "resume": ("resume", str(sweep), "--executor", "inline"),
        "query": ("query", "SELECT count(*) AS n FROM runs", "--results", str(sweep)),
        "aggregate": ("aggregate", str(sweep)),
    }
    out = {}
    for name, args in commands.items():
        times = []
        for _ in range(repeat):
            wall, res = cli(*args)
            if res.returncode != 0:
                raise SystemExit(f"{name} failed on {sweep}:\n{res.stdout}\n{res.stderr}")
            times.append(wall)
        out[name] = statistics.median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,1000,10000,100000")
    parser.add_argument("--workdir", default="/tmp/symsweep-scale")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    sizes = sorted(int(s) for s in args.sizes.split(","))

    help_times = [cli("--help")[0] for _ in range(args.repeat)]
    print(f"startup_help_s={statistics.median(help_times):.2f}", flush=True)

    base = None
    for n in sizes:
        sweep = populate(workdir, n)
        figures = measure(sweep, args.repeat)
        for name, wall in figures.items():
            print(f"{name}_s_{n}={wall:.2f}", flush=True)
        if base is None:
            base = figures
            print(f"startup_status_s={figures['status']:.2f}", flush=True)
            print(f"startup_query_s={figures['query']:.2f}", flush=True)
        else:
            for name, wall in figures.items():
                print(f"{name}_extra_s_{n}={wall - base[name]:.2f}", flush=True)
        files = sum(1 for _ in (sweep / "runs").iterdir()), sum(1 for _ in (sweep / "history").iterdir())
        print(f"files_runs_{n}={files[0]} files_history_{n}={files[1]}", flush=True)


if __name__ == "__main__":
    main()
