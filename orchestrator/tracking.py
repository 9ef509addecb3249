"""Experiment trackers: mirrors of the ledger where researchers already look (MLflow, ...).

A tracker sees each run on the worker that runs it, as it runs:

    on_run_start(run)          run: RunInfo (ids, sweep, task, seed, trial, config, host, commit)
    on_log(step, metrics)      every ctx.log of the task, while it trains
    on_run_end(status, metrics, error)
                               status: completed | failed | diverged

Trackers are best effort: the Parquet ledger alone decides whether a run is done. A
tracker that raises is switched off for the rest of the worker process, said once on
stderr, and never fails or stalls a run. Ray workers' stderr is not shown: they report
switched-off trackers with their progress, and the driver says it once (`failures`,
`warn_failures`).

MLflow's client takes its HTTP timeout and retries (and whether it prints a "View run"
line) from the environment only, with defaults that retry a dead server for minutes.
Nothing here writes os.environ: `tracker_env(settings)` (MLFLOW_ENV) names what the
processes that run trackers need, and the program that starts them sets it: the CLI in
its own process (inline runs, `export mlflow`, the embedded Ray's workers inherit it) and
in the Ray workers' runtime_env (RayExecutor's `worker_env`, for a cluster's workers). A
program using this module without the CLI sets MLFLOW_ENV itself if it wants it.

The spec's `tracking:` section configures them: `mlflow: URI` (+ `experiment: NAME`,
default the sweep name) is built in; any other key names a tracker that a package
registers in the `symsweep.trackers` entry-point group as `factory(settings, sweep) ->
Tracker`, with the key's value as its settings (see docs: a W&B tracker in 30 lines).
"""
from __future__ import annotations

import importlib.util
import socket
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable, Mapping, Protocol

from symsweep.errors import SpecError

ENTRY_POINT_GROUP = "symsweep.trackers"
BUILTIN = ("mlflow", "experiment")
FLUSH_EVERY_S = 1.0


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    sweep: str
    task: str
    seed: int
    trial_id: str
    attempt: int
    config: Mapping[str, Any]
    host: str = field(default_factory=socket.gethostname)
    git_commit: str | None = None


class Tracker(Protocol):
    def on_run_start(self, run: RunInfo) -> None: ...

    def on_log(self, step: int, metrics: Mapping[str, float]) -> None: ...

    def on_run_end(self, status: str, metrics: Mapping[str, float | None], error: str | None) -> None: ...


# ----------------------------------------------------------------------------- settings


def check_tracking(settings: Mapping[str, Any], source: str = "spec") -> dict:
    """Validate a spec's `tracking:` section; return it as plain data."""
    if not isinstance(settings, Mapping):
        raise SpecError(f"{source}: 'tracking' must be a mapping (e.g. {{mlflow: http://host:5000}})")
    plugins = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    unknown = [k for k in settings if k not in BUILTIN and k not in plugins]
    if unknown:
        raise SpecError(f"{source}: tracking: unknown key(s) {', '.join(map(repr, unknown))}; allowed: "
                        f"{', '.join([*BUILTIN, *sorted(plugins)])}")
    if "experiment" in settings and "mlflow" not in settings:
        raise SpecError(f"{source}: tracking.experiment names an MLflow experiment: set tracking.mlflow too")
    for key in ("mlflow", "experiment"):
        if key in settings and (not isinstance(settings[key], str) or not settings[key]):
            raise SpecError(f"{source}: tracking.{key} must be a non-empty string, got {settings[key]!r}")
    if "mlflow" in settings:
        require("mlflow", extra="mlflow", what="tracking.mlflow")
    return dict(settings)


def require(module: str, extra: str, what: str) -> None:
    """One line naming the extra to install when an optional client is missing."""
    if importlib.util.find_spec(module) is None:
        raise SpecError(f"{what} needs the {module} package: pip install 'symsweep[{extra}]' "
                        f"(or pip install {module})")


