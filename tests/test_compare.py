"""The before/after comparison (Durrani et al. 2022, fine-tuning): known answers on synthetic study
results and statistics, and `analyze.py experiment=durrani2022_finetune` end to end on tiny BERTs."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from neuroscope.analysis import analyze
from neuroscope.errors import ConfigError
from neuroscope.evaluation.compare import compare_studies, mean_depth, movement, site_depth
from neuroscope.methods.correlation import ArraySource, best_partners, pair_stats
from tests.conftest import REPO
from tests.fixture_corpus import distinct_conllu


def fake_study(ranking: list[str], sites: list[str], oracle: float, minimal: int) -> dict:
    return {"ranking": ranking, "store": {"sites": sites}, "oracle": {"accuracy": oracle},
            "minimal_subset": {"n_neurons": minimal, "share": minimal / len(ranking), "accuracy": oracle - 0.01},
            "layers": {s: {"accuracy": 0.5, "top_share": 0.5, "n_neurons": 2} for s in sites}}


def test_depths_shared_neurons_and_shift_on_known_rankings() -> None:
    sites = ["embeddings", "layer1", "layer2", "layer3"]
    assert [site_depth(s, sites) for s in sites] == [0, 1, 2, 3]
    assert site_depth("layer2.mlp", sites) == 2 and site_depth("lm.l1", ["lm.l0", "lm.l1"]) == 1
    neurons = [f"{s}:{u}" for s in sites for u in range(5)]  # 20 neurons
    before = ["layer3:0", "layer3:1"] + [n for n in neurons if n not in ("layer3:0", "layer3:1")]
    after = ["layer1:0", "layer3:0"] + [n for n in neurons if n not in ("layer1:0", "layer3:0")]
    assert mean_depth(before, sites, 10) == 3.0 and mean_depth(after, sites, 10) == 2.0
    partner = {"layer3:0": "layer3:0", "layer3:1": "layer1:0"}
    out = compare_studies(fake_study(before, sites, 0.9, 4), fake_study(after, sites, 0.8, 6), 10, partner)
    assert out["mean_depth"] == {"before": 3.0, "after": 2.0, "shift": -1.0}
    assert out["shared_top"]["same_neurons"] == 1 and out["shared_top"]["jaccard"] == pytest.approx(1 / 3)
    assert out["shared_top"]["chance"] == pytest.approx(2 * 2 / 20) and out["shared_top"]["partner_in_top"] == 2
    assert out["oracle"] == {"before": 0.9, "after": 0.8}
    assert out["minimal_subset"]["after"]["n_neurons"] == 6
    assert out["layers"]["layer2"]["before"] == {"accuracy": 0.5, "top_share": 0.5}


def test_movement_separates_kept_and_rewritten_sites() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 6))  # sites a (units 0-2) and b (units 3-5)
    y = x.copy()
    y[:, 3:] = rng.normal(size=(4000, 3))  # site b rewritten, site a kept (up to scale)
    y[:, :3] *= 2.0
    stats = pair_stats(ArraySource(x), [ArraySource(y)])[0]
    store = SimpleNamespace(sites=["a", "b"], neuron_index=lambda s: np.arange(3) + (3 if s == ["b"] else 0))
    moved = movement(stats, store, *best_partners(stats))
    assert moved["a"]["self_r"] == pytest.approx(1.0) and moved["a"]["self_is_partner"] == 1.0
    assert moved["a"]["linear_cka"] == pytest.approx(1.0)
    assert abs(moved["b"]["self_r"]) < 0.1 and moved["b"]["linear_cka"] < 0.05


def _perturbed_copy(src: Path, dst: Path, scale: float) -> Path:
    """A copy of a tiny BERT whose last layer's feed-forward output and its norm's gains are replaced by noise."""
    import torch
    from transformers import AutoModel

    shutil.copytree(src, dst)
    model = AutoModel.from_pretrained(dst)
    if scale:
        torch.manual_seed(1)
        with torch.no_grad():
            out = model.encoder.layer[-1].output
            out.dense.weight.copy_(torch.randn_like(out.dense.weight) * scale)
            out.LayerNorm.weight.copy_(torch.randn_like(out.LayerNorm.weight))  # random gains and signs
    model.save_pretrained(dst)
    return dst


def _compose(extra: list[str]) -> object:
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="analyze", overrides=extra)


def _overrides(tmp_path: Path, bert: Path, after: Path, out: Path) -> list[str]:
    corpus = distinct_conllu(tmp_path / "tiny.conllu")
    return ["experiment=durrani2022_finetune", "model=transformer", f"model.path={bert}", f"finetuned={after}",
            f"task.file={corpus}", "comparison.tasks=[{name: upos},{name: xpos}]", "logger=none", "report=none",
            f"store.root={tmp_path / 'stores'}", f"output_dir={out}", "store.progress=false",
            "evaluation.control=false", "evaluation.random_draws=1", "evaluation.percents=[10,50]",
            "evaluation.layer_top_percent=10"]


def test_comparison_of_a_model_with_itself_and_with_a_changed_copy(tmp_path: Path, tiny_bert: Path) -> None:
    same = _perturbed_copy(tiny_bert, tmp_path / "same", 0.0)
    out = tmp_path / "run_same"
    with_report = [o for o in _overrides(tmp_path, tiny_bert, same, out) if o != "report=none"]
    res = analyze(_compose(with_report))
    assert res["method"] == "comparison" and set(res["comparison"]["tasks"]) == {"upos", "xpos"}
    upos = res["comparison"]["tasks"]["upos"]
    assert upos["mean_depth"]["shift"] == 0.0 and upos["oracle"]["before"] == upos["oracle"]["after"]
    assert upos["shared_top"]["same_neurons"] == upos["shared_top"]["n_top"]["before"]
    sites = res["comparison"]["correlation"]["sites"]
    assert all(v["self_r"] == pytest.approx(1.0) for v in sites.values())
    for side in ("before", "after"):
        saved = json.loads((out / "studies" / side / "upos" / "results.json").read_text())
        assert saved["task"] == "upos" and "layers" in saved and "minimal_subset" in saved
    assert json.loads((out / "results.json").read_text())["comparison"]["top_percent"] == 10
    with open(out / "comparison.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["task"] for r in rows] == ["upos", "xpos"]
    assert (out / "comparison_layers.csv").exists() and (out / "comparison_sites.csv").exists()
    assert (out / "comparison.png").stat().st_size > 0
    page = (out / "report.html").read_text()
    assert "before → after (top 10 %)" in page and "how far each site" in page

    changed = _perturbed_copy(tiny_bert, tmp_path / "changed", 1.0)
    res = analyze(_compose(_overrides(tmp_path, tiny_bert, changed, tmp_path / "run_changed")))
    sites = res["comparison"]["correlation"]["sites"]
    assert sites["layer1"]["self_r"] == pytest.approx(1.0)  # untouched below the change
    assert sites["layer2"]["self_r"] < 0.5  # the rewritten feed-forward moved the last layer
    assert sites["layer2"]["linear_cka"] < sites["layer1"]["linear_cka"]


def test_comparison_needs_the_finetuned_model(tmp_path: Path, tiny_bert: Path) -> None:
    cfg = _compose(_overrides(tmp_path, tiny_bert, tmp_path / "nowhere", tmp_path / "run"))
    with pytest.raises(ConfigError, match="finetuned: .*nowhere does not exist"):
        analyze(cfg)


def test_comparison_of_a_numeric_property_uses_r2(tmp_path: Path, tiny_bert: Path) -> None:
    """depth (a regression probe, R²) beside upos: the comparison reads each study's score, and the
    terminal summary, tables and figure of the run are made (report on)."""
    same = _perturbed_copy(tiny_bert, tmp_path / "same", 0.0)
    out = tmp_path / "run"
    args = [o if not o.startswith("comparison.tasks") else "comparison.tasks=[{name: upos},{name: depth}]"
            for o in _overrides(tmp_path, tiny_bert, same, out) if o != "report=none"]
    res = analyze(_compose(args))
    depth, upos = res["comparison"]["tasks"]["depth"], res["comparison"]["tasks"]["upos"]
    before = json.loads((out / "studies" / "before" / "depth" / "results.json").read_text())
    assert depth["metric"] == "r2" and upos["metric"] == "accuracy"
    assert depth["oracle"] == {"before": before["oracle"]["r2"], "after": before["oracle"]["r2"]}  # same model
    assert depth["layers"]["layer1"]["before"]["r2"] == before["layers"]["layer1"]["r2"]
    assert res["studies"]["before/depth"]["oracle_r2"] == before["oracle"]["r2"]
    assert (out / "comparison.csv").exists() and (out / "report.html").exists()
