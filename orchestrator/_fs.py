"""Where a store lives: a local path or a URI that pyarrow.fs opens, and the few writes
the ledger needs from it (atomic put, exclusive create), with one-line errors.

A location keeps a URI's query string apart from its path, so that joining a sweep name
onto `s3://bucket/results?endpoint_override=host:port&scheme=http` gives
`s3://bucket/results/<sweep>?endpoint_override=...`, never a path after the query.
"""
from __future__ import annotations

import errno
import functools
import math
import os
import urllib.parse
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

import pyarrow as pa
import pyarrow.fs as pafs

from symsweep.errors import StoreError, StoreUnavailableError, first_line

# S3 settings a URI's query may carry (pyarrow.fs.S3FileSystem keyword arguments).
S3_OPTIONS = ("region", "scheme", "endpoint_override", "access_key", "secret_key", "session_token",
              "connect_timeout", "request_timeout", "allow_bucket_creation", "force_virtual_addressing")
SECRET_OPTIONS = ("secret_key", "session_token", "access_key")
CONNECT_TIMEOUT_S = 5.0
REQUEST_TIMEOUT_S = 30.0
TEMP_PREFIX = ".tmp-"
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Location:
    """A folder in a filesystem: local (scheme "") or a URI (s3, gs, file, ...)."""

    scheme: str
    path: str
    """The path inside the filesystem: absolute locally, `bucket/key` on S3."""
    query: str = ""

    @property
    def is_local(self) -> bool:
        return self.scheme in ("", "file")

    @property
    def uri(self) -> str:
        if self.scheme == "":
            return self.path
        text = f"{self.scheme}://{self.path}" if self.scheme != "file" else f"file://{self.path}"
        return f"{text}?{self.query}" if self.query else text

    @property
    def shown(self) -> str:
        """The URI for messages: secrets in the query (secret_key=..., session_token=...) masked."""
        if not self.query:
            return self.uri
        pairs = urllib.parse.parse_qsl(self.query, keep_blank_values=True)
        masked = "&".join(f"{k}={'***' if k in SECRET_OPTIONS else v}" for k, v in pairs)
        return self.uri.split("?", 1)[0] + "?" + masked

    @property
    def name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    @property
    def parent(self) -> "Location":
        return Location(self.scheme, self.path.rstrip("/").rsplit("/", 1)[0] or "/", self.query)

    def join(self, *parts: str) -> "Location":
        return Location(self.scheme, "/".join([self.path.rstrip("/"), *parts]), self.query)

    def __str__(self) -> str:
        return self.shown


def parse_location(uri: str) -> Location:
    """A Location from a local path or a URI (`s3://bucket/path?endpoint_override=...`)."""
    if "://" not in uri:
        return Location("", os.path.abspath(uri))
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme == "file":
        return Location("file", os.path.abspath(parts.path or "/"), parts.query)
    path = (parts.netloc + parts.path).rstrip("/")
    if not parts.netloc:
        raise StoreUnavailableError(f"cannot open store {uri!r}: no bucket in the URI (expected "
                                    f"{parts.scheme}://BUCKET/PATH)")
    return Location(parts.scheme, path, parts.query)


def filesystem(location: Location) -> pafs.FileSystem:
    return _filesystem(location.scheme, location.path.split("/", 1)[0], location.query)


@functools.lru_cache(maxsize=16)
def _filesystem(scheme: str, bucket: str, query: str) -> pafs.FileSystem:
    if scheme in ("", "file"):
        return pafs.LocalFileSystem()
    if scheme == "s3":
        options = s3_options(query)
        try:
            return pafs.S3FileSystem(**options)
        except (pa.ArrowInvalid, ValueError, TypeError) as exc:  # options that pyarrow refuses together
            raise StoreUnavailableError(f"cannot open store s3://{bucket}: {first_line(exc)}") from None
    try:
        fs, _ = pafs.FileSystem.from_uri(f"{scheme}://{bucket}" + (f"?{query}" if query else ""))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, ValueError) as exc:
        raise StoreUnavailableError(f"cannot open store {scheme}://{bucket}: {first_line(exc)}") from None
    return fs


