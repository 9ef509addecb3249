"""The sweep's lock: at most one live driver per sweep folder.

Local folders (and shared mounts that support POSIX locks, e.g. NFSv4): the lock is a
kernel lock (`flock`) on `.lock`, held for the driver's life and released by the kernel
when the process ends however it ends, so a dead driver never blocks the next one and no
pid has to be judged. The file also holds the holder's pid, host and start time, for
messages. Whoever holds the kernel lock owns the file; a second driver is refused at once.

S3: no kernel to ask. `.lock` is created with a conditional put (If-None-Match: *); a lock
whose process is gone (same host) or whose content is unreadable is taken over with a put
conditional on that lock's ETag (If-Match), so of two drivers taking over the same stale
lock exactly one wins. A lock held on another host cannot be judged from here: refused
unless `force`. Other object stores have no conditional put: check, then put (best effort).

A transient error while reading the lock is retried, then reported: it never counts as an
unreadable lock (which would be taken over).
"""
from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from typing import Any, Mapping

from symsweep._fs import describe_os_error, exclusive_create, replace_if, s3_get
from symsweep._store_files import StoreFiles, retrying
from symsweep.errors import LockError, StoreError, StoreUnavailableError

LOCK_NAME = ".lock"


class StoreLock:
    """Acquire / release one store's lock; see the module docstring."""

    def __init__(self, files: StoreFiles):
        self.files = files
        self.path = files.path(LOCK_NAME)
        self._fd: int | None = None  # the open file the kernel lock is on (local)
        self._token: str | None = None  # what we wrote (S3): released only if still ours

    def _me(self) -> dict:
        import uuid
        return {"pid": os.getpid(), "host": socket.gethostname(), "started_at": time.time(),
                "proc_start": proc_start(os.getpid()), "token": uuid.uuid4().hex}

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
                _flock_briefly(fd)
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
                self._token = me["token"]
                return {}
            holder, etag = self._read_remote()
            if holder is None:  # released in between: try again
                continue
            if holder.get("unreadable"):
                pass
            elif holder.get("host") == me["host"] and not alive(holder):
                holder["stale"] = True
            elif not force:
                raise LockError(_held_message(self.files.shown, holder))
            else:
                holder["forced"] = True
            if replace_if(self.files.location, self.path, data, etag):
                self._token = me["token"]
                return holder
            raise LockError(f"sweep {self.files.shown}: another driver took the lock just now")
        raise LockError(f"sweep {self.files.shown}: another driver took the lock just now")

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
        return self._read_remote()[0]

    def release(self) -> None:
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


# A driver that finds the kernel lock taken tries again for this long before it is refused:
# where `status` must probe with a lock of its own (no /proc/locks), the probe holds it for
# microseconds, and a driver starting at that instant must not be refused (exit 3).
PROBE_GRACE_S = 1.0


def _flock_briefly(fd: int) -> None:
    """Take the exclusive kernel lock, trying again for PROBE_GRACE_S before BlockingIOError."""
    deadline = time.monotonic() + PROBE_GRACE_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
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
    """Whether /proc/locks lists a flock on `path`'s inode; None where it cannot say (no such
    table). Matched on the inode number alone: the device number a container's stat reports
    can differ from the kernel's, and a false match only makes `status` say "held"."""
    try:
        inode = os.stat(path).st_ino
        with open(table) as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 7617 fe:00:2146373 0 EOF" (a blocked waiter has "->" first)
        if "->" in fields:
            continue
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(inode):
            return True
    return False


def proc_start(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return None


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
