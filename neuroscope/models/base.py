"""What the activation store needs from a model: named sites, their widths, per-word activations."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from neuroscope.errors import ConfigError


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



def read_checkpoint(path: str | Path, arch: str, key: str = "model.checkpoint") -> Any:
    """The content of a checkpoint file written by `train.py model=<arch>` (a dict when it is one),
    loaded without unpickling code; a missing or unsafe file is a `ConfigError` naming `key`."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"{key}: {p} does not exist; train one with `python train.py model={arch}`")
    try:
        ckpt = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated files, objects refused by weights_only
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]  # torch's first line, not its essay
        raise ConfigError(f"{key}: {p} cannot be loaded as a safe torch checkpoint ({reason})") from exc
    return ckpt
