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


@METHODS.register("probeless")
def probeless(acts: np.ndarray, labels: np.ndarray) -> NeuronRanking:
    """Score = Σ over class pairs |mean_a − mean_b| per neuron; no probe is trained."""
    means = np.sort(class_means(acts, labels), axis=0)  # [classes, neurons], sorted per neuron
    c = means.shape[0]
    # Σ_{a<b} (m_b − m_a) over sorted values = Σ_i (2i − c + 1) m_i
    coef = (2 * np.arange(c) - c + 1)[:, None]
    return NeuronRanking.from_scores((coef * means).sum(0))
