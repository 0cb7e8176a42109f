"""Statistics as exact map-reduce (issue #31 part 2): per-shard partial sums merged exactly equal the
one-pass statistics; engine=ray; tiled maxcorr / mincorr; block products through torch."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import numpy as np
import pytest

from neuroscope.errors import ConfigError
from neuroscope.methods.correlation import (
    ArraySource,
    PairStats,
    best_partners,
    canonical,
    finish,
    multiple_correlation,
    pair_stats,
)
from neuroscope.methods.mapreduce import shard_bounds, token_groups
from neuroscope.methods.maxcorr import maxcorr
from neuroscope.methods.mincorr import mincorr
from neuroscope.methods.moments import accumulate, merge, merge_all, products_backend, recentre
from neuroscope.methods.tiles import TiledPair, check_tile, tiled_pairs, write_array_store
from neuroscope.store import ActivationStore
from tests.test_correlation import second_bert  # noqa: F401  (fixture)
from tests.test_entrypoints import study  # noqa: F401  (fixture)

SHARDS = (7, 13, 1)  # odd shard sizes, cycled


def models(n: int = 211, dims: tuple[int, ...] = (9, 6, 5), seed: int = 0) -> list[np.ndarray]:
    """Models [n, d] with large means (1e3 + noise: cancellation would show) and shared signal."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 3))
    out = []
    for d in dims:
        z = rng.normal(size=(n, d)) + latent @ rng.normal(size=(3, d))
        out.append((1e3 + rng.normal(size=d) * 50 + z).astype(np.float32))
    return out


def stores(tmp_path: Path, arrays: list[np.ndarray]) -> list[ActivationStore]:
    """Each array as an activation store in shards of 7, 13, 1, 7, ... tokens."""
    return [ActivationStore(write_array_store(tmp_path / f"m{i}", a, SHARDS)) for i, a in enumerate(arrays)]


def train_tokens(n: int, seed: int = 3) -> np.ndarray:
    return np.sort(np.random.default_rng(seed).choice(n, int(n * 0.7), replace=False))


def shard_partials(sources: list, tokens: np.ndarray, bounds: np.ndarray) -> list:
    """One partial per shard (the map step, locally)."""
    backend = products_backend("float64")
    groups = token_groups(tokens, bounds, len(bounds) - 1)
    assert sorted(len(g) for g in groups)[0] >= 1 and sum(len(g) for g in groups) == len(tokens)
    return [accumulate(sources, g, 5, backend) for g in groups]


def max_diff(a: list[PairStats], b: list[PairStats]) -> float:
    """Max abs difference of means, covariances, HSIC terms and downstream scores of two stats lists."""
    out = 0.0
    for p, q in zip(a, b, strict=True):
        for u, v in [(p.mean_x, q.mean_x), (p.mean_y, q.mean_y), (p.cxy, q.cxy), (p.cxx, q.cxx), (p.cyy, q.cyy),
                     (np.array(p.hsic), np.array(q.hsic)), (best_partners(p)[0], best_partners(q)[0]),
                     (multiple_correlation(p), multiple_correlation(q)),
                     (canonical(p, None, 1e-4)[1], canonical(q, None, 1e-4)[1]),
                     (canonical(p)[0], canonical(q)[0])]:
            out = max(out, float(np.abs(np.asarray(u) - np.asarray(v)).max()))
    return out


def test_per_shard_partials_merged_equal_the_one_pass(tmp_path: Path) -> None:
    arrays = models()
    srcs = stores(tmp_path, arrays)
    tokens = train_tokens(len(arrays[0]))
    one_pass = pair_stats(srcs[0], srcs[1:], tokens)
    bounds = shard_bounds(srcs[0], 8192)
    assert np.diff(bounds).tolist()[:4] == [7, 13, 1, 7]
    merged = finish(merge_all(shard_partials(srcs, tokens, bounds)))
    assert max_diff(one_pass, merged) < 1e-10
    for p in one_pass:  # the HSIC terms are real numbers, not NaN, and the statistics match NumPy
        assert np.isfinite(p.hsic).all()
    x = arrays[0][tokens].astype(np.float64)
    np.testing.assert_allclose(merged[0].cxx, np.cov(x, rowvar=False, bias=True), atol=1e-9)
    assert merged[0].hsic[0] == pytest.approx(one_pass[0].hsic[0], abs=1e-10)


