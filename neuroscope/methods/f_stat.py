"""F-statistic ranking (one of the sparse-probing rankers of Gurnee et al. 2023): a one-way ANOVA
of each neuron's activation across the classes, from per-class sums and sums of squares
accumulated in one pass over row chunks (see `mean_diff.ClassMoments`)."""

from __future__ import annotations

import numpy as np

from neuroscope.methods.base import NeuronRanking
from neuroscope.methods.mean_diff import ClassMoments, row_blocks, safe_divide
from neuroscope.registry import METHODS

WITHIN_FLOOR = 1e-12  # within-class SS used when it is 0: this fraction of the total SS


def f_ratio(ss_between: np.ndarray, ss_within: np.ndarray, ss_total: np.ndarray, groups: int,
            tokens: np.ndarray | int) -> np.ndarray:
    """(SSB / (groups − 1)) / (SSW / (tokens − groups)); 0 for a constant neuron or too few
    groups/tokens; a within SS of 0 is taken as WITHIN_FLOOR · total SS (large, finite)."""
    dof_w = np.asarray(tokens, dtype=np.float64) - groups
    if groups < 2:
        return np.zeros(np.shape(ss_between))
    within = np.maximum(ss_within, WITHIN_FLOOR * ss_total)
    return safe_divide(ss_between / (groups - 1) * np.maximum(dof_w, 0), within)


@METHODS.register("f_stat")
def f_stat(acts: np.ndarray, labels: np.ndarray, classes: list[str]) -> NeuronRanking:
    """Overall score: the one-way ANOVA F of the neuron across the classes with train tokens
    (= scipy.stats.f_oneway); class c's score: the F of c against all other tokens (= t² of a
    pooled-variance two-sample t test). A class without train tokens (or with all of them) has a
    row of 0 and is left out of the overall F; a constant neuron scores 0; a neuron whose
    classes are each constant but differ gets a large finite F (scipy: inf)."""
    m = ClassMoments.accumulate(row_blocks(acts, labels), len(classes))
    present = m.count > 0
    n_total = int(m.count.sum())
    means_sq = safe_divide(m.s1 ** 2, m.count[:, None])  # n_c · mean_c² (around the shift)
    ss_total = np.maximum(m.s2.sum(0) - m.s1.sum(0) ** 2 / n_total, 0.0)
    ss_between = np.maximum(means_sq[present].sum(0) - m.s1.sum(0) ** 2 / n_total, 0.0)
    ss_within = m.ss_within()[present].sum(0)
    overall = f_ratio(ss_between, ss_within, ss_total, int(present.sum()), n_total)
    n_c, n_r, diff, ss_pooled = m.one_vs_rest()
    ok = (n_c > 0) & (n_r > 0)
    between_c = np.where(ok, n_c * n_r / n_total * diff ** 2, 0.0)
    class_scores = np.where(ok, f_ratio(between_c, ss_pooled, ss_total[None, :], 2, n_total), 0.0)
    return NeuronRanking.from_scores(overall, class_scores=class_scores)
