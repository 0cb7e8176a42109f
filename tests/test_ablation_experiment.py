"""The 2019 paper's experiments (`experiment=dalvi2019_nlm|nmt`) end to end on tiny checkpoints:
studies per property, a correlation ranking, ablation curves in results.json, CSV and the logger."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from neuroscope.analysis import analyze
from neuroscope.training import train
from tests.conftest import REPO
from tests.fixture_corpus import distinct_conllu
from tests.test_multi30k import tiny_multi30k

SIZES = {"nlm_lstm": ["model.emb_dim=8", "model.hidden=8"],
         "nmt_lstm": ["model.emb_dim=8", "model.hidden=6", "model.beam_size=2"]}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Two tiny checkpoints per architecture (seeds 0 and 1) on toy Multi30k, and a tiny CoNLL-U."""
    root = tmp_path_factory.mktemp("dalvi")
    data = tiny_multi30k(root / "data")
    out: dict[str, object] = {"root": root, "data": data, "corpus": distinct_conllu(root / "tiny.conllu")}
    for arch, sizes in SIZES.items():
        ckpts = []
        for seed in (0, 1):
            with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
                cfg = compose(config_name="train", overrides=[
                    f"model={arch}", "data=multi30k", f"data.root={data}", "data.download=false", "data.min_freq=1",
                    *sizes, "trainer=debug", "logger=none", f"seed={seed}", f"output_dir={root / arch / str(seed)}"])
            ckpts.append(train(cfg)["checkpoint"])
        out[arch] = ckpts
    return out


def experiment_overrides(seeds: dict[str, object], arch: str, out: Path, extra: list[str] = ()) -> list[str]:
    name = "dalvi2019_nlm" if arch == "nlm_lstm" else "dalvi2019_nmt"
    return [
        f"experiment={name}", f"checkpoints=[{','.join(seeds[arch])}]", f"data.root={seeds['data']}",
        "data.download=false", f"task.file={seeds['corpus']}", "logger=csv", f"output_dir={out}",
        f"store.root={seeds['root'] / 'stores'}", "store.progress=false",
        "probe.selection.enabled=false", "evaluation.control=false", "evaluation.layer_probes=false",
        "evaluation.random_draws=1", "ablation.shares=[0,25,50,100]", "ablation.random_draws=2", *extra]


def compose_analyze(overrides: list[str]) -> object:
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="analyze", overrides=overrides)


@pytest.mark.parametrize("arch, metric", [("nlm_lstm", "perplexity"), ("nmt_lstm", "bleu")])
def test_dalvi2019_experiment_end_to_end(seeds: dict[str, object], tmp_path: Path, arch: str, metric: str) -> None:
    out = tmp_path / "run"
    res = analyze(compose_analyze(experiment_overrides(seeds, arch, out)))
    saved = json.loads((out / "results.json").read_text())
    assert saved["ablation"] == json.loads(json.dumps(res["ablation"]))
    block = saved["ablation"]
    assert block["metric"] == metric and block["mode"] == "zero" and block["where"] == "output"
    names = {"lca_upos", "lca_xpos", "lca_deprel", "lca_morph_Number", "lca_suffix", "maxcorr"}
    assert set(saved["studies"]) == names
    for name in names:  # every study is a full results.json of its own
        study = json.loads((out / "studies" / name / "results.json").read_text())
        assert len(study["ranking"]) == study["store"]["n_neurons"] == block["n_neurons"]
        if name.startswith("lca_"):  # each study keeps its own oracle probe
            assert study["probe"]["saved"] == str(out / "studies" / name / "probe.safetensors")
            assert (out / "studies" / name / "probe.json").exists()
    assert not (out / "probe.safetensors").exists()
    arms = {f"{n}_{side}" for n in names for side in ("top", "bottom")} | {"random", "bottom"}
    assert set(block["curves"]) == arms and block["shares"] == ["0", "25", "50", "100"]
    for curve in block["curves"].values():
        assert curve["0"] == block["baseline"]
    at_100 = {c["100"] for c in block["curves"].values()}  # every arm silences every neuron there
    assert len(at_100) == 1 and block["random_sd"]["100"] == 0
    if metric == "perplexity":
        assert at_100.pop() > block["baseline"]
    rows = list(csv.DictReader((out / "ablation.csv").open()))
    assert {r["arm"] for r in rows} == arms and len(rows) == len(arms) * 4
    metrics = list((out / "csv").rglob("metrics.csv"))
    assert metrics and "ablation/baseline" in metrics[0].read_text().splitlines()[0]


def test_all_units_silenced_in_the_lm_is_worse_than_none(seeds: dict[str, object], tmp_path: Path) -> None:
    res = analyze(compose_analyze(experiment_overrides(seeds, "nlm_lstm", tmp_path / "r", [
        "ablation.properties=[{name: upos}]", "ablation.correlation=[]", "ablation.where=recurrent",
        "ablation.mode=mean", "logger=wandb"])))
    block = res["ablation"]
    runs = list((tmp_path / "r" / "wandb").glob("offline-run-*"))  # the curves' chart and table went to W&B
    assert len(runs) == 1 and any(runs[0].rglob("*.wandb"))
    assert block["where"] == "recurrent" and block["mode"] == "mean"
    assert block["curves"]["lca_upos_top"]["100"] > block["baseline"]  # perplexity rises


def test_experiment_without_checkpoints_is_a_clear_error(seeds: dict[str, object], tmp_path: Path) -> None:
    args = [a for a in experiment_overrides(seeds, "nlm_lstm", tmp_path / "e") if not a.startswith("checkpoints")]
    proc = subprocess.run([sys.executable, "analyze.py", *args], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and "checkpoints" in proc.stderr and "Traceback" not in proc.stderr
    bad = experiment_overrides(seeds, "nlm_lstm", tmp_path / "e2", ["ablation.where=inside"])
    bad = [a if not a.startswith("checkpoints") else "checkpoints=[nowhere.ckpt]" for a in bad]
    proc = subprocess.run([sys.executable, "analyze.py", *bad], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and "ablation.where" in proc.stderr and "nowhere.ckpt" in proc.stderr
    assert not (tmp_path / "e2" / "results.json").exists()
