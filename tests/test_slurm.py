"""Sweeps submitted with docker/slurm/symsweep.sbatch to a real Slurm (Debian's slurmctld,
slurmd and munge, started here as root on loopback with two nodes): a sweep on two nodes,
a time limit that requeues the job mid-sweep, scancel then resubmission, bad input.
Every ending leaves every run exactly once. Marked `slurm`; skipped without the packages
or root (CI installs them: .ci/run)."""
from __future__ import annotations

import math
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import REPO, assert_ran_once, free_port, ledger, symsweep

pytestmark = pytest.mark.slurm

SBATCH = REPO / "docker" / "slurm" / "symsweep.sbatch"
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol", "squeue", "scancel", "sinfo")
NODES = ("n1", "n2")

SPEC = """
name: slu
task: synthetic
fixed: {{sleep_s: {sleep}}}
seeds: {seeds}
runs_per_trial: 1
resources: {{cpus: {cpus}, gpus: {gpus}}}
"""


# ---------------------------------------------------------------------------- a Slurm on loopback
class SlurmCluster:
    """munged, slurmctld and one slurmd per node, in the foreground (-D / -F), each in a
    process session of its own, all files in one short temp folder (Ray's socket paths,
    made under TMPDIR, must stay under 107 characters)."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="slurm-", dir="/tmp"))
        self.dir.chmod(0o755)  # munged wants its socket reachable by everyone
        self.conf = self.dir / "slurm.conf"
        self.daemons: dict[str, subprocess.Popen] = {}

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "SLURM_CONF": str(self.conf), **extra}
        env.pop("RAY_ADDRESS", None)
        return env

    def _write_conf(self) -> None:
        d = self.dir
        for sub in ("state", "log", "tmp", *(f"spool/{n}" for n in NODES)):
            (d / sub).mkdir(parents=True)
        ctld_port, *node_ports = (free_port() for _ in range(1 + len(NODES)))
        nodes = "\n".join(f"NodeName={n} NodeAddr=127.0.0.1 Port={p} CPUs=2 Gres=gpu:2 State=UNKNOWN"
                          for n, p in zip(NODES, node_ports))
        # two fake GPUs per node, whose device files are /dev/null's and /dev/zero's twins: Slurm
        # hands them out as on a GPU node, setting CUDA_VISIBLE_DEVICES (no cgroups enforce it here)
        (d / "dev").mkdir()
        for i, minor in enumerate((3, 5)):
            os.mknod(d / "dev" / f"gpu{i}", 0o666 | stat.S_IFCHR, os.makedev(1, minor))
        (d / "gres.conf").write_text(f"Name=gpu File={d}/dev/gpu[0-1]\n")
        self.conf.write_text(f"""\
