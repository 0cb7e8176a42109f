"""Probeless ranking (Antverg & Belinkov, 2022): how far apart a neuron's class means lie."""

from __future__ import annotations

import numpy as np

from neuroscope.methods.base import NeuronRanking
from neuroscope.registry import METHODS


def class_means(acts: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """[classes present, neurons] mean activation per class."""
    present = np.unique(labels)
    onehot = (labels[:, None] == present[None, :]).astype(np.float64)  # [tokens, classes]
    sums = onehot.T @ acts.astype(np.float64)  # [classes, neurons]
    return sums / onehot.sum(0)[:, None]


def one_vs_rest_gaps(acts: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """[n_classes, neurons] |mean of class c − mean of the other tokens|; 0 for a class without
    tokens or with all of them."""
    x = acts.astype(np.float64)
    onehot = (labels[:, None] == np.arange(n_classes)[None, :]).astype(np.float64)  # [tokens, classes]
    n_c = onehot.sum(0)[:, None]
    n_r = len(labels) - n_c
    sums = onehot.T @ x
    rest = x.sum(0)[None, :] - sums
    gaps = np.abs(sums / np.maximum(n_c, 1) - rest / np.maximum(n_r, 1))
    return np.where((n_c > 0) & (n_r > 0), gaps, 0.0)


@METHODS.register("probeless")
def probeless(acts: np.ndarray, labels: np.ndarray, classes: list[str] | None = None) -> NeuronRanking:
    """Score = Σ over class pairs |mean_a − mean_b| per neuron; no probe is trained. Detail
    `class_scores`: per class (rows in `classes` order) |class mean − mean of the rest|."""
    means = np.sort(class_means(acts, labels), axis=0)  # [classes, neurons], sorted per neuron
    c = means.shape[0]
    # Σ_{a<b} (m_b − m_a) over sorted values = Σ_i (2i − c + 1) m_i
    coef = (2 * np.arange(c) - c + 1)[:, None]
    n_classes = len(classes) if classes is not None else int(np.max(labels)) + 1
    return NeuronRanking.from_scores((coef * means).sum(0),
                                     class_scores=one_vs_rest_gaps(acts, labels, n_classes))
