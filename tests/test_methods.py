"""Rankers: planted neurons come first; LCA matches a hand-computed ordering and NeuroX semantics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neuroscope.errors import ConfigError
from neuroscope.methods import NeuronRanking, rank
from neuroscope.methods.base import inputs_of
from neuroscope.methods.lca import (
    entry_steps,
    get_bottom_neurons,
    get_neuron_ordering,
    get_random_neurons,
    get_top_neurons,
)
from neuroscope.methods.lca import lca as lca_method
from neuroscope.methods.probeless import probeless
from neuroscope.probes import ArrayChunks, ProbeConfig, fit_probe
from neuroscope.registry import METHODS

W = np.array([[0.5, 0.3, 0.1, 0.1, 0.0],
              [0.0, 0.1, 0.1, 0.2, 0.6]], dtype=np.float32)  # [classes, neurons]
C2I = {"A": 0, "B": 1}


def planted(n_tokens: int = 3000, n_neurons: int = 40, n_classes: int = 4, hot: int = 17, seed: int = 0):
    """Noise activations where only neuron `hot` carries the label."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n_tokens)
    acts = rng.normal(size=(n_tokens, n_neurons)).astype(np.float32)
    acts[:, hot] += 3.0 * labels
    return acts, labels


def run(name: str, acts: np.ndarray, labels: np.ndarray, **params) -> NeuronRanking:
    probe, _ = fit_probe(ArrayChunks(acts, labels), int(labels.max()) + 1, ProbeConfig(epochs=20, batch_size=256, lr=1e-2, seed=0))
    inputs = {"acts": lambda: acts, "labels": lambda: labels, "probe": lambda: probe.weight,
              "classes": lambda: [str(c) for c in range(int(labels.max()) + 1)], "seed": lambda: 0}
    return rank(name, params, acts.shape[1], inputs)


@pytest.mark.parametrize("name", [m for m in METHODS.names() if m != "random" and "pairs" not in inputs_of(m)])
def test_planted_neuron_is_ranked_first_by_every_supervised_ranker(name: str) -> None:
    acts, labels = planted()
    ranking = run(name, acts, labels)
    assert ranking.order[0] == 17
    assert sorted(ranking.order.tolist()) == list(range(40))


def test_random_ranking_is_a_seeded_permutation() -> None:
    acts, labels = planted()
    a, b = run("random", acts, labels), run("random", acts, labels)
    assert np.array_equal(a.order, b.order) and sorted(a.order) == list(range(40))


def test_lca_ordering_matches_hand_computation() -> None:
    # step 0: each class's top neuron (0 for A, 4 for B), ordered by summed |w| (4: .6 > 0: .5);
    # neuron 1 joins A at 60 %, neuron 3 joins B at 70 %, neuron 2 joins B at 90 %.
    ordering, cutoffs = get_neuron_ordering(W, C2I, search_stride=10)
    assert ordering == [4, 0, 1, 3, 2]
    assert cutoffs == [2, 2, 2, 2, 2, 2, 3, 4, 4, 5, 5]
    assert entry_steps(W, 10).tolist() == [0, 6, 9, 7, 0]
    lca = run_lca(W)
    assert lca.order.tolist() == [4, 0, 1, 3, 2] and lca.detail["per_class"] == {"A": [0], "B": [4]}


def run_lca(w: np.ndarray) -> NeuronRanking:
    return rank("lca", {"search_stride": 10, "class_percentage": 0.3}, w.shape[1],
                {"probe": lambda: w, "classes": lambda: ["A", "B"], "seed": lambda: 0})