ClusterName=symsweep-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={node_ports[0]}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it may start again (default 120 s)
AuthInfo=socket={d}/munge.sock,cred_expire=10
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool/%n
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd-%n.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
GresTypes=gpu
# the main scheduling loop every 2 s (default 60): a requeued job starts soon after it may
SchedulerParameters=sched_interval=2
JobRequeue=1
ReturnToService=2
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
KillWait=10
MinJobAge=600
MessageTimeout=30
SlurmdTimeout=300
InactiveLimit=0
{nodes}
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")

    def _daemon(self, name: str, args: list[str]) -> None:
        log = open(self.dir / "log" / f"{name}.out", "w")
        self.daemons[name] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env(),
                                              cwd=self.dir, start_new_session=True)

    def start(self) -> "SlurmCluster":
        self._write_conf()
        key = self.dir / "munge.key"
        key.write_bytes(os.urandom(128))
        key.chmod(0o600)
        d = self.dir
        self._daemon("munged", ["munged", "-F", f"--socket={d}/munge.sock", f"--key-file={key}",
                                f"--pid-file={d}/munged.pid", f"--seed-file={d}/munged.seed",
                                f"--log-file={d}/log/munged.log"])
        self._wait(lambda: (d / "munge.sock").exists(), 30, "munged did not create its socket")
        self._daemon("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)])
        for node in NODES:
            self._daemon(f"slurmd-{node}", ["slurmd", "-D", "-N", node, "-f", str(self.conf)])
        self._wait(lambda: self.node_states() == dict.fromkeys(NODES, "idle"), 90, "the nodes did not come up")
        return self

    def _wait(self, ready, timeout_s: float, what: str) -> None:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            for name, proc in self.daemons.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}: {self.log_tail(name)}")
            if ready():
                return
            time.sleep(0.5)
        raise TimeoutError(f"{what} in {timeout_s:g} s: {self.log_tail('slurmctld')}")

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.dir / "log" / f"{name}.out"
        return "\n".join(path.read_text().splitlines()[-lines:]) if path.exists() else ""

    def cmd(self, *args: str, check: bool = True) -> str:
        res = subprocess.run(args, env=self.env(), capture_output=True, text=True, timeout=60)
        if check and res.returncode:
            raise RuntimeError(f"{' '.join(args)}: {res.stderr.strip()}")
        return res.stdout

    def node_states(self) -> dict[str, str]:
        out = self.cmd("sinfo", "-h", "-N", "-o", "%N %t", check=False)
        return dict(line.split() for line in out.splitlines() if line.strip())

    # ------------------------------------------------------------------ jobs
    def submit(self, spec: Path, results: Path | str, out: Path, *sbatch_args: str, **env_vars: str) -> str:
        """`sbatch [ARGS] symsweep.sbatch SPEC --results RESULTS`, the way the docs say, with
        the test's Python, a head on 127.0.0.2 (as the loopback cluster tests) and the output in `out`."""
        env = self.env(SYMSWEEP_PYTHON=sys.executable, SYMSWEEP_HEAD_IP="127.0.0.2",
                       TMPDIR=str(self.dir / "tmp"), PYTHONUNBUFFERED="1", **env_vars)
        res = subprocess.run(["sbatch", "--parsable", f"--output={out}", "--cpus-per-task=2", *sbatch_args,
                              str(SBATCH), str(spec), "--results", str(results), "--no-summary"],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        return res.stdout.strip().split(";")[0]

    def job(self, job_id: str) -> dict[str, str]:
        out = self.cmd("scontrol", "show", "job", "-o", job_id)
        return dict(re.findall(r"(\w+)=(\S*)", out))

    def wait_job(self, job_id: str, states=("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"),
                 timeout_s: float = 300) -> dict[str, str]:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            info = self.job(job_id)
            if info["JobState"] in states:
                return info
            time.sleep(0.5)
        raise TimeoutError(f"job {job_id} still {info['JobState']} after {timeout_s:g} s")

    # ------------------------------------------------------------------ stop
    def _our_processes(self) -> list[int]:
        """Processes of this cluster: the daemons and every job's, which carry its SLURM_CONF."""
        mine = f"SLURM_CONF={self.conf}".encode()
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != os.getpid():
                try:
                    with open(f"/proc/{entry}/environ", "rb") as f:
                        if mine in f.read().split(b"\0"):
                            pids.append(int(entry))
                except OSError:
                    pass
        return pids

    def stop(self) -> None:
        if self.daemons.get("slurmctld") and self.daemons["slurmctld"].poll() is None:
            self.cmd("scancel", "--user", "root", check=False)
            try:
                self._wait(lambda: not self.cmd("squeue", "-h", check=False).strip(), 60, "jobs still running")
            except (RuntimeError, TimeoutError):
                pass
        for proc in self.daemons.values():  # each daemon leads a process session of its own
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.daemons.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        # slurmstepd daemonizes out of slurmd's session: whatever of ours is left, by its SLURM_CONF
        for pid in self._our_processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)


