"""The study protocol, proved on known answers: choices never see test, baselines are independent
draws with spread, λ follows the method, selectivity and control labels behave as they must."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from neuroscope.errors import ConfigError
from neuroscope.evaluation.study import run_study, select_lambda, selection_rule
from neuroscope.evaluation.subsets import STREAM_REPORT, STREAM_SELECTION, random_order
from neuroscope.probes import ArrayChunks, ProbeConfig
from neuroscope.probes.splits import Splits
from neuroscope.tasks.base import control_labels

CFG = ProbeConfig(seed=0, epochs=15, batch_size=128, lr=1e-2, lambda1=1e-3, lambda2=1e-3)
EVALUATION = {"percents": [5, 20], "minimal_delta": 0.02, "layer_top_percent": 10, "layer_probes": True,
              "control_subsets": True, "random_draws": 3}
SELECTION = {"enabled": True, "grid": [1e-4, 1e-2], "percent": 5, "tolerance": 0.05, "rule": "auto"}


def fake_store(sites: int, units: int) -> Any:
    """What a study reads of a store besides the splits: sites, neuron ids, site columns."""
    names = [f"layer{i}" for i in range(sites)]
    return SimpleNamespace(sites=names, neurons=[f"{s}:{u}" for s in names for u in range(units)],
                           neuron_index=lambda ss: np.arange(names.index(ss[0]) * units, (names.index(ss[0]) + 1) * units))


def planted(n: int = 2400, neurons: int = 40, informative: int = 4, seed: int = 0,
            test_labels: np.ndarray | None = None) -> Splits:
    """3 classes carried by the first `informative` neurons; 80/10/10 in data order."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, neurons)).astype(np.float32)
    x[:, :informative] += (rng.normal(size=(3, informative)) * 2.0)[y]
    a, b = int(0.8 * n), int(0.9 * n)
    y_test = y[b:] if test_labels is None else test_labels
    return Splits(ArrayChunks(x[:a], y[:a]), ArrayChunks(x[a:b], y[a:b]), ArrayChunks(x[b:], y_test), 3)


def study(splits: Splits, method: str = "lca", **evaluation: Any) -> dict[str, Any]:
    return run_study(fake_store(4, 10), splits, list("abc"), {"name": method}, CFG, SELECTION,
                     {**EVALUATION, **evaluation}, seed=0)


def test_scrambled_test_labels_change_no_choice() -> None:
    """λ, the ranking and the minimal subset are chosen on train/dev only: scrambling the test
    labels changes the reported test numbers and nothing else."""
    clean = study(planted())
    y_test = planted().test.y
    scrambled = study(planted(test_labels=np.random.default_rng(1).permutation(y_test)))
    assert clean["lambda_search"] == scrambled["lambda_search"]
    assert (clean["probe"]["lambda1"], clean["probe"]["lambda2"]) == (scrambled["probe"]["lambda1"], scrambled["probe"]["lambda2"])
    assert clean["ranking"] == scrambled["ranking"]
    assert clean["minimal_subset"]["n_neurons"] == scrambled["minimal_subset"]["n_neurons"]
    assert clean["oracle"]["dev_accuracy"] == scrambled["oracle"]["dev_accuracy"]
    assert clean["oracle"]["accuracy"] > 0.9 > 0.5 > scrambled["oracle"]["accuracy"]  # only test moved


def test_random_baseline_is_independent_draws_with_spread() -> None:
    res = study(planted(), random_draws=4)
    for row in res["subsets"]["random"].values():
        assert row["draws"] == 4 and len(row["accuracy_draws"]) == 4
        assert row["accuracy"] == pytest.approx(np.mean(row["accuracy_draws"]))
        assert row["accuracy_sd"] == pytest.approx(np.std(row["accuracy_draws"], ddof=1))
    assert res["subsets"]["random"]["5"]["accuracy_sd"] > 0  # 2 of 40 neurons: draws differ
    # the draws reported never include the subset λ selection compared against
    selection = random_order(40, 0, STREAM_SELECTION)[:2]
    reported = [random_order(40, 0, STREAM_REPORT, d)[:2] for d in range(4)]
    assert not any(np.array_equal(np.sort(selection), np.sort(r)) for r in reported)
    assert len({tuple(np.sort(r)) for r in reported}) == 4


def test_lambda_rule_follows_the_method() -> None:
    assert selection_rule("auto", "lca") == selection_rule("auto", "weight_norm") == "gap"
    assert selection_rule("auto", "probeless") == selection_rule("auto", "iou") == selection_rule("auto", "random") == "oracle"
    assert selection_rule("gap", "probeless") == "gap"
    res = study(planted(), method="probeless")
    assert res["probe"]["selection_rule"] == "oracle"
    assert all("top_dev" not in r for r in res["lambda_search"])  # LCA played no part
    chosen = next(r for r in res["lambda_search"] if r["chosen"])
    assert chosen["oracle_dev"] == max(r["oracle_dev"] for r in res["lambda_search"])
    assert study(planted())["probe"]["selection_rule"] == "gap"


