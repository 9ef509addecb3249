"""Executors: how trials reach workers. Ray Tune for real sweeps, an inline twin for debugging.

Both take the same trials and the same `TrialRunner`, and report progress the same way;
neither knows anything about a task.

Settings are passed, not written into the environment: nothing here writes os.environ.
What Ray takes as an argument is one (ray.init's address, num_cpus, logging, runtime_env).
What Ray and Tune read only from the driver's environment (Tune's per-trial loggers and
output style, how long a join waits for the GCS, token authentication, which Ray takes
only as RAY_AUTH_MODE) is named by `ray_driver_env(address, environ)`, for the program to
set in its own process before `prepare`. The CLI does (symsweep.cli), and also turns
Tune's SIGINT handler off (TUNE_DISABLE_SIGINT_HANDLER=1: Ctrl-C ends the driver); a
program that uses RayExecutor directly gets Ray's and Tune's defaults unless it does the
same. What the workers' processes need (MLflow's HTTP settings, symsweep.tracking) reaches
them as `worker_env`, through Ray's runtime_env: a cluster's workers do not inherit the
driver's environment.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Protocol, Sequence

from symsweep import tracking
from symsweep.errors import ClusterError, Terminated, last_line
from symsweep.progress import Progress
from symsweep.spec import Resources, Trial
from symsweep.worker import TrialRunner


@dataclass
class ExecutionReport:
    trials: int = 0
    lost_trials: list[str] = field(default_factory=list)
    """Trials that still died after their retries: their unfinished runs stay pending."""
    errors: dict[str, str] = field(default_factory=dict)
    """trial id -> the last line of the error that killed it."""

    def merge(self, other: "ExecutionReport") -> "ExecutionReport":
        return ExecutionReport(trials=self.trials + other.trials, lost_trials=self.lost_trials + other.lost_trials,
                               errors={**self.errors, **other.errors})


TrialDone = Callable[[str], None]
TRACKING_FAILURES = "tracking_failures"
"""Key of a Ray trial's progress result: JSON {tracker: error} of the trackers its worker switched off."""


class Executor(Protocol):
    """Where trials run. `prepare` checks (and connects) before the driver writes anything;
    `execute` runs the trials and calls `on_trial_done(trial_id)` as each one finishes."""

    def prepare(self) -> None:
        ...

    def execute(self, trials: Sequence[Trial], runner: TrialRunner, progress: Progress,
                on_trial_done: TrialDone | None = None) -> ExecutionReport:
        ...

    def close(self) -> None:
        ...


# ----------------------------------------------------------------------------- inline


class InlineExecutor:
    """Runs every trial in this process, one after another: for tests and debuggers."""

    name = "inline"

    def prepare(self) -> None:
        pass

    def execute(self, trials: Sequence[Trial], runner: TrialRunner, progress: Progress,
                on_trial_done: TrialDone | None = None) -> ExecutionReport:
        for trial in trials:
            runner(trial, lambda counts, t=trial.trial_id: progress.update(t, counts))
            if on_trial_done is not None:
                on_trial_done(trial.trial_id)
        return ExecutionReport(trials=len(trials))

    def close(self) -> None:
        pass


# ----------------------------------------------------------------------------- ray tune