def _missing() -> str | None:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "the Slurm daemons run here as root (SlurmUser=root): run as root (CI does)"
    absent = [d for d in DAEMONS if shutil.which(d) is None]
    if absent:
        return (f"no {', '.join(absent)}: apt-get install slurmctld slurmd slurm-client munge "
                f"(Debian 12: Slurm 22.05; .ci/run does)")
    return None


@pytest.fixture(scope="module")
def slurm():
    reason = _missing()
    if reason:
        pytest.skip(reason)
    cluster = SlurmCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


# ---------------------------------------------------------------------------- helpers
def _spec(tmp_path: Path, sleep: float, seeds: int, cpus: int = 1, gpus: int = 0) -> Path:
    path = tmp_path / "slu.yaml"
    path.write_text(SPEC.format(sleep=sleep, seeds=seeds, cpus=cpus, gpus=gpus))
    return path


def _wait_rows(sweep: Path, n: int, timeout_s: float = 240) -> int:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        count = len(ledger(sweep)) if (sweep / "runs").exists() else 0
        if count >= n:
            return count
        time.sleep(0.5)
    raise TimeoutError(f"fewer than {n} runs finished in {timeout_s} s")


def _wait_text(path: Path, text: str, timeout_s: float = 240) -> None:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.5)
    raise TimeoutError(f"{text!r} not in {path} after {timeout_s} s:\n{path.read_text() if path.exists() else ''}")


def _already_done(out: str) -> int:
    """How many runs the last allocation found done (the driver's plan line)."""
    return int(re.findall(r"runs planned, (\d+) already done", out)[-1])


def _seconds(text: str) -> int:
    """Slurm's [D-]HH:MM:SS or MM:SS in seconds."""
    days, _, clock = text.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0)
    return int(days or 0) * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]


# ---------------------------------------------------------------------------- tests
def test_a_sweep_on_two_nodes_with_gpus_completes_every_run_once(slurm, tmp_path):
    """The documented command: `sbatch --nodes=2 --gpus-per-node=2`. Head on n1, worker on
    n2 (srun). A trial wants a whole node (2 CPUs, 2 GPUs): two trials at once means that
    both nodes ran trials, with the GPUs Slurm gave the job on each. With SYMSWEEP_MPS=1:
    each node's Ray runs under the MPS branch (these fake GPUs have no MPS daemon to start:
    symsweep.mps says so and Ray starts all the same)."""
    spec, out = _spec(tmp_path, sleep=5, seeds=4, cpus=2, gpus=2), tmp_path / "job.out"
    job = slurm.submit(spec, tmp_path / "res", out, "--nodes=2", "--gpus-per-node=2", SYMSWEEP_MPS="1")
    info = slurm.wait_job(job)
    text = out.read_text()
    assert info["JobState"] == "COMPLETED" and info["ExitCode"] == "0:0", text
    assert "Ray cluster of 2 node(s)" in text and "done: 4 completed, 0 failed, 0 diverged, 0 pending" in text, text
    runs = assert_ran_once(tmp_path / "res" / "slu", 4)
    assert set(runs["status"]) == {"completed"}
    assert {frozenset(v.split(",")) for v in runs["cuda_visible_devices"]} == {frozenset("01")}  # its node's 2
    events = sorted([(t, 1) for t in runs["started_at"]] + [(t, -1) for t in runs["finished_at"]])
    level = peak = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    assert peak == 2, runs[["started_at", "finished_at"]]
    res = symsweep("status", str(tmp_path / "res" / "slu"))  # the results read back
    assert res.returncode == 0 and "planned: 4  completed: 4  failed: 0" in res.stdout, res.stdout
    assert not (slurm.dir / "tmp" / f"ray-{job}").exists(), "Ray's folder of a finished job is left"


