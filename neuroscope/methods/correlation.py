"""Streamed statistics over several stores that the correlation rankers share.

For the studied model X and each other model Y over the same tokens: means, variances and the
covariance blocks Σ_XY, Σ_XX, Σ_YY, accumulated in float64 over token blocks (never a whole
`[tokens, neurons]` matrix in memory), on data shifted by the first block's mean so that large
means do not cancel precision. The sums are partials (methods/moments.py) that merge exactly, so
the pass can also run as Ray tasks over shards (methods/mapreduce.py); maxcorr / mincorr over more
neurons than Σ_XY fits in memory run tile by tile (methods/tiles.py). From the statistics:
correlations, maxcorr partners, multiple correlation (RegCorr), SVCCA / CCA and linear CKA — all
without going back to the data.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from neuroscope.errors import ConfigError
from neuroscope.methods.moments import Partial, accumulate, products_backend
from neuroscope.progress import stage

DEAD = 1e-8  # a neuron whose std is below DEAD * (1 + |mean|) is constant: score 0, never NaN
NULL_VARIANCE = 1e-12  # an eigen-direction below this share of the largest variance holds none (rounding)


class Source(Protocol):
    """What the statistics read: `[rows, neurons]` float32 for token indices (a store, or arrays)."""

    n_tokens: int
    n_neurons: int

    def read(self, neurons: Any = None, tokens: np.ndarray | None = None) -> np.ndarray: ...


class ArraySource:
    """An in-memory `[tokens, neurons]` array as a Source (tests, small studies)."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = np.asarray(x, dtype=np.float32)
        self.n_tokens, self.n_neurons = self.x.shape

    reads_into = True  # read() takes `out` (methods/moments.py read_into)

    def read(self, neurons: Any = None, tokens: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
        if out is not None and neurons is None and tokens is not None:
            return np.take(self.x, np.asarray(tokens, dtype=np.int64), axis=0, out=out)
        x = self.x if tokens is None else self.x[tokens]
        x = x if neurons is None else x[:, np.asarray(neurons, dtype=np.int64)]
        if out is not None:
            np.copyto(out, x)
            return out
        return x


@dataclass
class PairStats:
    """Second-order statistics of X (studied) and one other model Y over n tokens."""

    n: int
    mean_x: np.ndarray  # [nx]
    mean_y: np.ndarray  # [ny]
    cxy: np.ndarray  # [nx, ny] covariance
    cxx: np.ndarray  # [nx, nx]
    cyy: np.ndarray  # [ny, ny]
    y_neurons: list[str] = field(default_factory=list)  # neuron ids of Y, column order
    model: str = ""  # Y's model name
    store: str = ""  # Y's store path
    cache: dict = field(default_factory=dict, repr=False, compare=False)  # canonical() results by settings
    hsic: tuple[float, float, float] | None = None  # unbiased HSIC (XY, XX, YY) of linear kernels, see debiased_cka
    heldout: PairStats | None = None  # the same pair over held-out tokens (noise floors: methods/floors.py)
    pairing: list[PairStats] = field(default_factory=list)  # held-out tokens, Y shifted by whole sentences

    @property
    def std_x(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.cxx), 0, None))

    @property
    def std_y(self) -> np.ndarray:
        return np.sqrt(np.clip(np.diag(self.cyy), 0, None))

    def alive_x(self) -> np.ndarray:
        return self.std_x > DEAD * (1 + np.abs(self.mean_x))

    def alive_y(self) -> np.ndarray:
        return self.std_y > DEAD * (1 + np.abs(self.mean_y))

    def corr(self) -> np.ndarray:
        """[nx, ny] Pearson correlations; 0 wherever either neuron is constant."""
        sx = np.where(self.alive_x(), self.std_x, np.inf)
        sy = np.where(self.alive_y(), self.std_y, np.inf)
        return np.clip(self.cxy / sx[:, None] / sy[None, :], -1.0, 1.0)


