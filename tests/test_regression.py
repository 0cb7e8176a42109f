"""The regression probe for numeric tasks: a planted linear neuron is recovered (R² > .95) and
ranked first, end to end through a numeric task (`depth`) and analyze."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from neuroscope.analysis import analyze
from neuroscope.errors import ConfigError
from neuroscope.probes import ProbeConfig
from neuroscope.probes.regression import fit_regression, regression_scores
from neuroscope.tasks import load_task
from tests.conftest import TINY_CONLLU
from tests.test_entrypoints import compose_analyze


def test_planted_linear_neuron_is_recovered_and_ranks_first() -> None:
    g = np.random.default_rng(0)
    x = g.normal(size=(3000, 40)).astype(np.float32)
    y = 3.0 * x[:, 7] - 2.0 + 0.1 * g.normal(size=3000)
    model, info = fit_regression(x[:2000], y[:2000], ProbeConfig(lambda1=1e-3, lambda2=1e-4), (x[2000:2500], y[2000:2500]))
    scores = regression_scores(model.predict(x[2500:]), y[2500:])
    assert scores["r2"] > 0.95 and scores["pearson"] > 0.97 and info["best_epoch"] >= 0
    assert int(np.argmax(np.abs(model.weight))) == 7
    assert regression_scores(y, y)["r2"] == 1.0


def test_depth_task_counts_edges_to_the_root(tmp_path: Path) -> None:
    corpus = load_task({"name": "depth", "file": str(tmp_path / "t.conllu"), "params": {}} if
                       (tmp_path / "t.conllu").write_text(TINY_CONLLU * 5) else {}, None)
    assert corpus.classes == [] and corpus.info["kind"] == "regression"
    # The(2) cats(3) sleep(root) . (3): depths 3, 2, 1, 2
    np.testing.assert_array_equal(corpus.values[:4], [3.0, 2.0, 1.0, 2.0])
    with pytest.raises(ConfigError, match="numeric"):
        load_task({"name": "depth", "file": str(tmp_path / "t.conllu"), "control": True}, None)


class DepthNeurons:
    """A neuron source whose unit 2 of `layer1` is the word's syntactic depth (looked up by word)."""

    def __init__(self, depth: dict[str, float]) -> None:
        self.sites, self.units, self.depth = ["embeddings", "layer1"], {"embeddings": 4, "layer1": 4}, depth

    def fingerprint(self) -> dict:
        return {"fake": "depth"}

    def extract(self, sentences: list[list[str]]) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(len(sentences))
        n = sum(len(s) for s in sentences)
        emb, l1 = torch.randn(n, 4, generator=g), torch.randn(n, 4, generator=g)
        l1[:, 2] = torch.tensor([self.depth[w] for s in sentences for w in s]) + 0.01 * torch.randn(n, generator=g)
        return {"embeddings": emb, "layer1": l1}


