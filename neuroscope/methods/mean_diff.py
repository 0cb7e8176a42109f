"""Mean-difference ranking (as in Gurnee et al. 2023, "Finding neurons in a haystack"): how far a
neuron's mean on one class lies from its mean on the other tokens, in units of the neuron's sd.

The per-class sums and sums of squares (`ClassMoments`) are accumulated in one pass over row
chunks, so a streamed input needs no change here; the study hands rankers `acts` as one array
today, which is cut into blocks of `BLOCK_ROWS` rows so that no float64 copy of it is made.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from neuroscope.methods.base import NeuronRanking
from neuroscope.registry import METHODS

BLOCK_ROWS = 8192  # rows converted to float64 at a time


def row_blocks(acts: np.ndarray, labels: np.ndarray, rows: int = BLOCK_ROWS) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(activations, labels) of consecutive blocks of at most `rows` rows (views, no copy)."""
    labels = np.asarray(labels)
    if len(labels) != len(acts):
        raise ValueError(f"{len(acts)} activation rows but {len(labels)} labels")
    for lo in range(0, len(labels), rows):
        yield acts[lo:lo + rows], labels[lo:lo + rows]


@dataclass
class ClassMoments:
    """Per class: token count, Σx and Σx² per neuron, all around a per-neuron `shift` (the first
    chunk's mean), which keeps Σx² − (Σx)²/n from cancelling for neurons with a large mean."""

    count: np.ndarray  # [classes] tokens per class
    s1: np.ndarray  # [classes, neurons] Σ (x − shift)
    s2: np.ndarray  # [classes, neurons] Σ (x − shift)²

    @classmethod
    def accumulate(cls, chunks: Iterable[tuple[np.ndarray, np.ndarray]], n_classes: int) -> ClassMoments:
        """One pass over (activations [rows, neurons], labels [rows]) chunks; labels are class
        indices in [0, n_classes)."""
        count = np.zeros(n_classes, dtype=np.int64)
        s1 = s2 = shift = None
        for x, y in chunks:
            y = np.asarray(y, dtype=np.int64)
            if not len(y):
                continue
            if y.min() < 0 or y.max() >= n_classes:
                raise ValueError(f"labels must lie in [0, {n_classes}), got {y.min()}..{y.max()}")
            x = np.asarray(x, dtype=np.float64)
            if shift is None:
                shift = x.mean(0)
                s1 = np.zeros((n_classes, x.shape[1]))
                s2 = np.zeros((n_classes, x.shape[1]))
            x = x - shift
            onehot = np.zeros((len(y), n_classes))
            onehot[np.arange(len(y)), y] = 1.0
            count += np.bincount(y, minlength=n_classes)
            s1 += onehot.T @ x
            s2 += onehot.T @ (x * x)
        if s1 is None:
            raise ValueError("no tokens to rank neurons on")
        return cls(count, s1, s2)

    def ss_within(self) -> np.ndarray:
        """[classes, neurons] Σ over the class's tokens of (x − class mean)², ≥ 0 (0 for absent classes)."""
        n = np.maximum(self.count, 1)[:, None]
        return np.maximum(self.s2 - self.s1 ** 2 / n, 0.0)

    def one_vs_rest(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per class c: (n_c, n_rest [classes, 1], mean_c − mean_rest, pooled within SS of the two
        groups [classes, neurons]); entries of a class or rest without tokens are 0."""
        n_c = self.count[:, None].astype(np.float64)
        n_r = self.count.sum() - n_c
        rest1, rest2 = self.s1.sum(0) - self.s1, self.s2.sum(0) - self.s2
        ok = (n_c > 0) & (n_r > 0)
        diff = np.where(ok, self.s1 / np.maximum(n_c, 1) - rest1 / np.maximum(n_r, 1), 0.0)
        ss_rest = np.maximum(rest2 - rest1 ** 2 / np.maximum(n_r, 1), 0.0)
        return n_c, n_r, diff, np.where(ok, self.ss_within() + ss_rest, 0.0)

    def sd(self) -> np.ndarray:
        """[neurons] each neuron's sd over all tokens, classes pooled (ddof 0)."""
        n = self.count.sum()
        var = self.s2.sum(0) / n - (self.s1.sum(0) / n) ** 2
        return np.sqrt(np.maximum(var, 0.0))


def safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den where den > 0, else 0 (a constant neuron scores 0, never NaN or inf)."""
    num, den = np.broadcast_arrays(np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64))
    out = np.zeros(num.shape)
    np.divide(num, den, out=out, where=den > 0)
    return out


@METHODS.register("mean_diff")
def mean_diff(acts: np.ndarray, labels: np.ndarray, classes: list[str]) -> NeuronRanking:
    """Class score |mean over class c − mean over the other tokens| / sd of the neuron over all train
    tokens; overall score = max over classes.

    Standardized by the neuron's overall sd (not the within-class pooled sd, which would make
    each row a monotone function of `f_stat`'s one-vs-rest t): scale-free, so neurons of layers
    with different activation scales compare, and every class row is on the same scale. The max
    (not the mean) over classes keeps a neuron that singles out one class near the top, which is
    what sparse probing looks for. A class without train tokens (or with all of them) scores 0
    in its row; a constant neuron scores 0.
    """
    m = ClassMoments.accumulate(row_blocks(acts, labels), len(classes))
    _, _, diff, _ = m.one_vs_rest()
    class_scores = safe_divide(np.abs(diff), m.sd()[None, :])
    return NeuronRanking.from_scores(class_scores.max(0), class_scores=class_scores)
