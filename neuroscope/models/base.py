"""What the activation store needs from a model: named sites, their widths, per-word activations."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class NeuronSource(Protocol):
    """A model whose units are neurons `site:unit`; `extract` gives one row per word."""

    sites: list[str]  # in neuron order, e.g. ["embeddings", "layer1", ...]
    units: dict[str, int]  # site -> number of units

    def extract(self, sentences: list[list[str]]) -> dict[str, Tensor]:
        """{site: [words in the batch, in order, units]} for a batch of word-tokenized sentences."""
        ...

    def fingerprint(self) -> dict[str, Any]:
        """JSON-able identity of the model and extraction settings (part of the store's cache key)."""
        ...