def test_the_time_limit_requeues_the_job_and_the_sweep_resumes(slurm, tmp_path):
    """The limit is lowered mid-sweep (scontrol update), as if the job had asked for a short
    one: Slurm sends USR1 (the template's --signal=B:USR1@120), the driver stops, the job
    requeues itself, and its next allocation runs only what is missing."""
    spec, out = _spec(tmp_path, sleep=6, seeds=16), tmp_path / "job.out"
    sweep = tmp_path / "res" / "slu"
    job = slurm.submit(spec, tmp_path / "res", out, "--nodes=1", "--time=30")
    _wait_rows(sweep, 1)
    # the limit now ends 1-2 minutes ahead: inside the warning window, so Slurm signals at its
    # next time-limit check (every 30 s)
    elapsed = _seconds(slurm.job(job)["RunTime"])
    slurm.cmd("scontrol", "update", f"JobId={job}", f"TimeLimit={math.ceil(elapsed / 60) + 1}")
    _wait_text(out, "requeueing job", timeout_s=180)  # printed once the driver has stopped
    slurm.cmd("scontrol", "update", f"JobId={job}", "TimeLimit=30")  # the next allocation's limit
    info = slurm.wait_job(job, timeout_s=300)
    text = out.read_text()
    assert info["JobState"] == "COMPLETED" and info["Restarts"] == "1", (info, text)
    assert text.count("got SIGUSR1") == 1, text
    kept = _already_done(text)
    assert 1 <= kept < 16, f"not stopped mid-sweep: {text}"  # the first allocation's runs were kept ...
    assert "done: 16 completed, 0 failed, 0 diverged, 0 pending" in text, text
    assert "stale lock" not in text, text  # ... its lock released ...
    assert_ran_once(sweep, 16)  # ... and none of its runs ran again


def test_scancel_mid_sweep_then_resubmit_runs_every_run_once(slurm, tmp_path):
    """scancel sends SIGTERM to every process of the job, the driver included: it stops
    (releasing its lock), and the same command submitted again finishes the sweep."""
    spec, sweep = _spec(tmp_path, sleep=1, seeds=12), tmp_path / "res" / "slu"
    first = slurm.submit(spec, tmp_path / "res", tmp_path / "first.out", "--nodes=1")
    _wait_rows(sweep, 2)
    slurm.cmd("scancel", first)
    assert slurm.wait_job(first, timeout_s=120)["JobState"] == "CANCELLED"
    assert "SIGTERM received" not in (tmp_path / "first.out").read_text()  # Ray's crash handler stayed out
    second = slurm.submit(spec, tmp_path / "res", tmp_path / "second.out", "--nodes=1")
    info = slurm.wait_job(second)
    text = (tmp_path / "second.out").read_text()
    assert info["JobState"] == "COMPLETED", text
    assert 2 <= _already_done(text) < 12, text
    assert "done: 12 completed, 0 failed, 0 diverged, 0 pending" in text, text
    assert "stale lock" not in text, text  # the cancelled driver released its lock
    assert_ran_once(sweep, 12)


def test_a_bad_spec_or_results_location_fails_the_job_in_one_line(slurm, tmp_path):
    bad_spec = tmp_path / "bad.yaml"
    bad_spec.write_text(SPEC.format(sleep=0, seeds=2, cpus=1, gpus=0).replace("seeds:", "sedes:"))
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    jobs = {  # both at once, one node each
        "spec": slurm.submit(bad_spec, tmp_path / "res", tmp_path / "spec.out", "--nodes=1"),
        "results": slurm.submit(_spec(tmp_path, sleep=0, seeds=2), a_file / "res", tmp_path / "results.out",
                                "--nodes=1"),
    }
    for name, job in jobs.items():
        info = slurm.wait_job(job)
        text = (tmp_path / f"{name}.out").read_text()
        errors = [line for line in text.splitlines() if "error" in line.lower()]
        assert info["JobState"] == "FAILED" and info["ExitCode"] == "2:0", (info, text)
        assert len(errors) == 1 and errors[0].startswith("symsweep: error:"), text
        assert "Traceback" not in text, text
    assert "sedes" in (tmp_path / "spec.out").read_text()
    assert not (tmp_path / "res").exists() and a_file.read_text() == ""


