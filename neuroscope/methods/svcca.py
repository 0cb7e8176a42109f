"""SVCCA (Raghu et al. 2017) as a neuron ranking: per model pair, SVD-reduce each side to the
components holding `keep` of the variance, CCA between them; a neuron's score is its loading on
the canonical variates weighted by their canonical correlations (in the spirit of PWCCA)."""

from __future__ import annotations

from neuroscope.errors import ConfigError
from neuroscope.methods.base import NeuronRanking
from neuroscope.methods.correlation import PairStats, aggregate, canonical, correlation_detail
from neuroscope.methods.floors import floor_detail
from neuroscope.registry import METHODS


@METHODS.register("svcca")
def svcca(pairs: list[PairStats], keep: float = 0.99, aggregate_over: str = "max", seed: int = 0) -> NeuronRanking:
    """score_i = max (or `aggregate_over`) over other models of sqrt(Σ_k ρ_k² corr(x_i, z_k)²)."""
    if not 0 < keep <= 1:
        raise ConfigError(f"method.keep: the share of variance kept must be in (0, 1], got {keep}")
    per_model = [canonical(p, keep=keep) for p in pairs]
    detail = correlation_detail(pairs)
    detail.update(floor_detail(pairs))
    detail["canonical_correlations"] = [rho.tolist() for rho, _ in per_model]
    return NeuronRanking.from_scores(aggregate([s for _, s in per_model], aggregate_over), seed=seed,
                                     correlation=detail)
