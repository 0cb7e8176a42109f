"""Seeded random ranking: the baseline every other ranking must beat."""

from __future__ import annotations

import numpy as np

from neuroscope.methods.base import NeuronRanking
from neuroscope.registry import METHODS


@METHODS.register("random")
def random(probe: np.ndarray, seed: int) -> NeuronRanking:
    """A permutation of the neurons drawn from `seed`."""
    n = np.asarray(probe).shape[1]
    return NeuronRanking(np.random.default_rng(seed).permutation(n))
