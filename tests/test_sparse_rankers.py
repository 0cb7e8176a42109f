"""Sparse-probing rankers (mean_diff, f_stat, mutual_info, l1_binary): a planted neuron comes first
overall and in its class's row; f_stat and mutual_info equal scipy / sklearn; class_scores of lca
and probeless; a study runs end to end with them."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import f_oneway
from sklearn.metrics import mutual_info_score

from neuroscope.errors import ConfigError
from neuroscope.methods import NeuronRanking, rank
from neuroscope.methods.f_stat import f_stat
from neuroscope.methods.l1_binary import fit_l1_logistic, standardized
from neuroscope.methods.mean_diff import ClassMoments, mean_diff, row_blocks
from neuroscope.methods.mutual_info import mutual_info, quantile_codes
from neuroscope.methods.probeless import probeless
from tests.test_entrypoints import compose_analyze, overrides, study  # noqa: F401  (fixture)

SPARSE = ["mean_diff", "f_stat", "mutual_info", "l1_binary"]
CLASSES = ["a", "b", "c", "d"]


def planted(n_tokens: int = 2000, n_neurons: int = 20, hot: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Noise with 4 classes; neuron `hot` shifts by +3 on class 2 only; neuron 0 is constant."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n_tokens)
    acts = rng.normal(size=(n_tokens, n_neurons)).astype(np.float32)
    acts[:, hot] += 3.0 * (labels == 2)
    acts[:, 0] = 1.5
    return acts, labels


def run(name: str, acts: np.ndarray, labels: np.ndarray, classes: list[str] = CLASSES, **params) -> NeuronRanking:
    inputs = {"acts": lambda: acts, "labels": lambda: labels, "classes": lambda: classes, "seed": lambda: 0}
    return rank(name, params, acts.shape[1], inputs)


@pytest.mark.parametrize("name", SPARSE)
def test_planted_neuron_first_overall_and_in_its_class_row(name: str) -> None:
    acts, labels = planted()
    ranking = run(name, acts, labels)
    scores = ranking.detail["class_scores"]
    assert isinstance(scores, np.ndarray) and scores.dtype == np.float64 and scores.shape == (4, 20)
    assert ranking.order[0] == 7 and int(np.argmax(scores[2])) == 7
    assert np.all(np.isfinite(scores)) and np.all(np.isfinite(ranking.scores))
    assert ranking.scores[0] == 0.0 and np.all(scores[:, 0] == 0.0)  # the constant neuron
    if name in ("mean_diff", "l1_binary"):  # overall = max over classes
        assert np.array_equal(ranking.scores, scores.max(0))


def test_f_stat_equals_scipy_f_oneway() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 90)
    acts = (rng.normal(size=(90, 6)) * [1, 2, 0.5, 3, 1, 1] + [0, 100, -5, 0, 1e3, 0]).astype(np.float32)
    acts[:, 3] += labels
    ranking = f_stat(acts, labels, ["x", "y", "z"])
    x = acts.astype(np.float64)
    want = f_oneway(*[x[labels == c] for c in range(3)]).statistic
    np.testing.assert_allclose(ranking.scores, want, rtol=1e-9)
    for c in range(3):
        ovr = f_oneway(x[labels == c], x[labels != c]).statistic
        np.testing.assert_allclose(ranking.detail["class_scores"][c], ovr, rtol=1e-9)


def test_moments_of_row_blocks_equal_one_pass() -> None:
    acts, labels = planted(n_tokens=500)
    a = ClassMoments.accumulate(row_blocks(acts, labels, rows=64), 4)
    b = ClassMoments.accumulate([(acts, labels)], 4)
    assert np.array_equal(a.count, b.count)
    np.testing.assert_allclose(a.ss_within(), b.ss_within(), rtol=1e-9, atol=1e-9)


def test_mutual_info_equals_sklearn_on_the_same_bins() -> None:
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 300)
    acts = rng.normal(size=(300, 5)).astype(np.float32)
    acts[:, 1] += labels
    acts[:, 2] = np.maximum(acts[:, 2], 0)  # half zeros: repeated quantile edges
    ranking = mutual_info(acts, labels, ["x", "y", "z"], bins=8)
    for j in range(5):
        codes = quantile_codes(acts[:, j], 8)
        assert codes.min() >= 0 and codes.max() <= 7
        assert ranking.scores[j] == pytest.approx(mutual_info_score(labels, codes), rel=1e-10, abs=1e-14)
        for c in range(3):
            want = mutual_info_score(labels == c, codes)
            assert ranking.detail["class_scores"][c, j] == pytest.approx(want, rel=1e-10, abs=1e-14)
    assert ranking.order[0] == 1


def test_mean_diff_is_the_standardized_gap_and_the_max_over_classes() -> None:
    acts, labels = planted(n_tokens=400)
    ranking = mean_diff(acts, labels, CLASSES)
    x = acts.astype(np.float64)
    sd = x.std(0)
    for c in range(4):
        gap = np.abs(x[labels == c].mean(0) - x[labels != c].mean(0))
        want = np.divide(gap, sd, out=np.zeros_like(gap), where=sd > 0)
        np.testing.assert_allclose(ranking.detail["class_scores"][c], want, rtol=1e-8, atol=1e-12)
    assert np.array_equal(ranking.scores, ranking.detail["class_scores"].max(0))


@pytest.mark.parametrize("name", SPARSE)
def test_a_class_without_tokens_gets_a_zero_row(name: str) -> None:
    acts, labels = planted(n_tokens=600)
    labels = np.where(labels == 3, 1, labels)  # class "d" has no token
    ranking = run(name, acts, labels)
    scores = ranking.detail["class_scores"]
    assert scores.shape == (4, 20) and np.all(scores[3] == 0.0) and ranking.order[0] == 7
    assert np.all(np.isfinite(ranking.scores))


def test_f_stat_of_perfectly_separated_constant_classes_is_large_and_finite() -> None:
    labels = np.repeat([0, 1], 10)
    acts = np.stack([labels * 2.0, np.linspace(0, 1, 20)], 1).astype(np.float32)
    ranking = f_stat(acts, labels, ["x", "y"])
    assert np.all(np.isfinite(ranking.scores)) and ranking.scores[0] > 1e9 and ranking.order[0] == 0


def test_l1_binary_is_sparse_seeded_and_converges() -> None:
    acts, labels = planted()
    a, b = run("l1_binary", acts, labels, l1_fraction=0.5), run("l1_binary", acts, labels, l1_fraction=0.5)
    assert np.array_equal(a.order, b.order) and a.detail["converged"]
    scores = a.detail["class_scores"]
    assert np.count_nonzero(scores[2]) < 5 and scores[2, 7] > 0  # a strong penalty keeps few neurons


@pytest.mark.parametrize(("name", "params", "key"), [
    ("mutual_info", {"bins": 1}, "method.bins"), ("l1_binary", {"l1_fraction": 0}, "method.l1_fraction"),
    ("l1_binary", {"max_iter": 0}, "method.max_iter"), ("mean_diff", {"bins": 4}, "method.bins")])
def test_bad_parameters_name_their_config_key(name: str, params: dict, key: str) -> None:
    acts, labels = planted(n_tokens=200)
    with pytest.raises(ConfigError, match=key):
        run(name, acts, labels, **params)


def test_lca_and_probeless_class_scores() -> None:
    acts, labels = planted(n_tokens=800)
    ranking = probeless(acts, labels, CLASSES)
    x = acts.astype(np.float64)
    for c in range(4):
        np.testing.assert_allclose(ranking.detail["class_scores"][c],
                                   np.abs(x[labels == c].mean(0) - x[labels != c].mean(0)), rtol=1e-9, atol=1e-12)
    assert int(np.argmax(ranking.detail["class_scores"][2])) == 7
    weight = np.array([[0.5, -0.3, 0.0], [0.0, 0.1, -0.6]], dtype=np.float32)
    lca = rank("lca", {}, 3, {"probe": lambda: weight, "classes": lambda: ["A", "B"], "seed": lambda: 0})
    assert lca.detail["class_scores"].dtype == np.float64
    np.testing.assert_array_equal(lca.detail["class_scores"], np.abs(weight).astype(np.float64))


def test_l1_fit_meets_the_lasso_optimality_conditions() -> None:
    """At the optimum, |∂loss/∂w_j| = λ with the opposite sign of w_j where w_j ≠ 0, and ≤ λ where it is 0."""
    acts, labels = planted(n_tokens=1500)
    acts[:, 3] += 0.3 * (labels == 1)
    x = standardized(acts)
    y = (labels[:, None] == np.arange(4)[None, :]).astype(np.float64)
    lam = 0.05 * np.abs(x.T @ (y - y.mean(0))).max(0) / len(x)
    w, b, _, converged = fit_l1_logistic(x, y, lam, max_iter=5000, tol=1e-10)
    grad = x.T @ ((1 / (1 + np.exp(-(x @ w + b)))) - y) / len(x)
    lam_full = np.broadcast_to(lam, w.shape)
    nz = w != 0
    assert converged and nz[7, 2] and not nz[0].any()
    np.testing.assert_allclose(grad[nz], -lam_full[nz] * np.sign(w[nz]), atol=1e-6 * lam.min())
    assert np.all(np.abs(grad[~nz]) <= lam_full[~nz] * (1 + 1e-6))
