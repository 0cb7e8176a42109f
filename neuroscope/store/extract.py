"""Stream a model's per-word activations over a corpus into an on-disk store.

Sentences are cut into shards of about `shard_tokens` words (corpus order). Each shard is
filled batch by batch (sentences sorted by length) into memory-mapped files in a temp folder,
which is renamed when complete: a killed run resumes from the last complete shard, and a
re-run with the same key reuses the finished store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from neuroscope import __version__
from neuroscope.errors import ConfigError, StoreError
from neuroscope.files import atomic_json, atomic_path, locked, read_json, writing
from neuroscope.hashing import files_unchanged
from neuroscope.progress import allowed as progress_allowed
from neuroscope.store.parallel import (
    BuildPlan,
    build_plan,
    merge_reports,
    run_ranges,
    torch_threads,
)
from neuroscope.store.shards import fill_missing
from neuroscope.store.store import FORMAT_VERSION, MANIFEST, ActivationStore, npy_problem

if TYPE_CHECKING:  # the store needs no model code at run time
    from neuroscope.models.base import NeuronSource

log = logging.getLogger(__name__)
DTYPES = ("float32", "float16")
ROOT_KEY = "store.root"  # the config key that chose every folder written here


def words_hash(sentences: list[list[str]]) -> str:
    """Hash of the exact word sequence of every sentence."""
    h = hashlib.sha256()
    for words in sentences:
        h.update("\x1f".join(words).encode())
        h.update(b"\x1e")
    return h.hexdigest()


def store_key(fingerprint: dict[str, Any], sentences: list[list[str]], dtype: str, shard_tokens: int = 8192) -> str:
    """Cache key of a store: model (files by content) + extraction settings + dtype + layout + data.
    Every layout setting is in the key, so a resumed build never mixes two layouts."""
    blob = json.dumps({"model": fingerprint, "dtype": dtype, "shard_tokens": int(shard_tokens),
                       "data": words_hash(sentences), "format": FORMAT_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def config_key(model_config: dict[str, Any], sentences: list[list[str]], dtype: str, shard_tokens: int) -> str:
    """Key of a store request before any model is built: the model's config node (device left
    out), dtype, layout and data. The index maps it to the store last built for it."""
    node = {k: v for k, v in model_config.items() if k != "device"}
    blob = json.dumps({"model_config": node, "dtype": dtype, "shard_tokens": int(shard_tokens),
                       "data": words_hash(sentences), "format": FORMAT_VERSION}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def _indexed_store(root: Path, key: str) -> ActivationStore | None:
    """The intact store the index names for `key`, if the files it was built from are unchanged."""
    try:
        entry = read_json(root / "index" / f"{key}.json")
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or not files_unchanged(entry.get("files") or {}) or not entry.get("files"):
        return None
    path = root / str(entry.get("store"))
    with locked(path):
        try:
            store = ActivationStore(path)
        except (StoreError, OSError, ValueError):
            return None
        return None if store.damaged() else store


def corpus_store(make_source: Callable[[], NeuronSource], model_config: dict[str, Any], corpus: Any,
                 store_cfg: Mapping[str, Any]) -> tuple[ActivationStore, bool]:
    """`open_or_build` over a task corpus's words with the `store` config node's settings
    (root, dtype, shard_tokens, batch_tokens, progress); returns (store, reused)."""
    plan = build_plan(store_cfg)  # store.engine / workers / threads, checked before any model loads
    store, reused, _ = open_or_build(
        make_source, model_config, corpus.words, Path(store_cfg["root"]).expanduser(),
        dtype=store_cfg.get("dtype", "float32"), shard_tokens=int(store_cfg.get("shard_tokens", 8192)),
        batch_tokens=int(store_cfg.get("batch_tokens", 1024)), sources=corpus.sources,
        name=str(model_config.get("name")), progress=bool(store_cfg.get("progress", True)), plan=plan)
    return store, reused


def open_or_build(make_source: Callable[[], NeuronSource], model_config: dict[str, Any], sentences: list[list[str]],
                  root: Path, *, dtype: str = "float32", shard_tokens: int = 8192, **kwargs: Any
                  ) -> tuple[ActivationStore, bool, NeuronSource | None]:
    """The store of a model (given by its config) over `sentences`: found through the index
    without building the model when its files are unchanged, else `make_source()` is built and
    `extract` run. Returns (store, reused, the source if it was built)."""
    root = Path(root)
    key = config_key(model_config, sentences, dtype, shard_tokens)
    with writing(root, ROOT_KEY):  # the lock beside the store is a write too
        store = _indexed_store(root, key)
    if store is not None:
        log.info("reusing activation store %s (model not loaded)", store.path)
        return store, True, None
    source = make_source()
    store, reused = extract(source, sentences, root, dtype=dtype, shard_tokens=shard_tokens,
                            make_source=make_source, **kwargs)
    files = source.input_files() if hasattr(source, "input_files") else None
    if files:  # sources that cannot name their files are always built (correct, only slower)
        atomic_json(root / "index" / f"{key}.json", {"store": store.path.name, "files": files,
                                                     "model_config": model_config}, key=ROOT_KEY)
    return store, reused, source


def _discard_damaged(path: Path) -> None:
    """A complete-looking store whose files are damaged: drop its manifest and every damaged
    shard, so that the build below recomputes just those shards."""
    try:
        store = ActivationStore(path)
        problems = store.damaged()
    except (StoreError, OSError, ValueError) as exc:  # unreadable manifest: rebuild (shards are checked below)
        problems, store = [str(exc)], None
    if not problems:
        return
    log.warning("activation store %s is damaged (%s); rebuilding the damaged parts", path, "; ".join(problems[:3]))
    (path / MANIFEST).unlink(missing_ok=True)
    if store is not None:
        for shard in store.shards:
            if any(p.startswith(str(path / shard["dir"])) for p in problems):
                shutil.rmtree(path / shard["dir"], ignore_errors=True)


def plan_shards(lengths: list[int], shard_tokens: int) -> list[dict[str, int]]:
    """Consecutive sentence ranges of about `shard_tokens` words each."""
    shards, first, start, n = [], 0, 0, 0
    for i, length in enumerate(lengths):
        n += length
        if n >= shard_tokens or i == len(lengths) - 1:
            shards.append({"dir": f"shard-{len(shards):05d}", "first_sentence": first,
                           "last_sentence": i + 1, "start": start, "end": start + n})
            first, start, n = i + 1, start + n, 0
    return shards


def extract(source: NeuronSource, sentences: list[list[str]], root: Path, *, dtype: str = "float32",
            shard_tokens: int = 8192, batch_tokens: int = 4096, sources: list[dict[str, str]] | None = None,
            name: str = "store", progress: bool = True, plan: BuildPlan | None = None,
            make_source: Callable[[], NeuronSource] | None = None) -> tuple[ActivationStore, bool]:
    """Build (or reuse) the store of `source` over `sentences` under `root`; returns (store, reused).
    `plan` (store.engine, workers, threads) may compute the shards in worker processes, each
    building its own source with `make_source`; `source` then only names the store."""
    plan = plan or BuildPlan()
    if plan.parallel and make_source is None:
        raise ConfigError(f"store.engine={plan.engine}: workers need a way to load the model (make_source)")
    if dtype not in DTYPES:
        raise ConfigError(f"store.dtype: expected one of {DTYPES}, got '{dtype}'")
    if not sentences:
        raise ConfigError("no sentences to extract")
    if int(shard_tokens) < 1:
        raise ConfigError(f"store.shard_tokens: must be >= 1, got {shard_tokens}")
    key = store_key(source.fingerprint(), sentences, dtype, shard_tokens)
    path = Path(root) / f"{name}-{key}"
    with writing(path, ROOT_KEY), locked(path):
        if (path / MANIFEST).exists():
            _discard_damaged(path)
        if (path / MANIFEST).exists():
            log.info("reusing activation store %s", path)
            return ActivationStore(path), True
        t0 = time.perf_counter()
        lengths = [len(s) for s in sentences]
        shards = plan_shards(lengths, shard_tokens)
        stats = _build_shards(source, sentences, shards, path, dtype, batch_tokens, progress, plan, make_source)
        _check_shards(source, shards, path, dtype)  # what workers wrote, before the manifest vouches for it
        with atomic_path(path / "offsets.npy", suffix=".npy") as tmp:
            np.save(tmp, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
        for what, count in stats.items():
            if count:
                log.warning("extraction: %s = %d (see the store manifest)", what, count)
        atomic_json(path / MANIFEST, {
            "format_version": FORMAT_VERSION,
            "key": key,
            "model": source.fingerprint(),
            "sites": source.sites,
            "units": source.units,
            "dtype": dtype,
            "n_tokens": int(sum(lengths)),
            "n_sentences": len(sentences),
            "data_sha256": words_hash(sentences),
            "sources": sources or [],
            "shards": shards,
            "layout": {"shard_tokens": int(shard_tokens)},
            "extract_seconds": round(time.perf_counter() - t0, 3),
            "build": {"engine": plan.engine, "workers": plan.workers, "threads": plan.threads},
            "extraction_stats": stats,
            "labels": {},
            "neuroscope_version": __version__,
        })
    return ActivationStore(path), False


def _check_shards(source: NeuronSource, shards: list[dict[str, int]], path: Path, dtype: str) -> None:
    """Every planned shard is on disk with its header's shape, dtype and size (else a StoreError)."""
    for shard in shards:
        rows = shard["end"] - shard["start"]
        for site in source.sites:
            if problem := npy_problem(path / shard["dir"] / f"{site}.npy", (rows, source.units[site]), dtype):
                raise StoreError(f"activation store {path}: {problem}; re-run to recompute the shard")


