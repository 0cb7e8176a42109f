"""Study evaluations: top > random > bottom, minimal subset, λ choice, and the results contract."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from omegaconf import open_dict

from neuroscope.analysis import analyze
from neuroscope.errors import ConfigError
from neuroscope.evaluation.study import select_lambda
from neuroscope.evaluation.subsets import minimal_subset, n_of, subset_curves
from neuroscope.methods.lca import lca
from neuroscope.probes import ArrayChunks, ProbeConfig
from neuroscope.probes.splits import Splits
from tests.test_entrypoints import compose_analyze, overrides, study  # noqa: F401  (fixture)

CFG = ProbeConfig(seed=0, epochs=15, batch_size=256, lr=1e-2, lambda1=1e-3, lambda2=1e-3)


def graded(n: int = 3000, neurons: int = 60, informative: int = 8, seed: int = 0) -> Splits:
    """4 classes; neuron j < `informative` carries the label with strength falling with j."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.normal(size=(n, neurons)).astype(np.float32)
    centers = rng.normal(size=(4, informative)) * 2.5
    x[:, :informative] += centers[y] * np.linspace(1.0, 0.4, informative)
    a, b = int(0.8 * n), int(0.9 * n)
    return Splits(ArrayChunks(x[:a], y[:a]), ArrayChunks(x[a:b], y[a:b]), ArrayChunks(x[b:], y[b:]), 4)


def test_top_beats_random_beats_bottom_on_separable_data() -> None:
    splits = graded(informative=20)  # a random 10 % holds some informative neurons, the bottom none
    oracle, _ = splits.fit(CFG)
    order = lca(oracle.weight, list("abcd")).order
    assert set(order[:6].tolist()) <= set(range(20)) and not set(order[-6:].tolist()) & set(range(20))
    curves = subset_curves(splits, oracle, order, [10], CFG, seed=0)
    top, rnd, bottom = (curves[k]["10"]["accuracy"] for k in ("top", "random", "bottom"))
    assert top > rnd > bottom, (top, rnd, bottom)
    assert curves["top"]["10"]["n_neurons"] == n_of(10, 60) == 6
    assert curves["top"]["10"]["accuracy_zeroed"] > curves["bottom"]["10"]["accuracy_zeroed"]


def test_minimal_subset_finds_the_informative_neurons() -> None:
    splits = graded(informative=3)
    oracle, _ = splits.fit(CFG)
    order = lca(oracle.weight, list("abcd")).order
    dev = splits.score(oracle, "dev")["accuracy"]
    found = minimal_subset(splits, order, dev, splits.score(oracle)["accuracy"], 0.02, CFG)
    assert 2 <= found["n_neurons"] <= 4 and found["share"] == found["n_neurons"] / 60
    assert found["dev_accuracy"] >= dev - 0.02 and found["accuracy"] > 0.8 and abs(found["delta"]) < 0.1


def test_lambda_selection_prefers_a_sharp_ranking_within_tolerance() -> None:
    splits = graded(n=2000)
    chosen, rows = select_lambda(splits, CFG, [1e-5, 1e-2], percent=10, tolerance=0.05, classes=list("abcd"), seed=0)
    assert [r["lambda"] for r in rows] == [1e-5, 1e-2] and sum(r["chosen"] for r in rows) == 1
    best = next(r for r in rows if r["chosen"])
    assert chosen.lambda1 == chosen.lambda2 == best["lambda"]
    ok = [r for r in rows if r["oracle_dev"] >= max(x["oracle_dev"] for x in rows) - 0.05]
    assert best["top_dev"] - best["random_dev"] == max(r["top_dev"] - r["random_dev"] for r in ok)


def test_analyze_with_lca_writes_the_results_contract(study: dict[str, Path]) -> None:  # noqa: F811
    out = study["root"] / "lca"
    cfg = compose_analyze(overrides(study, out) + [
        "method=lca", "evaluation.percents=[10,50]", "probe.epochs=3", "probe.selection.grid=[1e-4,1e-3]"])
    res = analyze(cfg)
    saved = json.loads((out / "results.json").read_text())
    for key in ("model", "task", "method", "seed", "store", "split", "oracle", "control", "selectivity",
                "subsets", "minimal_subset", "layers", "ranking", "timings", "probe", "lambda_search"):
        assert key in saved, key
    assert saved["method"] == "lca" and len(saved["ranking"]) == 48 == len(set(saved["ranking"]))
    assert set(saved["subsets"]) == {"top", "random", "bottom"}
    assert set(saved["subsets"]["top"]) == {"10", "50"}
    for kind in saved["subsets"].values():
        for row in kind.values():
            assert 0 <= row["accuracy"] <= 1 and 0 <= row["accuracy_zeroed"] <= 1 and "selectivity" in row
    assert 0 <= saved["oracle"]["accuracy"] <= 1 and 0 <= saved["oracle"]["macro_f1"] <= 1
    assert saved["selectivity"] == pytest.approx(saved["oracle"]["accuracy"] - saved["control"]["accuracy"])
    assert set(saved["layers"]) == {"embeddings", "layer1", "layer2"}
    assert sum(v["top_share"] for v in saved["layers"].values()) == pytest.approx(1.0)
    assert {"n_neurons", "share", "accuracy", "delta"} <= set(saved["minimal_subset"])
    assert {"probe_seconds", "total_seconds"} <= set(saved["timings"])
    assert saved["probe"]["lambda1"] in (1e-4, 1e-3)
    for table in ("subsets", "layers", "ranking", "lambda_search"):
        assert (out / f"{table}.csv").exists()
    assert res["ranking"] == saved["ranking"]


