"""features_vs_neurons end to end on the tiny model: a site's neurons and two SAEs' latents are
studied per property and set side by side; table, figure and per-study results are written."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

import neuroscope as ns
from neuroscope.errors import ConfigError
from neuroscope.experiments.features_vs_neurons import compare
from neuroscope.sae.model import SparseAutoencoder
from neuroscope.sae.saelens import save_sae
from tests.conftest import tiny_conllu
from tests.test_api import FAST


def test_comparison_says_whether_a_difference_exceeds_the_seed_spread() -> None:
    sides = {"neurons": {"oracle": .80, "minimal_share": .5, "k_sparse_f1": {"1": .3}},
             "sae0": {"oracle": .90, "minimal_share": .49, "k_sparse_f1": {"1": .5}},
             "sae1": {"oracle": .92, "minimal_share": .53, "k_sparse_f1": {"1": .7}}}
    c = compare(sides)
    assert c["oracle"]["latents"] == pytest.approx(.91) and c["oracle"]["exceeds_spread"] is True
    assert c["minimal_share"]["exceeds_spread"] is False  # .51 ± .028 vs .5
    assert c["k_sparse_f1"]["1"]["neurons"] == .3 and c["k_sparse_f1"]["1"]["latents_mean"] == pytest.approx(.6)


def test_features_vs_neurons_runs_on_the_tiny_model(tmp_path: Path, tiny_bert: Path) -> None:
    saes = []
    for seed in (0, 1):
        folder = tmp_path / f"sae{seed}"
        save_sae(SparseAutoencoder(16, 48, "topk", k=4, seed=seed), folder, {"hook_name": "layer2"})
        saes.append(str(folder))
    overrides = ["model=transformer", f"model.path={tiny_bert}", f"task.file={tiny_conllu(tmp_path / 't.conllu')}",
                 "logger=none", f"store.root={tmp_path / 'stores'}", "progress=false", *FAST,
                 "features.site=layer2", f"features.saes=[{saes[0]},{saes[1]}]",
                 "features.properties=[{name: upos}]", "evaluation.k_sparse=[1,2]"]
    r = ns.experiment("features_vs_neurons", overrides=overrides, output_dir=tmp_path / "run")
    block = r.results["features"]
    sides = block["properties"]["upos"]["sides"]
    assert list(sides) == ["neurons", "sae0", "sae1"]
    assert sides["neurons"]["n_units"] == 16 and sides["sae0"]["n_units"] == 48
    for s in sides.values():
        assert 0 < s["oracle"] <= 1 and set(s["k_sparse_f1"]) == {"1", "2"}
        assert 0 <= s["monosemantic_share"] <= 1
    sae_study = json.loads((tmp_path / "run" / "studies" / "sae1" / "upos" / "results.json").read_text())
    assert sae_study["store"]["sites"] == ["layer2.sae"] and sae_study["ranking"][0].startswith("layer2.sae:")
    rows = list(csv.DictReader((tmp_path / "run" / "features.csv").open()))
    assert [row["side"] for row in rows] == ["neurons", "sae0", "sae1"]
    assert (tmp_path / "run" / "features.png").is_file()
    with pytest.raises(ConfigError, match=r"features.saes\[0\]: .* is not an SAE folder"):
        ns.experiment("features_vs_neurons", overrides=[*overrides[:-3], f"features.saes=[{tmp_path}]"],
                      output_dir=tmp_path / "bad")
