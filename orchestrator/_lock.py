"""The sweep's lock: at most one live driver per sweep folder.

Local folders (and shared mounts that support POSIX locks, e.g. NFSv4): the lock is a
kernel lock (`flock`) on `.lock`, held for the driver's life and released by the kernel
when the process ends however it ends, so a dead driver never blocks the next one and no
pid has to be judged. The file also holds the holder's pid, host and start time, for
messages. Whoever holds the kernel lock owns the file; a second driver is refused at once.

S3: no kernel to ask. `.lock` is created with a conditional put (If-None-Match: *) and is a
lease: the live driver rewrites it every RENEW_S with the time (`renewed_at`), and a lock not
renewed for its `lease_s` (LEASE_S) belongs to a driver that is gone, wherever it ran. A lock
is taken over with a put conditional on its ETag (If-Match), so of two drivers taking over
the same lock exactly one wins, when: its lease ran out; its process is gone (same host,
checked by pid and start time); its content is unreadable; or it is held by an earlier run of
the same Slurm job (the same SLURM_JOB_ID on the same cluster: Slurm runs one instance of a
job at a time, so a requeued job, even on another host, takes over its own lock at once).
Otherwise it is refused unless `force`. Staleness never rests on hostname + pid alone
(containers share hostnames). The lease assumes the hosts' clocks agree to well under
LEASE_S - RENEW_S (NTP: milliseconds). Other object stores have no conditional put: check,
then put (best effort).

A transient error while reading the lock is retried, then reported: it never counts as an
unreadable lock (which would be taken over).
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from typing import Any, Mapping

from symsweep._fs import describe_os_error, exclusive_create, replace_if, s3_get
from symsweep._store_files import StoreFiles, retrying
from symsweep.errors import LockError, StoreError, StoreUnavailableError

LOCK_NAME = ".lock"
LEASE_S = 90.0
"""A remote lock not renewed for this long is stale: its driver is gone."""
RENEW_S = 20.0
"""How often a live driver renews its remote lock."""


class StoreLock:
    """Acquire / release one store's lock; see the module docstring."""

    def __init__(self, files: StoreFiles, lease_s: float = LEASE_S, renew_s: float = RENEW_S):
        self.files = files
        self.path = files.path(LOCK_NAME)
        self.lease_s, self.renew_s = lease_s, renew_s
        self._fd: int | None = None  # the open file the kernel lock is on (local)
        self._token: str | None = None  # what we wrote (S3): released only if still ours
        self._renewer: _Renewer | None = None

    def __getstate__(self) -> dict:
        """A copy sent to a worker (the store travels with each trial) holds nothing: the lock
        is the driver's, and its renewer thread cannot be pickled."""
        return {**self.__dict__, "_fd": None, "_token": None, "_renewer": None}

    def _me(self) -> dict:
        import uuid
        now = time.time()
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": now, "renewed_at": now,
              "lease_s": self.lease_s, "proc_start": proc_start(os.getpid()), "token": uuid.uuid4().hex}
        if os.environ.get("SLURM_JOB_ID"):
            me["slurm_job_id"] = os.environ["SLURM_JOB_ID"]
            me["slurm_cluster"] = os.environ.get("SLURM_CLUSTER_NAME", "")
        return me

    def acquire(self, force: bool = False) -> dict:
        """Take the lock; returns the previous holder ({} if none), with `stale` or
        `unreadable` set when a dead or damaged lock was taken over, `forced` with `force`."""
        self.files.makedirs(self.files.root)
        me = self._me()
        if self.files.is_local:
            return self._acquire_local(me, force)
        return self._acquire_remote(me, force)

    # ------------------------------------------------------------------ local: a kernel lock
    def _acquire_local(self, me: dict, force: bool) -> dict:
        for _ in range(20):
            try:
                try:
                    fd, created = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), True
                except FileExistsError:
                    fd, created = os.open(self.path, os.O_RDWR), False
            except FileNotFoundError:  # released between the two opens: try again
                continue
            except OSError as exc:
                raise StoreError(describe_os_error(exc, self.path)) from None
            try:
                _flock_briefly(fd, self.path)
            except BlockingIOError:
                os.close(fd)
                holder = self._read_local() or {}
                if not force:
                    raise LockError(_held_message(self.files.shown, holder)) from None
                # the holder lives (the kernel says so) but the user says it is gone, e.g. a
                # driver hung on a dead mount: unlink its file; it keeps a lock on nothing
                self._unlink_quietly()
                self._acquire_local(me, False)
                return {**holder, "forced": True}
            except OSError as exc:  # a filesystem without locks: say so rather than run unlocked
                os.close(fd)
                raise StoreError(f"cannot lock {self.path}: {describe_os_error(exc, self.path)} (the results "
                                 f"folder must support file locks)") from None
            # we hold the kernel lock on this file; it must still be the one at the path (a
            # releasing driver unlinks the file before closing it)
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            previous = None if created else _parse(_read_fd(fd))
            try:
                data = json.dumps(me).encode()
                os.ftruncate(fd, 0)
                os.pwrite(fd, data, 0)
                os.fsync(fd)
            except OSError as exc:  # e.g. a full disk: leave no lock file behind (it is ours)
                self._unlink_quietly()
                os.close(fd)
                raise StoreError(describe_os_error(exc, self.path)) from None
            self._fd = fd
            if previous is None:
                return {}
            return {**previous, "stale": True} if not previous.get("unreadable") else previous
        raise LockError(f"sweep {self.files.shown}: the lock file keeps changing; another driver is starting")

    def _read_local(self) -> dict | None:
        try:
            data = retrying(lambda: open(self.path, "rb").read(), self.path)
        except FileNotFoundError:
            return None
        return _parse(data)

    def _unlink_quietly(self) -> None:
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass

    # ------------------------------------------------------------------ remote: conditional puts
    def _acquire_remote(self, me: dict, force: bool) -> dict:
        data = json.dumps(me).encode()
        for _ in range(3):
            if exclusive_create(self.files.location, self.path, data):
                return self._hold(me, {})
            holder, etag = self._read_remote()
            if holder is None:  # released in between: try again
                continue
            if holder.get("unreadable"):
                pass
            elif stale_reason(holder, me):
                holder["stale"] = stale_reason(holder, me)
            elif not force:
                raise LockError(_held_message(self.files.shown, holder))
            else:
                holder["forced"] = True
            if replace_if(self.files.location, self.path, data, etag):
                return self._hold(me, holder)
            raise LockError(f"sweep {self.files.shown}: another driver took the lock just now")
        raise LockError(f"sweep {self.files.shown}: another driver took the lock just now")

    def _hold(self, me: dict, previous: dict) -> dict:
        self._token = me["token"]
        self._renewer = _Renewer(self, me)
        self._renewer.start()
        return previous

    def renew(self, me: dict) -> bool:
        """Rewrite our remote lock with the time now (conditional on its ETag); False when it
        is no longer ours (taken over after our lease ran out) or could not be read."""
        try:
            holder, etag = self._read_remote()
        except StoreUnavailableError:
            return True  # try again at the next renewal; the lease has room for a few misses
        if not holder or holder.get("token") != me["token"]:
            return False
        me["renewed_at"] = time.time()
        try:
            return replace_if(self.files.location, self.path, json.dumps(me).encode(), etag)
        except OSError:
            return True

    def _read_remote(self) -> tuple[dict | None, str | None]:
        """(holder, ETag) of the lock file, or (None, None) when there is none (no ETag but on S3)."""
        try:
            if self.files.location.scheme == "s3":
                body, etag = retrying(lambda: s3_get(self.files.location, self.path), self.files.shown_path(self.path))
            else:
                body, etag = self.files.read_bytes(self.path), None
        except FileNotFoundError:
            return None, None
        return _parse(body), etag

    # ------------------------------------------------------------------ holder, release
    def holder(self) -> dict | None:
        """The lock file's content ({"unreadable": True} when it is not a lock), or None.
        Locally, a lock file that no live process holds is reported as `stale`."""
        if self.files.is_local:
            holder = self._read_local()
            if holder is not None and self._fd is None and not _held_by_someone(self.path):
                holder["stale"] = True
            return holder
        holder = self._read_remote()[0]
        if holder and not holder.get("unreadable") and holder.get("token") != self._token:
            reason = stale_reason(holder, {"host": socket.gethostname()})
            if reason:
                holder["stale"] = reason
        return holder

    def release(self) -> None:
        if self._renewer is not None:
            self._renewer.stop()
            self._renewer = None
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:  # unlink before unlocking (a waiter that then gets this file retries), and only
                # our own file: after a --force-unlock the path may be another driver's
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    os.remove(self.path)
            except FileNotFoundError:
                pass
            os.close(fd)
            return
        if self._token is None:
            return
        token, self._token = self._token, None
        try:
            holder, _ = self._read_remote()
        except StoreUnavailableError:
            return  # best effort: a later driver judges it (stale on this host, --force-unlock elsewhere)
        if holder and holder.get("token") == token:
            try:
                self.files.fs.delete_file(self.path)
            except OSError:
                pass