def test_all_zero_columns_come_last_in_a_seeded_order_not_column_order() -> None:
    """A sparse (proximal) probe leaves many all-zero columns: they tie, and a bottom-k set taken
    in column order would be the last layer's neurons."""
    w = np.zeros((2, 40), dtype=np.float32)
    w[0, 3], w[1, 7] = 0.9, 0.4
    orders = [lca_method(w, ["A", "B"], seed=s).order for s in (0, 1)]
    for order in orders:
        assert order[:2].tolist() == [3, 7] and sorted(order[2:].tolist()) == sorted(set(range(40)) - {3, 7})
    assert orders[0][2:].tolist() != orders[1][2:].tolist()  # the seed decides the tie order
    assert orders[0][2:].tolist() != sorted(orders[0][2:].tolist())  # ... which is not column order
    norms = METHODS.get("weight_norm")(w, seed=0).order
    assert norms[:2].tolist() == [3, 7] and norms[2:].tolist() != sorted(norms[2:].tolist())


def test_top_and_bottom_neurons_follow_neurox_semantics() -> None:
    union, per_class = get_top_neurons(W, 0.5, C2I)
    assert union.tolist() == [4, 0] and {k: v.tolist() for k, v in per_class.items()} == {"A": [0], "B": [4]}
    union, per_class = get_top_neurons(W, 0.8, C2I)  # the crossing neuron is included
    assert per_class["A"].tolist() == [0, 1] and per_class["B"].tolist() == [4, 3]
    bottom, per_class = get_bottom_neurons(W, 0.15, C2I)
    assert set(per_class["A"].tolist()) == {4, 3, 2} or set(per_class["A"].tolist()) == {4, 2, 3}
    assert per_class["B"].tolist()[:1] == [0]
    assert set(bottom.tolist()) == set(per_class["A"].tolist()) | set(per_class["B"].tolist())


def test_equal_weights_are_ordered_by_neuron_index_in_both_directions() -> None:
    """The tie rule (methods/base.py): a prefix that cuts a group of equal |weight| takes the
    group's lowest neuron indices, top and bottom alike (an unstable or reversed sort did not)."""
    w = np.array([[0.2, 0.5, 0.2, 0.5, 0.0, 0.2]], dtype=np.float32)  # total 1.6
    union, per = get_top_neurons(w, 0.7, {"A": 0})  # 1.12: .5 + .5 + one of the three .2
    assert per["A"].tolist() == [1, 3, 0] and union.tolist() == [1, 3, 0]
    union, per = get_bottom_neurons(w, 0.2, {"A": 0})  # 0.32: 0 + two of the three .2
    assert per["A"].tolist() == [4, 0, 2] and union.tolist() == [4, 0, 2]
    ordering, _ = get_neuron_ordering(w, {"A": 0}, search_stride=10)
    assert ordering == [1, 3, 0, 2, 5]  # the zero-weight neuron 4 never enters


def test_probe_can_be_a_module_a_probe_or_a_matrix() -> None:
    linear = torch.nn.Linear(5, 2)
    linear.weight.data = torch.from_numpy(W.copy())
    from neuroscope.probes import Probe

    ours = Probe(W.copy(), np.zeros(2, dtype=np.float32))
    for p in (linear, ours, W, torch.from_numpy(W)):
        assert get_neuron_ordering(p, C2I, 10)[0] == [4, 0, 1, 3, 2]


def test_random_neurons_keep_each_with_probability() -> None:
    w = np.ones((3, 10_000), dtype=np.float32)
    picked = get_random_neurons(w, 0.3, seed=1)
    assert 2700 < len(picked) < 3300 and np.array_equal(picked, get_random_neurons(w, 0.3, seed=1))


def test_probeless_equals_pairwise_class_mean_distances() -> None:
    rng = np.random.default_rng(3)
    acts = rng.normal(size=(500, 6))
    labels = rng.integers(0, 4, 500)
    means = np.stack([acts[labels == c].mean(0) for c in range(4)])
    brute = sum(np.abs(means[a] - means[b]) for a in range(4) for b in range(a + 1, 4))
    np.testing.assert_allclose(probeless(acts, labels).scores, brute, rtol=1e-9)


def test_iou_is_one_for_a_neuron_that_fires_exactly_on_a_class() -> None:
    labels = np.repeat([0, 1, 2], 100)
    acts = np.random.default_rng(0).normal(size=(300, 5)).astype(np.float32)
    acts[:, 2] = -5.0 * (labels == 1)  # fires negatively on class 1
    ranking = rank("iou", {}, 5, {"acts": lambda: acts, "labels": lambda: labels})
    assert ranking.order[0] == 2 and ranking.scores[2] == pytest.approx(1.0)