def overfit_case(seed: int) -> Splits:
    """150 train tokens, 200 neurons, 4 informative: a tiny penalty overfits noise neurons (its
    oracle and its ranking are poor), a huge one kills every weight; 3e-2 is clearly right."""
    rng = np.random.default_rng(seed)
    n = 2150
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 200)).astype(np.float32)
    x[:, :4] += (rng.normal(size=(3, 4)) * 1.5)[y]
    return Splits(ArrayChunks(x[:150], y[:150]), ArrayChunks(x[150:1150], y[150:1150]),
                  ArrayChunks(x[1150:], y[1150:]), 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rule", ["gap", "oracle"])
def test_lambda_selection_picks_the_right_lambda(seed: int, rule: str) -> None:
    cfg = ProbeConfig(seed=0, epochs=30, batch_size=64, lr=1e-2)
    chosen, _ = select_lambda(overfit_case(seed), cfg, [1e-5, 3e-2, 1.0], percent=2, tolerance=0.02,
                              classes=list("abc"), seed=0, rule=rule)
    assert chosen.lambda1 == chosen.lambda2 == 3e-2


def token_corpus(types: int, tokens: int, seed: int) -> np.ndarray:
    """[tokens] word-type ids, Zipf-like frequencies."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, types + 1)
    return rng.choice(types, size=tokens, p=p / p.sum())


def control_splits(words: np.ndarray, labels: np.ndarray, x: np.ndarray, seed: int = 0) -> tuple[Splits, Splits]:
    """The task's and its control task's splits (80/10/10), the control from `control_labels`."""
    n = len(words)
    split = np.repeat([0, 1, 2], [int(0.8 * n), int(0.1 * n), n - int(0.8 * n) - int(0.1 * n)])
    names = [f"c{v}" for v in labels]
    ctrl = control_labels([str(w) for w in words], names, split == 0, seed)
    classes = sorted(set(ctrl))
    ctrl_ids = np.array([classes.index(c) for c in ctrl])

    def make(y: np.ndarray, k: int) -> Splits:
        parts = [ArrayChunks(x[split == i], y[split == i]) for i in range(3)]
        return Splits(*parts, n_classes=k)

    return make(labels, int(labels.max()) + 1), make(ctrl_ids, len(classes))


def selectivity(words: np.ndarray, labels: np.ndarray, x: np.ndarray) -> dict[str, Any]:
    task, control = control_splits(words, labels, x)
    res = run_study(fake_store(1, x.shape[1]), task, [f"c{i}" for i in range(task.n_classes)],
                    {"name": "random"}, CFG, {"enabled": False}, {**EVALUATION, "percents": [50],
                    "layer_probes": False, "random_draws": 2}, seed=0, control=[control])
    return res


def test_selectivity_of_a_lexical_task_is_near_zero() -> None:
    """Labels fixed per word type, activations a vector per type: the control task (another
    label per type) is learnt exactly as well, so selectivity is about 0."""
    rng = np.random.default_rng(0)
    words = token_corpus(30, 6000, seed=0)
    labels = rng.integers(0, 4, 30)[words]
    x = (rng.normal(size=(30, 64))[words] + 0.05 * rng.normal(size=(6000, 64))).astype(np.float32)
    res = selectivity(words, labels, x)
    assert res["oracle"]["accuracy"] > 0.95 and abs(res["selectivity"]) < 0.05, res["selectivity"]


def test_selectivity_of_planted_type_independent_features_is_high() -> None:
    """Labels independent of the word type, activations carrying only the label: the task is
    learnt, its control (labels per type) is not."""
    rng = np.random.default_rng(0)
    words = token_corpus(300, 6000, seed=0)
    labels = rng.integers(0, 4, 6000)
    x = rng.normal(size=(6000, 16)).astype(np.float32)
    x[:, :4] += 3.0 * np.eye(4)[labels]
    res = selectivity(words, labels, x)
    assert res["oracle"]["accuracy"] > 0.9 and res["selectivity"] > 0.5, res["selectivity"]
    assert res["control"]["draws"] == 1 and res["selectivity_sd"] == 0.0


def test_control_labels_follow_the_train_label_distribution() -> None:
    """Each word type's control label is drawn from the train label distribution: a chi-square
    test over 20,000 types stays below the 0.1 % critical value."""
    rng = np.random.default_rng(0)
    p = np.array([0.5, 0.25, 0.15, 0.07, 0.03])
    labels = [f"L{i}" for i in rng.choice(5, size=40000, p=p)]
    words = [f"w{i}" for i in range(20000)] * 2  # 20,000 types, twice each
    train = np.ones(40000, dtype=bool)
    ctrl = control_labels(words, labels, train, seed=3)
    per_type = dict(zip(words, ctrl, strict=True))
    assert all(ctrl[i] == per_type[w] for i, w in enumerate(words))  # one label per type
    observed = np.array([sum(v == f"L{i}" for v in per_type.values()) for i in range(5)])
    freq = np.array([labels.count(f"L{i}") for i in range(5)]) / len(labels)
    expected = freq * len(per_type)
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < 18.47, (chi2, observed, expected)  # df = 4, alpha = 0.001
    # and it is not the task: labels of a type differ from the type's first task label about
    # as often as chance says
    assert 0.5 < np.mean([per_type[w] != labels[i] for i, w in enumerate(words[:20000])]) < 0.8


def test_an_evaluation_probe_other_than_the_ranking_probe_judges_the_subsets() -> None:
    res = study(planted(), probe="linear")
    ev = res["evaluation_probe"]
    assert ev["spec"] == "linear" and ev["lambda1"] == ev["lambda2"] == 0.0
    assert res["probe"]["lambda1"] > 0  # the ranking probe keeps its penalty
    assert ev["accuracy"] > 0.9 and res["subsets"]["top"]["20"]["accuracy"] > res["subsets"]["bottom"]["20"]["accuracy"]
    # the minimal subset is measured against the evaluation probe's own accuracy on all neurons
    assert res["minimal_subset"]["dev_accuracy"] >= ev["dev_accuracy"] - EVALUATION["minimal_delta"]
    custom = study(planted(), probe={"lambda1": 0.0, "lambda2": 1e-2})
    assert (custom["evaluation_probe"]["lambda1"], custom["evaluation_probe"]["lambda2"]) == (0.0, 1e-2)
    with pytest.raises(ConfigError, match="evaluation.probe"):
        study(planted(), probe={"lamda": 1})
