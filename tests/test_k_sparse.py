"""k-sparse probing (evaluation.k_sparse): each class's own top k neurons, the union probe, the
fallback to the overall ranking, bad k values, and a tiny study writing the block, the SAEBench
file and the figure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from neuroscope.analysis import analyze
from neuroscope.errors import ConfigError
from neuroscope.evaluation.k_sparse import (
    binary_scores,
    check_ks,
    k_sparse,
    saebench_category,
    saebench_output,
)
from neuroscope.methods.base import NeuronRanking
from neuroscope.probes import ArrayChunks, ProbeConfig
from neuroscope.probes.splits import Splits
from neuroscope.validate import validate_analyze
from tests.test_entrypoints import compose_analyze, overrides, study  # noqa: F401  (fixture)
from tests.test_results_contract import documented_keys, resolve

CFG = ProbeConfig(seed=0, epochs=10, batch_size=128, lr=5e-2, lambda1=1e-4, lambda2=1e-4)
CLASSES = ["a", "b", "c"]
PLANTED = [7, 2, 9]  # the neuron that carries each class (not in column order, so ranks matter)
NEURONS = [f"layer1:{i}" for i in range(12)]


def planted(n: int = 1500, seed: int = 0) -> Splits:
    """3 classes over 12 noise neurons; neuron PLANTED[c] is 3 for class c's tokens and 0 otherwise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 12)).astype(np.float32) * 0.3
    for c, j in enumerate(PLANTED):
        x[:, j] += 3.0 * (y == c)
    a, b = int(0.7 * n), int(0.85 * n)
    return Splits(ArrayChunks(x[:a], y[:a]), ArrayChunks(x[a:b], y[a:b]), ArrayChunks(x[b:], y[b:]), 3)


def class_scores() -> np.ndarray:
    """[classes, neurons]: each class's planted neuron first, then columns by index (ties)."""
    scores = np.zeros((3, 12))
    for c, j in enumerate(PLANTED):
        scores[c, j] = 1.0
    return scores


def test_k1_picks_each_class_planted_neuron_with_f1_near_one() -> None:
    splits = planted()
    ranking = NeuronRanking.from_scores(class_scores().max(0), class_scores=class_scores())
    block = k_sparse(splits, ranking, CLASSES, NEURONS, [1, 2], CFG)
    assert block["ks"] == [1, 2] and block["per_class_ranking"] is True
    for c, name in enumerate(CLASSES):
        one = block["classes"][name]["1"]
        assert one["neurons"] == [NEURONS[PLANTED[c]]]
        assert one["f1"] > 0.97 and one["balanced_accuracy"] > 0.97, (name, one)
        # k=2: the planted neuron, then the tie among the zeros broken by column order: column 0
        assert block["classes"][name]["2"]["neurons"] == [NEURONS[PLANTED[c]], NEURONS[0]]
    assert block["mean_f1"]["1"] == pytest.approx(np.mean([block["classes"][n]["1"]["f1"] for n in CLASSES]))
    assert block["union"]["1"]["n_neurons"] == 3 and block["union"]["1"]["accuracy"] > 0.97
    assert block["union"]["2"]["n_neurons"] == 4  # the three planted neurons and column 0
    assert block["oracle"]["accuracy"] > 0.97 and block["oracle"]["mean_f1"] > 0.97


def test_without_class_scores_every_class_gets_the_overall_ranking() -> None:
    splits = planted()
    overall = np.zeros(12)
    overall[PLANTED[1]] = 1.0  # only class b's neuron ranks first overall
    block = k_sparse(splits, NeuronRanking.from_scores(overall), CLASSES, NEURONS, [1], CFG)
    assert block["per_class_ranking"] is False
    assert all(block["classes"][n]["1"]["neurons"] == [NEURONS[PLANTED[1]]] for n in CLASSES)
    assert block["classes"]["b"]["1"]["f1"] > 0.97
    assert block["classes"]["a"]["1"]["f1"] < 0.8 and block["classes"]["c"]["1"]["f1"] < 0.8  # noise neuron
    assert block["union"]["1"]["n_neurons"] == 1


def test_class_scores_of_the_wrong_shape_are_refused() -> None:
    ranking = NeuronRanking.from_scores(np.zeros(12), class_scores=np.zeros((2, 12)))
    with pytest.raises(ValueError, match=r"class_scores has shape \(2, 12\)"):
        k_sparse(planted(n=300), ranking, CLASSES, NEURONS, [1], CFG)