# ----------------------------------------------------------------------------- worker side


class Trackers:
    """The trackers of one sweep, as a worker process uses them. Picklable (it travels to
    Ray workers as settings); the clients are built on first use, once per process."""

    def __init__(self, settings: Mapping[str, Any], sweep: str):
        self.settings = dict(settings)
        self.sweep = sweep

    def __getstate__(self) -> dict:
        return {"settings": self.settings, "sweep": self.sweep}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["settings"], state["sweep"])

    def __bool__(self) -> bool:
        return bool(self.settings)

    def start(self, run: RunInfo) -> "RunTrackers":
        return RunTrackers([t for t in (_safe(name, factory) for name, factory in self._factories()) if t], run)

    def _factories(self) -> list[tuple[str, Callable[[], Tracker]]]:
        out = []
        if "mlflow" in self.settings:
            uri, experiment = self.settings["mlflow"], self.settings.get("experiment") or self.sweep
            out.append(("mlflow", lambda: MlflowTracker(uri, experiment)))
        plugins = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
        for name, value in self.settings.items():
            if name in plugins:
                out.append((name, lambda ep=plugins[name], v=value: ep.load()(v, self.sweep)))
        return out


# one switch per tracker name and process: once a tracker failed it stays off (said once)
_DISABLED: dict[str, str] = {}
# the trackers this process has warned about (a driver warns once for all its Ray workers)
_WARNED: set[str] = set()


def _safe(name: str, factory: Callable[[], Tracker]) -> "_SafeTracker | None":
    if name in _DISABLED:
        return None
    return _SafeTracker(name, factory)


def failures() -> dict[str, str]:
    """name -> error of each tracker this process switched off. A Ray worker's stderr is not
    shown, so the Ray executor hands these to the driver with the trial's progress."""
    return dict(_DISABLED)


def warn_failures(failed: Mapping[str, str], whose: str = "a worker stops sending to {name} after its first failure"
                  ) -> None:
    """Say once per process and tracker that it is unavailable (the driver, for its workers)."""
    for name, error in failed.items():
        if name not in _WARNED:
            _WARNED.add(name)
            tty = getattr(sys.stderr, "isatty", lambda: False)()  # a Ray worker's stderr has no isatty
            start = "\r\033[K" if tty else ""  # over a progress line being rewritten
            print(f"{start}warning: tracking: {name} unavailable ({error}); runs go on, recorded in the Parquet "
                  f"ledger only ({whose.format(name=name)})", file=sys.stderr, flush=True)


class _SafeTracker:
    """Calls a tracker; the first exception switches it off for this process, said once."""

    def __init__(self, name: str, factory: Callable[[], Tracker]):
        self.name = name
        self.tracker = self._call(factory)

    def _call(self, fn, *args):
        if self.name in _DISABLED:
            return None
        try:
            return fn(*args)
        except Exception as exc:  # noqa: BLE001 - a mirror never fails a run
            text = " ".join(str(exc).split())[:200] or type(exc).__name__
            _DISABLED[self.name] = f"{type(exc).__name__}: {text}"
            warn_failures({self.name: _DISABLED[self.name]}, whose="this worker stops sending to {name}")
            return None

    def __getattr__(self, method: str):
        def call(*args):
            if self.tracker is not None and self.name not in _DISABLED:
                self._call(getattr(self.tracker, method), *args)
        return call


class RunTrackers:
    """Every tracker of one run."""

    def __init__(self, trackers: list[_SafeTracker], run: RunInfo):
        self.trackers = trackers
        for t in trackers:
            t.on_run_start(run)

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        for t in self.trackers:
            t.on_log(step, metrics)

    def end(self, status: str, metrics: Mapping[str, float | None], error: str | None) -> None:
        for t in self.trackers:
            t.on_run_end(status, metrics, error)


