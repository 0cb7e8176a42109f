"""Seeded random ranking: the baseline every other ranking must beat."""

from __future__ import annotations

import numpy as np

from neuroscope.methods.base import NeuronRanking
from neuroscope.registry import METHODS


@METHODS.register("random")
def random(n_neurons: int, seed: int) -> NeuronRanking:
    """A permutation of the neurons drawn from `seed` (the probe is not read, so λ is chosen by
    the oracle rule)."""
    return NeuronRanking(np.random.default_rng(seed).permutation(n_neurons))
