"""Find corpus files under the data root; download them (checksum-verified) when a network exists.

Roots tried in order: the config key `data.root`, the environment variable `NEUROSCOPE_DATA`,
then `~/.cache/neuroscope/data`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from neuroscope.errors import DataError
from neuroscope.hashing import sha256sum

log = logging.getLogger(__name__)

DEFAULT_CACHE = Path("~/.cache/neuroscope/data")


@dataclass(frozen=True)
class CorpusFile:
    """One file of a public corpus: where it sits under a data root and where it comes from."""

    relpath: str  # e.g. "ud/en_ewt-ud-dev.conllu"
    url: str | None = None  # upstream home; None: local only
    sha256: str | None = None  # expected checksum of the file's bytes
    member: str | None = None  # `url` is a zip archive: this is the file's path inside it


def data_roots(root: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for corpora, most specific first, without duplicates."""
    candidates = [root, os.environ.get("NEUROSCOPE_DATA"), DEFAULT_CACHE]
    roots: list[Path] = []
    for c in candidates:
        if c:
            p = Path(c).expanduser().resolve()
            if p not in roots:
                roots.append(p)
    return roots


def regular_file(path: Path, key: str | None = None) -> Path:
    """`path` when it is a regular file (or a link to one); a folder, socket or device is a
    DataError naming the config `key` that pointed at it."""
    if path.is_file():
        return path
    kind = "a folder" if path.is_dir() else "not a regular file"
    setting = key or "the corpus path"
    raise DataError(f"{key + ': ' if key else ''}{path} is {kind}, not a corpus file; "
                    f"set {setting} to a file in it (or a corpus name such as ud_ewt:dev)")


def locate(file: CorpusFile | str, root: str | os.PathLike | None = None, download: bool = True,
           key: str | None = None) -> Path:
    """Path of a corpus file: an absolute/existing path as is, else under a data root, else downloaded.
    `key` (e.g. `task.file`) is the config key named when the path is not a regular file."""
    spec = CorpusFile(file) if isinstance(file, str) else file
    direct = Path(spec.relpath).expanduser()
    if direct.is_absolute() or direct.exists():
        if direct.exists():
            return regular_file(direct.resolve(), key)
        raise DataError(f"{key + ': ' if key else ''}corpus file {direct} does not exist")
    roots = data_roots(root)
    tried = [r / spec.relpath for r in roots]
    for path in tried:
        if path.exists():
            return regular_file(path, key)
    if spec.url and download:
        target = _writable_target(roots, spec.relpath)
        try:
            return fetch(spec, target)
        except OSError as exc:  # no network, DNS failure, HTTP error
            raise DataError(_missing_message(spec, tried, f"download from {spec.url} failed: {exc}", key)) from exc
    raise DataError(_missing_message(spec, tried, None, key))


def _missing_message(spec: CorpusFile, tried: list[Path], why: str | None, key: str | None = None) -> str:
    lines = [f"{key + ': ' if key else ''}corpus file '{spec.relpath}' not found. Paths tried:"]
    lines += [f"  - {p}" for p in tried]
    if why:
        lines.append(why)
    lines.append(
        "Provide it by placing the file at one of those paths, setting data.root=<folder> "
        "(or the environment variable NEUROSCOPE_DATA)"
        + (f", or download it from {spec.url}" if spec.url else "")
        + "."
    )
    return "\n".join(lines)


def _writable_target(roots: list[Path], relpath: str) -> Path:
    for r in roots:
        try:
            (r / relpath).parent.mkdir(parents=True, exist_ok=True)
            if os.access((r / relpath).parent, os.W_OK):
                return r / relpath
        except OSError:
            continue
    raise DataError(f"no writable data root to download '{relpath}' into; tried {roots}")


def _extract_member(archive: Path, member: str, url: str) -> None:
    """Replace the downloaded zip `archive` by its file `member` (in place, same path)."""
    import zipfile

    try:
        with zipfile.ZipFile(archive) as zf:
            data = zf.read(member)
    except (zipfile.BadZipFile, KeyError) as exc:
        raise DataError(f"{url}: expected a zip archive holding '{member}' ({exc})") from exc
    archive.write_bytes(data)


def fetch(spec: CorpusFile, target: Path, timeout: float = 30.0) -> Path:
    """Download `spec.url` to `target` atomically; verify the checksum when one is known."""
    assert spec.url is not None
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s -> %s", spec.url, target)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(spec.url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out)
        if spec.member:
            _extract_member(tmp, spec.member, spec.url)
        digest = sha256sum(tmp)
        if spec.sha256 and digest != spec.sha256:
            raise DataError(
                f"checksum mismatch for {spec.url}: expected sha256 {spec.sha256}, got {digest}. "
                f"The upstream file may have changed; place a verified copy at {target}."
            )
        if not spec.sha256:
            log.warning("no known checksum for %s; downloaded sha256 is %s", spec.url, digest)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