def depth_plugin_and_corpus(tmp_path: Path) -> Path:
    """A `depth_fake` model plugin under tmp_path/plugins (its layer1:2 carries each word's depth) and
    a CoNLL-U corpus; returns the corpus file."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "depth_model.py").write_text(
        "from neuroscope.registry import MODELS\n"
        "from tests.test_regression import DepthNeurons\n"
        "MODELS.register('depth_fake')(lambda **kw: DepthNeurons({'The': 3.0, 'cats': 2.0, 'sleep': 1.0, '.': 2.0, "
        "'A': 4.0, 'dog': 3.0, 'ca': 2.0, \"n't\": 2.0, 'run': 1.0}))\n")
    corpus = tmp_path / "t.conllu"
    corpus.write_text(TINY_CONLLU * 30)
    return corpus


def test_analyze_runs_the_regression_protocol_on_depth(tmp_path: Path) -> None:
    corpus = depth_plugin_and_corpus(tmp_path)
    cfg = compose_analyze(["model.name=depth_fake", "task=depth", f"task.file={corpus}", "logger=none",
                           "report=none", f"store.root={tmp_path / 'stores'}", f"output_dir={tmp_path / 'out'}",
                           f"plugins.dirs=[{tmp_path / 'plugins'}]", "store.progress=false", "evaluation.control=false",
                           "evaluation.random_draws=2", "probe.selection.grid=[1e-4,1e-3]", "probe.batch_size=16"])
    res = analyze(cfg)
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert saved["metric"] == "r2" and res["ranking"][0] == "layer1:2"
    assert saved["oracle"]["r2"] > 0.95 and saved["subsets"]["top"]["1"]["r2"] > 0.95
    assert saved["subsets"]["bottom"]["50"]["r2"] < 0.5 and saved["subsets"]["random"]["1"]["draws"] == 2
    assert saved["layers"]["layer1"]["top_share"] > 0 and "r2" in saved["layers"]["embeddings"]
    assert [r["chosen"] for r in saved["lambda_search"]].count(True) == 1
    assert (tmp_path / "out" / "subsets.csv").read_text().startswith("kind,percent,n_neurons,r2")
    from neuroscope.reporting.report import run_report
    from neuroscope.reporting.summary import summary_sections

    _, figures = run_report(saved, tmp_path / "report")  # figures and summary read R² where accuracy would be
    assert {"subsets", "layers"} <= set(figures)
    assert any("R²" in title for title, _, _ in summary_sections(saved))


def test_depth_saves_its_regression_probe_and_probe_load_scores_it_instead_of_training(tmp_path: Path) -> None:
    """probe.save on a numeric task keeps the regression probe; probe.load evaluates it (the oracle's
    test R² on the same corpus) and trains nothing; a classifier for a numeric task and a regression
    probe for classes are `probe.load` errors."""
    corpus = depth_plugin_and_corpus(tmp_path)
    common = ["model.name=depth_fake", f"task.file={corpus}", "logger=none", "report=none", "store.progress=false",
              f"store.root={tmp_path / 'stores'}", f"plugins.dirs=[{tmp_path / 'plugins'}]", "evaluation.control=false",
              "evaluation.random_draws=1", "evaluation.layer_probes=false", "probe.selection.enabled=false",
              "probe.batch_size=16"]
    first = analyze(compose_analyze([*common, "task=depth", f"output_dir={tmp_path / 'train'}"]))
    saved = tmp_path / "train" / "probe.safetensors"
    assert first["probe"]["saved"] == str(saved)
    meta = json.loads((tmp_path / "train" / "probe.json").read_text())
    assert meta["kind"] == "regression" and meta["test_r2"] == first["oracle"]["r2"] and meta["model_fingerprint"]
    res = analyze(compose_analyze([*common, "task=depth", f"probe.load={saved}", f"output_dir={tmp_path / 'load'}"]))
    loaded = res["loaded_probe"]
    assert "subsets" not in res and "oracle" not in res  # nothing trained
    assert loaded["test"]["n_tokens"] == first["split"]["test"]
    assert loaded["test"]["r2"] == pytest.approx(first["oracle"]["r2"], abs=1e-9) and loaded["test"]["r2"] > 0.95
    assert loaded["test"]["pearson"] == pytest.approx(first["oracle"]["pearson"], abs=1e-9)
    with pytest.raises(ConfigError, match=r"probe.load: .*probe.safetensors is a regression probe .*task 'upos'"):
        analyze(compose_analyze([*common, "task=upos", f"probe.load={saved}", f"output_dir={tmp_path / 'bad1'}"]))
    analyze(compose_analyze([*common, "task=upos", f"output_dir={tmp_path / 'upos'}"]))
    classifier = tmp_path / "upos" / "probe.safetensors"
    with pytest.raises(ConfigError, match=r"probe.load: .*probe.safetensors is a classifier probe .*task 'depth'"):
        analyze(compose_analyze([*common, "task=depth", f"probe.load={classifier}", f"output_dir={tmp_path / 'bad2'}"]))
