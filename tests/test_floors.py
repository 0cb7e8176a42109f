"""Noise floors of cross-model scores (methods/floors.py): known answers on independent and planted models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from neuroscope.methods.correlation import (
    ArraySource,
    best_partners,
    debiased_cka,
    linear_cka,
    pair_stats,
)
from neuroscope.methods.floors import (
    ShiftedSource,
    heldout_similarity,
    pairing_floor,
    random_rotation,
    rotation_floor,
    sentence_shifts,
)

N, P, LEN = 6000, 120, 15  # tokens, neurons per model, words per sentence
SENT = np.repeat(np.arange(N // LEN), LEN)  # [tokens] sentence id
TRAIN = np.flatnonzero(SENT % 5 != 0)
HELD = np.flatnonzero(SENT % 5 == 0)


def unbiased_hsic(k: np.ndarray, l: np.ndarray) -> float:  # noqa: E741
    """Song et al. (2012) on explicit n x n kernels: the reference the streamed sums must equal."""
    n = len(k)
    k, l = k.copy(), l.copy()  # noqa: E741
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    one = np.ones(n)
    return float((np.trace(k @ l) + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
                  - 2 / (n - 2) * one @ k @ l @ one) / (n * (n - 3)))


def with_floors(x: np.ndarray, ys: list[np.ndarray], draws: int = 3) -> list:
    """PairStats on the train tokens with held-out and sentence-shifted held-out stats attached."""
    sx = ArraySource(x)
    others = [ArraySource(y) for y in ys]
    pairs = pair_stats(sx, others, TRAIN)
    shifts = sentence_shifts(HELD, SENT, N, draws)
    held = pair_stats(sx, others + [ShiftedSource(o, m) for m in shifts for o in others], HELD)
    for i, p in enumerate(pairs):
        p.heldout = held[i]
        p.pairing = [held[len(others) * (1 + d) + i] for d in range(len(shifts))]
    return pairs


def test_streamed_unbiased_hsic_equals_the_kernel_formula() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((90, 6)) + 4.0
    y = np.c_[x[:, :2] @ rng.standard_normal((2, 3)), rng.standard_normal((90, 2))] - 2.0
    stats = pair_stats(ArraySource(x), [ArraySource(y)], block_rows=25)[0]
    x, y = x.astype(np.float32).astype(float), y.astype(np.float32).astype(float)
    want = (unbiased_hsic(x @ x.T, y @ y.T), unbiased_hsic(x @ x.T, x @ x.T), unbiased_hsic(y @ y.T, y @ y.T))
    np.testing.assert_allclose(stats.hsic, want, rtol=1e-8)
    assert debiased_cka(stats) == pytest.approx(want[0] / np.sqrt(want[1] * want[2]), rel=1e-8)


def test_a_rotation_keeps_the_spectrum_and_is_orthogonal() -> None:
    rng = np.random.default_rng(0)
    rot = random_rotation(30, rng)
    np.testing.assert_allclose(rot.T @ rot, np.eye(30), atol=1e-10)
    a = rng.standard_normal((30, 30))
    cov = a @ a.T
    np.testing.assert_allclose(np.linalg.eigvalsh(rot.T @ cov @ rot), np.linalg.eigvalsh(cov), rtol=1e-8)


def test_sentence_shifts_permute_the_held_out_tokens_by_whole_sentences() -> None:
    maps = sentence_shifts(HELD, SENT, N, 3)
    assert len(maps) == 3
    for m in maps:
        assert sorted(m[HELD].tolist()) == HELD.tolist()  # a permutation of the held-out tokens
        np.testing.assert_array_equal(m[TRAIN], TRAIN)  # identity elsewhere
        assert (m[HELD] != HELD).all()  # no token keeps its partner
        starts = HELD[::LEN]
        assert set(m[starts].tolist()) <= set(starts.tolist())  # sentence starts land on sentence starts


def test_independent_models_lie_within_their_floors() -> None:
    """Independent noise 'models': maxcorr / mincorr within the rotation baseline (universal share
    <= 2 %), held-out regcorr and CCA about 0 and within their pairing floor, debiased CKA about 0."""
    rng = np.random.default_rng(3)
    x, y1, y2 = (rng.standard_normal((N, 4 * P)) for _ in range(3))  # enough neurons for a 1 % tail
    pairs = with_floors(x, [y1, y2])
    for how in ("max", "min"):
        floor = rotation_floor(pairs, how, draws=3, seed=0)
        assert floor["universal_share"]["1"] <= 0.02 and floor["universal_share"]["2"] <= 0.02
        assert floor["universal_share"]["all"] <= 0.02
        assert floor["baseline_scores"].shape == (4 * P,)
    real = best_partners(pairs[0])[0].mean()
    floor = rotation_floor(pairs, "max", draws=3, seed=0)["mean_maxcorr"]
    assert abs(real - floor["mean"]) < 0.01  # in-sample maxcorr .07 on pure noise: the floor says so
    out = pairing_floor(pairs)
    held, base = out["similarity_heldout"], out["similarity_baseline"]
    assert held["mean_regcorr"] < 0.05 and abs(held["mean_cca"]) < 0.05 and abs(held["debiased_cka"]) < 0.02
    for key in ("mean_cca", "mean_regcorr", "debiased_cka"):
        assert abs(held[key] - base[key]["mean"]) < 0.03 + 3 * base[key]["sd"], key
        assert base[key]["baseline"] == "pairing" and base[key]["draws"] == 3
    assert linear_cka(pairs[0]) > 0.05  # the plain in-sample CKA of noise is biased upwards


def test_planted_shared_neurons_and_subspace_rise_above_their_floors() -> None:
    """20 neurons the other model copies (plus noise) all lie above the rotation baseline's 99th
    percentile; the shared subspace lifts held-out CCA and debiased CKA clearly above the pairing floor."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((N, P))
    y = rng.standard_normal((N, P))
    planted = rng.choice(P, 20, replace=False)
    y[:, :20] = x[:, planted] + 0.6 * rng.standard_normal((N, 20))
    pairs = with_floors(x, [y])
    floor = rotation_floor(pairs, "max", draws=3, seed=0)
    real = best_partners(pairs[0])[0]
    assert (real[planted] > floor["baseline_quantiles"]["1"]["99"]).all()
    assert floor["universal_share"]["1"] == pytest.approx(20 / P, abs=0.02)
    out = pairing_floor(pairs)
    held, base = out["similarity_heldout"], out["similarity_baseline"]
    for key in ("mean_cca", "debiased_cka", "mean_regcorr"):
        assert held[key] > base[key]["mean"] + 5 * max(base[key]["sd"], 0.005), key
    assert heldout_similarity(pairs[0], pairs[0].heldout) == held["per_model"][0]