def test_method_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"method\.stride"):
        rank("lca", {"stride": 3}, 5, {"probe": lambda: W, "classes": lambda: ["A", "B"]})
    with pytest.raises(ConfigError, match="provided by the study"):
        rank("lca", {"probe": 3}, 5, {"probe": lambda: W, "classes": lambda: ["A", "B"]})


def test_matches_outputs_recorded_from_neurox_1_0_9() -> None:
    """NeuroX 1.0.9's own get_neuron_ordering / get_top_neurons / get_bottom_neurons outputs
    (percentage 0.3) on seeded matrices, one the size of the MiniLM/UPOS probe (17 x 2,688,
    sparse, with all-zero columns), recorded by bench/record_neurox_orderings.py in its venv."""
    import importlib.util
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("record", root / "bench" / "record_neurox_orderings.py")
    recorder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recorder)
    cases = json.loads((root / "tests" / "data" / "neurox_1.0.9_orderings.json").read_text())
    assert set(cases) == set(recorder.CASES) and cases["minilm_upos"]["recipe"]["neurons"] == 2688
    for case in cases.values():
        w = recorder.weights(case["recipe"])
        assert recorder.sha256(w) == case["weight_sha256"]  # the same matrix NeuroX saw
        c2i = {f"c{i}": i for i in range(w.shape[0])}
        ordering, cutoffs = get_neuron_ordering(w, c2i)
        assert cutoffs == case["cutoffs"] and len(ordering) == len(case["ordering"])
        for lo, hi in zip([0] + cutoffs[:-1], cutoffs, strict=True):
            assert set(ordering[lo:hi]) == set(case["ordering"][lo:hi])
        for fn, per_key, union_key in ((get_top_neurons, "per", "top"), (get_bottom_neurons, "bper", "bot")):
            union, per = fn(w, case["percentage"], c2i)
            assert set(per) == set(case[per_key])
            for c, theirs in case[per_key].items():
                assert_same_up_to_ties(per[c].tolist(), theirs, np.abs(w[c2i[c]]))
            ours = set().union(*(v.tolist() for v in per.values()))
            assert sorted(union.tolist()) == sorted(ours) and len(union) == len(ours)
            assert set(case[union_key]) == set().union(*case[per_key].values())  # NeuroX's union of its sets


def tie_groups(neurons: list[int], row: np.ndarray) -> list[tuple[float, list[int]]]:
    """Runs of equal |weight| in a list of neurons: [(value, members in list order)]."""
    groups: list[tuple[float, list[int]]] = []
    for n in neurons:
        if groups and row[n] == groups[-1][0]:
            groups[-1][1].append(n)
        else:
            groups.append((float(row[n]), [n]))
    return groups


def assert_same_up_to_ties(ours: list[int], theirs: list[int], row: np.ndarray) -> None:
    """`ours` and NeuroX's `theirs` (a class's neurons by |weight|, `row` [neurons]) agree except
    within groups of equal |weight|, whose order NeuroX's unstable sort left to the CPU: same
    values in the same order, each whole group the same set; a group the prefix cuts (the last
    one, when the row holds more of that value) only the same count, drawn from that group."""
    assert len(set(ours)) == len(ours)
    mine, recorded = tie_groups(ours, row), tie_groups(theirs, row)
    assert [(v, len(m)) for v, m in mine] == [(v, len(m)) for v, m in recorded]
    for i, ((value, a), (_, b)) in enumerate(zip(mine, recorded, strict=True)):
        whole = set(np.flatnonzero(row == value).tolist())
        if len(a) < len(whole):  # the prefix cuts this group: only the last one can be cut
            assert i == len(mine) - 1 and set(a) <= whole and set(b) <= whole
        else:
            assert set(a) == set(b) == whole
