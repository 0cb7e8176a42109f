"""RegCorr (Bau et al.'s LinReg): how well a linear map of all of another model's neurons
predicts the neuron, as the multiple correlation R."""

from __future__ import annotations

from neuroscope.methods.base import NeuronRanking
from neuroscope.methods.correlation import (
    PairStats,
    aggregate,
    correlation_detail,
    multiple_correlation,
)
from neuroscope.methods.floors import floor_detail
from neuroscope.registry import METHODS


@METHODS.register("regcorr")
def regcorr(pairs: list[PairStats], aggregate_over: str = "min", ridge: float = 1e-6, seed: int = 0) -> NeuronRanking:
    """score_i = min (or max / mean: `aggregate_over`) over other models of R_i, from covariances
    (R²_i = c_iᵀ (Σ_YY + ridge)⁻¹ c_i / var x_i)."""
    scores = aggregate([multiple_correlation(p, ridge) for p in pairs], aggregate_over)
    detail = correlation_detail(pairs)
    detail.update(floor_detail(pairs))
    return NeuronRanking.from_scores(scores, seed=seed, correlation=detail)