# ----------------------------------------------------------------------------- MLflow
#
# The one mapping of a symsweep run onto an MLflow run, for live tracking (MlflowTracker,
# on the worker, as the run runs) and for the replay of a ledger (symsweep.export): the run
# name, the tags, the params, the metric points and the status come from here only, so a
# live run and an exported run of the same ledger row look alike.

# MLflow's client retries a dead server for minutes by default; a mirror must not. MLflow
# reads these only from the environment (mlflow 3: rest_utils.http_request, _log_url): see
# the module docstring for who sets them.
MLFLOW_ENV = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "5", "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
              "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}  # a "View run" line per run otherwise
MLFLOW_STATUS = {"completed": "FINISHED", "failed": "FAILED", "diverged": "FAILED"}
# MLflow's limits per log_batch call
MLFLOW_PARAMS_PER_BATCH = 100
MLFLOW_METRICS_PER_BATCH = 1000

_EXPERIMENTS: dict[tuple[str, str], str] = {}


def tracker_env(settings: Mapping[str, Any]) -> dict[str, str]:
    """The environment variables that the processes running a sweep's trackers need (MLflow's
    HTTP timeout and retries), for a program to set where it starts them."""
    return dict(MLFLOW_ENV) if "mlflow" in settings else {}


def mlflow_client(uri: str):
    from mlflow.tracking import MlflowClient
    return MlflowClient(tracking_uri=uri)


def mlflow_experiment(client, uri: str, name: str) -> str:
    """The id of experiment `name`, created if missing (once per process)."""
    key = (uri, name)
    if key not in _EXPERIMENTS:
        found = client.get_experiment_by_name(name)
        if found is None:
            try:
                _EXPERIMENTS[key] = client.create_experiment(name)
            except Exception:  # noqa: BLE001 - another worker created it first
                _EXPERIMENTS[key] = client.get_experiment_by_name(name).experiment_id
        else:
            _EXPERIMENTS[key] = found.experiment_id
    return _EXPERIMENTS[key]


def mlflow_run_name(run: RunInfo) -> str:
    return f"{run.task}-s{run.seed}-{run.run_id[:8]}"


def mlflow_tags(run: RunInfo) -> dict[str, str]:
    """The tags an MLflow run gets when it starts: the facts of its symsweep run."""
    return {"symsweep.run_id": run.run_id, "symsweep.sweep": run.sweep, "symsweep.task": run.task,
            "symsweep.seed": str(run.seed), "symsweep.trial": run.trial_id, "symsweep.attempt": str(run.attempt),
            "symsweep.host": run.host, "symsweep.git_commit": run.git_commit or "unknown"}


def mlflow_end_tags(status: str, error: str | None) -> dict[str, str]:
    """The tags an MLflow run gets when it ends: the run's ledger status, and its error."""
    return {"symsweep.status": status, **({"symsweep.error": error[:5000]} if error else {})}


def mlflow_status(status: str) -> str:
    """The MLflow run status of a ledger status (a status MLflow lacks, as diverged: FAILED)."""
    return MLFLOW_STATUS.get(status, "FAILED")


def mlflow_params(config: Mapping[str, Any]) -> dict[str, str]:
    """A resolved config as MLflow params (values as text, at most MLflow's 6000 characters).
    Keys sorted in JSON values, as the ledger's config_json has them: the same text live and
    replayed."""
    import json
    return {k: (v if isinstance(v, str) else json.dumps(v, sort_keys=True))[:6000] for k, v in config.items()}


def mlflow_points(metrics: Mapping[str, float | None], step: int, timestamp_ms: int) -> list:
    """Metric values as MLflow points at one step (a None is no point)."""
    from mlflow.entities import Metric
    return [Metric(k, float(v), timestamp_ms, int(step)) for k, v in metrics.items() if v is not None]