def s3_options(query: str) -> dict:
    """S3FileSystem keyword arguments from a URI query; the rest comes from the environment
    (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...), as in every AWS tool. Each option is checked
    here, before any connection: a bad one is one line naming it and what it takes (secrets
    are never shown)."""
    options: dict = {"connect_timeout": CONNECT_TIMEOUT_S, "request_timeout": REQUEST_TIMEOUT_S,
                     "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3)}
    for key, values in urllib.parse.parse_qs(query, keep_blank_values=True).items():
        if key not in S3_OPTIONS:
            raise StoreUnavailableError(f"unknown S3 option {key!r} in the store URI; allowed: "
                                        f"{', '.join(S3_OPTIONS)}")
        if len(values) > 1:
            raise StoreUnavailableError(f"S3 option {key} is given twice in the store URI; give it once")
        options[key] = _s3_option(key, values[0])
    for key, needs in (("secret_key", "access_key"), ("access_key", "secret_key"), ("session_token", "access_key")):
        if key in options and needs not in options:
            raise StoreUnavailableError(f"S3 option {key} needs {needs} too in the store URI (give access_key and "
                                        f"secret_key together, or neither and let AWS_* variables or a profile "
                                        f"supply them)")
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint and "endpoint_override" not in options:  # older pyarrow ignores the variable
        split = urllib.parse.urlsplit(endpoint)
        options["endpoint_override"] = split.netloc or split.path
        options.setdefault("scheme", split.scheme or "https")
    return options


def _s3_option(key: str, value: str):
    """One S3 option's value from its text, or one line saying what the option takes."""
    shown = "***" if key in SECRET_OPTIONS else repr(value)
    if value == "":
        raise StoreUnavailableError(f"S3 option {key} is empty in the store URI; give it a value or leave it out")
    if key in ("connect_timeout", "request_timeout"):
        try:
            seconds = float(value)
        except ValueError:
            seconds = math.nan
        if not (math.isfinite(seconds) and seconds > 0):
            raise StoreUnavailableError(f"S3 option {key}={shown} in the store URI: expected a number of seconds > 0")
        return seconds
    if key in ("allow_bucket_creation", "force_virtual_addressing"):
        flag = {"1": True, "true": True, "yes": True, "on": True,
                "0": False, "false": False, "no": False, "off": False}.get(value.lower())
        if flag is None:
            raise StoreUnavailableError(f"S3 option {key}={shown} in the store URI: expected true or false")
        return flag
    if key == "scheme" and value not in ("http", "https"):
        raise StoreUnavailableError(f"S3 option scheme={shown} in the store URI: expected http or https")
    return value



def describe_os_error(exc: BaseException, where: str) -> str:
    """One line for a failed filesystem call: no space, permission, unreachable endpoint..."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return f"no space left on {where}"
    if isinstance(exc, OSError) and exc.errno == errno.EDQUOT:
        return f"disk quota exceeded on {where}"
    if isinstance(exc, PermissionError):
        return f"permission denied on {where}"
    text = first_line(exc)
    if "No space left" in text:
        return f"no space left on {where}"
    return f"{where}: {text}"


def map_io(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """`[fn(item) for item in items]`, on up to `workers` threads once there are more than a
    few items (file and network I/O release the GIL; for three files a pool costs more than it
    saves). Results keep the items' order; the first error is raised."""
    if len(items) < 4:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(fn, items))


# ----------------------------------------------------------------------------- writes


def atomic_put(fs: pafs.FileSystem, location: Location, path: str, data: bytes, temp_dir: str) -> None:
    """Write `data` at `path` so that readers see the whole file or none.

    Locally: a temp file in `temp_dir` (same filesystem), then rename; the temp file is
    removed when the write fails (a full disk leaves no half file). Object stores: one put.
    """
    if location.is_local:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.makedirs(temp_dir, exist_ok=True)
        tmp = os.path.join(temp_dir, f"{TEMP_PREFIX}{uuid.uuid4().hex}")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())  # the bytes on disk before the name points at them
            os.replace(tmp, path)  # atomic on POSIX
            fsync_folder(os.path.dirname(path))  # the rename itself survives a power loss
        except OSError as exc:
            _remove_quietly(tmp)
            raise StoreError(describe_os_error(exc, path)) from None
        return
    try:
        with fs.open_output_stream(path) as f:
            f.write(data)
    except OSError as exc:
        raise StoreError(describe_os_error(exc, f"{location.scheme}://{path}")) from None


