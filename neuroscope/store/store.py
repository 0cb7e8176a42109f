"""Read an activation store: `[tokens, neurons]` arrays for any neuron/token subset, streamed by shard.

Layout of a store folder:
    manifest.json                    written last: its presence means the store is complete
    offsets.npy                      [sentences + 1] first token of each sentence
    shard-00000/<site>.npy           [shard tokens, site units] float16/float32, memory-mapped
    labels/<task key>.npz            labels, split ids and class names of one task
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuroscope.errors import StoreError
from neuroscope.files import atomic_json, atomic_path, cache_dir, locked, read_json, writing

__all__ = ["ActivationStore", "cache_dir", "locked", "npy_header", "npy_problem"]

MANIFEST = "manifest.json"
FORMAT_VERSION = 1


def npy_header(f: Any) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran order, dtype, data offset) of an open .npy file, its position left at the data."""
    fmt = np.lib.format
    major, _ = fmt.read_magic(f)
    shape, fortran, dtype = (fmt.read_array_header_1_0 if major == 1 else fmt.read_array_header_2_0)(f)
    return shape, fortran, dtype, f.tell()


def npy_problem(path: Path, shape: tuple[int, int], dtype: Any) -> str | None:
    """What is wrong with a shard's .npy file (None if nothing): missing, unreadable header,
    another shape or dtype, or a size that does not match its header (truncated or padded)."""
    try:
        with open(path, "rb") as f:
            got, fortran, got_dtype, header = npy_header(f)
    except FileNotFoundError:
        return f"{path}: missing"
    except (OSError, ValueError) as exc:
        return f"{path}: unreadable header ({exc})"
    if tuple(got) != tuple(shape) or got_dtype != np.dtype(dtype) or fortran:
        return f"{path}: holds a {got_dtype} array of shape {tuple(got)}, expected {np.dtype(dtype)} {tuple(shape)}"
    expected = header + shape[0] * shape[1] * np.dtype(dtype).itemsize
    size = path.stat().st_size
    if size != expected:
        return f"{path}: {size} bytes, expected {expected} (truncated or damaged)"
    return None