def test_the_hsic_terms_survive_any_shift_and_merge() -> None:
    """Recentring moves every sum exactly: the HSIC of a partial recentred far away is unchanged,
    and a merge of partials with very different centres equals the one pass."""
    arrays = models(n=60, dims=(4, 3))
    srcs = [ArraySource(a) for a in arrays]
    tokens = np.arange(60)
    whole = accumulate(srcs, tokens, 60, products_backend("float64"))
    moved = recentre(whole, [c + 3.0 for c in whole.centre])
    a, b = finish(whole)[0], finish(moved)[0]
    assert np.abs(np.array(a.hsic) - np.array(b.hsic)).max() < 1e-9 * max(1.0, abs(a.hsic[1]))
    assert np.abs(a.cxy - b.cxy).max() < 1e-10
    halves = [accumulate(srcs, tokens[:1], 4, products_backend("float64")),
              accumulate(srcs, tokens[1:], 7, products_backend("float64"))]  # a one-token partial: M = 0
    assert max_diff([a], finish(merge(*halves))) < 1e-10


def test_the_merge_is_associative_in_practice(tmp_path: Path) -> None:
    srcs = stores(tmp_path, models())
    tokens = train_tokens(srcs[0].n_tokens)
    parts = shard_partials(srcs, tokens, shard_bounds(srcs[0], 8192))
    left = finish(functools.reduce(merge, parts))
    right = finish(functools.reduce(lambda acc, p: merge(p, acc), parts[::-1]))
    tree = finish(merge_all(parts))
    shuffled = [parts[i] for i in np.random.default_rng(0).permutation(len(parts))]
    assert max_diff(left, right) < 1e-12 and max_diff(left, tree) < 1e-12
    assert max_diff(left, finish(merge_all(shuffled))) < 1e-12


