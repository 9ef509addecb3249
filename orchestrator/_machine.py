"""What this machine lets this process use: its CPUs, as the scheduler and the container see them."""
from __future__ import annotations

import math
import os


def usable_cpus(cgroup_root: str = "/sys/fs/cgroup") -> tuple[int, str]:
    """(CPUs this process may run on, why when fewer than the machine has): the CPU affinity
    (`taskset`, Slurm's and Kubernetes' CPU sets) and the cgroup's CPU quota (Docker's --cpus,
    a pod's limit; cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`), whichever is smaller, at
    least 1. os.cpu_count() counts the machine's CPUs, which a trial may not get."""
    machine = os.cpu_count() or 1
    limits = []
    if hasattr(os, "sched_getaffinity"):
        limits.append((len(os.sched_getaffinity(0)), "CPU affinity"))
    quota = _cgroup_quota(cgroup_root)
    if quota is not None:
        limits.append((max(1, math.ceil(quota)), "cgroup CPU quota"))
    cpus, why = machine, ""
    for n, what in limits:
        if n < cpus:
            cpus, why = n, f"{what} (the machine has {machine})"
    return max(1, cpus), why


def _cgroup_quota(root: str) -> float | None:
    """CPUs' worth of time the cgroup may use per period, None when unlimited or unknown."""
    try:  # cgroup v2: "max 100000" or "150000 100000"
        quota, period = open(os.path.join(root, "cpu.max")).read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota = int(open(os.path.join(root, "cpu", "cpu.cfs_quota_us")).read())
        period = int(open(os.path.join(root, "cpu", "cpu.cfs_period_us")).read())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def proc_stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, start time in clock ticks as text) of a live process from /proc, None when
    it is gone (or there is no /proc). The start time tells a recycled pid from its first owner."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), fields[19]