def _output(out: np.ndarray | None, shape: tuple[int, int], dtype: Any, where: str) -> np.ndarray:
    """The array a read fills: a new one, or the caller's `out` checked to be C-contiguous of `shape`, `dtype`."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if out.shape != shape or out.dtype != np.dtype(dtype) or not out.flags.c_contiguous:
        raise StoreError(f"{where}: out must be a C-contiguous {np.dtype(dtype)} array of shape {shape}")
    return out


class ActivationStore:
    """A complete store on disk; nothing is loaded until asked for."""

    reads_into = True  # read() takes `out` (methods/moments.py read_into)

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        manifest = self.path / MANIFEST
        if not manifest.exists():
            raise StoreError(f"{self.path}: not a complete activation store (no {MANIFEST})")
        self.manifest: dict[str, Any] = read_json(manifest)
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise StoreError(f"{manifest}: store format {self.manifest.get('format_version')} is not {FORMAT_VERSION}; delete the folder to rebuild")
        self.sites: list[str] = self.manifest["sites"]
        self.units: dict[str, int] = self.manifest["units"]
        self.dtype = np.dtype(self.manifest["dtype"])
        self.n_tokens: int = self.manifest["n_tokens"]
        self.shards: list[dict[str, Any]] = self.manifest["shards"]
        starts = np.cumsum([0] + [self.units[s] for s in self.sites])
        self._site_start = dict(zip(self.sites, starts[:-1].tolist(), strict=True))

    def view(self, sites: Sequence[str]) -> ActivationStore:
        """The same store seen through some of its sites (`store.sites`), in the given order: neuron
        ids keep their names, columns are renumbered; nothing is copied."""
        unknown = [s for s in sites if s not in self.units]
        if unknown or not sites:
            raise StoreError(f"store.sites: {unknown or 'none given'}: not sites of this store; sites: {self.sites}")
        out = copy.copy(self)
        out.sites = list(dict.fromkeys(sites))
        out.units = {s: self.units[s] for s in out.sites}
        starts = np.cumsum([0] + [out.units[s] for s in out.sites])
        out._site_start = dict(zip(out.sites, starts[:-1].tolist(), strict=True))
        return out

    def damaged(self) -> list[str]:
        """Problems of the files on disk (missing shard files, wrong shape, dtype or size), found
        from the .npy headers and file sizes without reading the data; [] when intact."""
        problems = []
        for shard in self.shards:
            rows = shard["end"] - shard["start"]
            for site in self.sites:
                problem = npy_problem(self.path / shard["dir"] / f"{site}.npy", (rows, self.units[site]), self.dtype)
                if problem:
                    problems.append(problem)
        if not (self.path / "offsets.npy").is_file():
            problems.append(f"{self.path / 'offsets.npy'}: missing")
        return problems

    @property
    def n_neurons(self) -> int:
        return sum(self.units.values())

    @property
    def neurons(self) -> list[str]:
        """Neuron ids `site:unit` in column order."""
        return [f"{s}:{u}" for s in self.sites for u in range(self.units[s])]

    @property
    def offsets(self) -> np.ndarray:
        """[sentences + 1] first token index of each sentence."""
        return np.load(self.path / "offsets.npy")

    def neuron_index(self, neurons: Sequence[str] | Sequence[int] | np.ndarray | None) -> np.ndarray:
        """Column indices for neuron ids (`"layer3:117"`), a site name (`"layer3"`) or indices."""
        total = self.n_neurons
        if neurons is None:
            return np.arange(total)
        if isinstance(neurons, np.ndarray) and neurons.dtype.kind in "iu":  # indices: checked vectorized
            if len(neurons) and (neurons.min() < 0 or neurons.max() >= total):
                bad = neurons[(neurons < 0) | (neurons >= total)][0]
                raise StoreError(f"neuron index {bad} out of range 0..{total - 1}")
            return neurons.astype(np.int64, copy=False)
        out = []
        for n in neurons:
            if isinstance(n, (int, np.integer)):
                if not 0 <= n < total:
                    raise StoreError(f"neuron index {n} out of range 0..{total - 1}")
                out.append(int(n))
                continue
            site, _, unit = str(n).partition(":")
            if site not in self._site_start:
                raise StoreError(f"unknown site '{site}' in neuron '{n}'; sites: {self.sites}")
            if unit == "":
                out.extend(range(self._site_start[site], self._site_start[site] + self.units[site]))
            elif not unit.isdigit() or int(unit) >= self.units[site]:
                raise StoreError(f"neuron '{n}': unit must be 0..{self.units[site] - 1}")
            else:
                out.append(self._site_start[site] + int(unit))
        return np.asarray(out, dtype=np.int64)

    def _site_array(self, shard: int, site: str) -> np.ndarray:
        """A fresh memory map of one shard's site; callers copy out of it and let it go, so the
        pages read stay in the page cache but never accumulate in the process's RSS."""
        return np.load(self.path / self.shards[shard]["dir"] / f"{site}.npy", mmap_mode="r")

    def _columns(self, cols: np.ndarray) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """Group columns by site: (site, unit indices, output positions)."""
        groups = []
        for site in self.sites:
            start = self._site_start[site]
            pos = np.nonzero((cols >= start) & (cols < start + self.units[site]))[0]
            if len(pos):
                groups.append((site, cols[pos] - start, pos))
        return groups

    def _read_site(self, shard: int, site: str, rows: np.ndarray, runs: np.ndarray, out: np.ndarray,
                   pos: np.ndarray, units: np.ndarray) -> None:
        """Copy `rows` of one shard's site into out[:, pos]. Long runs of consecutive rows
        (`runs`: [k, 3] = first row, end row, first output row) are read with plain file reads
        (the data passes through the page cache without being mapped into this process's RSS);
        scattered rows are gathered from a memory map released at once."""
        path = self.path / self.shards[shard]["dir"] / f"{site}.npy"
        whole = len(units) == self.units[site] and (units == np.arange(len(units))).all()
        if len(pos) and pos[-1] - pos[0] == len(pos) - 1:  # a column range: slice, not a fancy-index scatter
            pos = slice(int(pos[0]), int(pos[-1]) + 1)
        # the site fills all of `out` in its dtype: rows go straight into it
        direct = whole and isinstance(pos, slice) and pos.stop - pos.start == out.shape[1] and self.dtype == out.dtype
        if len(runs) and len(rows) < 16 * len(runs):  # scattered: one gather
            arr = self._site_array(shard, site)
            if direct:
                np.take(arr, rows, axis=0, out=out)
            else:
                part = arr[rows]
                out[:, pos] = part if whole else part[:, units]
            del arr  # unmap now
            return
        with open(path, "rb") as f:
            shape, fortran, dtype, header = npy_header(f)
            need = int(runs[:, 1].max()) if len(runs) else 0
            if fortran or len(shape) != 2 or need > shape[0] or dtype != self.dtype:
                raise StoreError(f"{path}: expected a C-order [tokens, units] {self.dtype} array of at least {need} rows")
            row_bytes = shape[1] * dtype.itemsize
            for lo, hi, dst in runs.tolist():
                f.seek(header + lo * row_bytes)
                buf = out[dst:dst + hi - lo] if direct else np.empty((hi - lo, shape[1]), dtype=dtype)
                if f.readinto(memoryview(buf).cast("B")) != buf.nbytes:
                    raise StoreError(f"{path}: truncated shard file")
                if not direct:
                    out[dst:dst + hi - lo, pos] = buf if whole else buf[:, units]

    def shard_block(self, i: int, neurons: Any = None, dtype: Any = np.float32, rows: np.ndarray | None = None,
                    out: np.ndarray | None = None) -> np.ndarray:
        """[rows, neurons] of shard i for a neuron subset: all its tokens, or only `rows` (indices
        within the shard, in the order wanted), read run by run (each stretch of consecutive rows
        is one read) into `out` if given, e.g. a reused buffer. Memory: the block plus one run of
        one site."""
        cols = self.neuron_index(neurons)
        n = self.shards[i]["end"] - self.shards[i]["start"]
        rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= n):
            raise StoreError(f"shard {i}: rows must be indices in 0..{n - 1}")
        breaks = np.nonzero(np.diff(rows) != 1)[0] + 1
        first = np.concatenate([[0], breaks]).astype(np.int64)  # output row of each run's start
        ends = np.concatenate([breaks, [len(rows)]]).astype(np.int64)
        runs = np.stack([rows[first], rows[ends - 1] + 1, first], 1) if len(rows) else np.zeros((0, 3), np.int64)
        block = _output(out, (len(rows), len(cols)), dtype, "shard_block")
        for site, units, pos in self._columns(cols):
            self._read_site(i, site, rows, runs, block, pos, units)
        return block

    def iter_shards(self, neurons: Any = None, dtype: Any = np.float32) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield (token slice, [shard tokens, neurons]) shard by shard: memory bounded by one shard."""
        cols = self.neuron_index(neurons)
        for i, shard in enumerate(self.shards):
            yield slice(shard["start"], shard["end"]), self.shard_block(i, cols, dtype)

    def read(self, neurons: Any = None, tokens: np.ndarray | None = None, dtype: Any = np.float32,
             out: np.ndarray | None = None) -> np.ndarray:
        """[tokens, neurons] array for a neuron subset and token subset (bool mask or indices), into
        `out` if given (a C-contiguous array of that shape and dtype, e.g. a buffer reused per block)."""
        cols = self.neuron_index(neurons)
        if tokens is None:
            idx = np.arange(self.n_tokens)
        else:
            tokens = np.asarray(tokens)
            idx = np.nonzero(tokens)[0] if tokens.dtype == bool else tokens.astype(np.int64)
            if len(idx) and (idx.min() < 0 or idx.max() >= self.n_tokens):
                raise StoreError(f"token index out of range 0..{self.n_tokens - 1}")
        increasing = len(idx) < 2 or bool((idx[1:] > idx[:-1]).all())  # sorted, no repeats: the usual block
        order = None if increasing else np.argsort(idx, kind="stable")
        sorted_idx = idx if order is None else idx[order]
        out = _output(out, (len(idx), len(cols)), dtype, "read")
        for i, shard in enumerate(self.shards):
            lo, hi = np.searchsorted(sorted_idx, [shard["start"], shard["end"]])
            if lo == hi:
                continue
            if order is None:  # the shard's rows go straight into their place: no temporary, no scatter
                self.shard_block(i, cols, dtype, rows=sorted_idx[lo:hi] - shard["start"], out=out[lo:hi])
                continue
            rows, repeat = np.unique(sorted_idx[lo:hi] - shard["start"], return_inverse=True)
            out[order[lo:hi]] = self.shard_block(i, cols, dtype, rows=rows)[repeat]
        return out

    # ---- labels of tasks over the same sentences -------------------------------------
    def save_labels(self, key: str, labels: np.ndarray, split: np.ndarray, classes: list[str]) -> Path:
        """Store one task's per-token labels beside the activations and list them in the manifest."""
        if len(labels) != self.n_tokens:
            raise StoreError(f"{len(labels)} labels for a store of {self.n_tokens} tokens")
        final = self.path / "labels" / f"{key}.npz"
        with writing(self.path, "store.root"):
            with atomic_path(final, suffix=".npz") as tmp:
                np.savez(tmp, labels=labels, split=split, classes=np.array(classes, dtype=object).astype(str))
            with locked(self.path):
                manifest = read_json(self.path / MANIFEST)
                manifest.setdefault("labels", {})[key] = {
                    "file": f"labels/{key}.npz", "classes": list(classes),
                    "labelled_tokens": int((labels >= 0).sum()),
                }
                atomic_json(self.path / MANIFEST, manifest)
                self.manifest = manifest
        return final

    def load_labels(self, key: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
        with np.load(self.path / "labels" / f"{key}.npz") as z:
            return z["labels"], z["split"], z["classes"].tolist()

    def __repr__(self) -> str:
        return f"ActivationStore({self.path}, tokens={self.n_tokens}, neurons={self.n_neurons}, dtype={self.dtype})"
