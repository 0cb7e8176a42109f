"""Small deterministic stand-ins used across tests."""

from __future__ import annotations

import time
import zlib
from typing import Any

import torch
from torch import Tensor


def word_vector(word: str, position: int, units: int, site: int) -> Tensor:
    """A fixed vector per (word, position in sentence, site): known answers for store tests."""
    g = torch.Generator().manual_seed(zlib.crc32(f"{word}|{position}|{site}".encode()))
    return torch.randn(units, generator=g)


class HashNeurons:
    """A NeuronSource whose activations depend only on word, position and site."""

    def __init__(self, sites: tuple[str, ...] = ("embeddings", "layer1"), units: int = 6, delay: float = 0.0) -> None:
        self.sites = list(sites)
        self.units = {s: units for s in sites}
        self.delay = delay
        self.calls = 0

    def fingerprint(self) -> dict[str, Any]:
        return {"fake": "hash", "sites": self.sites, "units": self.units}

    def extract(self, sentences: list[list[str]]) -> dict[str, Tensor]:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        return {
            site: torch.stack([word_vector(w, i, self.units[site], k) for s in sentences for i, w in enumerate(s)])
            for k, site in enumerate(self.sites)
        }