def test_binary_scores_count_by_hand() -> None:
    got = binary_scores(np.array([1, 1, 0, 0, 0, 1]), np.array([1, 0, 0, 0, 1, 1]))
    assert got["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))  # tp 2, fp 1, fn 1
    assert got["balanced_accuracy"] == pytest.approx((2 / 3 + 2 / 3) / 2)
    nothing = binary_scores(np.zeros(4), np.zeros(4))
    assert nothing == {"f1": None, "balanced_accuracy": None}


@pytest.mark.parametrize(("value", "words"), [
    ([0], "not a neuron count"), ([-2], "not a neuron count"), ([1.5], "not an integer"), (["a"], "not an integer"),
    ([True], "not an integer"), ([13], "larger than the store's 12 neurons"), ([1, 1], "more than once"),
    ([], "empty list"), ("5", "expected a list"),
])
def test_bad_ks_name_the_key(value: object, words: str) -> None:
    with pytest.raises(ConfigError, match="evaluation.k_sparse") as err:
        check_ks(value, 12)
    assert words in str(err.value)


def test_ks_sorted_and_null_is_off() -> None:
    assert check_ks([5, 1, 2.0], 12) == [1, 2, 5] and check_ks(None, 12) == []


def test_validation_names_evaluation_k_sparse(study: dict[str, Path]) -> None:  # noqa: F811
    for bad in ("[0,2]", "[1.5]", "[2,2]"):
        cfg = compose_analyze(overrides(study, study["root"] / "bad") + [f"evaluation.k_sparse={bad}"])
        with pytest.raises(ConfigError, match="evaluation.k_sparse"):
            validate_analyze(cfg)
    validate_analyze(compose_analyze(overrides(study, study["root"] / "ok") + ["evaluation.k_sparse=[1,2]"]))


def test_saebench_families() -> None:
    assert saebench_category(["embeddings", "layer1"]) == "llm"
    assert saebench_category(["layer2.sae"]) == "sae"
    assert saebench_category(["layer2", "layer2.sae"]) == "mixed"


def test_study_writes_block_saebench_file_and_figure(study: dict[str, Path]) -> None:  # noqa: F811
    out = study["root"] / "ks"
    res = analyze(compose_analyze(overrides(study, out) + [
        "method=lca", "evaluation.k_sparse=[1,2]", "evaluation.percents=[50]", "probe.epochs=3",
        "probe.selection.enabled=false", "evaluation.seeds=1", "evaluation.control=false",
        "evaluation.memory_gb=0", "report.top_neurons=0", "report.summary=false"]))  # memory_gb=0: streamed
    saved = json.loads((out / "results.json").read_text())
    block = saved["k_sparse"]
    for key in documented_keys("## k-sparse probing"):
        resolve(saved, key)
    assert block["ks"] == [1, 2] and set(block["classes"]) == set(saved["classes"])
    assert isinstance(block["per_class_ranking"], bool) and saved["probe"]["in_memory"] is False
    for name, by_k in block["classes"].items():
        assert set(by_k) == {"1", "2"} and len(by_k["1"]["neurons"]) == 1 and len(by_k["2"]["neurons"]) == 2, name
        assert by_k["2"]["neurons"][0] == by_k["1"]["neurons"][0]  # the top 2 extend the top 1
        assert set(by_k["2"]["neurons"]) <= set(saved["ranking"])
    if not block["per_class_ranking"]:  # the overall ranking for every class
        assert all(v["2"]["neurons"] == saved["ranking"][:2] for v in block["classes"].values())
    assert 1 <= block["union"]["1"]["n_neurons"] <= block["union"]["2"]["n_neurons"] <= 2 * len(saved["classes"])
    assert 0.0 <= block["union"]["2"]["accuracy"] <= 1.0 and res["k_sparse"]["ks"] == [1, 2]
    assert block["oracle"]["accuracy"] == pytest.approx(saved["oracle"]["accuracy"])
    assert "k_sparse_seconds" in saved["timings"]
    bench = json.loads((out / "k_sparse_saebench.json").read_text())
    assert bench["eval_type_id"] == "sparse_probing" and bench["eval_config"]["k_values"] == [1, 2]
    llm = bench["eval_result_metrics"]["llm"]
    assert llm["llm_top_1_test_accuracy"] == pytest.approx(block["mean_balanced_accuracy"]["1"])
    assert llm["llm_test_accuracy"] is None  # no all-neuron one-vs-rest probes: not faked from the oracle
    assert bench["eval_result_details"][0]["dataset_name"] == "upos_results"
    assert bench == json.loads(json.dumps(saebench_output(saved) | {"datetime_epoch_millis":
                                                                      bench["datetime_epoch_millis"]}))
    assert (out / "k_sparse.png").stat().st_size > 0
    assert "k-sparse probing" in (out / "report.html").read_text()


def test_study_without_the_key_has_no_block(study: dict[str, Path]) -> None:  # noqa: F811
    out = study["root"] / "plain"
    analyze(compose_analyze(overrides(study, out) + [
        "method=lca", "evaluation.percents=[50]", "probe.epochs=2", "probe.selection.enabled=false",
        "evaluation.seeds=1", "evaluation.control=false", "report=none"]))
    saved = json.loads((out / "results.json").read_text())
    assert "k_sparse" not in saved and "k_sparse_seconds" not in saved["timings"]
    assert not (out / "k_sparse_saebench.json").exists()


def test_a_k_beyond_the_store_is_a_config_error_before_any_probe(study: dict[str, Path]) -> None:  # noqa: F811
    out = study["root"] / "too_many"
    cfg = compose_analyze(overrides(study, out) + ["method=lca", "evaluation.k_sparse=[1,49]", "report=none"])
    with pytest.raises(ConfigError, match=r"evaluation.k_sparse: k=49 is larger than the store's 48 neurons"):
        analyze(cfg)
    assert not (out / "results.json").exists()