def _build_shards(source: NeuronSource, sentences: list[list[str]], shards: list[dict[str, int]], path: Path,
                  dtype: str, batch_tokens: int, progress: bool, plan: BuildPlan,
                  make_source: Callable[[], NeuronSource] | None) -> dict[str, int]:
    """Compute the shards of `path` that are missing; intact shards of an interrupted build are kept.
    Each shard is filled in `<dir>.tmp` and renamed when complete; on any failure its temp folder
    is removed, so the store folder only ever holds whole shards (and no manifest). Returns the
    extraction stats (summed over workers)."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.tmp"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)
    for shard in shards:  # shards of a killed or damaged build: keep only intact ones
        folder = path / shard["dir"]
        rows = shard["end"] - shard["start"]
        if folder.exists() and any(npy_problem(folder / f"{site}.npy", (rows, source.units[site]), dtype)
                                   for site in source.sites):
            log.warning("shard %s is incomplete or damaged; recomputing it", folder)
            shutil.rmtree(folder, ignore_errors=True)
    kept = [s for s in shards if (path / s["dir"]).exists()]
    if kept:
        log.info("resuming activation store %s: %d of %d shards kept from an interrupted build",
                 path, len(kept), len(shards))
    done = sum(s["end"] - s["start"] for s in kept)
    with tqdm(total=shards[-1]["end"], initial=done, unit="tok", unit_scale=True, desc="extract",
              disable=not (progress and progress_allowed()), mininterval=1.0) as bar:  # store.progress, progress
        if plan.parallel:
            missing = [s for s in shards if not (path / s["dir"]).exists()]
            assert make_source is not None  # checked by extract
            return merge_reports(run_ranges(plan, make_source, sentences, missing, path, dtype, batch_tokens, bar),
                                 source)
        with torch_threads(plan.threads):
            fill_missing(source, sentences, shards, path, dtype, batch_tokens, bar)
    return dict(source.stats()) if hasattr(source, "stats") else {}
