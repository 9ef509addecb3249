"""What runs inside a trial, on whatever worker executes it: seed, run, write.

Both executors call `TrialRunner`; it holds nothing Ray-specific, so the inline executor
and a Ray Tune trial execute exactly the same code.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import os
import platform
import random
import socket
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from symsweep.api import COMPLETED, DIVERGED, FAILED, Diverged, RunResult, SimpleContext
from symsweep.registry import get_task
from symsweep.gpu import device_name, peak_memory_mb, pick_device, total_memory_mb
from symsweep.spec import Trial, config_from_dict
from symsweep.store import SweepStore
from symsweep.tracking import RunInfo, Trackers

ProgressFn = Callable[[dict], None]

# ----------------------------------------------------------------------------- provenance


def git_commit() -> str | None:
    """The project's commit (with '+dirty' for uncommitted changes), or SYMSWEEP_GIT_COMMIT
    where the code runs outside a checkout (e.g. a cluster image built from one)."""
    here = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("SYMSWEEP_GIT_COMMIT")


@functools.lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version
    out = {"python": platform.python_version()}
    for pkg in ("symsweep", "torch", "numpy", "ray"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


# What a run's numbers depend on besides its config and seed: the same code gives other
# digits on another CPU (other vector instructions, other BLAS kernels) or with another
# number of threads (other summation order), and trajectories then drift apart.
def _machine_columns(uses_torch: bool) -> dict[str, Any]:
    """`cpu_model`, `torch_threads` (null for a task without torch), `blas`, `blas_threads`."""
    torch_threads = None
    if uses_torch:
        try:
            import torch
            torch_threads = torch.get_num_threads()
        except ImportError:
            pass
    return {"cpu_model": cpu_model(), "torch_threads": torch_threads, **blas_info()}


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


@functools.lru_cache(maxsize=1)
def blas_info() -> dict[str, Any]:
    """The BLAS libraries loaded in this process (numpy's first) and the first one's thread
    count, as threadpoolctl sees them. torch's own CPU kernels (MKL or OpenBLAS built in)
    are not listed: they follow `torch_threads`."""
    try:
        from threadpoolctl import threadpool_info
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    except Exception:  # noqa: BLE001 - a provenance column is never worth a failed run
        pools = []
    if not pools:
        return {"blas": None, "blas_threads": None}
    described = []
    for p in pools:
        extra = ", ".join(str(p[k]) for k in ("threading_layer", "architecture") if p.get(k))
        described.append(" ".join(str(v) for v in (p.get("internal_api"), p.get("version")) if v)
                         + (f" ({extra})" if extra else "") + f" x{p.get('num_threads')}")
    return {"blas": "; ".join(described), "blas_threads": int(pools[0]["num_threads"])}


def seed_everything(seed: int, torch_too: bool = True) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if not torch_too:
        return
    try:
        import torch
        torch.manual_seed(seed)
    except ImportError:
        pass


# ----------------------------------------------------------------------------- runner


@dataclass
class TrialRunner:
    """Executes the runs of one trial and writes each the moment it finishes.

    Picklable: it travels to Ray workers. A retried trial skips the runs that already
    have a final row, so a worker lost mid-trial costs only its unfinished runs.
    """

    store_uri: str
    sweep: str
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    """The trial's `resources.gpus`: its runs use CUDA only when it has some (as under Ray)."""
    data_root: str | None = None
    git_commit: str | None = None
    retry_failed: bool = False
    trackers: Trackers | None = None
    """Experiment trackers mirroring each run live (best effort; see symsweep.tracking)."""
    _tracked: dict = field(default_factory=dict, repr=False)
    """run_id -> the trackers of a run in progress."""

    def __call__(self, trial: Trial, report: ProgressFn | None = None) -> dict:
        store = SweepStore(self.store_uri)
        task = get_task(trial.task)
        config = config_from_dict(task, trial.config)
        threads = max(1, int(self.cpus_per_trial))
        device = pick_device(self.gpus_per_trial)
        if task.uses_torch:
            _limit_threads(threads)
        # the same for every run of a trial: its config, and what the numbers depend on besides it
        columns = {**_config_columns(task.config_cls, trial.config), **_machine_columns(task.uses_torch)}
        counts = {"finished": 0, COMPLETED: 0, FAILED: 0, DIVERGED: 0, "skipped": 0}

        def finish(status: str) -> None:
            counts["finished"] += 1
            counts[status] = counts.get(status, 0) + 1
            if report is not None:
                report(dict(counts, trial_runs=len(trial.runs)))

        todo, attempts = [], {}
        final = (COMPLETED, DIVERGED) if self.retry_failed else (COMPLETED, DIVERGED, FAILED)
        for run_id, seed in trial.runs:
            previous = store.run_record(run_id)
            if previous is not None and previous["status"] in final:
                counts["skipped"] += 1
                finish(previous["status"])
            else:
                todo.append((run_id, seed))
                before = max(int((previous or {}).get("attempt") or 0), int(trial.attempts.get(run_id, 0)))
                attempts[run_id] = 1 + before

        batch_error = None
        if task.run_many is not None and len(todo) > 1 and (task.batches is None or task.batches(config)):
            todo, batch_error = self._run_many(task, config, trial, columns, todo, attempts, store, device, threads,
                                               finish)
        for run_id, seed in todo:
            ctx = self._context(trial, run_id, seed, attempts[run_id], device, threads)
            seed_everything(seed, task.uses_torch)
            peak_memory_mb(device)  # start the run's peak afresh
            started = time.time()
            outcome = _call(lambda: task.run(config, seed, ctx))
            ended = time.time()
            self._write(store, trial, columns, run_id, seed, outcome, ctx, started, ended, device, attempts[run_id],
                        duration_s=ended - started, peak_gpu_mem_mb=peak_memory_mb(device), batch_error=batch_error)
            finish(outcome[0])
        return counts

    def _context(self, trial: Trial, run_id: str, seed: int, attempt: int, device: str, threads: int
                 ) -> SimpleContext:
        """A fresh context for a run; with trackers configured, its ctx.log also goes to them,
        live. A run that falls back from a failed batch keeps the trackers the batch started
        for it (one mirror run per run), and gets an empty history."""
        ctx = SimpleContext(device=device, data_root=self.data_root, num_threads=threads)
        if self.trackers:
            if run_id not in self._tracked:
                self._tracked[run_id] = self.trackers.start(RunInfo(
                    run_id=run_id, sweep=self.sweep, task=trial.task, seed=int(seed), trial_id=trial.trial_id,
                    attempt=attempt, config=trial.config, git_commit=self.git_commit))
            ctx.on_log = self._tracked[run_id].log
        return ctx

    # A vectorized batch of seeds. Seeds it leaves without a result (the batch raised)
    # fall back to one-by-one runs, so one bad seed cannot fail its neighbours; those runs
    # carry the batch's error in `batch_error`.
    #
    # Time and memory of a batch are the batch's, not one seed's: `batch_duration_s` is the
    # wall time from the batch's start to the seed's result, `batch_peak_gpu_mem_mb` the
    # batch's peak so far. A seed's `duration_s` is its share of the batch's wall time: the
    # time between two results is split equally among the seeds still training, so an
    # ensemble that returns every seed at once gives each batch_duration_s / N, and the
    # durations of a batch add up to its wall time (up to its last result).
    def _run_many(self, task, config, trial, columns, todo, attempts, store, device, threads, finish
                  ) -> tuple[list[tuple[str, int]], str | None]:
        """Run `todo` as one batch; (the runs left to run one by one, the batch error they carry)."""
        contexts = {seed: self._context(trial, rid, seed, attempts[rid], device, threads) for rid, seed in todo}
        ids = {seed: rid for rid, seed in todo}
        seed_everything(todo[0][1], task.uses_torch)
        peak_memory_mb(device)  # start the batch's peak afresh
        started = last = time.time()
        share, peak = 0.0, None
        finished: set[int] = set()
        try:
            for seed, result in task.run_many(config, [s for _, s in todo], contexts.__getitem__):
                if seed not in ids or seed in finished:
                    raise ValueError(f"run_many yielded seed {seed!r}, which is not one of the seeds left")
                now = time.time()
                share += (now - last) / (len(todo) - len(finished))
                last = now
                peak = _max(peak, peak_memory_mb(device))
                outcome = _outcome_of(result)
                self._write(store, trial, columns, ids[seed], seed, outcome, contexts[seed], started, now, device,
                            attempts[ids[seed]], duration_s=share, batch_size_runs=len(todo),
                            batch_duration_s=now - started, batch_peak_gpu_mem_mb=peak)
                finished.add(seed)
                finish(outcome[0])
            error = "run_many gave no result for this seed"
        except Exception as exc:  # noqa: BLE001 - the seeds left run one by one, each recording the batch error
            error = f"{type(exc).__name__}: {exc}"
            print(f"warning: trial {trial.trial_id}: its batch of {len(todo)} seeds raised ({error}); "
                  f"the {len(todo) - len(finished)} seeds left run one by one", file=sys.stderr, flush=True)
            traceback.print_exc()
        left = [(rid, s) for rid, s in todo if s not in finished]
        return left, (error if left else None)

    def _write(self, store, trial, columns, run_id, seed, outcome, ctx, started, finished, device, attempt, *,
               duration_s: float, peak_gpu_mem_mb: float | None = None, batch_size_runs: int = 1,
               batch_duration_s: float | None = None, batch_peak_gpu_mem_mb: float | None = None,
               batch_error: str | None = None) -> None:
        """Write a run's row (with its history and artifacts), then end its trackers. The
        `batch_*` columns are null for a run that ran alone (see `_run_many`)."""
        status, result, error, tb = outcome
        row: dict[str, Any] = {
            "run_id": run_id, "sweep": self.sweep, "task": trial.task, "trial_id": trial.trial_id,
            "seed": int(seed), "status": status, "attempt": attempt, "error": error, "traceback": tb,
            "started_at": dt.datetime.fromtimestamp(started, dt.timezone.utc),
            "finished_at": dt.datetime.fromtimestamp(finished, dt.timezone.utc),
            "duration_s": float(duration_s), "batch_size_runs": batch_size_runs,
            "batch_duration_s": batch_duration_s, "batch_error": batch_error,
            "host": socket.gethostname(), "device": device_name(device), "pid": os.getpid(),
            "git_commit": self.git_commit, "config_json": json.dumps(trial.config, sort_keys=True),
            "peak_gpu_mem_mb": peak_gpu_mem_mb, "batch_peak_gpu_mem_mb": batch_peak_gpu_mem_mb,
            "gpu_mem_total_mb": total_memory_mb(device), "peak_rss_mb": _peak_rss_mb(),
            # the GPU(s) Ray assigned to the trial: shows how fractional `gpus` packed trials
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        }
        row.update({f"v_{k}": v for k, v in library_versions().items()})
        row.update(columns)
        for k, v in (result.metrics if result else {}).items():
            row[f"metric_{k}"] = None if v is None else float(v)
        for k, v in (result.info if result else {}).items():
            row[f"info_{k}"] = None if v is None else str(v)
        history = ctx.history or (result.history if result else [])
        store.write_run(row, history, {**(result.artifacts if result else {}), **ctx.artifacts})
        tracked = self._tracked.pop(run_id, None)
        if tracked is not None:  # after the row: the ledger first, the mirror second
            if not ctx.history:
                for rec in history:
                    tracked.log(rec["step"], {k: v for k, v in rec.items() if k != "step"})
            tracked.end(status, result.metrics if result else {}, error)


def _config_columns(config_cls, config: dict) -> dict:
    """The `cfg_<name>` columns of a run row: lists as JSON, mixed number/text fields as text."""
    text_fields = _text_fields(config_cls)
    out = {}
    for k, v in config.items():
        if isinstance(v, (list, dict)):
            v = json.dumps(v)
        elif k in text_fields and v is not None:
            v = str(v)  # one Parquet type per column, across runs: 0.5 and "random" both as text
        out[f"cfg_{k}"] = v
    return out


@functools.lru_cache(maxsize=None)
def _text_fields(config_cls) -> frozenset[str]:
    """Config fields whose values mix numbers and strings (e.g. fill: float | "random")."""
    import typing
    out = set()
    for name, tp in typing.get_type_hints(config_cls).items():
        kinds = set()
        stack = [tp]
        while stack:
            t = stack.pop()
            args = typing.get_args(t)
            if typing.get_origin(t) is typing.Literal:
                kinds |= {type(a) for a in args}
            elif args and typing.get_origin(t) not in (tuple, list):
                stack.extend(args)
            elif isinstance(t, type):
                kinds.add(t)
        kinds.discard(type(None))
        if str in kinds and kinds & {int, float, bool}:
            out.add(name)
    return frozenset(out)


def _call(fn: Callable[[], RunResult]):
    try:
        return _outcome_of(fn())
    except Diverged as exc:
        return DIVERGED, None, f"Diverged: {exc}", None
    except Exception as exc:  # noqa: BLE001 - a failed run is a row, and the sweep goes on
        tb = traceback.format_exc()
        return FAILED, None, f"{type(exc).__name__}: {exc}", tb[-4000:]


def _outcome_of(result) -> tuple[str, Any, str | None, str | None]:
    if not isinstance(result, RunResult):
        return FAILED, None, f"TypeError: task returned {type(result).__name__}, not RunResult", None
    status = result.status
    error = None
    bad = result.nonfinite_metrics() if status == COMPLETED else []
    if bad:
        status, error = DIVERGED, f"non-finite metrics: {', '.join(bad)}"
    return status, result, error, None


def _max(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _limit_threads(n: int) -> None:
    try:
        import torch
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    except ImportError:
        pass


def _peak_rss_mb() -> float | None:
    try:
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    except (ImportError, OSError):
        return None
