"""method_agreement: the Borda consensus and the IoU arithmetic on known orders, and a tiny end-to-end
run (tiny BERT, tiny corpus, three methods) that writes the block, the CSV, the figure and a report
that loads in a browser."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import neuroscope as ns
from neuroscope.errors import ConfigError
from neuroscope.experiments.method_agreement import borda, chance_iou, measure, top_iou
from tests.fixture_corpus import distinct_conllu
from tests.test_api import FAST
from tests.test_report_browser import PROBE, Dom, load

NEURONS = [f"layer{i // 10}:{i % 10}" for i in range(30)]


def test_a_method_equal_to_the_consensus_has_iou_one_at_every_k() -> None:
    rng = np.random.default_rng(0)
    a = rng.permutation(30)
    orders = {"a": a, "b": a.copy(), "c": a.copy(), "random": rng.permutation(30)}
    rows = np.stack([rng.permutation(30) for _ in range(3)])  # per-class orders, shared by the voters
    block = measure(orders, {"a": rows, "b": rows.copy(), "c": rows.copy(), "random": None}, NEURONS,
                    [1, 5, 10, 30], 10, ["random"], [0, 1, 2])
    assert block["consensus_methods"] == ["a", "b", "c"] and block["excluded"] == ["random"]
    assert block["consensus"][:10] == [NEURONS[i] for i in a[:10]]
    for m in ("a", "b", "c"):
        assert block["iou_with_consensus"][m]["overall"] == {"1": 1.0, "5": 1.0, "10": 1.0, "30": 1.0}
    for m in ("a", "b", "c"):  # the voters share each class's order: the class consensus is it
        assert block["iou_with_consensus"][m]["per_class"] == {"1": 1.0, "5": 1.0, "10": 1.0, "30": 1.0}
    assert block["iou_with_consensus"]["random"]["overall"]["30"] == 1.0  # all neurons: the same set
    assert block["iou_with_consensus"]["random"]["per_class"]["30"] == 1.0  # no class scores: its overall order
    assert block["iou_with_consensus"]["random"]["overall"]["10"] < 1.0
    assert all(v["iou"] == 1.0 for v in block["layers"]["a"].values() if v["iou"] is not None)
    assert sum(v["share"] for v in block["layers"]["a"].values()) == pytest.approx(1.0)


def test_methods_with_disjoint_tops_have_pairwise_iou_zero() -> None:
    a = np.arange(30)
    b = a[::-1].copy()  # b's top 10 are a's bottom 10
    block = measure({"a": a, "b": b}, {"a": None, "b": None}, NEURONS, [10], 10, [], [0])
    assert block["pairwise"]["methods"] == ["a", "b"]
    assert block["pairwise"]["iou"] == [[1.0, 0.0], [0.0, 1.0]]
    assert top_iou(a, b, 15) == 0.0 and top_iou(a, b, 20) == pytest.approx(10 / 30)
    # by layer: a's top 10 all in layer0, b's all in layer2
    assert block["layers"]["a"]["layer0"]["share"] == 1.0 and block["layers"]["b"]["layer2"]["share"] == 1.0
    assert 0 < chance_iou(10, 30) < 1 and chance_iou(30, 30) == pytest.approx(1.0)


def test_borda_sums_points_and_keeps_ties_in_neuron_order() -> None:
    # a: 0 1 2 3, b: 3 2 1 0 -> every neuron gets 5 points: a tie throughout, kept in index order
    assert borda([np.array([0, 1, 2, 3]), np.array([3, 2, 1, 0])]).tolist() == [0, 1, 2, 3]
    # a: 2 0 1 3, b: 0 2 3 1 -> points 0: 3+4=7, 1: 2+1=3, 2: 4+3=7, 3: 1+2=3 -> 0, 2 (tie), then 1, 3 (tie)
    assert borda([np.array([2, 0, 1, 3]), np.array([0, 2, 3, 1])]).tolist() == [0, 2, 1, 3]
    assert borda([np.array([3, 1, 0, 2])]).tolist() == [3, 1, 0, 2]  # one voter: its own order


def tiny_overrides(tmp_path: Path, tiny_bert: Path) -> list[str]:
    corpus = distinct_conllu(tmp_path / "tiny.conllu", n=40)
    return ["model=transformer", f"model.path={tiny_bert}", f"task.file={corpus}", "logger=none",
            f"store.root={tmp_path / 'stores'}", "progress=false", *FAST, "probe.epochs=2",
            "agreement.ks=[2,5,10,20,100]", "agreement.k_matrix=10"]


def test_method_agreement_runs_on_the_tiny_model(tmp_path: Path, tiny_bert: Path) -> None:
    out = tmp_path / "run"
    r = ns.experiment("method_agreement", methods=["lca", "probeless", "random"],
                      overrides=tiny_overrides(tmp_path, tiny_bert), output_dir=out)
    saved = json.loads((out / "results.json").read_text())
    block = saved["agreement"]
    assert saved == json.loads(json.dumps(r.results)) and saved["method"] == "method_agreement"
    assert {"model", "task", "seed", "store", "classes", "timings"} <= set(saved)
    assert saved["timings"]["total_seconds"] > 0
    n = saved["store"]["n_neurons"]
    assert block["methods"] == ["lca", "probeless", "random"] and block["consensus_methods"] == ["lca", "probeless"]
    assert block["ks"] == [2, 5, 10, 20] and block["ks_dropped"] == [100] and n < 100
    assert block["class_scores"] == {"lca": True, "probeless": True, "random": False}
    assert block["probe"]["accuracy"] > 0 and len(block["consensus"]) == 20
    for m in block["methods"]:
        for scope in ("overall", "per_class"):
            assert set(block["iou_with_consensus"][m][scope]) == {"2", "5", "10", "20"}
            assert all(0 <= v <= 1 for v in block["iou_with_consensus"][m][scope].values())
        assert set(block["layers"][m]) == set(saved["store"]["sites"])
    matrix = np.array(block["pairwise"]["iou"])
    assert matrix.shape == (3, 3) and np.allclose(np.diag(matrix), 1) and np.allclose(matrix, matrix.T)
    rows = list(csv.DictReader((out / "agreement.csv").open()))
    assert len(rows) == 3 * 2 * 4 and {r["scope"] for r in rows} == {"overall", "per_class"}
    assert (out / "agreement.png").is_file()
    page = Dom()
    dom, messages = load(out / "report.html", tmp_path / "profile")
    page.feed(dom)
    assert messages == [] and "Method agreement" in page.headings and "agreement" in page.images
    checked = tmp_path / "checked.html"
    checked.write_text((out / "report.html").read_text().replace("</body>", PROBE + "</body>"))
    assert load(checked, tmp_path / "profile2")[1] == [f"neuroscope-check: {len(page.images)} images loaded"]


def test_an_unknown_method_is_a_config_error_listing_the_known_ones(tmp_path: Path, tiny_bert: Path) -> None:
    with pytest.raises(ConfigError, match=r"methods\[1\]: unknown method 'lcaa'; known: .*probeless.*weight_norm"):
        ns.experiment("method_agreement", methods=["lca", "lcaa"], overrides=tiny_overrides(tmp_path, tiny_bert),
                      output_dir=tmp_path / "bad")
    with pytest.raises(ConfigError, match=r"agreement.exclude: leaves no method"):
        ns.experiment("method_agreement", methods=["random", "lca"],
                      overrides=[*tiny_overrides(tmp_path, tiny_bert), "agreement.exclude=[random,lca]"],
                      output_dir=tmp_path / "bad2")
