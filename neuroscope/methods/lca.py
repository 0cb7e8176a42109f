"""Linguistic Correlation Analysis (Dalvi et al. 2019): rank neurons by the probe's weight mass.

Per class, neurons sorted by |weight|; as a mass threshold rises from 0 to 100 % in
`search_stride` steps, a neuron enters the ranking when it first joins some class's shortest
prefix holding that share of the class's total |weight|. Within a step, neurons are ordered
by summed |weight| over classes (NeuroX leaves that order arbitrary).

Ties (see methods/base.py): equal |weight| in a class keeps neuron order (stable sorts; NeuroX's
unstable sort breaks them differently per CPU), equal summed |weight| too; `lca` alone breaks its
remaining ties by a seeded permutation.

The NeuroX-named functions below take `probe` as our Probe, any torch module whose first
parameter is the [classes, neurons] weight (NeuroX's probes, `nn.Linear`), or a weight matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuroscope.methods.base import NeuronRanking
from neuroscope.registry import METHODS


def probe_weights(probe: Any) -> np.ndarray:
    """|W| as float32 [classes, neurons] from a probe, a torch module or a matrix."""
    if hasattr(probe, "parameters"):
        probe = next(iter(probe.parameters()))
    if hasattr(probe, "detach"):
        probe = probe.detach().cpu().numpy()
    w = np.abs(np.asarray(probe, dtype=np.float32))
    if w.ndim != 2:
        raise ValueError(f"expected a [classes, neurons] weight matrix, got shape {w.shape}")
    return w


def _prefix_lengths(w: np.ndarray, fractions: list[float], descending: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Per class: neurons sorted by |w| and, per fraction, how many of them the mass prefix takes.

    A prefix ends with the first neuron at which the cumulative mass reaches `fraction` of
    the class total (that neuron included); all neurons when it never does. Equal weights keep
    neuron order (stable sort, both directions), so the sets are the same on every CPU.
    Returns (order [classes, neurons], lengths [classes, fractions]).
    """
    order = np.empty(w.shape, dtype=np.int64)
    lengths = np.empty((w.shape[0], len(fractions)), dtype=np.int64)
    for c in range(w.shape[0]):
        row = w[c]  # [neurons]
        order[c] = np.argsort(-row if descending else row, kind="stable")
        cum = np.cumsum(row[order[c]])  # float32, as NeuroX computes it
        total = np.sum(row)  # float32 times a Python float stays float32 (NumPy 2), as in NeuroX
        for k, f in enumerate(fractions):
            hit = np.nonzero(cum >= total * float(f))[0]
            lengths[c, k] = hit[0] + 1 if len(hit) else len(row)
    return order, lengths


def _class_sets(probe: Any, percentage: float, class_to_idx: dict[str, int], descending: bool) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    w = probe_weights(probe)
    order, lengths = _prefix_lengths(w, [percentage], descending)
    per_class = {c: order[i, : lengths[i, 0]] for c, i in class_to_idx.items()}
    union = np.unique(np.concatenate(list(per_class.values()))) if per_class else np.array([], dtype=np.int64)
    mass = w.sum(0)
    union = union[np.argsort(-mass[union] if descending else mass[union], kind="stable")]
    return union, per_class


def get_top_neurons(probe: Any, percentage: float, class_to_idx: dict[str, int]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per class, the shortest prefix of neurons by |weight| whose mass reaches `percentage` (0..1)
    of the class total, crossing neuron included; returns (union, per-class sets).

    Same sets as NeuroX; the union comes in rank order (summed |weight|, descending) and each
    per-class array from largest to smallest |weight|.
    """
    return _class_sets(probe, percentage, class_to_idx, descending=True)


def get_bottom_neurons(probe: Any, percentage: float, class_to_idx: dict[str, int]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """As `get_top_neurons` from the smallest |weight| upwards (NeuroX semantics); union ordered
    from the least important."""
    return _class_sets(probe, percentage, class_to_idx, descending=False)


def get_random_neurons(probe: Any, probability: float, seed: int | None = None) -> np.ndarray:
    """Each neuron kept independently with `probability` (NeuroX semantics; seedable)."""
    n = probe_weights(probe).shape[1]
    return np.nonzero(np.random.default_rng(seed).random(n) <= probability)[0]


def entry_steps(w: np.ndarray, search_stride: int) -> np.ndarray:
    """[neurons] the first mass step (0..search_stride) at which each neuron joins a class's
    top set; search_stride + 1 for neurons that never do (e.g. exactly zero weight)."""
    fractions = [k / search_stride for k in range(search_stride + 1)]
    order, lengths = _prefix_lengths(w, fractions)
    step = np.full(w.shape[1], search_stride + 1, dtype=np.int64)
    for c in range(w.shape[0]):
        rank_in_class = np.empty(w.shape[1], dtype=np.int64)
        rank_in_class[order[c]] = np.arange(w.shape[1])
        # neuron of rank r is in the step-k set iff lengths[c, k] > r; lengths rise with k
        first = np.searchsorted(lengths[c], rank_in_class, side="right")
        step = np.minimum(step, first)
    return step


def get_neuron_ordering(probe: Any, class_to_idx: dict[str, int], search_stride: int = 100) -> tuple[list[int], list[int]]:
    """NeuroX's global ordering: (ordering, cutoffs), cutoffs[k] = neurons ranked up to step k.

    Neurons that never enter (zero weight everywhere) are left out, as NeuroX does; within a
    step, order is by summed |weight| (NeuroX's is arbitrary)."""
    w = probe_weights(probe)[sorted(class_to_idx.values())]
    step = entry_steps(w, search_stride)
    order = np.lexsort((-w.sum(0), step))
    order = order[step[order] <= search_stride]
    cutoffs = np.searchsorted(step[order], np.arange(search_stride + 1), side="right")
    return order.tolist(), cutoffs.tolist()


@METHODS.register("lca")
def lca(probe: np.ndarray, classes: list[str], seed: int = 0, search_stride: int = 100,
        class_percentage: float = 0.05) -> NeuronRanking:
    """The LCA ranking of all neurons (never-entering ones last, by summed |weight|; remaining
    ties, such as all-zero columns of a sparse probe, in a seeded random order), with each
    class's top neurons at `class_percentage` of its weight mass and |W| (`class_scores`) as detail."""
    w = probe_weights(probe)
    step = entry_steps(w, search_stride)
    order = np.lexsort((np.random.default_rng(seed).permutation(w.shape[1]), -w.sum(0), step))
    class_to_idx = {c: i for i, c in enumerate(classes)}
    _, per_class = get_top_neurons(w, class_percentage, class_to_idx)
    return NeuronRanking(order, -step.astype(float), {
        "entry_step": step, "search_stride": search_stride, "class_percentage": class_percentage,
        "per_class": {c: v.tolist() for c, v in per_class.items()},
        "class_scores": w.astype(np.float64),  # [classes, neurons] |weight|, rows in `classes` order
    })