# ----------------------------------------------------------------------------- helpers


class _Renewer(threading.Thread):
    """Renews a remote lock every `renew_s` until stopped; says once if the lock was lost."""

    def __init__(self, lock: StoreLock, me: dict):
        super().__init__(name="symsweep-lock-renewer", daemon=True)
        self.lock, self.me, self._stop_event = lock, dict(me), threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.lock.renew_s):
            if not self.lock.renew(self.me):
                import sys
                print(f"warning: the lock of {self.lock.files.shown} is no longer this driver's (its lease ran "
                      f"out and another driver took it); finished runs are kept, a run may run twice",
                      file=sys.stderr, flush=True)
                return

    def stop(self) -> None:
        self._stop_event.set()


def stale_reason(holder: Mapping[str, Any], me: Mapping[str, Any], now: float | None = None) -> str:
    """Why a remote lock held by `holder` may be taken over by `me` ("" when it may not): an
    earlier run of the same Slurm job, a lease not renewed in time, a process gone (same host)."""
    now = time.time() if now is None else now
    job = holder.get("slurm_job_id")
    if job and job == me.get("slurm_job_id") and holder.get("slurm_cluster", "") == me.get("slurm_cluster", ""):
        return f"an earlier run of Slurm job {job} (requeued)"
    renewed, lease = holder.get("renewed_at"), holder.get("lease_s")
    if isinstance(renewed, (int, float)) and isinstance(lease, (int, float)) and now - renewed > lease:
        return f"its lease ran out {now - renewed - lease:.0f} s ago"
    if holder.get("host") == me.get("host") and not alive(holder):
        return "its process is gone"
    return ""