@pytest.mark.parametrize("device", ["cpu", "torch:cpu"])
def test_attach_heldout_gives_the_reference_floors_on_any_device(device: str) -> None:
    """The pipeline's held-out pass (attach_heldout) equals the hand-built one of `with_floors`, on
    NumPy and through the torch products path (`method.device`)."""
    from neuroscope.methods.floors import attach_heldout

    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((N, P)), rng.standard_normal((N, P))
    want = with_floors(x, [y])
    got = pair_stats(ArraySource(x), [ArraySource(y)], TRAIN)
    split = np.where(SENT % 5 == 0, 1, 0)
    attach_heldout(got, ArraySource(x), [ArraySource(y)], split, SENT, draws=3, device=device)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g.heldout.cxy, w.heldout.cxy, rtol=0, atol=1e-10)
        assert len(g.pairing) == len(w.pairing) == 3
        for gp, wp in zip(g.pairing, w.pairing, strict=True):
            np.testing.assert_allclose(gp.cxy, wp.cxy, rtol=0, atol=1e-10)


def test_attach_heldout_on_ray_equals_the_local_pass(tmp_path: Path) -> None:
    """`method.engine=ray` runs the held-out pass as Ray tasks too: the sentence-shifted stores travel
    as their token mapping around the store's path, and every statistic equals the local pass."""
    ray = pytest.importorskip("ray")
    from neuroscope.methods.floors import attach_heldout
    from tests.test_mapreduce import stores

    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((N, P)), rng.standard_normal((N, P))
    sx, sy = stores(tmp_path, [x, y])
    split = np.where(SENT % 5 == 0, 1, 0)
    local = pair_stats(sx, [sy], TRAIN)
    attach_heldout(local, sx, [sy], split, SENT, draws=2)
    remote = pair_stats(sx, [sy], TRAIN)
    try:
        attach_heldout(remote, sx, [sy], split, SENT, draws=2, engine="ray", ray={"num_cpus": 2, "tasks": 3})
    finally:
        ray.shutdown()
    for g, w in zip(remote, local, strict=True):
        np.testing.assert_allclose(g.heldout.cxy, w.heldout.cxy, rtol=0, atol=1e-10)
        np.testing.assert_allclose(g.heldout.cyy, w.heldout.cyy, rtol=0, atol=1e-10)
        assert len(g.pairing) == len(w.pairing) == 2
        for gp, wp in zip(g.pairing, w.pairing, strict=True):
            np.testing.assert_allclose(gp.cxy, wp.cxy, rtol=0, atol=1e-10)
            np.testing.assert_allclose(gp.cyy, wp.cyy, rtol=0, atol=1e-10)
