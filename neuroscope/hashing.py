"""Content hashes of the files a store depends on (weights, tokenizer, checkpoints), cached by
path + size + mtime so a warm run re-hashes nothing, and a file changed in place (a model
fine-tuned into the same folder) is re-hashed and so gets a new store key."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from neuroscope.errors import WriteError
from neuroscope.files import atomic_json, cache_dir, locked, read_json

log = logging.getLogger(__name__)

SKIP = (".md", ".gitattributes", ".lock")  # documentation and VCS files do not change activations


def sha256sum(path: Path, chunk: int = 1 << 20) -> str:
    """The SHA-256 hex digest of a file, read in `chunk`-byte blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


file_sha256 = sha256sum  # the name the store's manifests and tests use


def _cache_file() -> Path:
    return cache_dir() / "file_hashes.json"


def cached_sha256(path: str | Path) -> str:
    """sha256 of `path`, from the cache when its size and mtime are unchanged."""
    p = Path(path).resolve()
    st = p.stat()
    stamp = [st.st_size, st.st_mtime_ns]
    cache = _cache_file()
    try:
        known = read_json(cache)
    except (OSError, ValueError):
        known = {}
    hit = known.get(str(p)) if isinstance(known, dict) else None
    if hit and hit[:2] == stamp:
        return hit[2]
    digest = file_sha256(p)
    try:
        with locked(cache):  # concurrent runs: merge, never lose each other's entries
            try:
                known = read_json(cache)
            except (OSError, ValueError):
                known = {}
            known = known if isinstance(known, dict) else {}
            known[str(p)] = [*stamp, digest]
            atomic_json(cache, known)
    except (OSError, WriteError) as exc:  # a read-only or full cache only costs time: hash again next run
        log.debug("file hash cache %s not written (%s)", cache, exc)
    return digest


def folder_hashes(folder: str | Path) -> dict[str, str]:
    """{file name: sha256} of the regular files at the top of a model folder (weights, config,
    tokenizer), documentation and VCS files left out."""
    out = {}
    for p in sorted(Path(folder).iterdir()):
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith(SKIP) and not p.name.startswith("README"):
            out[p.name] = cached_sha256(p)
    return out


def files_unchanged(files: dict[str, str]) -> bool:
    """True when every recorded path still exists with the recorded content."""
    try:
        return all(cached_sha256(path) == digest for path, digest in files.items())
    except OSError:
        return False


def env_flag(name: str) -> bool:
    return os.environ.get(name, "0") not in ("0", "", "false", "False")
