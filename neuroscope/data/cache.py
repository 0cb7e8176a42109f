"""Parsed corpora cached by file content: a corpus is parsed once (CoNLL-U parsing is ~2.5 s for
UD EWT dev), then every study, control draw and sweep job over it loads the sentences in ~0.1 s.

Key: the reader's name and source code, and the path and sha256 of every file it reads (hashes
cached by path, size and mtime), so an edited corpus or reader is parsed again. Entries live in memory for the
process and as pickles under `$NEUROSCOPE_CACHE/corpora/` (written to a temp file, then renamed).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neuroscope import __version__
from neuroscope.data.sentence import Sentence
from neuroscope.errors import WriteError
from neuroscope.files import atomic_write, cache_dir
from neuroscope.hashing import cached_sha256

log = logging.getLogger(__name__)
_memory: dict[str, list[Sentence]] = {}


def _code_hash(fn: Callable[..., Any]) -> str:
    try:
        return hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()[:16]
    except (OSError, TypeError):  # no source (e.g. a C function): its qualified name
        return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', '?')}"


def read_cached(name: str, reader: Callable[..., list[Sentence]], path: Path, **files: Path) -> list[Sentence]:
    """`reader(path, **files)`, from the cache when the reader and every file are unchanged."""
    # paths are part of the key: sentences carry their file in error messages
    digests = {"path": [str(Path(path).resolve()), cached_sha256(path)],
               **{k: [str(Path(v).resolve()), cached_sha256(v)] for k, v in sorted(files.items())}}
    blob = json.dumps({"reader": name, "code": _code_hash(reader), "files": digests, "version": __version__},
                      sort_keys=True)
    key = hashlib.sha256(blob.encode()).hexdigest()[:24]
    if key in _memory:
        return _memory[key]
    disk = cache_dir() / "corpora" / f"{key}.pkl"
    try:
        with open(disk, "rb") as f:
            sentences = pickle.load(f)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError):
        sentences = reader(path, **files)  # errors in the file surface here, with file and line
        try:
            atomic_write(disk, pickle.dumps(sentences, protocol=pickle.HIGHEST_PROTOCOL))
        except WriteError as exc:  # a read-only or full cache only costs time
            log.debug("corpus cache not written (%s)", exc)
    _memory[key] = sentences
    return sentences
