"""Neuron rankers, one module each, registered in `METHODS`."""

from neuroscope.methods import (  # noqa: F401  (registration)
    cca,
    f_stat,
    iou,
    l1_binary,
    lca,
    maxcorr,
    mean_diff,
    mincorr,
    mutual_info,
    probeless,
    random,
    regcorr,
    svcca,
    weight_norm,
)
from neuroscope.methods.base import NeuronRanking, rank

__all__ = ["NeuronRanking", "rank"]
