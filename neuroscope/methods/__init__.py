"""Neuron rankers, one module each, registered in `METHODS`."""

from neuroscope.methods import iou, lca, probeless, random, weight_norm  # noqa: F401  (registration)
from neuroscope.methods.base import NeuronRanking, rank

__all__ = ["NeuronRanking", "rank"]
