"""Shared fixtures: run the real `symsweep` CLI (a process, or its entry point here), write small specs."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from symsweep._loopback import free_port  # noqa: F401 - one home; tests import it from here

if TYPE_CHECKING:
    import pandas as pd

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


# Commands that never start Ray or another process of their own. The tests run them in this
# process through the CLI's entry point (`symsweep.cli.main`): the same parsing, checks,
# messages and exit codes, without paying ~1-8 s of interpreter start-up and torch / sklearn /
# matplotlib imports per call. Everything that starts Ray, is given its own environment, or
# is asked for with `isolated=True` still runs as a real `python -m symsweep.cli` process.
_NO_PROCESS_COMMANDS = {"status", "query", "aggregate", "report", "compact", "tasks", "data", "export", "reproduce"}


def _in_process(args: tuple[str, ...], env: dict | None, isolated: bool) -> bool:
    if isolated or env or not args:
        return False
    if args[0] in _NO_PROCESS_COMMANDS:
        return True
    return args[0] in ("run", "resume") and any(a == "--executor" and b == "inline" for a, b in zip(args, args[1:]))


def symsweep(*args: str, cwd: Path | None = None, timeout: float = 300, env: dict | None = None,
             isolated: bool = False) -> subprocess.CompletedProcess:
    """Run `symsweep ARGS` the way a user does and capture what it prints."""
    if _in_process(args, env, isolated):
        return _symsweep_here(args, cwd or REPO)
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, "-m", "symsweep.cli", *args], cwd=cwd or REPO,
                          capture_output=True, text=True, timeout=timeout, env=full_env)


def _symsweep_here(args: tuple[str, ...], cwd: Path) -> subprocess.CompletedProcess:
    import contextlib
    import io
    from symsweep.cli import main
    out, err = io.StringIO(), io.StringIO()
    old_cwd, ray_address = os.getcwd(), os.environ.pop("RAY_ADDRESS", None)
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.chdir(old_cwd)
        if ray_address is not None:
            os.environ["RAY_ADDRESS"] = ray_address
    return subprocess.CompletedProcess(["symsweep", *args], code, out.getvalue(), err.getvalue())


def ledger(sweep_dir) -> "pd.DataFrame":
    """The runs table of a sweep folder as every reader sees it (one row per run id)."""
    from symsweep.store import SweepStore
    return SweepStore(str(sweep_dir)).read_runs()


def raw_rows(sweep_dir, readable_only: bool = False) -> "pd.DataFrame":
    """Every row of every run file and segment, duplicates included (a path or a URI). An
    unreadable file fails the test, unless `readable_only` (then it is skipped)."""
    import pandas as pd
    from symsweep.store import RUNS, SweepStore
    store = SweepStore(str(sweep_dir))
    small, segments = store.table_files(RUNS)
    tables, corrupt = store.read_tables(small + segments)
    assert readable_only or not corrupt, corrupt
    return pd.concat([t.to_pandas() for _, t in tables], ignore_index=True) if tables else pd.DataFrame()


def assert_ran_once(sweep_dir, planned: int) -> "pd.DataFrame":
    """Every planned run has one row, and no run was executed twice: a copy of a row left by
    a crash between writing a segment and removing its small files is the same execution
    (same pid, same finish time); a second execution is not."""
    runs = ledger(sweep_dir)
    assert len(runs) == planned and runs["run_id"].is_unique, (len(runs), planned)
    raw = raw_rows(sweep_dir)
    executions = raw.drop_duplicates(["run_id", "finished_at", "pid"])
    twice = executions[executions["run_id"].duplicated()]["run_id"].tolist()
    assert not twice, f"runs executed more than once: {twice}"
    return runs


@pytest.fixture
def cli():
    return symsweep


@pytest.fixture
def write_spec(tmp_path):
    def write(text: str, name: str = "spec.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path
    return write


def wait_for_port(port: int, host: str = "127.0.0.1", timeout_s: float = 30) -> None:
    """Return once a server accepts connections on host:port (a test's server just started)."""
    import socket
    import time
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s:g} s") from None
            time.sleep(0.1)


def one_line(res: subprocess.CompletedProcess, code: int = 2) -> str:
    """The stderr of a command that must fail with `code` in one clear line, no traceback."""
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr and res.stderr.count("\n") == 1, res.stderr
    return res.stderr


class S3Server:
    """moto's standalone S3 server on 127.0.0.1 (a real S3 API over HTTP), and a bucket."""

    bucket = "symsweep-test"

    def __init__(self):
        from moto.server import ThreadedMotoServer
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        # what every process that talks to it needs (drivers, Ray workers): the standard AWS variables
        self.env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": self.endpoint,
                    "AWS_EC2_METADATA_DISABLED": "true"}

    def start(self) -> "S3Server":
        import boto3
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self.server.start()
        self.client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                                   aws_access_key_id="testing", aws_secret_access_key="testing")
        self.client.create_bucket(Bucket=self.bucket)
        return self

    def stop(self) -> None:
        self.server.stop()

    def uri(self, prefix: str) -> str:
        return f"s3://{self.bucket}/{prefix}"

    def keys(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.fixture(scope="session")
def s3():
    """One S3 server for the session; the AWS variables are set in this process too (and so
    reach every subprocess and Ray worker it starts), and restored at the end."""
    pytest.importorskip("moto.server", reason="moto[server] is in the dev extra")
    server = S3Server().start()
    saved = {k: os.environ.get(k) for k in server.env}
    os.environ.update(server.env)
    yield server
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    server.stop()


@pytest.fixture(scope="session")
def ray_local():
    """One embedded local Ray for the in-process executor tests."""
    ray = pytest.importorskip("ray")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    ray.shutdown()


@pytest.fixture
def one_torch_thread():
    """Tiny models train fastest on one thread, and the 2-core machine is often shared."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