def test_engine_ray_equals_the_one_pass(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    srcs = stores(tmp_path, models())
    tokens = train_tokens(srcs[0].n_tokens)
    one_pass = pair_stats(srcs[0], srcs[1:], tokens)
    t0 = time.perf_counter()
    try:
        got = pair_stats(srcs[0], srcs[1:], tokens, block_rows=5, engine="ray", ray={"num_cpus": 2, "tasks": 9})
    finally:
        ray.shutdown()
    assert time.perf_counter() - t0 < 60
    assert max_diff(one_pass, got) < 1e-10


def test_a_store_error_in_a_ray_worker_is_raised_as_itself(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    from neuroscope.errors import StoreError

    srcs = stores(tmp_path, models(n=60, dims=(3, 2)))
    (tmp_path / "m1" / "manifest.json").unlink()  # the store went away after the driver opened it
    try:
        with pytest.raises(StoreError, match=r"m1: not a complete activation store"):
            pair_stats(srcs[0], srcs[1:], block_rows=64, engine="ray", ray={"num_cpus": 2})
    finally:
        ray.shutdown()


def test_bad_engine_and_ray_settings_are_config_errors() -> None:
    x, y = (ArraySource(a) for a in models(n=30, dims=(3, 2)))
    with pytest.raises(ConfigError, match=r"method\.engine: expected local or ray, got 'spark'"):
        pair_stats(x, [y], engine="spark")
    with pytest.raises(ConfigError, match=r"method\.ray: unknown key"):
        pair_stats(x, [y], engine="ray", ray={"adress": "x"})
    with pytest.raises(ConfigError, match=r"method\.ray\.tasks"):
        pair_stats(x, [y], engine="ray", ray={"tasks": 0})


def test_token_groups_keep_whole_shards() -> None:
    bounds = np.array([0, 7, 20, 21, 28, 41])
    tokens = np.array([0, 3, 6, 7, 8, 19, 20, 27, 30, 40])
    groups = token_groups(tokens, bounds, 3)
    assert np.concatenate(groups).tolist() == tokens.tolist() and len(groups) <= 3
    for g in groups:  # no shard is split between two groups
        shard = np.searchsorted(bounds, g, side="right")
        assert all(not set(shard) & set(np.searchsorted(bounds, h, side="right")) for h in groups if h is not g)


@pytest.mark.parametrize("tile", [4, 7, 100])
def test_tiled_maxcorr_equals_the_untiled(tmp_path: Path, tile: int) -> None:
    arrays = models(n=150, dims=(23, 17, 11))
    arrays[0][:, 5] = 1e3  # a constant neuron: scores 0, as untiled
    srcs = stores(tmp_path, arrays)
    tokens = train_tokens(150)
    full = pair_stats(srcs[0], srcs[1:], tokens)
    folder = tmp_path / "tiles"
    tiled = tiled_pairs(srcs[0], srcs[1:], tokens, tile, block_rows=11, folder=folder)
    assert list(folder.iterdir()) == []  # the tiles' temp folder is removed
    for p, t in zip(full, tiled, strict=True):
        best, partner = best_partners(p)
        assert np.abs(best - t.best).max() < 1e-10 and (partner == t.partner).all()
        assert np.abs(p.mean_x - t.mean_x).max() < 1e-9 and np.abs(p.std_y - t.std_y).max() < 1e-10
    for method in (maxcorr, mincorr):
        untiled = method(full, baseline=False)
        got = method(tiled)
        assert np.abs(untiled.scores - got.scores).max() < 1e-10 and (untiled.order == got.order).all()
        mine, theirs = got.detail["correlation"]["partners"], untiled.detail["correlation"]["partners"]
        assert mine.keys() == theirs.keys()
        for key, p in mine.items():
            assert (p["model"], p["neuron"]) == (theirs[key]["model"], theirs[key]["neuron"])
            assert abs(p["r"] - theirs[key]["r"]) < 1e-10
    assert got.scores[5] == 0.0


def test_tiled_rows_as_ray_tasks_equal_the_local_tiled_run(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    srcs = stores(tmp_path, models(n=90, dims=(13, 9, 10)))
    local = tiled_pairs(srcs[0], srcs[1:], None, 5, block_rows=17)
    try:
        remote = tiled_pairs(srcs[0], srcs[1:], None, 5, block_rows=17, engine="ray", ray={"num_cpus": 2})
    finally:
        ray.shutdown()
    for a, b in zip(local, remote, strict=True):  # the same passes, in other processes: the same numbers
        assert (a.best == b.best).all() and (a.partner == b.partner).all() and (a.std_y == b.std_y).all()
    assert not any((tmp_path / "tmp").iterdir())


def test_tiles_go_to_the_store_roots_tmp_folder(tmp_path: Path) -> None:
    srcs = stores(tmp_path, models(n=40, dims=(5, 4)))
    tiled = tiled_pairs(srcs[0], srcs[1:], None, 2)
    assert isinstance(tiled[0], TiledPair) and (tmp_path / "tmp").is_dir() and not any((tmp_path / "tmp").iterdir())


def test_tile_settings_that_need_whole_matrices_are_config_errors() -> None:
    for method in ("regcorr", "cca", "svcca"):
        with pytest.raises(ConfigError, match=rf"method\.tile: {method} needs the full matrices"):
            check_tile(100, method)
    with pytest.raises(ConfigError, match=r"method\.tile: expected a whole number"):
        check_tile(0, "maxcorr")
    assert check_tile(None, "regcorr") is None and check_tile(64, "mincorr") == 64


def test_torch_products_on_cpu_equal_numpy() -> None:
    pytest.importorskip("torch")
    arrays = models(n=300, dims=(12, 8))
    srcs = [ArraySource(a) for a in arrays]
    for products, tol in (("float32", 1e-6), ("float64", 1e-12)):
        host = pair_stats(srcs[0], srcs[1:], block_rows=64, products=products)[0]
        dev = pair_stats(srcs[0], srcs[1:], block_rows=64, products=products, device="torch:cpu")[0]
        for u, v in [(host.cxy, dev.cxy), (host.cxx, dev.cxx), (host.cyy, dev.cyy)]:
            assert np.abs(u - v).max() <= tol * np.abs(u).max()
        assert np.abs(np.array(host.hsic) - np.array(dev.hsic)).max() <= tol * np.abs(host.hsic).max()


def test_cuda_without_a_gpu_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same answer on a GPU machine
    with pytest.raises(ConfigError, match=r"method\.device: 'cuda' asked for, but this torch \(.*\) sees no CUDA GPU"):
        products_backend("float32", "cuda")
    with pytest.raises(ConfigError, match=r"method\.device: 'potato'"):
        products_backend("float32", "potato")


def test_probe_moments_merge_shard_partials_exactly() -> None:
    from neuroscope.probes.data import ArrayChunks, moments

    x = models(n=400, dims=(13,))[0]
    bounds = np.r_[np.cumsum(np.resize(SHARDS, 60))[np.cumsum(np.resize(SHARDS, 60)) < 400], 400]
    mean, std = moments(ArrayChunks(x, np.zeros(400), [0, *bounds.tolist()]))
    one = moments(ArrayChunks(x, np.zeros(400), [0, 400]))
    ref = x.astype(np.float64)
    np.testing.assert_allclose(mean, ref.mean(0), rtol=1e-7)
    np.testing.assert_allclose(std, ref.std(0), rtol=1e-6)
    np.testing.assert_allclose(std, one[1], rtol=1e-6)


def test_analyze_with_method_tile_equals_the_untiled_run(study, second_bert) -> None:  # noqa: ANN001, F811
    """Through the pipeline: maxcorr with method.tile gives the untiled scores and partners; a
    method needing whole matrices with method.tile is a ConfigError before any pass."""
    import json

    from neuroscope.analysis import analyze
    from tests.test_entrypoints import compose_analyze, overrides

    text = study["root"] / "plain.txt"
    text.write_text("the cats sleep .\na dog can run .\nthe dog runs .\n" * 8)

    def run(name: str, extra: list[str]) -> dict:
        out = study["root"] / name
        base = [o for o in overrides(study, out) if not o.startswith("task.file=")]
        analyze(compose_analyze(base + ["task=sentences", "task.format=neurox", f"task.file={text}",
                                        f"method.others=[{{name: transformer, path: '{second_bert}'}}]",
                                        "method.tokens=all", *extra]))
        return json.loads((out / "results.json").read_text())

    plain = run("plain", ["method=maxcorr", "method.baseline=false"])
    tiled = run("tiled", ["method=maxcorr", "method.baseline=false", "method.tile=7"])
    np.testing.assert_allclose(tiled["ranking_scores"], plain["ranking_scores"], atol=1e-10)
    mine, theirs = tiled["correlation"]["partners"], plain["correlation"]["partners"]
    assert mine.keys() == theirs.keys() and all(mine[k]["neuron"] == theirs[k]["neuron"] for k in mine)
    sim = tiled["correlation"]["similarity"]
    assert sim["mean_maxcorr"] == pytest.approx(plain["correlation"]["similarity"]["mean_maxcorr"], abs=1e-10)
    assert sim["mean_cca"] is None and tiled["correlation"]["tiled"]["tile"] == 7
    with pytest.raises(ConfigError, match=r"method\.tile: regcorr needs the full matrices"):
        run("regcorr", ["method=regcorr", "method.tile=7"])
    rotated = run("rotated", ["method=maxcorr", "method.tile=7", "method.baseline_draws=2"])  # the default baseline
    corr = rotated["correlation"]
    np.testing.assert_allclose(rotated["ranking_scores"], plain["ranking_scores"], atol=1e-10)
    assert len(corr["baseline_scores"]) == len(rotated["ranking"]) and corr["universal_share"]["all"] >= 0
    floor = corr["similarity_baseline"]["mean_maxcorr"]
    assert floor["baseline"] == "rotation" and floor["draws"] == 2 and "tiled" in floor["rotation"]


def test_ray_tasks_ask_for_a_gpu_only_when_the_products_run_on_cuda() -> None:
    ray = pytest.importorskip("ray")
    from neuroscope.methods.mapreduce import map_task, remote_task

    assert remote_task(ray, map_task, "cuda:0")._default_options.get("num_gpus") == 1
    assert remote_task(ray, map_task, "torch:cuda")._default_options.get("num_gpus") == 1
    assert not remote_task(ray, map_task, "cpu")._default_options.get("num_gpus")


@pytest.mark.parametrize("n", [1, 2, 7, 8, 13])
def test_hartley_is_the_orthonormal_cas_transform(n: int) -> None:
    from neuroscope.methods.tiles import hartley

    j = np.arange(n)
    angle = 2 * np.pi * np.outer(j, j) / n
    cas = (np.cos(angle) + np.sin(angle)) / np.sqrt(n)  # [n, n], symmetric
    u = np.random.default_rng(n).standard_normal((5, n))
    np.testing.assert_allclose(hartley(u), u @ cas, atol=1e-12)
    np.testing.assert_allclose(hartley(hartley(u)), u, atol=1e-12)  # orthogonal and its own inverse


@pytest.mark.parametrize("tile", [4, 7, 100])
def test_tiled_rotation_baseline_equals_rotating_the_whole_matrices(tmp_path: Path, tile: int) -> None:
    """The tiled baseline's best |ρ| per X neuron and draw equals maxcorr against Y R computed from the
    whole Σ_XY and Σ_YY, with R the same fast rotation as a matrix (orthogonal, every entry nonzero:
    each rotated unit mixes all of Y); whatever the tile; constant X neurons score 0."""
    arrays = models(n=150, dims=(23, 17, 11))
    arrays[0][:, 5] = 1e3
    srcs = stores(tmp_path, arrays)
    tokens = train_tokens(150)
    full = pair_stats(srcs[0], srcs[1:], tokens)
    tiled = tiled_pairs(srcs[0], srcs[1:], tokens, tile, block_rows=11, baseline_draws=2, seed=4)
    from neuroscope.methods.tiles import FastRotation

    for m, (p, t) in enumerate(zip(full, tiled, strict=True)):
        assert t.rotated.shape == (2, 23) and t.rotation_seed == 4 + m
        sx = np.where(p.alive_x(), p.std_x, np.inf)
        for d in range(2):
            r = FastRotation(len(p.cyy), 4 + m, d)(np.eye(len(p.cyy)))  # the rotation as a matrix: rows e_i R
            np.testing.assert_allclose(r.T @ r, np.eye(len(r)), atol=1e-12)
            assert np.abs(r).min() > 0
            sy = np.sqrt(np.diag(r.T @ p.cyy @ r))
            want = np.clip(np.abs(p.cxy @ r / sx[:, None] / sy[None, :]), 0, 1).max(1)
            np.testing.assert_allclose(t.rotated[d], want, rtol=0, atol=1e-10)
        assert (t.rotated[:, 5] == 0).all()


def test_tiled_rotation_baseline_separates_planted_from_independent_neurons(tmp_path: Path) -> None:
    """Known answers: 20 X neurons copy (noisy) Y neurons, the rest are independent of Y. With tiles
    smaller than Y, the planted ones lie above the block-rotation baseline's 99th percentile and about
    no independent one does; mincorr and maxcorr report the same keys as the untiled baseline."""
    rng = np.random.default_rng(11)
    n, p = 3000, 60
    y = rng.standard_normal((n, p))
    x = rng.standard_normal((n, p))
    x[:, :20] = y[:, 20:40] + 0.3 * rng.standard_normal((n, 20))
    srcs = stores(tmp_path, [x.astype(np.float32), y.astype(np.float32)])
    tiled = tiled_pairs(srcs[0], srcs[1:], None, 16, baseline_draws=3, seed=0)
    got = maxcorr(tiled)
    corr = got.detail["correlation"]
    untiled = maxcorr(pair_stats(srcs[0], srcs[1:]), baseline_draws=3).detail["correlation"]
    assert {"baseline_scores", "baseline_quantiles", "universal_share"} <= corr.keys() <= untiled.keys() | {"tiled"}
    q99 = corr["baseline_quantiles"]["1"]["99"]
    assert (tiled[0].best[:20] > q99).all()
    assert corr["universal_share"]["1"] == pytest.approx(20 / p, abs=0.02)
    assert abs(q99 - untiled["baseline_quantiles"]["1"]["99"]) < 0.05  # fast vs Haar rotations: about the same floor
    assert "mean_maxcorr" in corr["similarity_baseline"]
    assert "baseline_scores" not in maxcorr(tiled, baseline=False).detail["correlation"]
    assert "baseline_scores" in mincorr(tiled).detail["correlation"]


def test_tiled_rotation_baseline_on_ray_equals_the_local_run(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray")
    srcs = stores(tmp_path, models(n=90, dims=(13, 9, 10)))
    local = tiled_pairs(srcs[0], srcs[1:], None, 5, block_rows=17, baseline_draws=2, seed=1)
    try:
        remote = tiled_pairs(srcs[0], srcs[1:], None, 5, block_rows=17, engine="ray", ray={"num_cpus": 2},
                             baseline_draws=2, seed=1)
    finally:
        ray.shutdown()
    for a, b in zip(local, remote, strict=True):
        assert (a.rotated == b.rotated).all() and (a.best == b.best).all()
