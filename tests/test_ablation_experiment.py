"""The 2019 paper's experiments (`experiment=dalvi2019_nlm|nmt`) end to end on tiny checkpoints:
studies per property, a correlation ranking, ablation curves in results.json, CSV and the logger."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from neuroscope.analysis import analyze
from neuroscope.errors import ConfigError
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
    assert block["metric"] == metric and block["modes"] == ["zero", "mean"] and block["where"] == "output"
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
    assert set(block["curves"]) == {"zero", "mean"} and block["shares"] == ["0", "25", "50", "100"]
    for mode in ("zero", "mean"):  # both modes from one run, each arm under each
        curves = block["curves"][mode]
        assert set(curves) == arms and all(curve["0"] == block["baseline"] for curve in curves.values())
        at_100 = {c["100"] for c in curves.values()}  # every arm silences every neuron there
        assert len(at_100) == 1 and block["random_sd"][mode]["100"] == 0
        if metric == "perplexity" and mode == "zero":
            assert at_100.pop() > block["baseline"]
    stats = block["silenced_stats"]  # what each silenced set is made of, from the study's store
    assert set(stats) == arms and {"offset", "mean_square"} == set(stats["random"]["50"])
    assert stats["lca_upos_top"]["100"] == stats["lca_upos_bottom"]["100"]  # all neurons either way
    rows = list(csv.DictReader((out / "ablation.csv").open()))
    assert {r["arm"] for r in rows} == arms and len(rows) == len(arms) * 4 * 2
    assert {r["mode"] for r in rows} == {"zero", "mean"}
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
    args.append(f"hydra.run.dir={tmp_path / 'e'}")  # Hydra's run folder too (not the repo's outputs/)
    proc = subprocess.run([sys.executable, "analyze.py", *args], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and "checkpoints" in proc.stderr and "Traceback" not in proc.stderr
    bad = experiment_overrides(seeds, "nlm_lstm", tmp_path / "e2", ["ablation.where=inside"])
    bad = [a if not a.startswith("checkpoints") else "checkpoints=[nowhere.ckpt]" for a in bad]
    bad.append(f"hydra.run.dir={tmp_path / 'e2'}")
    proc = subprocess.run([sys.executable, "analyze.py", *bad], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and "ablation.where" in proc.stderr and "nowhere.ckpt" in proc.stderr
    assert not (tmp_path / "e2" / "results.json").exists()


def test_numeric_property_uses_r2_end_to_end(seeds: dict[str, object], tmp_path: Path) -> None:
    """A numeric property (depth: regression probe, R²) beside a labelled one in the 2019 experiment."""
    out = tmp_path / "run"
    res = analyze(compose_analyze(experiment_overrides(seeds, "nlm_lstm", out, [
        "ablation.properties=[{name: upos},{name: depth}]", "ablation.correlation=[]", "ablation.random_draws=1"])))
    depth = res["studies"]["lca_depth"]
    assert depth["task"] == "depth" and "oracle_accuracy" not in depth
    study = json.loads((out / "studies" / "lca_depth" / "results.json").read_text())
    assert study["metric"] == "r2" and depth["oracle_r2"] == study["oracle"]["r2"]
    assert depth["top_r2"] == study["subsets"]["top"][depth["percent"]]["r2"]
    assert "oracle_accuracy" in res["studies"]["lca_upos"]
    assert set(res["ablation"]["curves"]["zero"]) >= {"lca_depth_top", "lca_depth_bottom", "lca_upos_top", "random"}


def test_each_study_is_written_when_it_ends(seeds: dict[str, object], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The second study fails: the first one's results.json and tables are on disk already."""
    import neuroscope.experiments.dalvi2019 as analysis

    real, calls = analysis.study, []

    def second_fails(*args: object, **kwargs: object) -> dict:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the second study broke")
        return real(*args, **kwargs)

    monkeypatch.setattr(analysis, "study", second_fails)
    out = tmp_path / "run"
    cfg = compose_analyze(experiment_overrides(seeds, "nlm_lstm", out, [
        "ablation.properties=[{name: upos},{name: xpos}]", "ablation.correlation=[]"]))
    with pytest.raises(RuntimeError, match="second study"):
        analyze(cfg)
    first = out / "studies" / "lca_upos"
    assert json.loads((first / "results.json").read_text())["task"] == "upos"
    assert (first / "ranking.csv").exists() and not (out / "studies" / "lca_xpos").exists()


