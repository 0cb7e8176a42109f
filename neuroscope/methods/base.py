"""What every neuron ranker returns, and how the runner calls one.

A method is a plain function `(acts [tokens, neurons], labels [tokens], **params)` returning a
`NeuronRanking` (or a score per neuron, higher = more important). Methods never open files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuroscope.config import check_params
from neuroscope.errors import ConfigError
from neuroscope.registry import METHODS


@dataclass
class NeuronRanking:
    """Neuron columns ordered best first, with optional scores and per-class detail."""

    order: np.ndarray  # [neurons] column indices, best first
    scores: np.ndarray | None = None  # [neurons] score of each column (not reordered)
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_scores(cls, scores: np.ndarray, **detail: Any) -> NeuronRanking:
        """Rank by descending score; ties keep column order (stable)."""
        scores = np.asarray(scores, dtype=np.float64)
        return cls(np.argsort(-scores, kind="stable"), scores, dict(detail))

    def ids(self, neurons: list[str]) -> list[str]:
        """The ranking as neuron ids `site:unit`."""
        return [neurons[i] for i in self.order]

    def reversed(self) -> NeuronRanking:
        """Bottom neurons first."""
        return NeuronRanking(self.order[::-1].copy(), self.scores, self.detail)


def rank(name: str, params: dict[str, Any], acts: np.ndarray, labels: np.ndarray) -> NeuronRanking:
    """Run method `name` on [tokens, neurons] activations and [tokens] class ids."""
    fn = METHODS.get(name)
    check_params(fn, {"acts": acts, "labels": labels, **params}, "method")
    out = fn(acts, labels, **params)
    ranking = out if isinstance(out, NeuronRanking) else NeuronRanking.from_scores(out)
    n = acts.shape[1]
    if sorted(ranking.order.tolist()) != list(range(n)):
        raise ConfigError(f"method '{name}' did not return a permutation of the {n} neurons")
    return ranking
