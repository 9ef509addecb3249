"""NVIDIA MPS for trials packed onto one GPU (`resources.gpus < 1`).

Without MPS, the processes of packed trials take turns on the GPU (time slices): kernels of
two trials never run at once, so small trials leave most of the GPU idle however many share
it. An MPS control daemon lets the kernels of several processes run concurrently. One daemon
per node serves every process started with the same `CUDA_MPS_PIPE_DIRECTORY`, so it must
run before the node's Ray starts, with that variable in Ray's environment (its workers
inherit it):

    eval "$(python -m symsweep.mps start DIR)"   # prints the exports; nothing without a GPU
    ray start ...
    python -m symsweep.mps stop DIR              # when Ray has stopped

DIR holds the daemon's pipes and logs (one per node and job, so two jobs on a node keep
apart). Without an NVIDIA GPU or `nvidia-cuda-mps-control`, `start` says so in one line on
stderr, prints nothing and exits 0: the trials then time-slice. `--dry-run` prints the
commands and starts nothing (what the CPU tests check). The Slurm template runs this on
every node when `SYMSWEEP_MPS=1`; docs/cluster.md shows the other configs.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys

CONTROL = "nvidia-cuda-mps-control"


def environment(directory: str) -> dict[str, str]:
    """The variables every process that is to share the daemon must see."""
    root = os.path.abspath(directory)
    return {"CUDA_MPS_PIPE_DIRECTORY": os.path.join(root, "pipe"), "CUDA_MPS_LOG_DIRECTORY": os.path.join(root, "log")}


START = [CONTROL, "-d"]
"""Starts the control daemon (it forks into the background)."""
STOP = ([CONTROL], "quit\n")
"""The command and what it reads on stdin to stop the daemon."""


def why_not_here() -> str | None:
    """Why no daemon can start on this node (None: it can)."""
    if shutil.which(CONTROL) is None:
        return f"no {CONTROL} on PATH"
    if not any(os.path.exists(f"/dev/nvidia{i}") for i in range(64)):
        return "no NVIDIA GPU (/dev/nvidia*)"
    return None


def exports(env: dict[str, str]) -> str:
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m symsweep.mps", description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=["start", "stop"])
    ap.add_argument("directory", help="the daemon's folder (pipes and logs), one per node and job")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, start nothing")
    args = ap.parse_args(argv)
    env = environment(args.directory)
    command, stdin = (START, None) if args.action == "start" else STOP
    if args.dry_run:
        print(exports(env) + " ".join(map(shlex.quote, command)) + (f" <<< {stdin.strip()}" if stdin else ""), end="\n")
        return 0
    reason = why_not_here()
    if reason is not None:
        if args.action == "start":
            print(f"symsweep.mps: {reason}: MPS not started (packed trials time-slice the GPU)", file=sys.stderr)
        return 0
    if args.action == "stop" and not os.path.isdir(env["CUDA_MPS_PIPE_DIRECTORY"]):
        return 0  # never started here
    for path in env.values():
        os.makedirs(path, exist_ok=True)
    done = subprocess.run(command, input=stdin, text=True, env={**os.environ, **env}, capture_output=True)
    if done.returncode != 0:
        print(f"symsweep.mps: {' '.join(command)} failed (exit {done.returncode}): "
              f"{(done.stderr or done.stdout).strip()[-200:]}", file=sys.stderr)
        return 0 if args.action == "stop" else 1
    if args.action == "start":
        print(exports(env), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
