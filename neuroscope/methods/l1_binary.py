"""L1 one-vs-rest ranking (one of the sparse-probing rankers of Gurnee et al. 2023): per class, an
L1-penalized logistic regression of [label = c] on the z-scored activations; a neuron's class
score is |its weight|.

The project's probes (neuroscope/probes) are softmax classifiers trained by minibatch Adam; a
binary L1 logistic regression is fitted here instead, full batch, by FISTA (Beck & Teboulle
2009) with backtracking and adaptive restart: deterministic, no learning rate to tune.
"""

from __future__ import annotations

import logging

import numpy as np

from neuroscope.errors import ConfigError
from neuroscope.methods.base import NeuronRanking
from neuroscope.methods.mean_diff import BLOCK_ROWS
from neuroscope.registry import METHODS

log = logging.getLogger(__name__)


def standardized(acts: np.ndarray) -> np.ndarray:
    """[tokens, neurons] float64 z-scores per neuron (ddof 0); a constant neuron's column is 0."""
    acts = np.asarray(acts)
    mean = acts.mean(0, dtype=np.float64)
    sd = acts.std(0, dtype=np.float64)
    scale = np.divide(1.0, sd, out=np.zeros_like(sd), where=sd > 0)
    out = np.empty(acts.shape)
    for lo in range(0, len(acts), BLOCK_ROWS):
        out[lo:lo + BLOCK_ROWS] = (acts[lo:lo + BLOCK_ROWS] - mean) * scale
    return out


def _loss(z: np.ndarray, y: np.ndarray) -> float:
    """Mean over tokens of the summed binary logistic losses of the columns of logits `z`."""
    return float((np.logaddexp(0.0, z) - y * z).sum() / len(z))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + e^−z) without overflow."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def fit_l1_logistic(x: np.ndarray, y: np.ndarray, lam: np.ndarray, max_iter: int, tol: float
                    ) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Minimize mean logistic loss + Σ_c lam_c ‖w_c‖₁ for each column c of the 0/1 targets `y`
    [tokens, k] at once (intercepts unpenalized). Returns (w [neurons, k], b [k], iterations,
    converged: the largest weight change fell to `tol` · max(1, max |w|))."""
    n = len(x)
    rate = y.mean(0)
    w, b = np.zeros((x.shape[1], y.shape[1])), np.log(rate / (1 - rate))  # the optimum of b at w = 0
    z = np.broadcast_to(b, y.shape).copy()
    objective = _loss(z, y)
    wy, by, zy, t, lip = w, b, z, 1.0, 0.25  # standardized columns: the loss's Lipschitz constant is >= 1/4
    for it in range(1, max_iter + 1):
        fy = _loss(zy, y)
        r = (_sigmoid(zy) - y) / n
        gw, gb = x.T @ r, r.sum(0)
        while True:
            step = wy - gw / lip
            wn = np.sign(step) * np.maximum(np.abs(step) - lam / lip, 0.0)
            bn = by - gb / lip
            zn = x @ wn + bn
            dw, db = wn - wy, bn - by
            bound = fy + (gw * dw).sum() + (gb * db).sum() + lip / 2 * ((dw ** 2).sum() + (db ** 2).sum())
            if _loss(zn, y) <= bound + 1e-12 * abs(bound):
                break
            lip *= 2.0
        new_objective = _loss(zn, y) + float((lam * np.abs(wn)).sum())
        change = float(np.abs(wn - w).max())
        if new_objective > objective:  # adaptive restart: drop the momentum
            t, beta = 1.0, 0.0
        else:
            t_next = (1 + np.sqrt(1 + 4 * t * t)) / 2
            t, beta = t_next, (t - 1) / t_next
        wy, by, zy = wn + beta * (wn - w), bn + beta * (bn - b), zn + beta * (zn - z)
        w, b, z, objective = wn, bn, zn, new_objective
        if change <= tol * max(1.0, float(np.abs(w).max())):
            return w, b, it, True
    return w, b, max_iter, False


@METHODS.register("l1_binary")
def l1_binary(acts: np.ndarray, labels: np.ndarray, classes: list[str], seed: int = 0,
              l1_fraction: float = 0.1, max_iter: int = 500, tol: float = 1e-6) -> NeuronRanking:
    """Class c's score: |w_c,j| of an L1 logistic regression of [label = c] on z-scored
    activations, with λ_c = `l1_fraction` · the smallest λ that zeros every weight of class c;
    overall score: max over classes. A class without train tokens (or with all of them) is not
    fitted and scores 0; a constant neuron scores 0; ties (e.g. the many exact zeros) are seeded."""
    if isinstance(l1_fraction, bool) or not isinstance(l1_fraction, (int, float)) or not 0 < l1_fraction <= 1:
        raise ConfigError(f"method.l1_fraction: expected a number in (0, 1], got {l1_fraction!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise ConfigError(f"method.max_iter: expected an integer >= 1, got {max_iter!r}")
    if isinstance(tol, bool) or not isinstance(tol, (int, float)) or tol <= 0:
        raise ConfigError(f"method.tol: expected a number > 0, got {tol!r}")
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(acts):
        raise ValueError(f"{len(acts)} activation rows but {len(labels)} labels")
    if not len(labels):
        raise ValueError("no tokens to rank neurons on")
    counts = np.bincount(labels, minlength=len(classes)) if labels.min() >= 0 else labels
    if len(counts) != len(classes) or labels.min() < 0:
        raise ValueError(f"labels must lie in [0, {len(classes)})")
    fitted = np.nonzero((counts > 0) & (counts < len(labels)))[0]
    class_scores = np.zeros((len(classes), acts.shape[1]))
    iterations, converged = 0, True
    if len(fitted):
        x = standardized(acts)
        y = (labels[:, None] == fitted[None, :]).astype(np.float64)  # [tokens, fitted classes]
        lam_max = np.abs(x.T @ (y - y.mean(0))).max(0) / len(x)
        w, _, iterations, converged = fit_l1_logistic(x, y, float(l1_fraction) * lam_max, max_iter, float(tol))
        class_scores[fitted] = np.abs(w.T)
        if not converged:
            log.warning("l1_binary: not converged after max_iter=%d iterations (tol %g); "
                        "raise method.max_iter", max_iter, tol)
    return NeuronRanking.from_scores(class_scores.max(0), seed=seed, class_scores=class_scores,
                                     iterations=iterations, converged=converged)
