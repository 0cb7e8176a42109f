"""Mutual-information ranking (one of the sparse-probing rankers of Gurnee et al. 2023): how many
nats the label tells about a neuron's activation, binned at the neuron's own quantiles."""

from __future__ import annotations

import numpy as np

from neuroscope.errors import ConfigError
from neuroscope.methods.base import NeuronRanking
from neuroscope.registry import METHODS

BLOCK_NEURONS = 256  # columns binned at a time (one contiguous copy of them)


def quantile_codes(column: np.ndarray, bins: int) -> np.ndarray:
    """[tokens] bin index 0..bins−1 of each value: the edges are the neuron's quantiles at
    1/bins, …, (bins−1)/bins (linear interpolation), a value equal to an edge goes to the bin above;
    repeated values (e.g. a ReLU's zeros) share a bin, so fewer bins may be occupied."""
    column = np.asarray(column, dtype=np.float64)
    edges = np.quantile(column, np.arange(1, bins) / bins)
    return np.searchsorted(edges, column, side="right")


def mi_from_counts(counts: np.ndarray) -> np.ndarray:
    """Mutual information in nats of [..., bins, labels] contingency tables (natural log, as
    sklearn.metrics.mutual_info_score); 0 for an empty table."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum((-2, -1), keepdims=True)
    p = np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
    pb, pl = p.sum(-1, keepdims=True), p.sum(-2, keepdims=True)
    expected = pb * pl
    ratio = np.divide(p, expected, out=np.ones_like(p), where=p > 0)
    return np.maximum((p * np.log(ratio)).sum((-2, -1)), 0.0)


@METHODS.register("mutual_info")
def mutual_info(acts: np.ndarray, labels: np.ndarray, classes: list[str], bins: int = 16) -> NeuronRanking:
    """Overall score: I(binned activation; label) per neuron; class c's score: I(binned
    activation; [label = c]). Bins: `quantile_codes`. A class without train tokens scores 0 in
    its row (its indicator is constant); a constant neuron falls in one bin and scores 0."""
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise ConfigError(f"method.bins: expected an integer >= 2 (quantile bins per neuron), got {bins!r}")
    labels = np.asarray(labels, dtype=np.int64)
    n_classes = len(classes)
    if len(labels) != len(acts):
        raise ValueError(f"{len(acts)} activation rows but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes}), got {labels.min()}..{labels.max()}")
    n_neurons = acts.shape[1]
    counts = np.zeros((n_neurons, bins, n_classes))
    for lo in range(0, n_neurons, BLOCK_NEURONS):
        block = np.ascontiguousarray(acts[:, lo:lo + BLOCK_NEURONS].T)
        for j, column in enumerate(block):
            code = quantile_codes(column, bins) * n_classes + labels
            counts[lo + j] = np.bincount(code, minlength=bins * n_classes).reshape(bins, n_classes)
    overall = mi_from_counts(counts)
    in_bin = counts.sum(-1)  # [neurons, bins]
    class_scores = np.stack([mi_from_counts(np.stack([counts[:, :, c], in_bin - counts[:, :, c]], -1))
                             for c in range(n_classes)])  # [classes, neurons]: c against the rest
    return NeuronRanking.from_scores(overall, class_scores=class_scores)
