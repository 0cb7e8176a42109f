"""MaxCorr (Bau et al. 2019, Dalvi et al. 2019): a neuron other models reproduce is salient."""

from __future__ import annotations

from neuroscope.methods.base import NeuronRanking
from neuroscope.methods.correlation import PairStats, aggregate, best_partners, correlation_detail
from neuroscope.methods.floors import floor_detail
from neuroscope.methods.tiles import TiledPair, tiled_ranking
from neuroscope.registry import METHODS


@METHODS.register("maxcorr")
def maxcorr(pairs: list[PairStats] | list[TiledPair], seed: int = 0, baseline: bool = True, baseline_draws: int = 3) -> NeuronRanking:
    """score_i = max over other models of max_j |ρ(x_i, y_j)|; constant neurons score 0 (last).
    `baseline`: the rotation baseline with `baseline_draws` random rotations (methods/floors.py)."""
    if pairs and isinstance(pairs[0], TiledPair):  # method.tile: best partners reduced tile by tile
        return tiled_ranking(pairs, "max", seed, baseline)
    scores = aggregate([best_partners(p)[0] for p in pairs], "max")
    detail = correlation_detail(pairs)
    detail.update(floor_detail(pairs, "max" if baseline else None, baseline_draws, seed))
    return NeuronRanking.from_scores(scores, seed=seed, correlation=detail)
