"""Known-answer tests of CCA / SVCCA over the streamed statistics (methods/correlation.py, cca.py,
svcca.py): planted canonical correlations against the closed form, against scikit-learn's CCA, the
SVD step's kept share of variance, and the rankers putting the shared neurons first."""

from __future__ import annotations

import numpy as np
import pytest

from neuroscope.methods.base import rank
from neuroscope.methods.correlation import ArraySource, PairStats, canonical, pair_stats, similarity

RHO = (0.9, 0.5)  # population canonical correlations of the planted pairs; the third is 0


def _orthogonal(k: int, rng: np.random.Generator) -> np.ndarray:
    """[k, k] a random rotation."""
    q, r = np.linalg.qr(rng.normal(size=(k, k)))
    return q * np.sign(np.diag(r))


def planted(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """X [n, 4], Y [n, 3] whose population canonical correlations are exactly .9, .5, 0: X holds
    z1, z2 and two own signals, Y holds .9 z1 + noise, .5 z2 + noise and own noise (every
    column of unit variance), each side then mixed by a rotation and column scales in [1, 2]
    (CCA is invariant to invertible maps of either side), plus large offsets."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))  # shared latents
    x = np.column_stack([z, rng.normal(size=(n, 2))])  # [n, 4]
    y = np.column_stack([RHO[0] * z[:, 0] + np.sqrt(1 - RHO[0] ** 2) * rng.normal(size=n),
                         RHO[1] * z[:, 1] + np.sqrt(1 - RHO[1] ** 2) * rng.normal(size=n),
                         rng.normal(size=n)])  # [n, 3]
    x = x @ _orthogonal(4, rng) * rng.uniform(1, 2, size=4) + rng.normal(size=4) * 100
    y = y @ _orthogonal(3, rng) * rng.uniform(1, 2, size=3) - rng.normal(size=3) * 100
    return x, y


def stats_of(x: np.ndarray, y: np.ndarray, block_rows: int = 8192) -> PairStats:
    (s,) = pair_stats(ArraySource(x), [ArraySource(y)], block_rows=block_rows)
    return s


def ranked(method: str, pairs: list[PairStats], params: dict | None = None) -> np.ndarray:
    """The method's neuron order (best first) for the studied model of `pairs`."""
    n = len(pairs[0].mean_x)
    return rank(method, params or {}, n, {"pairs": lambda: pairs, "seed": lambda: 0}).order


@pytest.fixture(scope="module")
def big() -> PairStats:
    """Statistics of the planted pair at n = 50k (sampling error of ρ ≈ (1 - ρ²) / √n)."""
    return stats_of(*planted(50_000))


@pytest.mark.parametrize(("keep", "ridge"), [(None, 1e-4), (0.99, 1e-6), (1.0, 0.0)])
def test_canonical_correlations_match_the_closed_form(big: PairStats, keep: float | None, ridge: float) -> None:
    rho, scores = canonical(big, keep=keep, ridge=ridge)
    assert rho.shape == (3,)  # min(4, 3) pairs: every direction holds > 1 % of the variance
    assert rho[0] == pytest.approx(RHO[0], abs=0.005)  # 5 standard errors (0.0009)
    assert rho[1] == pytest.approx(RHO[1], abs=0.015)  # 4 standard errors (0.0034)
    assert 0 <= rho[2] < 0.02  # a null canonical correlation is O(1/√n)
    assert ((scores >= 0) & (scores <= 1)).all()


def test_similarity_reports_the_mean_canonical_correlation(big: PairStats) -> None:
    sim = similarity(big)
    assert sim["mean_cca"] == pytest.approx(sum(RHO) / 3, abs=0.01)


def test_streamed_blocks_give_the_same_canonical_correlations() -> None:
    x, y = planted(5_000, seed=3)
    one = canonical(stats_of(x, y, block_rows=10_000), keep=None, ridge=0.0)
    many = canonical(stats_of(x, y, block_rows=333), keep=None, ridge=0.0)
    np.testing.assert_allclose(many[0], one[0], atol=1e-9)
    np.testing.assert_allclose(many[1], one[1], atol=1e-9)


def test_canonical_correlations_and_scores_equal_sklearn_cca() -> None:
    """scikit-learn's CCA (NIPALS, canonical deflation) on 300 tokens: the same ρ_k = corr of the
    k-th score pair, and the same neuron scores sqrt(Σ_k ρ_k² corr(x_i, z_k)²) from its X scores."""
    from sklearn.cross_decomposition import CCA

    x, y = planted(300, seed=7)
    rho, scores = canonical(stats_of(x, y), keep=None, ridge=0.0)
    model = CCA(n_components=3, scale=False, max_iter=20_000, tol=1e-14).fit(x, y)
    xs, ys = model.transform(x, y)  # [n, 3] each
    sk_rho = np.array([np.corrcoef(xs[:, k], ys[:, k])[0, 1] for k in range(3)])
    np.testing.assert_allclose(rho, np.abs(sk_rho), atol=1e-6)
    load = np.corrcoef(x, xs, rowvar=False)[:4, 4:]  # [neurons, 3] corr(x_i, z_k)
    np.testing.assert_allclose(scores, np.sqrt((load ** 2) @ (sk_rho ** 2)), atol=1e-6)


def neurons(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """X [n, 5] with known scores: x0 = -3 z1 (ρ .9: score .9), x1 = z2 (ρ .5: score .5),
    x2 = (z1 + u) / √2 (half of its variance on z1: score .9 / √2), x3, x4 own noise (score 0);
    Y [n, 3] = (.9 z1 + noise, .5 z2 + noise, noise)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    x = np.column_stack([-3 * z[:, 0], z[:, 1], (z[:, 0] + rng.normal(size=n)) / np.sqrt(2),
                         rng.normal(size=(n, 2))])
    y = np.column_stack([RHO[0] * z[:, 0] + np.sqrt(1 - RHO[0] ** 2) * rng.normal(size=n),
                         RHO[1] * z[:, 1] + np.sqrt(1 - RHO[1] ** 2) * rng.normal(size=n), rng.normal(size=n)])
    return x, y


@pytest.mark.parametrize("method", ["cca", "svcca"])
def test_rankers_put_the_neurons_of_the_shared_subspace_first(method: str) -> None:
    pair = stats_of(*neurons(50_000))
    expected = np.array([0.9, 0.5, 0.9 / np.sqrt(2), 0.0, 0.0])
    _, scores = canonical(pair, keep=None if method == "cca" else 0.99, ridge=1e-4 if method == "cca" else 1e-6)
    np.testing.assert_allclose(scores, expected, atol=0.02)
    assert ranked(method, [pair]).tolist()[:3] == [0, 2, 1]


def test_svcca_keeps_the_stated_share_of_variance() -> None:
    """X = (10 a, 5 b, .1 c): variances 100, 25, .01. Y = (.3 a + noise, .95 c + noise, noise).
    keep .99 keeps X's 2 big directions (99.99 % ≥ 99 % > 80 %), so the strongly shared but tiny
    c is dropped: ρ = (.3, 0) and x0 ranks first; plain CCA finds .95 on c and ranks x2 first."""
    rng = np.random.default_rng(5)
    n = 50_000
    a, b, c = rng.normal(size=(3, n))
    x = np.column_stack([10 * a, 5 * b, 0.1 * c])
    y = np.column_stack([0.3 * a + np.sqrt(1 - 0.09) * rng.normal(size=n),
                         0.95 * c + np.sqrt(1 - 0.95 ** 2) * rng.normal(size=n), rng.normal(size=n)])
    pair = stats_of(x, y)
    rho, _ = canonical(pair, keep=0.99)
    assert rho.shape == (2,) and rho[0] == pytest.approx(0.3, abs=0.02) and rho[1] < 0.02
    rho, _ = canonical(pair, keep=0.5)  # X: 100 of 125 ≥ 50 % → 1 direction; Y: 2 of 3 equal ones
    assert rho.shape == (1,) and rho[0] == pytest.approx(0.3, abs=0.02)
    rho, _ = canonical(pair, keep=None)
    np.testing.assert_allclose(rho, [0.95, 0.3, 0.0], atol=0.02)
    assert ranked("svcca", [pair])[0] == 0 and ranked("cca", [pair])[0] == 2
    detail = rank("svcca", {"keep": 0.99}, 3, {"pairs": lambda: [pair], "seed": lambda: 0}).detail
    assert len(detail["correlation"]["canonical_correlations"][0]) == 2
