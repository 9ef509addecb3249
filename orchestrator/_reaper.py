"""The embedded Ray never outlives its driver by more than a few seconds.

ray.init starts the embedded Ray's processes (GCS, raylet, agents, workers) as the driver's
descendants. When the driver ends without `ray.shutdown()` (SIGKILL, an OOM kill, a node
agent's hard stop), they are re-parented to pid 1 and some live on for a minute or more
(the dashboard and runtime-env agents poll their parent slowly). This watcher, started by
RayExecutor beside an embedded Ray it started, holds the read end of a pipe whose write end
only the driver holds: the moment the driver is gone, however it went, it reads end-of-file.
Meanwhile it notes the driver's descendants every POLL_S; at the end it stops those still
running (and their descendants: workers started since), SIGTERM then SIGKILL, each checked
by its start time so that a recycled pid is never touched. Linux only (/proc); elsewhere
RayExecutor does not start it.

    python -m symsweep._reaper DRIVER_PID      (stdin: the pipe)
"""
from __future__ import annotations

import os
import select
import signal
import sys
import time

from symsweep._machine import proc_stat as _stat  # (parent pid, start time) of a live process

POLL_S = 0.5
GRACE_S = 2.0


def _table() -> dict[int, tuple[int, str]]:
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                out[int(name)] = st
    return out


def descendants(roots: dict[int, str], table: dict[int, tuple[int, str]] | None = None) -> dict[int, str]:
    """pid -> start time of every live process under `roots` (pid -> start time), roots included
    when still the same process."""
    table = _table() if table is None else table
    found = {pid: start for pid, start in roots.items() if table.get(pid, (0, None))[1] == start}
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    todo = list(found)
    while todo:
        for child in children.get(todo.pop(), ()):
            if child not in found and child != os.getpid():
                found[child] = table[child][1]
                todo.append(child)
    return found


def reap(known: dict[int, str]) -> int:
    """Stop every process in `known` still running as the same process (and its descendants):
    SIGTERM, then SIGKILL after GRACE_S. Returns how many were signalled."""
    targets = descendants(known)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid, start in targets.items():
            st = _stat(pid)
            if st is not None and st[1] == start:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
        deadline = time.monotonic() + GRACE_S
        while sig == signal.SIGTERM and time.monotonic() < deadline and any(
                (_stat(p) or (0, None))[1] == s for p, s in targets.items()):
            time.sleep(0.05)
    return len(targets)


def main(argv: list[str]) -> int:
    driver = int(argv[0])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C to the group is the driver's to handle
    st = _stat(driver)
    if st is None:
        return 0
    known: dict[int, str] = {}
    roots = {driver: st[1]}
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], POLL_S)
        if ready and not os.read(sys.stdin.fileno(), 4096):
            break  # the driver is gone (or closed the pipe at its end)
        now = descendants(roots)
        now.pop(driver, None)
        known.update(now)
    reap(known)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
