"""Mask-overlap ranking in the spirit of Mu & Andreas (2020): a neuron's high-activation tokens
against each class's tokens, scored by intersection over union."""

from __future__ import annotations

import numpy as np

from neuroscope.errors import ConfigError
from neuroscope.methods.base import NeuronRanking
from neuroscope.registry import METHODS


@METHODS.register("iou")
def iou(acts: np.ndarray, labels: np.ndarray, signs: str = "both", chunk: int = 256) -> NeuronRanking:
    """Per neuron and class, threshold the neuron at the class's frequency (its top-|class|
    tokens form the mask) and take IoU with the class; score = best IoU over classes (and
    over both directions of firing with `signs=both`)."""
    if signs not in ("both", "positive"):
        raise ConfigError(f"method.signs: expected both or positive, got '{signs}'")
    tokens, neurons = acts.shape
    classes, counts = np.unique(labels, return_counts=True)
    best = np.zeros(neurons)
    for lo in range(0, neurons, chunk):  # bounded memory: [tokens, chunk] at a time
        block = acts[:, lo:lo + chunk].astype(np.float32)
        for direction in ([1.0, -1.0] if signs == "both" else [1.0]):
            values = np.sort(direction * block, axis=0)  # [tokens, chunk] ascending
            for c, n in zip(classes, counts, strict=True):
                threshold = values[tokens - n]  # [chunk] n-th largest value
                mask = direction * block >= threshold  # [tokens, chunk]
                inter = mask[labels == c].sum(0)
                union = mask.sum(0) + n - inter
                best[lo:lo + chunk] = np.maximum(best[lo:lo + chunk], inter / union)
    return NeuronRanking.from_scores(best)
