"""Global ranking by the L2 norm of each neuron's probe weights over classes."""

from __future__ import annotations

import numpy as np

from neuroscope.methods.base import NeuronRanking
from neuroscope.methods.lca import probe_weights
from neuroscope.registry import METHODS


@METHODS.register("weight_norm")
def weight_norm(probe: np.ndarray, seed: int = 0) -> NeuronRanking:
    """‖W[:, j]‖₂ of the oracle probe, largest first (ties, e.g. all-zero columns: seeded order)."""
    w = probe_weights(probe)  # [classes, neurons]
    return NeuronRanking.from_scores(np.sqrt((w.astype(np.float64) ** 2).sum(0)), seed=seed)
