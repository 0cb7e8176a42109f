"""The train/dev/test token data of a study, in memory when it fits, else streamed from the store."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neuroscope.probes import (
    ArrayChunks,
    Probe,
    ProbeConfig,
    StoreChunks,
    TokenChunks,
    evaluate,
    fit_probe,
)
from neuroscope.store import ActivationStore


@dataclass
class Splits:
    """Token data of the three splits over all neurons, plus the number of classes."""

    train: TokenChunks
    dev: TokenChunks
    test: TokenChunks
    n_classes: int
    masks: tuple[np.ndarray, ...] | None = None  # [tokens] bool per split, when built from a store
    cols: np.ndarray | None = None  # neuron columns of the root splits these cover (None: all)
    fits: dict = field(default_factory=dict, repr=False)  # (cfg, cols) -> trained probe, shared by subsets

    @classmethod
    def build(cls, store: ActivationStore, labels: np.ndarray, split: np.ndarray, n_classes: int,
              memory_gb: float, like: Splits | None = None) -> Splits:
        """Load the labelled tokens into memory if they fit `memory_gb`, else stream them. With
        `like` (e.g. the task's splits, for a control task) over the same tokens, its
        activations are shared and only the labels differ."""
        masks = tuple((split == i) & (labels >= 0) for i in range(3))
        if like is not None and like.masks is not None and all(
                np.array_equal(a, b) for a, b in zip(masks, like.masks, strict=True)):
            parts = [p.relabel(labels) for p in (like.train, like.dev, like.test)]
            return cls(*parts, n_classes=n_classes, masks=masks)
        parts = [StoreChunks(store, mask, labels) for mask in masks]
        need = sum(p.n_tokens for p in parts) * store.n_neurons * 4 / 2**30
        if need <= memory_gb:
            parts = [p.load() for p in parts]
        return cls(*parts, n_classes=n_classes, masks=masks)

    @property
    def in_memory(self) -> bool:
        return isinstance(self.train, ArrayChunks)

    def columns(self, cols: np.ndarray) -> Splits:
        """The same splits over a neuron subset (sharing this one's cache of trained probes)."""
        cols = np.asarray(cols, dtype=np.int64)
        full = cols if self.cols is None else self.cols[cols]
        return Splits(self.train.columns(cols), self.dev.columns(cols), self.test.columns(cols), self.n_classes,
                      cols=full, fits=self.fits)

    def fit(self, cfg: ProbeConfig) -> tuple[Probe, dict]:
        """Probe trained on train with early stopping on dev; the same neurons and settings are
        trained once per study (e.g. the top k % for the test curve and for the minimal-subset
        search on dev)."""
        key = (cfg, None if self.cols is None else self.cols.tobytes())
        if key not in self.fits:
            self.fits[key] = fit_probe(self.train, self.n_classes, cfg, self.dev)
        return self.fits[key]

    def score(self, probe: Probe, split: str = "test", per_class: bool = False) -> dict:
        return evaluate(probe, getattr(self, split), self.n_classes, per_class)

    def fit_score(self, cfg: ProbeConfig, split: str = "test") -> float:
        """Accuracy on `split` of a probe retrained on these splits."""
        probe, _ = self.fit(cfg)
        return self.score(probe, split)["accuracy"]
