"""The `symsweep` command.

    symsweep run SPEC [--set key=value ...]   plan, run what is missing, summarize
    symsweep resume RESULTS/SWEEP             the same, from the sweep's frozen spec
    symsweep plan SPEC [--calibrate]          dry run: counts and an estimate of time, writes nothing
    symsweep status RESULTS/SWEEP             planned / completed / failed / diverged / pending
    symsweep aggregate RESULTS/SWEEP          write aggregates/ tables, print the summary
    symsweep query "SQL" [--results PATH]     SQL over runs, history and aggregate tables
    symsweep report RESULTS/SWEEP [--out DIR] report.md + report.html + figures/
    symsweep compact RESULTS/SWEEP            fold small run files into segments
    symsweep tasks                            registered tasks and their parameters

Exit codes: 0 every planned run has a completed or diverged row; 1 some runs failed or
are still pending; 2 bad usage, spec, store location or cluster (nothing was written);
3 the sweep is locked by another live driver; 130 interrupted by Ctrl-C (SIGINT), 143 stopped
by SIGTERM (finished runs are kept either way).

Each command imports what it needs when it runs (torch, Ray, DuckDB are slow to import),
so `status`, `query` and `--help` start fast.

The program owns its environment: `main` sets what Ray, Tune and MLflow read only from the
environment (`_set_environment`), in this process and so in the processes it starts;
symsweep's library code never writes os.environ.
"""
from __future__ import annotations

import argparse
import os
import sys

from symsweep.errors import SpecError, SymsweepError, Terminated

from symsweep._formats import FORMATS


def _whole_number(minimum: int):
    """An argparse type: an int >= minimum, or one line saying what is allowed."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {value}")
        return value
    return parse


def _seconds(text: str) -> float:
    """An argparse type for `query --timeout`: seconds >= 0, or one line saying what is allowed."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected seconds >= 0 (0: no limit), got {text!r}")
    return value


