"""The GPU-scale rows of the reproduction table in one device slot (issue 33).

    python bench/gpu_rows.py --results RESULTS --data-root DATA --out OUT [--budget-s 540]
    python bench/gpu_rows.py --results RESULTS --data-root DATA --out OUT --quick   # smoke budgets, any device

Runs the GPU specs through `symsweep run` one after another (Fig. 8A first: the shortest),
each stopped with SIGTERM when the slot's budget runs out (exit 143: every finished run is
kept, and the same command in the next slot resumes with what is missing), aggregates what
finished, and packs each sweep folder as OUT/<sweep>.tar.gz (a device call returns files, not
folders). Prints `key=value`: per spec its completed runs, planned runs, wall seconds and exit
code. Unpack the archives into RESULTS here and `symsweep reproduce RESULTS` gives the rows.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPECS = ["replicas-cifar10-accuracy-gpu", "expansion-cifar10-gpu", "pinn-gpu"]
"""In the order they run: the cheapest first, so a short slot still yields rows."""


def emit(key: str, value) -> None:
    print(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}", flush=True)


def smoke_sets(spec: Path) -> list[str]:
    import yaml
    smoke = yaml.safe_load(spec.read_text()).get("smoke") or {}
    return [a for k, v in smoke.items() for a in ("--set", f"{k}={yaml.safe_dump(v, default_flow_style=True).strip()}")]


def symsweep(*args: str, timeout: float | None = None) -> tuple[int, str]:
    """`symsweep ARGS`; SIGTERM at `timeout` seconds (the driver stops cleanly, exit 143)."""
    proc = subprocess.Popen([sys.executable, "-m", "symsweep.cli", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, _ = proc.communicate()
    return proc.returncode, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", required=True)
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--out", required=True, help="folder for one .tar.gz per sweep")
    ap.add_argument("--budget-s", type=float, default=540.0, help="stop starting and stop running after this")
    ap.add_argument("--quick", action="store_true", help="each spec's smoke budget (checks the script anywhere)")
    ap.add_argument("--only", default=None, help="comma-separated spec names (default: all, in order)")
    args = ap.parse_args()
    deadline = time.monotonic() + args.budget_s
    os.makedirs(args.out, exist_ok=True)
    for name in (args.only.split(",") if args.only else SPECS):
        spec = REPO / "sweeps" / f"{name}.yaml"
        left = deadline - time.monotonic()
        if left < 30:
            emit(f"{name}_rc", "skipped (no time left in this slot: run again to resume)")
            continue
        sets = smoke_sets(spec) if args.quick else []
        start = time.perf_counter()
        rc, out = symsweep("run", str(spec), "--results", args.results, "--data-root", args.data_root,
                           "--no-summary", *sets, timeout=left)
        emit(f"{name}_wall_s", time.perf_counter() - start)
        emit(f"{name}_rc", rc)
        done = [line for line in out.splitlines() if line.startswith("done:")]
        emit(f"{name}_done", done[-1].removeprefix("done:").strip() if done else out.strip()[-200:])
        sweep = Path(args.results) / name
        if not sweep.exists():
            continue
        rc, _ = symsweep("aggregate", str(sweep))
        emit(f"{name}_aggregate_rc", rc)
        with tarfile.open(Path(args.out) / f"{name}.tar.gz", "w:gz") as tar:
            tar.add(sweep, arcname=name)


if __name__ == "__main__":
    main()