def _held_message(shown: str, holder: Mapping[str, Any]) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started_at", 0) or 0))
    who = f"pid {holder.get('pid')} on {holder.get('host')} since {since}" if holder.get("pid") else "another driver"
    return f"sweep {shown} is being run by {who}; wait for it, or pass --force-unlock if that driver is gone"


def _parse(data: bytes) -> dict | None:
    """A lock file's content: `unreadable` if it is not a lock's JSON (empty included: a lock
    is written whole, so an empty one was never a live driver's)."""
    if not data.strip():
        return {"unreadable": True}
    try:
        holder = json.loads(data)
    except ValueError:
        return {"unreadable": True}
    pid = holder.get("pid") if isinstance(holder, dict) else None
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid < 2**31:
        return {"unreadable": True}
    return holder


def _read_fd(fd: int) -> bytes:
    chunks, offset = [], 0
    while True:
        chunk = os.pread(fd, 65536, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)


# A driver that finds the kernel lock taken, and not by another driver's exclusive lock, tries
# again for this long before it is refused: a `status` probe (a shared lock, where there is no
# /proc/locks to read) holds it for microseconds, and a driver starting at that instant must
# not be refused (exit 3).
PROBE_GRACE_S = 1.0


def _flock_briefly(fd: int, path: str) -> None:
    """Take the exclusive kernel lock, or BlockingIOError. A taken lock is refused at once
    when /proc/locks lists an exclusive (driver's) flock on the file; a shared one is a
    `status` probe's (held for microseconds), and so is any lock where there is no table to
    ask: try again for PROBE_GRACE_S first."""
    deadline = time.monotonic() + PROBE_GRACE_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline or "WRITE" in (_flock_kinds(os.fstat(fd).st_ino) or ()):
                raise
            time.sleep(0.02)


def _held_by_someone(path: str) -> bool:
    """Whether a process holds the kernel lock on `path`. Read from /proc/locks where there is
    one (Linux): nothing is locked, so a driver starting at this instant is never refused by
    a `status` poll. Elsewhere, probed with a non-blocking shared lock (held for microseconds;
    a starting driver tries again for PROBE_GRACE_S)."""
    held = _flock_listed(path)
    if held is not None:
        return held
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _flock_listed(path: str, table: str = "/proc/locks") -> bool | None:
    """Whether /proc/locks lists a flock on `path`'s inode (False when there is no such file);
    None only where the table cannot be read. A file that vanishes between the lock file's
    read and this stat is a released lock: reading it as "cannot say" once made `status` fall
    back to a probe lock on the next driver's new file and refuse that driver."""
    try:
        inode = os.stat(path).st_ino
    except FileNotFoundError:
        return False if _flock_kinds(0, table) is not None else None
    except OSError:
        return None
    kinds = _flock_kinds(inode, table)
    return None if kinds is None else bool(kinds)


def _flock_kinds(inode: int, table: str = "/proc/locks") -> set[str] | None:
    """The kinds ("READ", "WRITE") of the flocks /proc/locks lists as held on `inode`; None
    where there is no such table. Matched on the inode number alone: the device number a
    container's stat reports can differ from the kernel's, and a false match only makes
    `status` say "held" (or a starting driver be refused as if a driver held the lock)."""
    try:
        with open(table) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    kinds = set()
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 7617 fe:00:2146373 0 EOF" (a blocked waiter has "->" first)
        if "->" in fields:
            continue
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(inode):
            kinds.add(fields[3])
    return kinds


def proc_start(pid: int) -> str | None:
    from symsweep._machine import proc_stat
    st = proc_stat(pid)
    return st[1] if st else None


def alive(holder: Mapping[str, Any]) -> bool:
    """Whether the lock's process (on this host) still runs: used on S3 only, where no
    kernel lock exists. A pid of 0, a negative or an out-of-range pid is no process."""
    pid = holder.get("pid")
    if not isinstance(pid, int) or not 0 < pid < 2**31:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, OSError):
        return False
    started = holder.get("proc_start")
    # A recycled pid belongs to a process that started at another time.
    return started is None or proc_start(pid) in (None, started)