def _neurons(seeds: dict[str, object]) -> list[str]:
    """Every neuron id of the studied tiny LM, by its hook points."""
    from neuroscope.ablation.sites import hook_points
    from neuroscope.experiments.dalvi2019 import lightning_module

    points = hook_points(lightning_module({"name": "nlm_lstm", "checkpoint": seeds["nlm_lstm"][0]}))
    return [f"{site}:{u}" for site, p in points.items() for u in range(p.width)]


def test_given_rankings_of_two_lengths_in_both_override_forms(seeds: dict[str, object], tmp_path: Path) -> None:
    """`ablation.rankings={x: ...}` and `+ablation.rankings.x=...` both work; a 4-id ranking beside the
    16-neuron study ranking silences 2 neurons at 50 % and gets its own random arm."""
    neurons = _neurons(seeds)
    full = tmp_path / "full.json"
    full.write_text(json.dumps(neurons[::-1]))  # a plain JSON list of ids
    short = json.dumps(neurons[:4])
    cfg = compose_analyze(experiment_overrides(seeds, "nlm_lstm", tmp_path / "a", [
        f"ablation.rankings={{full: {full}, short: {short}}}"]))  # the whole dict (struct would refuse it)
    assert dict(cfg.ablation.rankings) == {"full": str(full), "short": neurons[:4]}
    out = tmp_path / "run"
    res = analyze(compose_analyze(experiment_overrides(seeds, "nlm_lstm", out, [
        "ablation.properties=[{name: upos}]", "ablation.correlation=[]", f"+ablation.rankings.full={full}",
        f"+ablation.rankings.short={short}", "ablation.shares=[0,50]"])))
    block = res["ablation"]
    n = len(neurons)
    assert block["n_neurons"] == n and block["neurons_silenced"]["50"] == n // 2  # the first (study) ranking's
    assert block["silenced"]["short_top"]["50"] == block["silenced"]["random_n4"]["50"] == 2
    assert block["silenced"]["full_top"]["50"] == block["silenced"]["random"]["50"] == n // 2
    assert block["random_by_length"]["zero"]["random_n4"]["n_neurons"] == 4  # per mode (zero, mean)
    rows = {(r["arm"], r["percent_ablated"]): r for r in csv.DictReader((out / "ablation.csv").open())}
    assert rows[("short_top", "50")]["n_silenced"] == "2" and rows[("full_top", "50")]["n_silenced"] == str(n // 2)


@pytest.mark.parametrize("ranking, message", [
    ("3", "holds a JSON int"),
    ("[1, 2]", "entry 0 is 1, not a neuron id"),
    ('"layer"', "holds a JSON str"),
    ('{"ranking": "lm.l0:1"}', "`ranking`: expected a non-empty list of neuron ids"),
    ('["lm.l0:1", "lm.l0:1"]', "appears twice"),
    ('["lm.l9:0"]', "neuron 'lm.l9:0' names no site of the model"),
    ('["lm.l0:99"]', "unit out of range"),
])
def test_rankings_are_checked_before_any_study(seeds: dict[str, object], tmp_path: Path, ranking: str,
                                               message: str) -> None:
    bad = tmp_path / "ranking.json"
    bad.write_text(ranking)
    out = tmp_path / "run"
    cfg = compose_analyze(experiment_overrides(seeds, "nlm_lstm", out, [f"+ablation.rankings.mine={bad}",
                                                                         f"store.root={tmp_path / 'stores'}"]))
    with pytest.raises(ConfigError, match=re.escape("ablation.rankings.mine: ") + ".*" + re.escape(message)):
        analyze(cfg)
    assert not (out / "studies").exists() and not (tmp_path / "stores").exists()


@pytest.mark.parametrize("extra, message", [
    (["ablation.mode=patch"], "ablation.mode: expected zero or mean, got 'patch'"),
    (["ablation.mode=mean", "ablation.properties=[]", "+ablation.rankings.x=[lm.l0:0]"],
     "ablation.mode: mean takes each neuron's mean from a study's store"),
    (["ablation.properties=[{name: upos},{name: nope}]"], "ablation.properties[1].name: unknown task 'nope'"),
    (["ablation.correlation=[maxcor]"], "ablation.correlation[0]: unknown method 'maxcor'"),
    (["+ablation.decoding.beam=1"], "ablation.decoding.beam: not a setting of nlm_lstm"),
])
def test_experiment_settings_fail_before_any_work(seeds: dict[str, object], tmp_path: Path, extra: list[str],
                                                  message: str) -> None:
    out = tmp_path / "run"
    cfg = compose_analyze(experiment_overrides(seeds, "nlm_lstm", out, [*extra, f"store.root={tmp_path / 's'}"]))
    with pytest.raises(ConfigError, match=re.escape(message)):
        analyze(cfg)
    assert not (out / "studies").exists() and not (tmp_path / "s").exists()


def test_patch_mode_is_refused_by_the_experiment_itself(seeds: dict[str, object], tmp_path: Path) -> None:
    from neuroscope.experiments.dalvi2019 import run_experiment

    cfg = compose_analyze(experiment_overrides(seeds, "nlm_lstm", tmp_path / "r", ["ablation.mode=patch"]))
    with pytest.raises(ConfigError, match="ablation.mode: an experiment silences with zero or mean"):
        run_experiment(cfg, tmp_path / "r")


def test_a_bad_checkpoint_is_named_by_its_index_in_one_line(seeds: dict[str, object], tmp_path: Path) -> None:
    notes = tmp_path / "notes.ckpt"
    notes.write_text("these are notes, not a checkpoint\n")
    nmt = seeds["nmt_lstm"][0]
    for bad, message in ((notes, "cannot be loaded as a safe torch checkpoint"), (nmt, "holds a 'nmt_lstm' model")):
        out = tmp_path / f"run_{len(message)}"
        args = [a if not a.startswith("checkpoints=") else f"checkpoints=[{seeds['nlm_lstm'][0]},{bad}]"
                for a in experiment_overrides(seeds, "nlm_lstm", out, [f"store.root={tmp_path / 's'}"])]
        with pytest.raises(ConfigError) as info:
            analyze(compose_analyze(args))
        assert str(info.value).startswith(f"checkpoints[1]: {bad} ") and message in str(info.value)
        assert "\n" not in str(info.value) and "model.checkpoint" not in str(info.value)
        assert not (out / "studies").exists() and not (tmp_path / "s").exists()


def test_sae_latents_are_ranked_and_silenced_inside_the_lm(seeds: dict[str, object], tmp_path: Path) -> None:
    """model.sae on lm.l1: the study ranks neurons and latents together, and the ablation silences
    latents through the SAE (the metric moves off its baseline)."""
    from neuroscope.sae.model import SparseAutoencoder
    from neuroscope.sae.saelens import save_sae

    folder = save_sae(SparseAutoencoder(8, 24, "topk", k=3, seed=0), tmp_path / "sae", {"hook_name": "lm.l1"})
    res = analyze(compose_analyze(experiment_overrides(seeds, "nlm_lstm", tmp_path / "r", [
        "ablation.properties=[{name: upos}]", "ablation.correlation=[]", f"+model.sae={{lm.l1: {folder}}}"])))
    study = json.loads((tmp_path / "r" / "studies" / "lca_upos" / "results.json").read_text())
    assert study["store"]["sites"] == ["lm.l0", "lm.l1", "lm.l1.sae"] and study["store"]["n_neurons"] == 16 + 24
    assert any(n.startswith("lm.l1.sae:") for n in study["ranking"])
    block = res["ablation"]
    for mode in ("zero", "mean"):
        assert block["curves"][mode]["lca_upos_top"]["50"] != block["baseline"]
    splice = block["sae"]["lm.l1"]  # the LM with lm.l1 replaced by the SAE's reconstruction, and zeroed
    assert splice["spliced"] != block["baseline"] and splice["site_zeroed"] != block["baseline"]
    gap = splice["site_zeroed"] - block["baseline"]
    assert splice["recovered"] == pytest.approx((splice["site_zeroed"] - splice["spliced"]) / gap)
