"""Noise floors for cross-model scores: what each score gives when the models share nothing.

Two kinds, each fitting the score it serves:
- neuron-aligned scores (maxcorr, mincorr, best partners) against a *rotation* baseline (Gurnee et
  al. 2024): the same statistic after a random orthogonal rotation of the other model's centred
  activations, which keeps its covariance spectrum and destroys neuron alignment. Computed from the
  sums already streamed (Σ_XY R, Rᵀ Σ_YY R): no second pass.
- rotation-invariant scores (regcorr, CCA / SVCCA, CKA) would equal themselves under a rotation;
  their floor is *held-out* scoring (fitted on train tokens, scored on dev + test tokens) and a
  *pairing* baseline: the same held-out score with the other model's token stream shifted by whole
  sentences (each model keeps its own statistics, the token alignment is gone). CKA fits nothing;
  beside the plain one, the debiased CKA of unbiased HSIC estimates is about 0 on unrelated models.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neuroscope.methods.correlation import (
    PairStats,
    Source,
    _whiten,
    best_partners,
    debiased_cka,
    linear_cka,
    pair_stats,
)
from neuroscope.progress import stage

ROTATION_STREAM = 7919  # seeds rotations apart from a method's other random draws
QUANTILES = (0.5, 0.9, 0.99)


def random_rotation(n: int, rng: np.random.Generator) -> np.ndarray:
    """[n, n] a Haar-distributed orthogonal matrix (QR of a Gaussian, signs fixed by R's diagonal)."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))[None, :]


def rotated_std(var: np.ndarray) -> np.ndarray:
    """[ny] std of the rotated units from their variances; inf (a score of 0) for a unit whose variance
    is rounding next to the largest (a rotation of constant neurons)."""
    sy = np.sqrt(np.clip(var, 0.0, None))
    return np.where(sy > 1e-12 * max(float(sy.max(initial=0.0)), 1e-300), sy, np.inf)


def rotated_best(stats: PairStats, draws: int, seed: int) -> np.ndarray:
    """[draws, nx] per X neuron max_j |ρ(x_i, (Y R)_j)| for `draws` random rotations R of Y's centred
    activations; 0 for constant X neurons (as best_partners)."""
    rng = np.random.default_rng([seed, ROTATION_STREAM])
    sx = np.where(stats.alive_x(), stats.std_x, np.inf)
    out = np.empty((draws, len(sx)))
    with stage("rotation floor", total=draws) as step:
        for d in range(draws):
            rot = random_rotation(len(stats.cyy), rng)  # [ny, ny]
            sy = rotated_std(np.einsum("ij,ij->j", stats.cyy @ rot, rot))  # [ny] from diag(Rᵀ Σ_YY R)
            r = np.abs((stats.cxy @ rot) / sx[:, None] / sy[None, :])  # [nx, ny]
            out[d] = np.clip(r, 0.0, 1.0).max(1)
            step()
    return out


def rotation_floor(pairs: list[PairStats], how: str, draws: int, seed: int) -> dict[str, Any]:
    """The rotation baseline of maxcorr (`how`=max) or mincorr (min) over the other models: per
    neuron `baseline_scores` (column order; mean over draws), per model the baseline's quantiles, the
    share of live neurons above its 99th percentile (`universal_share`, per model index from 1 and
    `all`: above it for every other model), and mean_maxcorr's floor (mean, sd over draws)."""
    real = np.stack([best_partners(p)[0] for p in pairs])  # [models, nx]
    rotated = np.stack([_fitted(p, ("rotated", draws, seed + m), lambda p=p, m=m: rotated_best(p, draws, seed + m))
                        for m, p in enumerate(pairs)])  # [models, draws, nx]
    return rotation_summary(real, rotated, pairs[0].alive_x(), how)


def rotation_summary(real: np.ndarray, rotated: np.ndarray, alive: np.ndarray, how: str) -> dict[str, Any]:
    """rotation_floor's keys from each X neuron's real best |ρ| per other model `real` [models, nx]
    and its best after each random rotation `rotated` [models, draws, nx] (whole or tiled rotations)."""
    n_models, draws = rotated.shape[:2]
    pooled = [rotated[m][:, alive].ravel() for m in range(n_models)]
    thresholds = np.array([np.quantile(v, 0.99) if len(v) else 1.0 for v in pooled])
    above = real > thresholds[:, None]  # [models, nx]
    n_alive = max(int(alive.sum()), 1)
    share = {str(m + 1): float(above[m][alive].sum() / n_alive) for m in range(n_models)}
    share["all"] = float(above.all(0)[alive].sum() / n_alive)
    per_draw = rotated.max(0) if how == "max" else rotated.min(0)  # [draws, nx]
    means = [float(row[alive].mean()) if alive.any() else 0.0 for row in rotated.mean(0)]  # per draw, over models
    return {
        "baseline_scores": per_draw.mean(0),
        "baseline_quantiles": {str(m + 1): {f"{100 * q:g}": float(np.quantile(v, q)) if len(v) else 0.0
                                            for q in QUANTILES} for m, v in enumerate(pooled)},
        "universal_share": share,
        "mean_maxcorr": {"mean": float(np.mean(means)), "sd": _sd(means), "baseline": "rotation",
                         "draws": draws, "tokens": "fitted"},
    }


def _fitted(stats: PairStats, key: tuple[Any, ...], fit: Any) -> Any:
    """`fit()` once per pair and settings (a ranking is computed several times in a study: λ search, seeds)."""
    key = ("floors", *key)
    if key not in stats.cache:
        stats.cache[key] = fit()
    return stats.cache[key]


def _regression(train: PairStats, ridge: float) -> np.ndarray:
    """[ny, nx] weights of each x_i's linear prediction from Y, ridge as multiple_correlation."""
    cyy = train.cyy + ridge * max(float(np.trace(train.cyy)) / len(train.cyy), 1e-12) * np.eye(len(train.cyy))
    w = _whiten(cyy, None, 0.0)  # [ny, k], W Wᵀ = (Σ_YY + λI)⁻¹, a pseudo-inverse where singular
    return w @ (w.T @ train.cxy.T)


def _directions(train: PairStats, keep: float | None, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    """Canonical directions (a [nx, k], b [ny, k]) of the train tokens (SVCCA with `keep`, else CCA)."""
    wx, wy = _whiten(train.cxx, keep, ridge), _whiten(train.cyy, keep, ridge)
    u, _, vt = np.linalg.svd(wx.T @ train.cxy @ wy, full_matrices=False)
    return wx @ u, wy @ vt.T


def heldout_regcorr(train: PairStats, test: PairStats, ridge: float = 1e-6) -> np.ndarray:
    """[nx] R_i of the linear prediction of x_i from Y fitted on `train` (ridge as
    multiple_correlation) and scored on `test`: corr_test(x_i, Y b_i), 0 where either is constant."""
    b = _fitted(train, ("regression", ridge), lambda: _regression(train, ridge))  # [ny, nx]
    cov = np.einsum("yi,iy->i", b, test.cxy)  # cov_test(x_i, Y b_i)
    var_pred = np.einsum("yi,yz,zi->i", b, test.cyy, b)
    den = np.sqrt(np.clip(var_pred, 0.0, None)) * np.where(test.alive_x(), test.std_x, np.inf)
    return np.where(den > 0, np.clip(cov / np.where(den > 0, den, 1.0), -1.0, 1.0), 0.0)


def heldout_canonical(train: PairStats, test: PairStats, keep: float | None = 0.99, ridge: float = 1e-6) -> np.ndarray:
    """[k] correlations on `test` of the canonical variate pairs (a_kᵀx, b_kᵀy) fitted on `train`
    (SVCCA with `keep`, or CCA regularized by `ridge` when keep is None); signed, so noise averages ~0."""
    a, b = _fitted(train, ("canonical", keep, ridge), lambda: _directions(train, keep, ridge))  # [nx, k], [ny, k]
    cov = np.einsum("xk,xy,yk->k", a, test.cxy, b)
    var = np.einsum("xk,xy,yk->k", a, test.cxx, a) * np.einsum("xk,xy,yk->k", b, test.cyy, b)
    return np.where(var > 0, cov / np.sqrt(np.where(var > 0, var, 1.0)), 0.0)


def heldout_similarity(train: PairStats, test: PairStats) -> dict[str, float]:
    """Similarities fitted on `train` tokens and scored on `test` tokens: mean SVCCA correlation, mean
    multiple correlation R (regcorr), plain and debiased linear CKA of the test tokens."""
    alive = test.alive_x()
    r = heldout_regcorr(train, test)
    rho = heldout_canonical(train, test)
    return {"mean_cca": float(rho.mean()) if len(rho) else 0.0,
            "mean_regcorr": float(r[alive].mean()) if alive.any() else 0.0,
            "linear_cka": linear_cka(test), "debiased_cka": debiased_cka(test)}


def pairing_floor(pairs: list[PairStats]) -> dict[str, Any]:
    """Held-out similarities and their pairing floors, averaged over the other models: the held-out
    score, and per score the mean and sd over sentence shifts of the same score with Y's tokens shifted."""
    held = [heldout_similarity(p, p.heldout) for p in pairs if p.heldout is not None]
    if not held:
        return {}
    n_draws = min(len(p.pairing) for p in pairs)
    with stage("pairing floor", total=n_draws) as step:  # each draw's scores, all keys at once
        shifted = []
        for d in range(n_draws):
            shifted.append([heldout_similarity(p, p.pairing[d]) for p in pairs])
            step()
    floors: dict[str, dict[str, Any]] = {}
    for key in held[0]:
        draws = [float(np.mean([s[key] for s in shifted[d]])) for d in range(n_draws)]
        floors[key] = {"mean": float(np.mean(draws)) if draws else float("nan"), "sd": _sd(draws),
                       "baseline": "pairing", "draws": len(draws), "tokens": "fitted on train, scored on held-out"}
    heldout = {key: float(np.mean([h[key] for h in held])) for key in held[0]}
    return {"similarity_heldout": {**heldout, "per_model": held}, "similarity_baseline": floors}


def _sd(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


class ShiftedSource:
    """A Source whose token t reads the row of `mapping[t]`: a permutation of some tokens (the
    held-out stream shifted by whole sentences), identity elsewhere."""

    def __init__(self, source: Source, mapping: np.ndarray) -> None:
        self.source, self.mapping = source, mapping
        self.n_tokens, self.n_neurons = source.n_tokens, source.n_neurons

    @property
    def reads_into(self) -> bool:  # read() takes `out` when the wrapped source does
        return bool(getattr(self.source, "reads_into", False))

    def read(self, neurons: Any = None, tokens: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
        idx = self.mapping if tokens is None else self.mapping[np.asarray(tokens)]
        if out is None:
            return self.source.read(neurons, tokens=idx)
        return self.source.read(neurons, tokens=idx, out=out)


def sentence_shifts(tokens: np.ndarray, sentence_of: np.ndarray, n_tokens: int, draws: int) -> list[np.ndarray]:
    """`draws` token mappings, each shifting the stream `tokens` (sorted) circularly by a whole number
    of its sentences (spread evenly over the stream), identity on other tokens."""
    starts = np.flatnonzero(np.r_[True, sentence_of[tokens][1:] != sentence_of[tokens][:-1]])  # [sentences]
    out = []
    for d in range(draws):
        if len(starts) < 2:
            break
        k = max(1, round(len(starts) * (d + 1) / (draws + 1))) % len(starts) or 1
        mapping = np.arange(n_tokens)
        mapping[tokens] = np.roll(tokens, -int(starts[k]))
        out.append(mapping)
    return out


def floor_detail(pairs: list[PairStats], rotation: str | None = None, draws: int = 3, seed: int = 0) -> dict[str, Any]:
    """The noise-floor keys of results.json's `correlation` block: held-out similarities and their
    pairing floors (when held-out statistics are attached), and with `rotation` (max: maxcorr, min:
    mincorr) the rotation baseline of the neuron-aligned score."""
    out = pairing_floor(pairs)
    if rotation is not None and draws > 0:
        rot = rotation_floor(pairs, rotation, draws, seed)
        out["similarity_baseline"] = {"mean_maxcorr": rot.pop("mean_maxcorr"), **out.get("similarity_baseline", {})}
        out.update(rot)
    return out


def attach_heldout(pairs: list[PairStats], x: Source, others: list[Source], split: np.ndarray,
                   sentence_of: np.ndarray, draws: int = 3, products: str = "float64", device: str = "cpu",
                   engine: str = "local", ray: dict[str, Any] | None = None) -> None:
    """One more streamed pass over the held-out tokens (`split` != 0): each pair gets `heldout` (X and
    Y there) and `pairing` (X against Y shifted by whole sentences, `draws` shifts), for pairing_floor.
    It runs where the main pass runs: products on `device`, and with `engine=ray` as Ray tasks over
    shards (a shifted source travels as its token mapping around its store's path)."""
    held = np.flatnonzero(split != 0)
    if len(held) < 4 or draws <= 0:
        return
    shifts = sentence_shifts(held, sentence_of, len(split), draws)
    shifted = [ShiftedSource(o, m) for m in shifts for o in others]
    stats = pair_stats(x, [*others, *shifted], held, products=products, device=device, engine=engine, ray=ray,
                       label="noise-floor pass")
    m = len(others)
    for i, p in enumerate(pairs):
        p.heldout = stats[i]
        p.pairing = [stats[m * (1 + d) + i] for d in range(len(shifts))]
