"""CCA as a neuron ranking: SVCCA without the SVD step (regularized canonical correlation)."""

from __future__ import annotations

from neuroscope.methods.base import NeuronRanking
from neuroscope.methods.correlation import PairStats, aggregate, canonical, correlation_detail
from neuroscope.methods.floors import floor_detail
from neuroscope.registry import METHODS


@METHODS.register("cca")
def cca(pairs: list[PairStats], ridge: float = 1e-4, aggregate_over: str = "max", seed: int = 0) -> NeuronRanking:
    """score_i = max (or `aggregate_over`) over other models of its canonical-correlation-weighted
    loading, CCA regularized by `ridge` × the mean variance."""
    per_model = [canonical(p, keep=None, ridge=ridge) for p in pairs]
    detail = correlation_detail(pairs)
    detail.update(floor_detail(pairs))
    detail["canonical_correlations"] = [rho.tolist() for rho, _ in per_model]
    return NeuronRanking.from_scores(aggregate([s for _, s in per_model], aggregate_over), seed=seed,
                                     correlation=detail)