@pytest.mark.parametrize("method", ["probeless", "iou", "weight_norm", "random", "f_stat", "mutual_info"])
def test_every_builtin_method_runs_a_study(study: dict[str, Path], method: str) -> None:  # noqa: F811
    out = study["root"] / method
    cfg = compose_analyze(overrides(study, out) + [
        f"method={method}", "evaluation.percents=[50]", "probe.epochs=2", "probe.selection.enabled=false",
        "evaluation.layer_probes=false", "evaluation.control=false"])
    with open_dict(cfg):
        cfg.evaluation.minimal_delta = 0.5
    res = analyze(cfg)
    assert res["method"] == method and len(res["ranking"]) == 48 and "control" not in res
    scores = res["ranking_scores"]  # sparse rankers (f_stat, mutual_info) too: finite, best first
    assert len(scores) == 48 and all(s is not None for s in scores) and scores == sorted(scores, reverse=True)


def test_study_with_wandb_logs_tables_offline(study: dict[str, Path]) -> None:  # noqa: F811
    out = study["root"] / "wb_lca"
    cfg = compose_analyze(overrides(study, out) + [
        "logger=wandb", "method=random", "evaluation.percents=[50]", "probe.epochs=2",
        "probe.selection.enabled=false", "evaluation.layer_probes=false", "evaluation.control=false"])
    analyze(cfg)
    (run,) = list((out / "wandb").glob("offline-run-*"))
    assert any(run.rglob("*.wandb")) and (out / "subsets.csv").exists()
    media = {p.name.split("_")[0] for p in (run / "files" / "media" / "table").rglob("*.table.json")}
    assert {"subsets", "layers", "ranking"} <= media  # tables and the subsets chart, stored offline


def test_lambda_grid_takes_pairs_for_a_two_dimensional_search() -> None:
    splits = graded(n=1000)
    chosen, rows = select_lambda(splits, CFG, [1e-4, [1e-4, 1e-2], [1e-2, 0.0]], percent=10, tolerance=0.05,
                                 classes=list("abcd"), seed=0)
    assert [(r["lambda1"], r["lambda2"]) for r in rows] == [(1e-4, 1e-4), (1e-4, 1e-2), (1e-2, 0.0)]
    assert [r["lambda"] for r in rows] == [1e-4, None, None]
    best = next(r for r in rows if r["chosen"])
    assert (chosen.lambda1, chosen.lambda2) == (best["lambda1"], best["lambda2"])
    with pytest.raises(ConfigError, match="probe.selection.grid"):
        select_lambda(splits, CFG, ["big"], percent=10, tolerance=0.05, classes=list("abcd"), seed=0)


def test_seed_spread_measures_the_minimal_subset_and_top_curve_per_seed() -> None:
    """evaluation.seeds=3: the study's own minimal subset and top-k accuracies come first, two more
    seeds (probe initialisation, batch order, ranking) beside them, with mean and sample sd."""
    from neuroscope.evaluation.study import run_study

    splits = graded(informative=3)
    ev = {"percents": [5, 20], "minimal_delta": 0.02, "layer_top_percent": 10, "layer_probes": False,
          "random_draws": 2, "seeds": 3}

    class Store:  # the layer report's view of a store: neuron ids and their sites
        neurons = [f"layer1:{i}" for i in range(60)]
        sites = ["layer1"]

        def neuron_index(self, site: str) -> np.ndarray:
            return np.arange(60)

    out = run_study(Store(), splits, list("abcd"), {"name": "lca"}, CFG, {"enabled": False}, ev, seed=4)
    spread = out["seed_spread"]
    assert spread["seeds"] == [4, 5, 6]
    ms = spread["minimal_subset"]
    assert len(ms["n_neurons"]) == 3 and ms["n_neurons"][0] == out["minimal_subset"]["n_neurons"]
    assert all(2 <= n <= 5 for n in ms["n_neurons"])  # every seed finds the 3 informative neurons
    assert ms["n_neurons_mean"] == pytest.approx(np.mean(ms["n_neurons"]))
    assert ms["n_neurons_sd"] == pytest.approx(np.std(ms["n_neurons"], ddof=1))
    assert out["minimal_subset"]["share_sd"] == ms["share_sd"] and out["minimal_subset"]["seeds"] == 3
    assert set(spread["top"]) == {"5", "20"}
    assert spread["top"]["20"]["accuracy"][0] == out["subsets"]["top"]["20"]["accuracy"]
    assert 0 <= spread["top"]["20"]["sd"] < 0.05
    out1 = run_study(Store(), splits, list("abcd"), {"name": "lca"}, CFG, {"enabled": False}, {**ev, "seeds": 1}, seed=4)
    assert "seed_spread" not in out1 and out1["minimal_subset"]["n_neurons"] == out["minimal_subset"]["n_neurons"]
