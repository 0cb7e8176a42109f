"""Files at the bottom of the package, used by data, store and reporting alike: atomic writes
(UTF-8 always; a temp file in the same folder, fsync, rename; the temp file removed on any
failure), the cache folder, a lock beside a path, and OS write errors in plain words."""

from __future__ import annotations

import errno
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from neuroscope.errors import WriteError

REASONS = {
    errno.ENOSPC: "the disk is full (no space left on device)",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
}


def cache_dir() -> Path:
    """Root of derived caches: env `NEUROSCOPE_CACHE`, default `~/.cache/neuroscope`."""
    return Path(os.environ.get("NEUROSCOPE_CACHE", "~/.cache/neuroscope")).expanduser()


def temp_name(path: Path, suffix: str = "") -> Path:
    """A fresh hidden name beside `path` (same folder, so the rename is atomic):
    `.<name>.<pid>.<random>.tmp<suffix>` (`suffix` for writers that infer a format, e.g. `.png`)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp{suffix}")


def write_problem(exc: OSError, path: str | Path, key: str | None = None) -> str:
    """One line for an OSError met while writing `path`: which file, why in plain words, and what to
    do (naming `key`, the config key that chose the folder, when known)."""
    where = exc.filename or path
    reason = REASONS.get(exc.errno or 0, exc.strerror or str(exc))
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        todo = "free some space there" + (f" or set {key} to a folder on another disk" if key else "")
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        todo = "make it writable" + (f" or set {key} to a writable folder" if key else "")
    else:
        todo = "check that folder" + (f" or set {key} to another folder" if key else "")
    return f"{key + ': ' if key else ''}cannot write {where}: {reason}; {todo}"


@contextmanager
def writing(path: str | Path, key: str | None = None) -> Iterator[None]:
    """Turn an OSError raised in the block (while writing under `path`) into a WriteError naming
    `key`; a WriteError from an inner write is re-described with `key` when it lacks one."""
    try:
        yield
    except WriteError as exc:
        cause = exc.__cause__
        if key and isinstance(cause, OSError) and not str(exc).startswith(f"{key}: "):
            raise WriteError(write_problem(cause, path, key)) from cause
        raise
    except OSError as exc:
        raise WriteError(write_problem(exc, path, key)) from exc


def fsync_path(path: Path) -> None:
    """Flush a file's data to disk (and, for a folder, its entries; file systems that cannot sync a
    folder are let be)."""
    if path.is_dir():
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
        return
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _file_mode() -> int:
    """0o666 less the process umask: the mode a plain open() gives a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()


@contextmanager
def atomic_path(path: str | Path, suffix: str = "", key: str | None = None) -> Iterator[Path]:
    """A temp path beside `path` for the block to write into; afterwards it is fsynced and renamed
    over `path`. On any failure the temp file is removed (`path` keeps its old content) and an
    OSError becomes a WriteError naming `path` (and `key`)."""
    path = Path(path)
    tmp = temp_name(path, suffix)
    with writing(path, key):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            yield tmp
            fsync_path(tmp)
            os.chmod(tmp, FILE_MODE)  # as a plain open() would (some writers create temp files 0600)
            os.replace(tmp, path)
            fsync_path(path.parent)
        finally:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:  # never hide the error that got us here
                pass


def atomic_write(path: str | Path, data: str | bytes, key: str | None = None) -> Path:
    """Write text (as UTF-8, whatever the locale) or bytes to `path` atomically; returns `path`."""
    path = Path(path)
    raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with atomic_path(path, key=key) as tmp, open(tmp, "xb") as f:
        f.write(raw)
    return path


def atomic_json(path: str | Path, obj: Any, indent: int = 1, key: str | None = None) -> Path:
    """Write `obj` as JSON atomically (ASCII escapes, so any reader in any locale can read it)."""
    return atomic_write(path, json.dumps(obj, indent=indent), key=key)


def read_json(path: str | Path) -> Any:
    """Parse a JSON file as UTF-8, whatever the locale."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


@contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Exclusive lock on `path` (through a file `.<name>.lock` beside it), so parallel runs build
    or update it once. `filelock` takes an OS lock (flock) where the file system has one and falls
    back to a lock file where it does not (e.g. Lustre mounted without `flock`), so that runs on
    several nodes of a shared file system exclude each other too."""
    from filelock import FileLock

    path = Path(path)
    lock = path.parent / f".{path.name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock):
        yield
