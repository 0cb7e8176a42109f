"""Compute a store's shards: batches of length-sorted sentences through a model's NeuronSource,
written into memory-mapped .npy files (one per site) of a shard's temp folder, renamed when whole.
Used by the one-process build (extract.py) and by every worker of a parallel one (parallel.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neuroscope.errors import StoreError

if TYPE_CHECKING:
    from neuroscope.models.base import NeuronSource


def _batches(order: list[int], lengths: list[int], batch_tokens: int) -> Iterator[list[int]]:
    """Groups of sentence indices (sorted by length) of at most ~batch_tokens padded positions."""
    batch: list[int] = []
    longest = 0
    for i in order:
        longest = max(longest, lengths[i])
        if batch and longest * (len(batch) + 1) > batch_tokens:
            yield batch
            batch, longest = [], lengths[i]
        batch.append(i)
    if batch:
        yield batch


def allocate(path: Path, dtype: str, shape: tuple[int, int]) -> np.memmap:
    """A new memory-mapped .npy file `[rows, units]` whose blocks are reserved on disk at once, so
    a full disk fails here as an OSError (ENOSPC) rather than later as a SIGBUS inside the map."""
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    size = path.stat().st_size
    if size and hasattr(os, "posix_fallocate"):
        with open(path, "r+b") as f:
            try:
                os.posix_fallocate(f.fileno(), 0, size)
            except OSError as exc:  # it names no file: name it
                raise OSError(exc.errno, exc.strerror, str(path)) from exc
    return arr


def checked(values: np.ndarray, site: str, dtype: str, batch: list[list[str]], first: list[int]) -> np.ndarray:
    """`values` [batch words, units] cast to the store's dtype; a NaN or inf from the model, or a
    value beyond float16's range, is a StoreError naming site, unit, word and sentence.
    `batch` holds the batch's sentences, `first` their indices in the corpus."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = values.astype(dtype, copy=False)
    bad = ~np.isfinite(out)
    if not bad.any():
        return out
    row, unit = (int(x) for x in np.argwhere(bad)[0])  # the first one, in word order
    ends = np.cumsum([len(words) for words in batch])  # [sentences] end row of each sentence
    k = int(np.searchsorted(ends, row, side="right"))
    word = batch[k][row - (int(ends[k - 1]) if k else 0)]
    value = values[row, unit]
    where = f"site {site}, unit {unit} (neuron '{site}:{unit}'), word '{word}' of sentence {first[k] + 1}"
    if not np.isfinite(value):
        raise StoreError(f"the model emitted {value} at {where}; the store was not finished. Its weights or "
                         "inputs hold NaN/inf: check model.path / model.checkpoint (a diverged training?)")
    limit = float(np.finfo(dtype).max)
    raise StoreError(f"store.dtype={dtype}: the activation {float(value):.6g} at {where} is beyond {dtype}'s "
                     f"range (±{limit:g}); the store was not finished. Set store.dtype=float32")


def fill_shard(source: NeuronSource, sentences: list[list[str]], shard: dict[str, int], folder: Path,
                dtype: str, batch_tokens: int, bar: Any) -> None:
    """Compute one shard into `folder` (a temp dir): one memory-mapped .npy per site."""
    first, last = shard["first_sentence"], shard["last_sentence"]
    lengths = [len(s) for s in sentences[first:last]]
    starts = np.concatenate([[0], np.cumsum(lengths)])
    arrays = {site: allocate(folder / f"{site}.npy", dtype, (int(starts[-1]), source.units[site]))
              for site in source.sites}
    # batch by what the model really computes (subword positions) when it can tell us
    cost = source.lengths(sentences[first:last]) if hasattr(source, "lengths") else lengths
    order = sorted(range(len(cost)), key=lambda i: (cost[i], i))
    plan = list(_batches(order, cost, batch_tokens))
    texts = [[sentences[first + i] for i in batch] for batch in plan]
    # a source that can overlap batch i's device-to-host copy with batch i+1's forward says so
    stream = source.extract_batches(texts) if hasattr(source, "extract_batches") else map(source.extract, texts)
    for batch, words, acts in zip(plan, texts, stream, strict=True):  # acts: {site: [words, units]}
        rows = np.concatenate([np.arange(starts[i], starts[i] + lengths[i]) for i in batch])  # [batch words]
        n_rows = len(rows)
        for site in source.sites:
            if acts[site].shape[0] != n_rows:
                raise StoreError(f"model returned {acts[site].shape[0]} rows for {n_rows} words at site {site}")
            values = checked(acts[site].numpy(), site, dtype, words, [first + i for i in batch])
            arrays[site][rows] = values  # one scatter per site: the batch's sentences are not contiguous
        bar.update(n_rows)
    for arr in arrays.values():
        arr.flush()
    del arrays


def fill_missing(source: NeuronSource, sentences: list[list[str]], shards: list[dict[str, int]], path: Path,
                  dtype: str, batch_tokens: int, bar: Any) -> None:
    """Compute each shard of `shards` not on disk yet, in order, in this process: filled in
    `<dir>.tmp` and renamed when complete; on any failure the temp folder is removed."""
    for shard in shards:
        final = path / shard["dir"]
        if final.exists():
            continue
        tmp = path / f"{shard['dir']}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)  # a killed attempt at this shard (a retried worker)
        tmp.mkdir()
        try:
            fill_shard(source, sentences, shard, tmp, dtype, batch_tokens, bar)
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