def fsync_folder(path: str) -> None:
    """Make a folder's entries (a rename, a new link) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def exclusive_create(location: Location, path: str, data: bytes) -> bool:
    """Create `path` holding `data` only if it does not exist; False if it does. For object
    stores (a local folder's lock is a kernel lock: symsweep._lock). On S3: a conditional
    put (If-None-Match: *). Elsewhere there is no atomic create: check, then put (say so)."""
    if location.scheme == "s3":
        return _s3_conditional_put(location, path, data, IfNoneMatch="*")
    fs = filesystem(location)
    if fs.get_file_info(path).type != pafs.FileType.NotFound:
        return False
    atomic_put(fs, location, path, data, "")
    return True


def replace_if(location: Location, path: str, data: bytes, etag: str | None) -> bool:
    """Overwrite `path` only if it is still the object read with `etag` (`s3_get`); False if
    it changed or went. On S3: a conditional put (If-Match), so of two writers replacing the
    same object exactly one wins. Elsewhere: delete, then `exclusive_create` (best effort)."""
    if location.scheme == "s3":
        return _s3_conditional_put(location, path, data, IfMatch=etag)
    try:
        filesystem(location).delete_file(path)
    except FileNotFoundError:
        pass
    return exclusive_create(location, path, data)


# Error codes of an S3 put whose condition failed: another writer came first.
_CONDITION_FAILED = ("PreconditionFailed", "ConditionalRequestConflict", "412", "409")


def _s3_conditional_put(location: Location, path: str, data: bytes, **condition: str) -> bool:
    """One put with `condition` (IfNoneMatch / IfMatch); False when the condition failed."""
    from botocore.exceptions import BotoCoreError, ClientError
    bucket, key = path.split("/", 1)
    try:
        s3_client(location).put_object(Bucket=bucket, Key=key, Body=data, **condition)
        return True
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        # If-Match on an object deleted meanwhile: NoSuchKey, the condition failed too
        if code in _CONDITION_FAILED or ("IfMatch" in condition and code in ("NoSuchKey", "404")):
            return False
        raise StoreError(f"cannot write s3://{path}: {first_line(exc)}") from None
    except BotoCoreError as exc:
        raise StoreError(f"cannot write s3://{path}: {first_line(exc)}") from None


def s3_get(location: Location, path: str) -> tuple[bytes, str]:
    """An S3 object's bytes and ETag (for `replace_if`). FileNotFoundError when there is none;
    OSError for any other failure, so that a caller's retries (`retrying`) try again."""
    from botocore.exceptions import BotoCoreError, ClientError
    bucket, key = path.split("/", 1)
    try:
        obj = s3_client(location).get_object(Bucket=bucket, Key=key)
        return obj["Body"].read(), obj["ETag"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            raise FileNotFoundError(path) from None
        raise OSError(first_line(exc)) from None
    except BotoCoreError as exc:
        raise OSError(first_line(exc)) from None


def s3_client(location: Location):
    """A boto3 S3 client with the location's settings (for the conditional puts and the ETags
    pyarrow lacks)."""
    return _s3_client(location.query, os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"))


@functools.lru_cache(maxsize=8)
def _s3_client(query: str, _endpoint_env: str | None):
    import boto3
    from botocore.config import Config
    options = s3_options(query)
    endpoint = options.get("endpoint_override")
    if endpoint and "://" not in endpoint:
        endpoint = f"{options.get('scheme', 'https')}://{endpoint}"
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name=options.get("region"),
        aws_access_key_id=options.get("access_key"), aws_secret_access_key=options.get("secret_key"),
        aws_session_token=options.get("session_token"),
        config=Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=REQUEST_TIMEOUT_S,
                      retries={"max_attempts": 3}))


def check_reachable(location: Location) -> None:
    """Fail in one line, within the timeouts, when the store's bucket cannot be reached."""
    if location.is_local:
        return
    fs = filesystem(location)
    bucket = location.path.split("/", 1)[0]
    try:
        info = fs.get_file_info(bucket)
    except OSError as exc:
        text = first_line(exc)
        if "ACCESS_DENIED" in text or "AccessDenied" in text or "InvalidAccessKeyId" in text:
            raise StoreUnavailableError(
                f"cannot open store {location.shown}: access denied ({text}); check the credentials "
                f"(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE, or the instance role)") from None
        raise StoreUnavailableError(f"cannot reach store {location.shown}: {text}") from None
    if info.type == pafs.FileType.NotFound:
        raise StoreUnavailableError(f"cannot open store {location.shown}: bucket {bucket!r} does not exist")


# ----------------------------------------------------------------------------- location checks
# A bad location is bad input: it is refused in one line, with exit code 2, before anything
# is written (a folder that cannot be written would otherwise fail at the first write, exit 1).


def check_new_sweep(given: str, location: Location) -> None:
    """`run --results GIVEN`: the sweep folder `location` (under GIVEN) must be a folder that
    exists or can be made, and be writable. Locally the nearest existing folder on its path is
    tried with a probe folder, removed at once: a file, /dev/null, /proc, a read-only mount and
    a folder without permission all fail here. Object stores: the URI's options are checked
    (the store checks that its bucket answers)."""
    if not location.is_local:
        filesystem(location)
        return
    existing = location.path
    while not os.path.lexists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        kind = "a file" if os.path.isfile(existing) else "not a folder"
        raise StoreUnavailableError(f"--results {given}: {existing} is {kind}, not a folder of sweeps; "
                                    f"--results takes a folder (made if missing)")
    what = "write in the sweep folder" if existing == location.path else "create the sweep folder in"
    _probe(existing, f"--results {given}: cannot {what} {existing}")


def check_sweep_folder(given: str, writable: bool = False) -> None:
    """`status`/`resume`/... GIVEN: it must be a sweep folder (one holding spec.yaml), and for the
    commands that write into it (`writable`) one that can be written."""
    location = parse_location(given)
    expected = "expected RESULTS/<sweep name>"
    if not location.is_local:
        check_reachable(location)
        try:
            info = filesystem(location).get_file_info(location.join("spec.yaml").path)
        except OSError as exc:
            raise StoreUnavailableError(f"cannot reach store {location.shown}: {first_line(exc)}") from None
        if info.type != pafs.FileType.File:
            raise StoreUnavailableError(f"{location.shown} is not a sweep folder (no spec.yaml); {expected}")
        return
    path = location.path
    if not os.path.lexists(path):
        raise StoreUnavailableError(f"{given} is not a sweep folder: it does not exist; {expected}")
    if not os.path.isdir(path):
        kind = "a file, not a sweep folder" if os.path.isfile(path) else "not a sweep folder (not a folder)"
        raise StoreUnavailableError(f"{given} is {kind}; {expected}")
    if not os.path.isfile(os.path.join(path, "spec.yaml")):
        raise StoreUnavailableError(f"{given} is not a sweep folder (no spec.yaml); {expected}")
    if writable:
        _probe(path, f"cannot write in the sweep folder {given}")


def _probe(folder: str, message: str) -> None:
    """Make and remove a folder in `folder`: the one test that every way of being unwritable
    fails (permissions, a read-only mount, /proc, root squash on NFS)."""
    probe = os.path.join(folder, f"{TEMP_PREFIX}probe-{uuid.uuid4().hex}")
    try:
        os.mkdir(probe)
    except OSError as exc:
        reason = {errno.EROFS: "a read-only file system", errno.EACCES: "permission denied",
                  errno.EPERM: "permission denied"}.get(exc.errno, exc.strerror or type(exc).__name__)
        raise StoreUnavailableError(f"{message} ({reason}); choose a folder you can write to") from None
    os.rmdir(probe)