def token_blocks(tokens: np.ndarray, rows: int) -> Iterator[np.ndarray]:
    """Consecutive slices of a sorted token-index array, `rows` at a time."""
    for lo in range(0, len(tokens), rows):
        yield tokens[lo:lo + rows]


def pair_stats(x: Source, others: Sequence[Source], tokens: np.ndarray | None = None, block_rows: int = 8192,
               products: str = "float64", label: str = "correlation pass", engine: str = "local",
               device: str = "cpu", ray: dict[str, Any] | None = None) -> list[PairStats]:
    """Streamed statistics over `tokens` (default all) of X and every Y: PairStats per Y.
    `products`: dtype of the per-block matrix products (float64 exact; float32 ~2x faster, the
    sums stay float64); `label`: the pass's name in progress lines; `engine`: local (one pass in
    this process) or ray (partials per group of shards as Ray tasks, merged exactly: methods/mapreduce.py);
    `device`: where the block products run (methods/moments.py products_backend); `ray`: method.ray."""
    for y in others:
        if y.n_tokens != x.n_tokens:
            raise ConfigError(f"method.others: a model's store has {y.n_tokens} tokens, the studied model's "
                              f"{x.n_tokens}; every model must see the same words")
    if engine not in ("local", "ray"):
        raise ConfigError(f"method.engine: expected local or ray, got '{engine}'")
    backend = products_backend(products, device)
    idx = np.arange(x.n_tokens) if tokens is None else np.asarray(tokens, dtype=np.int64)
    if len(idx) < 2:
        raise ConfigError("correlation needs at least 2 tokens")
    sources = [x, *others]
    if engine == "local":
        with stage(label, total=-(-len(idx) // block_rows)) as step:
            part = accumulate(sources, idx, block_rows, backend, step)
    else:
        from neuroscope.methods.mapreduce import ray_partial

        part = ray_partial(sources, idx, block_rows, products, str(device), ray or {}, label)
    return finish(part)


def finish(part: Partial) -> list[PairStats]:
    """PairStats per other model from the (merged) partial sums: means, covariances, unbiased HSIC."""
    n, s, a = part.n, part.first, part.norm2
    means = [m / n for m in s]
    covs = [g / n - np.outer(m, m) for g, m in zip(part.gram, means, strict=True)]
    self_hsic = [_hsic(n, s[k], s[k], part.gram[k], part.norm4[k], part.third[k], part.third[k], a[k], a[k])
                 for k in range(len(s))]
    out = []
    for j, cross in enumerate(part.cross):
        cxy = cross / n - np.outer(means[0], means[j + 1])
        hxy = _hsic(n, s[0], s[j + 1], cross, part.prod[j], part.bx[j], part.ay[j], a[0], a[j + 1])
        out.append(PairStats(n, part.centre[0] + means[0], part.centre[j + 1] + means[j + 1], cxy, covs[0],
                             covs[j + 1], hsic=(hxy, self_hsic[0], self_hsic[j + 1])))
    return out


def _hsic(n: int, s: np.ndarray, t: np.ndarray, cross: np.ndarray, ab: float, bx: np.ndarray, ay: np.ndarray,
          a: float, b: float) -> float:
    """Unbiased HSIC (Song et al. 2012) of the linear kernels K = XXᵀ, L = YYᵀ from sums over tokens:
    s, t = Σ x_i, Σ y_i; cross = Σ x_i y_iᵀ; a, b = Σ |x_i|², Σ |y_i|²; ab = Σ |x_i|²|y_i|²;
    bx = Σ |y_i|² x_i; ay = Σ |x_i|² y_i (translation-invariant, so shifted data serve). NaN below 4 tokens."""
    if n < 4:
        return float("nan")
    trace = float((cross ** 2).sum()) - ab  # tr(K̃L̃), K̃ = K with a zero diagonal
    ones = (float(s @ s) - a) * (float(t @ t) - b) / ((n - 1) * (n - 2))  # 1ᵀK̃1 · 1ᵀL̃1 / ((n-1)(n-2))
    mixed = float(s @ cross @ t) - float(bx @ s) - float(ay @ t) + ab  # 1ᵀK̃L̃1
    return (trace + ones - 2.0 * mixed / (n - 2)) / (n * (n - 3))


def best_partners(stats: PairStats) -> tuple[np.ndarray, np.ndarray]:
    """Per X neuron: max_j |ρ(x_i, y_j)| and the j reaching it ([nx] each)."""
    r = np.abs(stats.corr())
    j = r.argmax(1)
    return r[np.arange(len(j)), j], j


def check_ridge(ridge: Any) -> float:
    """`method.ridge` as a float: a finite number >= 0 (0: no ridge, a pseudo-inverse on singular covariances)."""
    try:
        value = float(ridge)
    except (TypeError, ValueError):
        value = float("nan")
    if not (np.isfinite(value) and value >= 0) or isinstance(ridge, bool):
        raise ConfigError(f"method.ridge: expected a finite number >= 0 (a share of the mean variance added to "
                          f"the covariance diagonal, e.g. 1e-6), got {ridge!r}")
    return value


def multiple_correlation(stats: PairStats, ridge: float = 1e-6) -> np.ndarray:
    """[nx] R_i: correlation of x_i with its best linear prediction from all of Y,
    R²_i = c_iᵀ (Σ_YY + λI)⁻¹ c_i / var(x_i), λ = ridge × mean variance of Y. A singular Σ_YY + λI
    (ridge 0 with constant or collinear neurons of Y) uses its pseudo-inverse: R² of the projection
    of x_i on the span of Y, which is exact."""
    ridge = check_ridge(ridge)
    cyy = stats.cyy + ridge * max(float(np.trace(stats.cyy)) / len(stats.cyy), 1e-12) * np.eye(len(stats.cyy))
    try:
        if ridge == 0:
            raise np.linalg.LinAlgError("no ridge: the pseudo-inverse handles a singular covariance")
        chol = np.linalg.cholesky(cyy)
        half = np.linalg.solve(chol, stats.cxy.T)  # [ny, nx] L^{-1} c_i
    except np.linalg.LinAlgError:
        half = _whiten(cyy, None, 0.0).T @ stats.cxy.T  # [k, nx] Wᵀ c_i, W Wᵀ = pinv(cyy)
    r2 = (half ** 2).sum(0) / np.where(stats.alive_x(), np.diag(stats.cxx), np.inf)
    return np.sqrt(np.clip(r2, 0.0, 1.0))


def _whiten(cov: np.ndarray, keep: float | None, ridge: float) -> np.ndarray:
    """[n, k] W with Wᵀ cov W = I: the top eigen-directions holding `keep` of the variance (SVCCA's
    SVD step; None keeps all, regularized by `ridge` × mean variance: plain CCA). Directions of no
    variance (after the ridge) are dropped, so W Wᵀ is the pseudo-inverse of a singular cov."""
    vals, vecs = np.linalg.eigh(cov)
    vals, vecs = vals[::-1], vecs[:, ::-1]
    vals = np.clip(vals, 0, None)
    if keep is None:
        vals = vals + ridge * max(vals.mean(), 1e-12)
        k = max(1, int((vals > NULL_VARIANCE * max(vals[0], 1e-300)).sum()))
    else:
        total = vals.sum()
        k = int(np.searchsorted(np.cumsum(vals), keep * total) + 1) if total > 0 else 1
        k = max(1, min(k, int((vals > NULL_VARIANCE * max(vals[0], 1e-300)).sum()) or 1))
    return vecs[:, :k] / np.sqrt(np.maximum(vals[:k], 1e-300))


def canonical(stats: PairStats, keep: float | None = 0.99, ridge: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """(canonical correlations [k], neuron scores [nx]): CCA between the (SVD-reduced) sides. A
    neuron's score is sqrt(Σ_k ρ_k² corr(x_i, z_k)²) over X's canonical variates z_k: the share of
    its variance lying in directions the other model shares, each weighted by how strongly (ρ_k²)
    — rotation-invariant within directions of equal ρ, in [0, 1], 0 for constant neurons.
    Computed once per pair and settings (a ranking and the similarity report share it)."""
    ridge = check_ridge(ridge)
    key = (keep, ridge)
    if key not in stats.cache:
        stats.cache[key] = _canonical(stats, keep, ridge)
    return stats.cache[key]


def _canonical(stats: PairStats, keep: float | None, ridge: float) -> tuple[np.ndarray, np.ndarray]:
    wx = _whiten(stats.cxx, keep, ridge)  # [nx, kx]
    wy = _whiten(stats.cyy, keep, ridge)  # [ny, ky]
    m = wx.T @ stats.cxy @ wy  # [kx, ky] whitened cross-covariance
    u, rho, _ = np.linalg.svd(m, full_matrices=False)
    rho = np.clip(rho, 0.0, 1.0)
    a = wx @ u  # [nx, k] canonical directions: each variate x·a_k has unit variance
    std = np.where(stats.alive_x(), stats.std_x, np.inf)
    structure = (stats.cxx @ a) / std[:, None]  # [nx, k] corr(x_i, z_k)
    return rho, np.sqrt(np.clip((structure ** 2) @ (rho ** 2), 0.0, 1.0))


def debiased_cka(stats: PairStats) -> float:
    """Linear CKA from unbiased HSIC estimates (Nguyen et al. 2021): about 0 for independent models
    at any token count, where the plain CKA of few tokens and many neurons is biased upwards."""
    if stats.hsic is None:
        return float("nan")
    hxy, hxx, hyy = stats.hsic
    return float(hxy / np.sqrt(hxx * hyy)) if hxx > 0 and hyy > 0 else 0.0


def linear_cka(stats: PairStats) -> float:
    """Linear CKA of the centred activations: ‖Σ_XY‖²_F / (‖Σ_XX‖_F ‖Σ_YY‖_F)."""
    den = np.linalg.norm(stats.cxx) * np.linalg.norm(stats.cyy)
    return float(np.linalg.norm(stats.cxy) ** 2 / den) if den > 0 else 0.0


def similarity(stats: PairStats, maxcorr: np.ndarray | None = None) -> dict[str, float]:
    """Model-level similarity of X and Y: mean maxcorr (live neurons), mean SVCCA canonical
    correlation, linear CKA."""
    best = best_partners(stats)[0] if maxcorr is None else maxcorr
    alive = stats.alive_x()
    rho, _ = canonical(stats)
    return {"mean_maxcorr": float(best[alive].mean()) if alive.any() else 0.0,
            "mean_cca": float(rho.mean()) if len(rho) else 0.0, "linear_cka": linear_cka(stats)}


def aggregate(per_model: list[np.ndarray], how: str) -> np.ndarray:
    """Combine per-other-model scores [models, nx] by max, min or mean."""
    stack = np.stack(per_model)
    if how == "max":
        return stack.max(0)
    if how == "min":
        return stack.min(0)
    if how == "mean":
        return stack.mean(0)
    raise ConfigError(f"method.aggregate: expected max, min or mean, got '{how}'")


def correlation_detail(pairs: list[PairStats], x_neurons: list[str] | None = None) -> dict[str, Any]:
    """The `correlation` block of results.json: similarity (mean over the other models, and per
    model) and each X neuron's best partner over all other models (model index from 1)."""
    best = [best_partners(p) for p in pairs]
    sims = [similarity(p, b[0]) for p, b in zip(pairs, best, strict=True)]
    r = np.stack([b[0] for b in best])  # [models, nx]
    which = r.argmax(0)
    nx = r.shape[1]
    names = x_neurons or [str(i) for i in range(nx)]
    partners = {}
    for i in range(nx):
        m = int(which[i])
        j = int(best[m][1][i])
        y_names = pairs[m].y_neurons
        partners[names[i]] = {"model": m + 1, "neuron": y_names[j] if y_names else str(j), "r": float(r[m, i])}
    mean = {k: float(np.mean([s[k] for s in sims])) for k in sims[0]}
    return {"similarity": {**mean, "per_model": sims}, "partners": partners}
