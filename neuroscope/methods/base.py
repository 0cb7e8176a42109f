"""What every neuron ranker returns, and how the runner calls one.

A method is a plain function returning a `NeuronRanking` (or a score per neuron, higher = more
important). It names the inputs it needs as arguments, and the runner passes only those:
`acts` [tokens, neurons] and `labels` [tokens] of the train split, `probe` (the trained oracle
probe's [classes, neurons] weight), `classes` (names), `seed`, `n_neurons`, `pairs` (streamed
statistics of this model against the other models of `method.others`, see correlation.py); the
rest come from its config. A method that reads `probe` has λ chosen by its own ranking (see the study).
Methods never open files.

Ties, one rule for every ordering in neuroscope: equal scores are ordered by neuron index (the
store's column order), through stable sorts (`np.argsort(-scores, kind="stable")` best first,
`kind="stable"` ascending for bottom sets; `np.lexsort` is stable; `argmax` takes the first
maximum). NumPy's default sort is unstable and breaks ties differently on AVX-512 and AVX2 CPUs,
so it is never used to order neurons. Where a method says so (`NeuronRanking.from_scores(seed=...)`,
`lca`, `weight_norm`) the ties that remain are broken by a permutation drawn from `seed` instead,
so that e.g. the all-zero columns of a sparse probe are not ordered by layer; that order is the
same on every CPU too.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
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
    def from_scores(cls, scores: np.ndarray, seed: int | None = None, **detail: Any) -> NeuronRanking:
        """Rank by descending score; ties keep column order (stable sort), or with `seed` a seeded
        random order (so e.g. many exactly-zero scores do not put the last layer at the bottom)."""
        scores = np.asarray(scores, dtype=np.float64)
        if seed is None:
            return cls(np.argsort(-scores, kind="stable"), scores, dict(detail))
        return cls(np.lexsort((np.random.default_rng(seed).permutation(len(scores)), -scores)), scores, dict(detail))

    def ids(self, neurons: list[str]) -> list[str]:
        """The ranking as neuron ids `site:unit`."""
        return [neurons[i] for i in self.order]

    def ordered_scores(self) -> list[float]:
        """One score per ranked neuron, best first, higher = more salient; a ranking without
        scores gets 1 - position / neurons (its order is all it says)."""
        if self.scores is None:
            n = len(self.order)
            return (1.0 - np.arange(n) / max(n, 1)).tolist()
        return np.asarray(self.scores, dtype=np.float64)[self.order].tolist()


INPUTS = ("acts", "labels", "probe", "classes", "seed", "n_neurons", "pairs")


def inputs_of(name: str) -> list[str]:
    """The study inputs method `name` asks for (e.g. `probe`: its ranking depends on the probe)."""
    return [p for p in inspect.signature(METHODS.get(name)).parameters if p in INPUTS]


def rank(name: str, params: dict[str, Any], n_neurons: int, inputs: dict[str, Callable[[], Any]]) -> NeuronRanking:
    """Run method `name`; `inputs` maps input names to loaders, called only when the method asks."""
    fn = METHODS.get(name)
    wanted = inputs_of(name)
    for key in params:
        if key in INPUTS:
            raise ConfigError(f"method.{key}: '{key}' is provided by the study, not the config")
    check_params(fn, {**{k: None for k in wanted}, **params}, "method")
    given = {"n_neurons": lambda: n_neurons, **inputs}
    out = fn(**{k: given[k]() for k in wanted}, **params)
    ranking = out if isinstance(out, NeuronRanking) else NeuronRanking.from_scores(out)
    n = n_neurons
    if len(ranking.order) != n or sorted(ranking.order.tolist()) != list(range(n)):
        raise ConfigError(f"method '{name}' did not return a permutation of the {n} neurons")
    return ranking
