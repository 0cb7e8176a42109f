"""Token data for probes as chunks: all in memory, or streamed shard by shard from a store.

Both kinds yield the same batches for the same seed when their chunk boundaries agree, so
streaming and in-memory training give the same weights. NumPy only: a study on a stored
model never imports torch.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

from neuroscope.store import ActivationStore


class TokenChunks(Protocol):
    """Labelled tokens of one split over a neuron subset, delivered in chunks."""

    n_neurons: int
    n_tokens: int
    n_chunks: int

    def chunk(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Chunk i: ([rows, neurons] float32, [rows] int64); rows may be 0."""
        ...

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every non-empty chunk in order."""
        ...


def read_buffer(data: TokenChunks) -> np.ndarray | None:
    """One reusable buffer for every chunk of streamed data (None for in-memory data)."""
    if isinstance(data, StoreChunks):
        return np.empty((data.max_chunk_rows, data.n_neurons), dtype=np.float32)
    return None


def read_chunk(data: TokenChunks, i: int, buffer: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Chunk i of `data`, read into `buffer` if given (then valid until the next read into it)."""
    return data.chunk(i) if buffer is None else data.chunk(i, out=buffer)


def nonempty_chunks(data: TokenChunks, buffer: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Every non-empty chunk of `data` in order, one alive at a time (callers drop theirs too);
    with `buffer` (see `read_buffer`) each is read into it."""
    for i in range(data.n_chunks):
        chunk = read_chunk(data, i, buffer)
        if len(chunk[1]):
            yield chunk
        del chunk


def as_array(a: Any, dtype: Any) -> np.ndarray:
    """`a` (NumPy array, torch tensor, list) as a NumPy array of `dtype`, without a copy when it
    already is one."""
    if hasattr(a, "detach"):  # a torch tensor, taken without importing torch
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=dtype)


Stats = tuple[np.ndarray, np.ndarray]  # per-neuron (mean, std) float32 [neurons] each, as `moments` gives


def column_stats(stats: Stats | None, cols: np.ndarray) -> Stats | None:
    """The moments of a neuron subset, taken from its parent's (they are per neuron)."""
    return None if stats is None else (stats[0][cols], stats[1][cols])


class ArrayChunks:
    """In-memory tokens; `boundaries` (row offsets) split them into chunks like a store's shards.
    `mixed`: the rows of each chunk already mix the corpus (as `StoreChunks.load()` gives them);
    otherwise (e.g. arrays in corpus order) `fit_numpy` trains on a once-shuffled copy.
    `stats`: the rows' `moments`, once computed (kept for the column subsets and relabellings
    of the same rows, so a study computes them once)."""

    def __init__(self, x: Any, y: Any, boundaries: list[int] | None = None, mixed: bool = False,
                 index: np.ndarray | None = None, stats: Stats | None = None) -> None:
        self.x = as_array(x, np.float32)  # [tokens, neurons]
        self.y = as_array(y, np.int64)  # [tokens]
        self.index = index  # [tokens] store token id of each row, when loaded from a store
        self.n_tokens, self.n_neurons = self.x.shape
        self.boundaries = boundaries or [0, self.n_tokens]
        self.n_chunks = len(self.boundaries) - 1
        self.mixed = mixed
        self.stats = stats

    def chunk(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self.boundaries[i], self.boundaries[i + 1]
        return self.x[lo:hi], self.y[lo:hi]

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return nonempty_chunks(self)

    def columns(self, cols: np.ndarray) -> ArrayChunks:
        """The same tokens over a neuron subset (np.take: ~3x faster than `x[:, cols]`)."""
        cols = np.asarray(cols, dtype=np.int64)
        return ArrayChunks(np.take(self.x, cols, axis=1), self.y, self.boundaries, self.mixed, self.index,
                           column_stats(self.stats, cols))

    def relabel(self, labels: np.ndarray) -> ArrayChunks:
        """The same activations (shared, not copied) with other labels of the same store tokens."""
        if self.index is None:
            raise ValueError("relabel needs rows loaded from a store (their token ids)")
        return ArrayChunks(self.x, labels[self.index], self.boundaries, self.mixed, self.index, self.stats)


class StoreChunks:
    """Tokens selected by `mask`, read from a store a chunk at a time.

    A chunk holds up to `chunk_mib` MiB of float32 (never fewer than MIN_CHUNK_ROWS rows) of the
    selected tokens of one shard: segments of SEGMENT_ROWS consecutive selected tokens, every
    k-th segment of the shard, in a seeded shuffled order. So a probe batch (a slice of a chunk)
    mixes a few dozen sentences from across the shard (consecutive tokens make poor batches),
    while each segment is one plain file read; only the selected rows are read, so memory and
    I/O stay bounded however large the shards or the store.
    """

    MIN_CHUNK_ROWS = 1024  # >= one default probe batch per chunk
    SEGMENT_ROWS = 32  # consecutive tokens read together (about two sentences)

    def __init__(self, store: ActivationStore, mask: np.ndarray, labels: np.ndarray, neurons: Any = None,
                 chunk_mib: float = 8.0, pieces: list[tuple[int, np.ndarray]] | None = None,
                 stats: Stats | None = None) -> None:
        self.store, self.mask, self.labels, self.chunk_mib = store, mask, labels, chunk_mib
        self.stats = stats  # the selected rows' `moments`, once computed (as ArrayChunks.stats)
        self.cols = store.neuron_index(neurons)
        self.n_neurons = len(self.cols)
        self.n_tokens = int(mask.sum())
        self.pieces = self._pieces() if pieces is None else pieces  # (shard, selected rows within the shard)
        self.n_chunks = len(self.pieces)

    def _pieces(self) -> list[tuple[int, np.ndarray]]:
        size = max(self.MIN_CHUNK_ROWS, int(self.chunk_mib * 2**20 / (4 * max(self.n_neurons, 1))))
        rng = np.random.default_rng(len(self.store.shards))  # fixed: the layout is data, not training randomness
        pieces = []
        for i, s in enumerate(self.store.shards):
            rows = np.nonzero(self.mask[s["start"]:s["end"]])[0]
            segments = [rows[lo:lo + self.SEGMENT_ROWS] for lo in range(0, len(rows), self.SEGMENT_ROWS)]
            k = -(-len(rows) // size)  # pieces of <= ~size rows, each every k-th segment of the whole shard
            for j in range(k):
                mine = segments[j::k]
                pieces.append((i, np.concatenate([mine[t] for t in rng.permutation(len(mine))])))
        return pieces

    def boundaries(self) -> list[int]:
        """Row offsets of the chunks within the selected tokens (for an equivalent ArrayChunks)."""
        return np.concatenate([[0], np.cumsum([len(rows) for _, rows in self.pieces])]).astype(int).tolist()

    @property
    def max_chunk_rows(self) -> int:
        return max((len(rows) for _, rows in self.pieces), default=0)

    def chunk(self, i: int, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Chunk i, read into `out` ([>= its rows, neurons] float32, reused by the caller to spare
        fresh pages every chunk) if given: the block is then a view of `out`."""
        shard, rows = self.pieces[i]
        buf = None if out is None else out[:len(rows)]
        block = self.store.shard_block(shard, self.cols, rows=rows, out=buf)  # [rows, neurons]
        return block, self.labels[self.store.shards[shard]["start"] + rows].astype(np.int64)

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return nonempty_chunks(self)

    def columns(self, cols: np.ndarray) -> StoreChunks:
        # the same chunks (fewer bytes each), so the same batches as the in-memory subset
        cols = np.asarray(cols, dtype=np.int64)
        return StoreChunks(self.store, self.mask, self.labels, self.cols[cols], self.chunk_mib, self.pieces,
                           column_stats(self.stats, cols))

    def relabel(self, labels: np.ndarray) -> StoreChunks:
        """The same tokens and chunks with other labels."""
        return StoreChunks(self.store, self.mask, labels, self.cols, self.chunk_mib, self.pieces, self.stats)

    def token_ids(self) -> np.ndarray:
        """[tokens] store token id of each selected row, in chunk order."""
        ids = [self.store.shards[shard]["start"] + rows for shard, rows in self.pieces]
        return np.concatenate(ids).astype(np.int64) if ids else np.empty(0, dtype=np.int64)

    def load(self) -> ArrayChunks:
        """All selected tokens in memory, chunked like the store: each chunk is read straight into
        its rows of one array (peak = the data once)."""
        bounds = self.boundaries()
        x = populated_empty((self.n_tokens, self.n_neurons), np.float32)  # [tokens, neurons]
        ys = [self.chunk(i, out=x[lo:hi])[1] for i, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))]
        y = np.concatenate(ys) if ys else np.empty(0, dtype=np.int64)
        return ArrayChunks(x, y, bounds, mixed=True, index=self.token_ids(), stats=self.stats)  # chunks mix their shard


def populated_empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """`np.empty(shape, dtype)` whose pages the kernel maps in one call (MAP_POPULATE, Linux) instead of
    one page fault per page on first write: for arrays of hundreds of MB filled once, e.g. a study's
    splits loaded into memory. Elsewhere, or below 64 MiB, plain `np.empty`."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    populate = getattr(mmap, "MAP_POPULATE", 0)
    if not populate or nbytes < 64 * 2**20:
        return np.empty(shape, dtype=dtype)
    buf = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | populate)
    return np.frombuffer(buf, dtype=dtype).reshape(shape)  # the array keeps the map alive


def row_blocks(x: np.ndarray, mib: float = 8.0) -> Iterator[np.ndarray]:
    """Views of consecutive rows of x, each <= `mib` MiB (at least one row): bounded temporaries."""
    step = max(1, int(mib * 2**20 // max(x.shape[1] * x.itemsize, 1)))
    for lo in range(0, len(x), step):
        yield x[lo:lo + step]


def moments(data: TokenChunks) -> Stats:
    """Per-neuron mean and std in one streaming pass: per chunk (a store's shard) a partial (count,
    float64 mean, M2) from blocks of <= 8 MiB, partials merged exactly (Chan et al.); std of constant
    neurons = 1. Returns float32 [neurons] each. Computed once per rows: kept as `data.stats`,
    which the data's column subsets and relabellings inherit (sliced)."""
    stats = getattr(data, "stats", None)
    if stats is None:
        stats = _moments(data)
        try:
            data.stats = stats
        except AttributeError:  # another TokenChunks that cannot keep them: computed per call
            pass
    return stats


def _moments(data: TokenChunks) -> Stats:
    Part = tuple[int, np.ndarray, np.ndarray]  # (n, mean, M2 = Σ (x - mean)²)

    def merge(a: Part, b: Part) -> Part:  # Chan et al.'s pairwise update: exact for any split
        if a[0] == 0:
            return b
        total = a[0] + b[0]
        delta = b[1] - a[1]
        return total, a[1] + delta * (b[0] / total), a[2] + b[2] + delta * delta * (a[0] * b[0] / total)

    empty: Part = (0, np.zeros(data.n_neurons), np.zeros(data.n_neurons))
    total = empty
    for chunk, _ in nonempty_chunks(data, read_buffer(data)):
        part = empty
        for x in row_blocks(chunk):  # an in-memory chunk can be the whole array: no full-size temporary
            mean_c = x.mean(0, dtype=np.float64)
            m2_c = np.square(x - mean_c.astype(np.float32)).sum(0, dtype=np.float64)  # centred: no cancellation
            part = merge(part, (x.shape[0], mean_c, m2_c))
        del chunk
        total = merge(total, part)
    n, mean, m2 = total
    std = np.sqrt(m2 / max(n, 1))
    std[std < 1e-8] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)