def test_two_jobs_on_one_node_each_run_their_own_ray(slurm, tmp_path):
    """Two one-CPU jobs share node n1: every port Ray binds there must be the job's own (the
    dashboard agent's default 52365 and the worker range 10002-19999 were shared)."""
    spec = _spec(tmp_path, sleep=3, seeds=4)
    jobs = [slurm.submit(spec, tmp_path / f"res{i}", tmp_path / f"job{i}.out", "--nodes=1", "--nodelist=n1",
                         "--cpus-per-task=1") for i in (0, 1)]
    infos = [slurm.wait_job(job) for job in jobs]
    for i, info in enumerate(infos):
        text = (tmp_path / f"job{i}.out").read_text()
        assert info["JobState"] == "COMPLETED" and info["NodeList"] == "n1", (info, text)
        assert "done: 4 completed, 0 failed, 0 diverged, 0 pending" in text, text
    first, second = (assert_ran_once(tmp_path / f"res{i}" / "slu", 4) for i in (0, 1))
    # they ran at the same time, on the same node
    assert first["started_at"].min() < second["finished_at"].max() and second["started_at"].min() < \
        first["finished_at"].max()


def _driver_of(job: str) -> int:
    """The pid of job `job`'s sweep driver (its environment says which job it belongs to)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")
            environ = open(f"/proc/{entry}/environ", "rb").read().split(b"\0")
        except OSError:
            continue
        if b"symsweep.cli" in cmdline and b"run" in cmdline and f"SLURM_JOB_ID={job}".encode() in environ:
            return int(entry)
    raise LookupError(f"no driver of job {job}")


def test_a_job_requeued_onto_the_other_node_takes_over_its_own_lock_on_s3(slurm, s3, tmp_path):
    """A node fails mid-sweep: the driver dies holding its lock on S3 (SIGKILL). The job is
    requeued and lands on the other node, another host: it takes over its own job's lock (the
    same SLURM_JOB_ID) at once, where it used to exit 3, and resumes the sweep."""
    import json
    spec, out = _spec(tmp_path, sleep=2, seeds=10), tmp_path / "job.out"
    results = s3.uri("slurm-requeue")
    sweep = f"{results}/slu"
    job = slurm.submit(spec, results, out, "--nodes=1", "--nodelist=n1")
    deadline = time.time() + 240
    while time.time() < deadline:
        try:
            if len(ledger(sweep)) >= 2:
                break
        except Exception:  # noqa: BLE001 - nothing written yet
            pass
        time.sleep(0.5)
    os.kill(_driver_of(job), signal.SIGKILL)
    assert slurm.wait_job(job, timeout_s=120)["JobState"] == "FAILED"
    # the lock its driver left, as the lost node wrote it: another host's, its lease fresh
    key = "slurm-requeue/slu/.lock"
    lock = json.loads(s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read())
    assert lock["slurm_job_id"] == job and lock["slurm_cluster"] == "symsweep-test", lock
    lock.update(host="lost-node", renewed_at=time.time())
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=json.dumps(lock).encode())
    slurm.cmd("scontrol", "requeuehold", job)
    slurm.cmd("scontrol", "update", f"JobId={job}", "ReqNodeList=n2")  # the lost node is n1
    slurm.cmd("scontrol", "release", job)
    info = slurm.wait_job(job, timeout_s=300)
    text = out.read_text()
    assert info["JobState"] == "COMPLETED" and info["BatchHost"] == "n2", (info, text)
    assert f"an earlier run of Slurm job {job} (requeued)" in text, text
    assert "done: 10 completed, 0 failed, 0 diverged, 0 pending" in text, text
    assert_ran_once(sweep, 10)
