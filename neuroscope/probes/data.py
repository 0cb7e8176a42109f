"""Token data for probes as chunks: all in memory, or streamed shard by shard from a store.

Both kinds yield the same batches for the same seed when their chunk boundaries agree, so
streaming and in-memory training give the same weights.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from neuroscope.store import ActivationStore


class TokenChunks(Protocol):
    """Labelled tokens of one split over a neuron subset, delivered in chunks."""

    n_neurons: int
    n_tokens: int
    n_chunks: int

    def chunk(self, i: int) -> tuple[Tensor, Tensor]:
        """Chunk i: ([rows, neurons] float32, [rows] int64); rows may be 0."""
        ...

    def chunks(self) -> Iterator[tuple[Tensor, Tensor]]:
        """Every non-empty chunk in order."""
        ...


class ArrayChunks:
    """In-memory tokens; `boundaries` (row offsets) split them into chunks like a store's shards."""

    def __init__(self, x: np.ndarray | Tensor, y: np.ndarray | Tensor, boundaries: list[int] | None = None) -> None:
        self.x = torch.as_tensor(x, dtype=torch.float32)  # [tokens, neurons]
        self.y = torch.as_tensor(y, dtype=torch.long)  # [tokens]
        self.n_tokens, self.n_neurons = self.x.shape
        self.boundaries = boundaries or [0, self.n_tokens]
        self.n_chunks = len(self.boundaries) - 1

    def chunk(self, i: int) -> tuple[Tensor, Tensor]:
        lo, hi = self.boundaries[i], self.boundaries[i + 1]
        return self.x[lo:hi], self.y[lo:hi]

    def chunks(self) -> Iterator[tuple[Tensor, Tensor]]:
        for i in range(self.n_chunks):
            x, y = self.chunk(i)
            if len(y):
                yield x, y

    def columns(self, cols: np.ndarray) -> ArrayChunks:
        """The same tokens over a neuron subset."""
        return ArrayChunks(self.x[:, torch.as_tensor(cols)], self.y, self.boundaries)


class StoreChunks:
    """Tokens selected by `mask` read shard by shard from a store: memory bounded by one shard."""

    def __init__(self, store: ActivationStore, mask: np.ndarray, labels: np.ndarray, neurons: np.ndarray | None = None) -> None:
        self.store, self.mask, self.labels = store, mask, labels
        self.cols = store.neuron_index(neurons)
        self.n_neurons = len(self.cols)
        self.n_tokens = int(mask.sum())
        self.n_chunks = len(store.shards)

    def boundaries(self) -> list[int]:
        """Row offsets of the chunks within the selected tokens (for an equivalent ArrayChunks)."""
        counts = [int(self.mask[s["start"]:s["end"]].sum()) for s in self.store.shards]
        return np.concatenate([[0], np.cumsum(counts)]).astype(int).tolist()

    def chunk(self, i: int) -> tuple[Tensor, Tensor]:
        shard = self.store.shards[i]
        keep = self.mask[shard["start"]:shard["end"]]
        if not keep.any():
            return torch.empty(0, self.n_neurons), torch.empty(0, dtype=torch.long)
        block = self.store.shard_block(i, self.cols)[keep]
        return torch.from_numpy(block), torch.from_numpy(self.labels[shard["start"]:shard["end"]][keep].astype(np.int64))

    def chunks(self) -> Iterator[tuple[Tensor, Tensor]]:
        for i in range(self.n_chunks):
            x, y = self.chunk(i)
            if len(y):
                yield x, y

    def columns(self, cols: np.ndarray) -> StoreChunks:
        return StoreChunks(self.store, self.mask, self.labels, self.cols[cols])

    def load(self) -> ArrayChunks:
        """All selected tokens in memory, chunked like the shards."""
        xs, ys = zip(*self.chunks(), strict=True)
        return ArrayChunks(torch.cat(xs), torch.cat(ys), self.boundaries())


def moments(data: TokenChunks) -> tuple[Tensor, Tensor]:
    """Per-neuron mean and std in one streaming pass: float32 moments per chunk, combined in
    float64 (Chan et al.); std of constant neurons = 1."""
    n = 0
    mean = torch.zeros(data.n_neurons, dtype=torch.float64)
    m2 = torch.zeros(data.n_neurons, dtype=torch.float64)
    for x, _ in data.chunks():
        var_c, mean_c = torch.var_mean(x, 0, correction=0)
        k = x.shape[0]
        delta = mean_c.double() - mean
        total = n + k
        mean += delta * (k / total)
        m2 += var_c.double() * k + delta * delta * (n * k / total)
        n = total
    std = (m2 / max(n, 1)).sqrt()
    std[std < 1e-8] = 1.0
    return mean.float(), std.float()