class RayExecutor:
    """One Tune trial per packed group of runs; Tune schedules them on the Ray cluster.

    With no address an embedded local Ray starts (and stops at the end); with an address
    the driver joins that cluster, whose workers must see the store. (The CLI turns
    --address / RAY_ADDRESS into `address`; nothing here reads the environment for it.)
    `worker_env` is set in every worker process of the job this executor starts or joins (a
    Ray that the caller started itself runs with the caller's runtime_env).
    """

    name = "ray"

    def __init__(self, resources: Resources, max_failures: int, address: str | None = None,
                 max_concurrent: int | None = None, num_cpus: int | None = None, verbose: bool = False,
                 experiment_name: str = "symsweep", storage_path: str | None = None,
                 worker_env: Mapping[str, str] | None = None):
        self.resources = resources
        self.max_failures = max_failures
        self.address = address or None
        self.max_concurrent = max_concurrent
        self.num_cpus = num_cpus
        self.verbose = verbose
        self.experiment_name = experiment_name
        self.storage_path = storage_path
        """Tune's own bookkeeping folder (default: a temp folder removed at close)."""
        # MLflow's bounds reach every worker (a cluster's workers never see the driver's
        # environment); what the caller passes wins
        self.worker_env = {**tracking.MLFLOW_ENV, **(worker_env or {})}
        self._started_here = False
        self._prepared = False
        self._temp_storage: str | None = None
        self._reaper: subprocess.Popen | None = None

    # ------------------------------------------------------------------ connect
    def prepare(self) -> None:
        """Start the embedded Ray or join the cluster, and check that a trial fits on it."""
        if self._prepared:
            return
        if self.address:
            _check_reachable(self.address)
        elif self.num_cpus is None:  # the CPUs this process may use (affinity, cgroup quota), as plan says
            from symsweep._machine import usable_cpus
            self.num_cpus = usable_cpus()[0]
        if not self.address and self.resources.cpus > self.num_cpus:
            raise ClusterError(f"resources.cpus={self.resources.cpus:g} per trial, but the embedded Ray has "
                               f"{self.num_cpus} CPUs: lower resources.cpus or raise --num-cpus")
        import ray

        if not ray.is_initialized():
            self._started_here = True  # set first: a SIGTERM during the start still shuts it down
            if not self.address:
                self._reaper = _start_reaper()
            with _sigterm_kept():
                self._init(ray)
        self._prepared = True
        if not self.verbose:
            # a trial that dies is reported by the driver in one line (ExecutionReport.errors);
            # Tune would log its traceback at ERROR level
            logging.getLogger("ray.tune").setLevel(logging.CRITICAL)
            logging.getLogger("ray.train").setLevel(logging.CRITICAL)
        self._check_fits(ray)

    def _init(self, ray) -> None:
        """ray.init: the embedded Ray, or join the cluster at `address` (one line on failure)."""
        kwargs = dict(logging_level=logging.INFO if self.verbose else logging.ERROR,
                      log_to_driver=self.verbose, include_dashboard=False)
        if self.worker_env:
            kwargs["runtime_env"] = {"env_vars": self.worker_env}
        try:
            if self.address:
                # Ray's core logs each try to reach the GCS to fd 2 (ray_driver_env bounds
                # them): keep the log, and say what it means
                with _stderr_captured(replay=self.verbose) as log:
                    try:
                        ray.init(address=self.address, **kwargs)
                    except Exception as exc:  # noqa: BLE001 - read the log before deciding
                        raise ClusterError(_join_error(self.address, exc, log.read())) from None
            else:
                # "local": always a new embedded instance. Without it ray.init() joins the
                # last cluster `ray start` left on this machine, even a dead one.
                ray.init(address="local", num_cpus=self.num_cpus, **kwargs)
        except ClusterError:
            raise
        except Exception as exc:  # noqa: BLE001 - every way of failing to join is one line
            raise ClusterError(_join_error(self.address, exc)) from None

    def _check_fits(self, ray) -> None:
        """The embedded Ray must have a node a trial fits on; a cluster may still grow (autoscaler)."""
        nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
        fits = any(r.get("CPU", 0) >= self.resources.cpus and r.get("GPU", 0) >= self.resources.gpus for r in nodes)
        if fits:
            return
        have = ", ".join(f"{r.get('CPU', 0):g} CPU / {r.get('GPU', 0):g} GPU" for r in nodes) or "no nodes"
        message = (f"no Ray node can hold one trial (resources.cpus={self.resources.cpus:g}, "
                   f"resources.gpus={self.resources.gpus:g}); nodes: {have}")
        if self.address:
            print(f"warning: {message}; trials wait until such a node joins", flush=True)
            return
        self.close()
        raise ClusterError(message + ": lower the spec's resources (e.g. --set resources.gpus=0)")

    def close(self) -> None:
        if self._started_here:
            import ray
            ray.shutdown()
            self._started_here = False
        if self._reaper is not None:  # stops what ray.shutdown left running, then ends itself
            self._reaper.stdin.close()
            self._reaper = None
        self._prepared = False
        if self._temp_storage:
            shutil.rmtree(self._temp_storage, ignore_errors=True)
            self._temp_storage = None

    # ------------------------------------------------------------------ run
    def execute(self, trials: Sequence[Trial], runner: TrialRunner, progress: Progress,
                on_trial_done: TrialDone | None = None) -> ExecutionReport:
        if not trials:
            return ExecutionReport()
        own = not self._prepared
        self.prepare()
        from ray import tune

        try:
            by_id = {t.trial_id: t for t in trials}

            def trainable(config: dict) -> None:
                trial = by_id[config["trial"]]
                last = [0.0]

                # Each tune.report is a round trip to the driver: report at most twice a
                # second, and always the trial's last run.
                def report(counts: dict) -> None:
                    now = time.monotonic()
                    if now - last[0] >= 0.5 or counts["finished"] == counts["trial_runs"]:
                        last[0] = now
                        failed = tracking.failures()  # this worker's stderr is not shown: the driver says it
                        tune.report({**counts, TRACKING_FAILURES: json.dumps(failed)} if failed else dict(counts))

                runner(trial, report)

            if self.storage_path is None and self._temp_storage is None:
                self._temp_storage = tempfile.mkdtemp(prefix="symsweep-tune-")
            resources = {"cpu": self.resources.cpus, "gpu": self.resources.gpus}
            tuner = tune.Tuner(
                tune.with_resources(trainable, resources),
                param_space={"trial": tune.grid_search([t.trial_id for t in trials])},
                tune_config=tune.TuneConfig(max_concurrent_trials=self.max_concurrent, reuse_actors=True),
                run_config=tune.RunConfig(
                    name=self.experiment_name,
                    storage_path=self.storage_path or self._temp_storage,
                    verbose=2 if self.verbose else 0,
                    failure_config=tune.FailureConfig(max_failures=self.max_failures),
                    callbacks=[_progress_callback(progress, on_trial_done)],
                    log_to_file=not self.verbose,
                ),
            )
            grid = tuner.fit()
            errors = {r.config["trial"]: last_line(r.error) for r in grid if r.error is not None}
            return ExecutionReport(trials=len(trials), lost_trials=list(errors), errors=errors)
        finally:
            if own:
                self.close()


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of a `host:port` or `ray://host:port` address; None for `auto` and the like."""
    text = address.split("://", 1)[-1]
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def _check_reachable(address: str, timeout_s: float = 5.0) -> None:
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout_s) as sock:
            speaks_grpc = _speaks_http2(sock)
    except socket.timeout:
        raise ClusterError(f"cannot reach the Ray cluster at {address}: no answer within {timeout_s:g} s") from None
    except OSError as exc:
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None
    if not speaks_grpc:
        # Ray would retry such a port for minutes: say it at once
        raise ClusterError(f"cannot join the Ray cluster at {address}: that port does not answer like a Ray "
                           f"head (GCS, default port 6379, or Ray Client, ray://HOST:10001)")


def _speaks_http2(sock: socket.socket) -> bool:
    """Whether the peer answers an HTTP/2 connection preface with a SETTINGS frame, as the
    gRPC servers of a Ray head (GCS, Ray Client) do; an HTTP/1 or silent port does not."""
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    empty_settings = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # length 0, type SETTINGS, flags 0, stream 0
    sock.sendall(preface + empty_settings)
    header = b""
    while len(header) < 9:
        chunk = sock.recv(9 - len(header))
        if not chunk:
            return False
        header += chunk
    return header[3] == 0x04


def _start_reaper() -> "subprocess.Popen | None":
    """The watcher that stops the embedded Ray's processes when this driver is gone, however it
    went (symsweep._reaper); None where there is no /proc to watch with."""
    if not os.path.isdir(f"/proc/{os.getpid()}"):
        return None
    return subprocess.Popen([sys.executable, "-m", "symsweep._reaper", str(os.getpid())], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


class _sigterm_kept:
    """ray.init sets its own SIGTERM handler (sys.exit(15)), which Ray's start-up may swallow,
    and its core installs a failure handler that prints a stack dump. For the start, a SIGTERM
    is only noted (Ray is kept from replacing that); afterwards the program's handler is given
    back, and a SIGTERM noted during the start is delivered to it then."""

    def __enter__(self) -> None:
        import signal
        import threading
        self.main = threading.current_thread() is threading.main_thread()
        self.got: list[int] = []
        self.patched = None
        if not self.main:
            return
        self.handler = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, lambda signum, frame: self.got.append(signum))
        try:  # ray.init calls this (a private helper) to put its own handler in place
            import ray._private.utils as ray_utils
            self.patched = (ray_utils, ray_utils.set_sigterm_handler)
            ray_utils.set_sigterm_handler = lambda handler: None
        except (ImportError, AttributeError):
            self.patched = None

    def __exit__(self, kind, exc, tb) -> bool:
        import signal
        if not self.main:
            return False
        if self.patched is not None:
            module, original = self.patched
            module.set_sigterm_handler = original
        signal.signal(signal.SIGTERM, self.handler if self.handler is not None else signal.SIG_DFL)
        if kind is SystemExit and exc.code == signal.SIGTERM:  # a Ray whose handler ran anyway
            raise Terminated() from None
        if self.got:  # delivered to the program's handler now that Ray has started
            os.kill(os.getpid(), signal.SIGTERM)
        return False


def ray_driver_env(address: str | None, environ: Mapping[str, str]) -> dict[str, str]:
    """The variables Ray and Tune read only from the driver's environment, for the program
    that drives a RayExecutor to set in its own process before `prepare` (see the module
    docstring); those `environ` (the program's environment) already sets are the user's, and
    left out. Tune's SIGINT handler is the program's choice (the CLI turns it off)."""
    env = {
        # Tune's per-trial CSV/JSON/TensorBoard loggers cost time and are not our record
        "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
        "RAY_AIR_NEW_OUTPUT": "0",
    }
    if address:
        # Ray's core retries a GCS that refuses us (a missing token, say) 20 times, logging
        # each try to fd 2: try for 5 s. Not for the embedded Ray, whose start waits as long
        # for its own GCS.
        env["RAY_gcs_server_port_wait_time_s"] = "5"
        # the cluster token, picked up the way Ray's own CLI does: when RAY_AUTH_MODE is unset
        # and a token is at hand (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token),
        # token authentication is on for this driver (ray.init does so only without an address)
        path = Path(environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
        if environ.get("RAY_AUTH_TOKEN") or path.is_file():
            env["RAY_AUTH_MODE"] = "token"
    return {k: v for k, v in env.items() if k not in environ}


class _stderr_captured:
    """Redirect fd 2 (where Ray's C++ core logs) to a temp file for a block; `read()` gives
    what was written. With `replay`, it is written to stderr afterwards."""

    def __init__(self, replay: bool = False):
        self.replay = replay

    def __enter__(self) -> "_stderr_captured":
        sys.stderr.flush()
        self.file = tempfile.TemporaryFile()
        self.saved = os.dup(2)
        os.dup2(self.file.fileno(), 2)
        return self

    def read(self) -> str:
        sys.stderr.flush()
        self.file.seek(0)
        return self.file.read().decode(errors="replace")

    def __exit__(self, *exc) -> None:
        text = self.read()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.file.close()
        if self.replay and text:
            sys.stderr.write(text)


def _join_error(address: str | None, exc: BaseException, log: str = "") -> str:
    where = f"the Ray cluster at {address}" if address else "the embedded Ray"
    text = " ".join(str(exc).split())
    kind = type(exc).__name__
    if "Authentication" in kind or any(w in text + log for w in ("InvalidAuthToken", "Unauthenticated",
                                                                  "UNAUTHENTICATED")):
        return (f"cannot join {where}: it requires token authentication and this driver's token is missing "
                f"or wrong; set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN=<token> (or put the token in "
                f"~/.ray/auth_token; `ray get-auth-token` on the head prints it)")
    if "version mismatch" in text.lower() or "Version mismatch" in text:
        return f"cannot join {where}: {text[:300]} (install the cluster's Ray version in this environment)"
    return f"cannot join {where}: {kind}: {text[:300]}"


def _progress_callback(progress: Progress, on_trial_done: TrialDone | None):
    """A driver-side Tune callback: each trial's reported counts feed the progress line, and
    a finished trial is handed to `on_trial_done` (the driver folds its runs into a segment)."""
    from ray.tune import Callback

    class ProgressCallback(Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            if result.get(TRACKING_FAILURES):
                tracking.warn_failures(json.loads(result[TRACKING_FAILURES]))
            progress.update(trial.config["trial"], result)

        def on_trial_complete(self, iteration, trials, trial, **info):
            if on_trial_done is not None:
                on_trial_done(trial.config["trial"])

    return ProgressCallback()


def make_executor(kind: str, resources: Resources, max_failures: int, **ray_options) -> Executor:
    """The executor a CLI flag names: `inline`, or `ray` with its options (address, num_cpus, ...)."""
    if kind == "inline":
        return InlineExecutor()
    if kind == "ray":
        return RayExecutor(resources, max_failures, **ray_options)
    raise ValueError(f"unknown executor {kind!r}; allowed: ray, inline")