def _add_exec_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=("ray", "inline"), default="ray",
                   help="ray: Ray Tune trials (default); inline: this process, no Ray (debugging)")
    p.add_argument("--address", default=None,
                   help="Ray cluster address to join (default: $RAY_ADDRESS, else an embedded local Ray)")
    p.add_argument("--num-cpus", type=_whole_number(1), default=None, help="CPUs of the embedded local Ray (default: all)")
    p.add_argument("--max-concurrent", type=_whole_number(1), default=None, help="at most this many trials at once")
    p.add_argument("--retry-failed", action="store_true", help="run failed runs again (default: keep them)")
    p.add_argument("--force-unlock", action="store_true", help="take the lock even if another driver holds it")
    p.add_argument("--data-root", default=None, help="root of local datasets (default: $SYMSWEEP_DATA)")
    p.add_argument("--verbose", "-v", action="store_true", help="show Ray and Tune output")
    p.add_argument("--no-summary", action="store_true", help="do not aggregate and print the summary at the end")
    p.add_argument("--verify", action="store_true",
                   help="read every artifact and check its sha256 (default: sizes); damaged runs run again")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="symsweep", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a sweep spec (only what is missing)")
    p.add_argument("spec", help="path to a sweep spec (YAML)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec key, resources.cpus/gpus, or a task parameter (value is YAML)")
    p.add_argument("--results", default="results", help="results root (local path or pyarrow.fs URI)")
    p.add_argument("--force", action="store_true", help="re-plan a sweep folder started with another spec")
    _add_exec_options(p)

    p = sub.add_parser("plan", help="dry run: what `run` would do and an estimate of its time (writes nothing)")
    p.add_argument("spec", help="path to a sweep spec (YAML)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a spec key, as for `run`")
    p.add_argument("--results", default="results", help="results root (local path or pyarrow.fs URI)")
    p.add_argument("--calibrate", action="store_true",
                   help="without finished runs: time one inline run of the smoke budget (temporary folder)")
    p.add_argument("--calibrate-set", dest="calibrate_overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the calibration run on top of the smoke budget (e.g. dataset=cifar10)")
    p.add_argument("--data-root", default=None, help="root of local datasets (default: $SYMSWEEP_DATA)")

    p = sub.add_parser("resume", help="resume a sweep folder from its frozen spec")
    p.add_argument("sweep_dir", help="RESULTS/<sweep name>")
    _add_exec_options(p)

    p = sub.add_parser("status", help="show what a sweep has done")
    p.add_argument("sweep_dir")
    p.add_argument("--slowest", type=_whole_number(0), default=5, help="how many of the slowest runs to list")
    p.add_argument("--verify", action="store_true", help="read every artifact and check its sha256")

    p = sub.add_parser("aggregate", help="write aggregate tables of a sweep")
    p.add_argument("sweep_dir")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="aggregate.KEY=VALUE",
                   help="override an aggregation setting of the frozen spec (e.g. aggregate.bins=80)")

    p = sub.add_parser("query", help="SQL over the runs, history and aggregate tables (DuckDB)")
    p.add_argument("sql", help='e.g. "SELECT cfg_expansion_factor, avg(metric_test_acc) FROM runs GROUP BY 1"')
    p.add_argument("--results", default="results",
                   help="a sweep folder or a results root holding several sweeps (default: results)")
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument("--limit", type=_whole_number(0), default=None, metavar="N",
                   help="print at most N rows of each result, 0 for all (default: 1000 for table, all for csv/json)")
    p.add_argument("--timeout", type=_seconds, default=300, metavar="SECONDS",
                   help="stop a query that runs longer than this, exit 2; 0 for no limit (default: 300)")

    p = sub.add_parser("export", help="export a sweep to TensorBoard event files or into MLflow")
    p.add_argument("target", choices=("tensorboard", "mlflow"))
    p.add_argument("sweep_dir")
    p.add_argument("--out", help="tensorboard: the log folder to write (then: tensorboard --logdir OUT)")
    p.add_argument("--uri", help="mlflow: the tracking URI (http://host:5000, sqlite:///mlflow.db, ...)")
    p.add_argument("--experiment", help="mlflow: the experiment (default: the sweep name)")

    p = sub.add_parser("compact", help="fold a sweep's small run and history files into segment files")
    p.add_argument("sweep_dir")

    p = sub.add_parser("report", help="write a self-contained report of a sweep (Markdown + HTML + PNG)")
    p.add_argument("sweep_dir")
    p.add_argument("--out", default=None, help="report folder (default: RESULTS/SWEEP/report)")

    sub.add_parser("tasks", help="list registered tasks and their parameters")

    p = sub.add_parser("reproduce", help="the paper's reproduction table, computed from the results that exist")
    p.add_argument("results", help="results root holding the sweeps (a folder or a URI)")
    p.add_argument("--claims", default=None, help="claims file (default: every registered one: the paper's, tasks/claims.yaml)")
    p.add_argument("--out", default=None,
                   help="write the table here (between the reproduce markers if the file has them)")

    p = sub.add_parser("data", help="download a dataset a task reads from --data-root (needs internet)")
    p.add_argument("name", nargs="?", help="dataset name (omit to list them)")
    p.add_argument("--dest", help="data root to download into")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _set_environment(args)
        if args.command in ("run", "resume"):
            _stop_on_sigterm()
        code = COMMANDS[args.command](args)
        sys.stdout.flush()
        return code
    except SymsweepError as exc:
        print(f"symsweep: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        # the handler's Terminated, or what a library made of it on the way up (Tune re-raises
        # a KeyboardInterrupt of its own)
        if isinstance(exc, Terminated) or _TERMINATED:
            print("\nsymsweep: stopped by SIGTERM; every finished run is kept. Run the same command again "
                  "to resume.", file=sys.stderr)
            return 143
        print("\nsymsweep: interrupted; every finished run is kept. Run the same command again to resume.",
              file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`symsweep status S | head -1`): normal use, not an error.
        # Point stdout at /dev/null so that the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


_TERMINATED: list[bool] = []
"""Set when SIGTERM arrived: main reports 143 for whatever KeyboardInterrupt reaches it."""


def _raise_terminated(signum, frame) -> None:
    _TERMINATED.append(True)
    raise Terminated()


def _stop_on_sigterm() -> None:
    """SIGTERM (a scheduler's stop) ends a command as Ctrl-C does, with exit 143. The
    embedded Ray's start-up takes the signal for itself; RayExecutor.prepare gives it back."""
    import signal
    import threading
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


def _set_environment(args) -> None:
    """What the command's libraries read only from the environment, where the user set
    nothing: MLflow's bounded HTTP timeout and retries for the commands that may talk to a
    tracking server (symsweep.tracking.MLFLOW_ENV; the embedded Ray's workers inherit them),
    and a Ray driver's settings (symsweep.executors.ray_driver_env)."""
    env: dict[str, str] = {}
    if args.command in ("run", "resume", "plan", "export"):  # live tracking, a calibration run, export mlflow
        from symsweep.tracking import MLFLOW_ENV
        env.update(MLFLOW_ENV)
    if args.command in ("run", "resume") and args.executor == "ray":
        from symsweep.executors import ray_driver_env
        env.update(ray_driver_env(_ray_address(args), os.environ))
        # Ctrl-C must end the driver (exit 130, Ray stopped by the executor's close()); Tune's
        # own handler would turn it into a graceful stop that returns normally, reported as
        # "pending" (exit 1). Not the user's to choose: this program promises exit 130.
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    for key, value in env.items():
        os.environ.setdefault(key, value)


def _ray_address(args) -> str | None:
    return args.address or os.environ.get("RAY_ADDRESS") or None


def _cmd_run(args) -> int:
    from symsweep._fs import check_new_sweep, parse_location
    from symsweep.spec import load_spec
    spec = load_spec(args.spec, args.overrides)
    location = parse_location(args.results).join(spec.name)
    check_new_sweep(args.results, location)  # a folder that cannot be made or written: exit 2, nothing written
    return _execute(spec, location.uri, args, force=args.force)


def _check_sweep_folder(path: str, writable: bool = False) -> None:
    """A sweep folder named on the command line must be one (holding spec.yaml), and writable
    for the commands that write: a bad location is bad input, exit 2 in one line."""
    from symsweep._fs import check_sweep_folder
    check_sweep_folder(path, writable)


def _cmd_plan(args) -> int:
    from symsweep.plan import plan_report
    data_root = args.data_root or os.environ.get("SYMSWEEP_DATA")
    if data_root and not os.path.isdir(data_root):
        where = "--data-root" if args.data_root else "SYMSWEEP_DATA"
        raise SpecError(f"{where} {data_root!r} is not a folder; point it at the root of your local datasets")
    plan_report(args.spec, args.overrides, args.results, args.calibrate,
                os.path.abspath(data_root) if data_root else None, calibrate_overrides=args.calibrate_overrides)
    return 0


def _cmd_resume(args) -> int:
    from symsweep.sweep import open_sweep
    _check_sweep_folder(args.sweep_dir, writable=True)
    spec, store = open_sweep(args.sweep_dir)  # the folder given, even if renamed since
    return _execute(spec, store, args, force=False)


def _execute(spec, store, args, force: bool) -> int:
    from symsweep.aggregate import aggregate_sweep, format_summary
    from symsweep.executors import make_executor
    from symsweep.registry import get_task
    from symsweep.sweep import RunOptions, run_sweep
    from symsweep.tracking import tracker_env
    # what the trackers need in the Ray workers, as this process has it (_set_environment)
    worker_env = {key: os.environ[key] for key in tracker_env(spec.tracking)}
    executor = make_executor(args.executor, spec.resources, spec.max_failures, address=_ray_address(args),
                             max_concurrent=args.max_concurrent, num_cpus=args.num_cpus, verbose=args.verbose,
                             experiment_name=spec.name, worker_env=worker_env) if args.executor == "ray" \
        else make_executor("inline", spec.resources, spec.max_failures)
    data_root = args.data_root or os.environ.get("SYMSWEEP_DATA")
    if data_root and not os.path.isdir(data_root):
        where = "--data-root" if args.data_root else "SYMSWEEP_DATA"
        raise SpecError(f"{where} {data_root!r} is not a folder; point it at the root of your local datasets")
    if data_root:  # Ray runs trials in their own working folders: a relative root would not be found there
        data_root = os.path.abspath(data_root)
    options = RunOptions(retry_failed=args.retry_failed, force=force, force_unlock=args.force_unlock,
                         data_root=data_root, verify=args.verify)
    outcome = run_sweep(spec, store, executor, options)
    c = outcome.counts
    print(f"done: {c['completed']} completed, {c['failed']} failed, {c['diverged']} diverged, "
          f"{c['pending']} pending of {c['planned']} planned")
    if outcome.report.lost_trials:
        print(f"{len(outcome.report.lost_trials)} trials died after {spec.max_failures} retries; "
              f"their unfinished runs are pending: run again to resume")
        for trial_id, error in list(outcome.report.errors.items())[:3]:
            print(f"  trial {trial_id}: {error}")
    if not args.no_summary and c["completed"]:
        task = get_task(spec.task)
        summary = _current_summary(outcome.plan.store, c["completed"]) if not outcome.report.trials else None
        if summary is None:
            summary = aggregate_sweep(spec, outcome.plan.store)["summary"]
        print(format_summary(summary, list(task.summary_metrics)))
    return 0 if c["failed"] == 0 and c["pending"] == 0 else 1


def _current_summary(store, completed: int):
    """The stored summary table when it covers every completed run (nothing ran since), else None."""
    try:
        summary = store.read_aggregate("summary")
    except (OSError, ValueError, KeyError):
        return None
    return summary if "n" in summary and int(summary["n"].sum()) == completed else None


def _cmd_status(args) -> int:
    from symsweep.sweep import make_plan, open_sweep, status_table
    _check_sweep_folder(args.sweep_dir)
    spec, store = open_sweep(args.sweep_dir)
    plan = make_plan(spec, store, verify=args.verify)
    print(f"sweep {spec.name!r} (task {spec.task}) at {store.shown}")
    print("  ".join(f"{k}: {v}" for k, v in plan.counts().items()))
    holder = store.lock_holder()
    if holder and holder.get("unreadable"):
        print("lock: the lock file is unreadable; the next `run`/`resume` takes it over")
    elif holder and holder.get("stale"):
        print(f"lock: left by pid {holder.get('pid')} on {holder.get('host')}, which is gone; the next "
              f"`run`/`resume` takes it over")
    elif holder:
        print(f"lock: held by pid {holder.get('pid')} on {holder.get('host')}")
    if plan.extra_rows:
        print(f"{plan.extra_rows} rows belong to runs the current spec does not plan")
    from symsweep.gpu import advice_line
    advice = advice_line(store.read_ledger(columns=["peak_gpu_mem_mb", "gpu_mem_total_mb", "device"]).runs)
    if advice:
        print(advice)
    files = store.file_counts()
    print(f"files: {files['runs_files']} run files + {files['runs_segments']} segments, "
          f"{files['history_files']} history files + {files['history_segments']} segments")
    if plan.adaptive is not None:
        from symsweep.adaptive import decision_table
        table = decision_table(spec, plan.runs, plan.adaptive)
        state = "complete" if plan.adaptive.complete else "rounds still to run"
        print(f"\nadaptive seeds ({spec.adaptive.metric} vs {dict(spec.adaptive.baseline)}, {state}):\n"
              + table.drop(columns="metric").to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    from symsweep.store import damage_lines
    for line in damage_lines(plan.corrupt, plan.damaged, store.shown_path,
                             "moved aside and re-run at the next `symsweep run`/`resume`"):
        print(f"damaged: {line}")
    if args.slowest > 0 or plan.counts()["failed"] or plan.counts()["diverged"]:
        slow, failed = status_table(plan, args.slowest)
        if not slow.empty and args.slowest > 0:
            print("\nslowest runs:\n" + slow.to_string(index=False))
        if not failed.empty:
            failed = failed.assign(error=failed["error"].astype(str).str.slice(0, 100))
            print("\nfailed / diverged runs:\n" + failed.to_string(index=False))
    return 0


def _cmd_export(args) -> int:
    from symsweep.export import export_mlflow, export_tensorboard
    from symsweep.sweep import open_sweep
    _check_sweep_folder(args.sweep_dir)
    _, store = open_sweep(args.sweep_dir)
    if args.target == "tensorboard":
        if not args.out:
            raise SpecError("export tensorboard needs --out LOGDIR")
        n = _export_guarded(lambda: export_tensorboard(store, args.out))
        print(f"wrote {n} runs to {args.out}; view them with: tensorboard --logdir {args.out}")
        return 0
    if not args.uri:
        raise SpecError("export mlflow needs --uri TRACKING_URI")
    done, skipped = _export_guarded(
        lambda: export_mlflow(store, args.uri, args.experiment))
    print(f"exported {done} runs to {args.uri} ({skipped} already there)")
    return 0


def _export_guarded(fn):
    """An export that cannot reach its target is one line, exit 2."""
    try:
        return fn()
    except SymsweepError:
        raise
    except (OSError, ImportError) as exc:
        raise SpecError(f"export failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None
    except Exception as exc:  # noqa: BLE001 - MLflow's client raises its own exception types
        if type(exc).__module__.startswith(("mlflow", "requests", "urllib3")):
            raise SpecError(f"export failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None
        raise


def _cmd_compact(args) -> int:
    from symsweep.sweep import open_sweep
    _check_sweep_folder(args.sweep_dir, writable=True)
    _, store = open_sweep(args.sweep_dir)
    store.acquire_lock(force=False)  # a live driver folds its own runs; never fold under it
    try:
        before = store.file_counts()
        done = store.compact()
        after = store.file_counts()
    finally:
        store.release_lock()
    print(f"folded {done.rows} run rows and {done.history_rows} history records into segments, removed "
          f"{done.removed} small files, merged {done.merged} segments")
    print(f"runs: {before['runs_files']} files + {before['runs_segments']} segments -> "
          f"{after['runs_files']} + {after['runs_segments']}; history: {before['history_files']} + "
          f"{before['history_segments']} -> {after['history_files']} + {after['history_segments']}")
    return 0


def _cmd_aggregate(args) -> int:
    from symsweep.aggregate import aggregate_sweep, format_summary
    from symsweep.compare import format_comparison
    from symsweep.registry import get_task
    from symsweep.spec import spec_from_dict
    from symsweep.sweep import open_sweep
    _check_sweep_folder(args.sweep_dir, writable=True)
    spec, store = open_sweep(args.sweep_dir)
    bad = [o for o in args.overrides if not o.startswith("aggregate.")]
    if bad:
        raise SpecError(f"aggregate --set takes aggregation settings only (aggregate.KEY=VALUE), got {bad}")
    if args.overrides:
        spec = spec_from_dict(spec.to_dict(), args.overrides, source=store.spec_shown)
    tables = aggregate_sweep(spec, store)
    task = get_task(spec.task)
    for name, df in tables.items():
        print(f"{store.aggregates_dir()}/{name}.parquet: {len(df)} rows")
    print("\nsummary:\n" + format_summary(tables["summary"], list(task.summary_metrics)))
    for name, df in tables.items():  # the small tables, in full; the big ones are a query away
        if name == "summary" or df.empty or len(df) > 20 or {"run_id", "run_a"} & set(df.columns):
            continue
        shown = format_comparison(df) if name == "comparison" else df
        if shown.shape[1] <= 14:
            print(f"\n{name}:\n" + shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


def _cmd_query(args) -> int:
    try:
        from symsweep.query import TABLE_ROWS, format_shown, open_results
        limit = args.limit if args.limit is not None else TABLE_ROWS if args.format == "table" else 0
        with open_results(args.results, timeout_s=args.timeout) as results:
            shown = [s for s in results.show_all(args.sql, args.format, limit or None) if s is not None]
            for path, err in results.skipped:
                print(f"warning: skipped unreadable file {path} ({err})", file=sys.stderr)
            for i, result in enumerate(shown):
                print(("\n" if i else "") + format_shown(result, args.format), flush=True)
                if len(result.rows) < result.total:
                    print(f"note: printed the first {len(result.rows)} of {result.total} rows "
                          f"(--limit N for more, --limit 0 for all)", file=sys.stderr, flush=True)
    except KeyboardInterrupt:  # Ctrl-C: DuckDB was interrupted (symsweep.query); one line, no traceback
        print("symsweep: query interrupted", file=sys.stderr)
        return 130
    return 0


def _cmd_report(args) -> int:
    from symsweep.report import write_report
    _check_sweep_folder(args.sweep_dir)
    folder, note = write_report(args.sweep_dir, args.out)
    if note:
        print(note)
    print(f"report: {folder}/report.html\n        {folder}/report.md")
    return 0


def _cmd_tasks(args) -> int:
    import dataclasses
    import typing
    for name, task in _loaded_tasks():
        print(f"{name}: {task.description}")
        hints = typing.get_type_hints(task.config_cls)
        for f in dataclasses.fields(task.config_cls):
            default = f.default if f.default is not dataclasses.MISSING else "(required)"
            print(f"    {f.name}: {str(hints[f.name]).replace('typing.', '')} = {default!r}")
    return 0


def _loaded_tasks():
    """(name, task) of every registered task; a plugin that fails to load is named on stderr."""
    from symsweep.registry import available_tasks, get_task
    for name in available_tasks():
        try:
            yield name, get_task(name)
        except SpecError as exc:
            print(f"warning: {exc}", file=sys.stderr)


def _cmd_reproduce(args) -> int:
    from symsweep.reproduce import default_claims, evaluate, load_claims, write_table
    paths = [args.claims] if args.claims else default_claims()
    claims = [claim for path in paths for claim in load_claims(path)]
    rows = evaluate(claims, args.results)
    table = write_table(rows, args.out)
    if args.out is None:
        print(table, end="")
    else:
        counts = {v: sum(r.verdict == v for r in rows) for v in dict.fromkeys(r.verdict for r in rows)}
        print(f"wrote {len(rows)} rows to {args.out}: " + ", ".join(f"{n} {v}" for v, n in counts.items()))
    return 0


def _cmd_data(args) -> int:
    sources = {}
    for task_name, task in _loaded_tasks():
        for name, fetch in task.downloads.items():
            sources[name] = (task_name, fetch)
    if args.name is None:
        for name, (task_name, _) in sorted(sources.items()):
            print(f"{name}  (task {task_name})")
        return 0
    if args.name not in sources:
        raise SpecError(f"unknown dataset {args.name!r}; downloadable: {', '.join(sorted(sources))}")
    if not args.dest:
        raise SpecError("--dest DIR is required: the data root to download into")
    try:
        sources[args.name][1](args.dest)
    except (OSError, RuntimeError) as exc:
        print(f"symsweep: error: download of {args.name} failed: {exc}", file=sys.stderr)
        return 1
    print(f"{args.name} is in {args.dest}; pass --data-root {args.dest} (or set SYMSWEEP_DATA)")
    return 0


COMMANDS = {"run": _cmd_run, "plan": _cmd_plan, "resume": _cmd_resume, "status": _cmd_status, "compact": _cmd_compact,
            "export": _cmd_export,
            "aggregate": _cmd_aggregate, "query": _cmd_query, "report": _cmd_report, "tasks": _cmd_tasks,
            "data": _cmd_data, "reproduce": _cmd_reproduce}

if __name__ == "__main__":
    sys.exit(main())
