"""Neuron rankers, one module each, registered in `METHODS`."""

from neuroscope.methods import (  # noqa: F401  (registration)
    cca,
    iou,
    lca,
    maxcorr,
    mincorr,
    probeless,
    random,
    regcorr,
    svcca,
    weight_norm,
)
from neuroscope.methods.base import NeuronRanking, rank

__all__ = ["NeuronRanking", "rank"]