def mlflow_final_points(metrics: Mapping[str, float | None], last_step: int, last_ms: int, end_ms: int) -> list:
    """A run's final metrics as MLflow points at its last logged step (a NaN is no point), one
    millisecond after the last logged point at least: MLflow's store keeps one row per (key,
    timestamp, step, value), so a final value equal to the last logged one would vanish."""
    return mlflow_points({k: v for k, v in metrics.items() if v is not None and v == v},
                         last_step, max(end_ms, last_ms + 1))


def mlflow_start_run(client, experiment_id: str, run: RunInfo, start_ms: int | None = None,
                     extra_tags: Mapping[str, str] | None = None) -> str:
    """Create the MLflow run of a symsweep run, with its name, tags and params; its id."""
    from mlflow.entities import Param
    created = client.create_run(experiment_id, start_time=start_ms, tags={**mlflow_tags(run), **(extra_tags or {})},
                                run_name=mlflow_run_name(run))
    params = [Param(k, v) for k, v in mlflow_params(run.config).items()]
    for i in range(0, len(params), MLFLOW_PARAMS_PER_BATCH):
        client.log_batch(created.info.run_id, params=params[i:i + MLFLOW_PARAMS_PER_BATCH])
    return created.info.run_id


def mlflow_log_points(client, mlflow_run_id: str, points: list) -> None:
    for i in range(0, len(points), MLFLOW_METRICS_PER_BATCH):
        client.log_batch(mlflow_run_id, metrics=points[i:i + MLFLOW_METRICS_PER_BATCH])


def mlflow_end_run(client, mlflow_run_id: str, status: str, error: str | None, end_ms: int | None = None) -> None:
    """Tag an MLflow run with its outcome and end it with the matching MLflow status."""
    from mlflow.entities import RunTag
    client.log_batch(mlflow_run_id, tags=[RunTag(k, v) for k, v in mlflow_end_tags(status, error).items()])
    client.set_terminated(mlflow_run_id, status=mlflow_status(status), end_time=end_ms)


class MlflowTracker:
    """One MLflow run per symsweep run, created when the run starts, on its worker.

    Params: the resolved config. Tags: symsweep.run_id / sweep / task / seed / trial /
    attempt / host / git_commit, then status (and error) at the end. Metrics: each ctx.log
    as a metric step (sent in batches at most once a second), then the final metrics at the
    last step. An MLflow run left RUNNING by a killed attempt of the same symsweep run is
    marked KILLED.
    """

    def __init__(self, uri: str, experiment: str):
        self.uri = uri
        self.client = mlflow_client(uri)
        self.experiment_id = mlflow_experiment(self.client, uri, experiment)
        self.mlflow_run_id: str | None = None
        self.pending: list = []
        self.last_flush = time.monotonic()
        self.last_step = 0
        self.last_ms = 0

    def on_run_start(self, run: RunInfo) -> None:
        stale = self.client.search_runs([self.experiment_id],
                                        filter_string=f"tags.`symsweep.run_id` = '{run.run_id}' "
                                                      f"and attributes.status = 'RUNNING'")
        for old in stale:  # an attempt that was killed mid-run: its ledger row never came
            self.client.set_terminated(old.info.run_id, status="KILLED")
        self.mlflow_run_id = mlflow_start_run(self.client, self.experiment_id, run)

    def on_log(self, step: int, metrics: Mapping[str, float]) -> None:
        now = self.last_ms = int(time.time() * 1000)
        self.last_step = max(self.last_step, int(step))
        self.pending += mlflow_points(metrics, step, now)
        if time.monotonic() - self.last_flush >= FLUSH_EVERY_S or len(self.pending) >= 900:
            self._flush()

    def _flush(self) -> None:
        self.last_flush = time.monotonic()
        points, self.pending = self.pending, []
        mlflow_log_points(self.client, self.mlflow_run_id, points)

    def on_run_end(self, status: str, metrics: Mapping[str, float | None], error: str | None) -> None:
        self.pending += mlflow_final_points(metrics, self.last_step, self.last_ms, int(time.time() * 1000))
        self._flush()
        mlflow_end_run(self.client, self.mlflow_run_id, status, error)
