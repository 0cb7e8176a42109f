"""Saved probes: save → load → identical predictions; clear errors for missing neurons, other
classes, foreign files; a study saves its oracle probe and `probe.load` evaluates it elsewhere."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuroscope.errors import ConfigError
from neuroscope.probes import ArrayChunks, ProbeConfig, fit_probe
from neuroscope.probes.saved import load_probe, save_probe
from neuroscope.store import extract
from tests.conftest import REPO, TINY_CONLLU, tiny_conllu
from tests.fakes import HashNeurons
from tests.fixture_corpus import distinct_conllu

SENTENCES = [["the", "cat", "sat"], ["a", "dog", "ran", "far"], ["cats", "sat"]] * 5


@pytest.fixture()
def trained(tmp_path: Path) -> dict:
    store, _ = extract(HashNeurons(units=4), SENTENCES, tmp_path / "stores", shard_tokens=7, progress=False)
    x = store.read()  # [tokens, 8]
    y = (x[:, 3] > 0).astype(np.int64)  # planted: neuron embeddings:3 decides the class
    probe, _ = fit_probe(ArrayChunks(x, y), 2, ProbeConfig(epochs=60, batch_size=8, lr_decay=1.0, lambda1=1e-4, lambda2=1e-4))
    return {"store": store, "x": x, "y": y, "probe": probe, "dir": tmp_path}


def test_save_load_predicts_identically(trained: dict) -> None:
    path = save_probe(trained["probe"], trained["dir"] / "p", ["neg", "pos"], trained["store"].neurons,
                      seed=0, lambda1=1e-4)
    saved = load_probe(path)
    assert saved.classes == ["neg", "pos"] and saved.meta["lambda1"] == 1e-4
    want = trained["probe"].logits(trained["x"]).argmax(1)
    np.testing.assert_array_equal(saved.predict(trained["store"]), want)
    res = saved.evaluate(trained["store"], trained["y"], ["neg", "pos"])
    assert res["accuracy"] == pytest.approx(float((want == trained["y"]).mean())) and res["accuracy"] > 0.95
    assert load_probe(trained["dir"] / "p.json").classes == ["neg", "pos"]  # either file names the probe
    assert not list(trained["dir"].glob(".*tmp"))


def test_loading_fails_clearly(trained: dict, tmp_path: Path) -> None:
    path = save_probe(trained["probe"], tmp_path / "p", ["neg", "pos"], trained["store"].neurons)
    saved = load_probe(path)
    other, _ = extract(HashNeurons(sites=("embeddings",), units=4), SENTENCES, tmp_path / "s2", progress=False)
    with pytest.raises(ConfigError, match=r"does not have.*layer1:0"):
        saved.predict(other)
    with pytest.raises(ConfigError, match=r"class\(es\) \['NOUN'\]"):
        saved.evaluate(trained["store"], trained["y"], ["neg", "NOUN"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_probe(tmp_path / "nothing.safetensors")
    (tmp_path / "bad.safetensors").write_bytes(b"not a tensor file")
    (tmp_path / "bad.json").write_text(json.dumps({"format": 1, "classes": [], "neurons": []}))
    with pytest.raises(ConfigError, match="not a saved probe"):
        load_probe(tmp_path / "bad.safetensors")


def test_a_study_saves_its_probe_and_probe_load_evaluates_it_on_another_corpus(tmp_path: Path, tiny_bert: Path) -> None:
    train_corpus = tiny_conllu(tmp_path / "a.conllu")
    other = tmp_path / "b.conllu"
    other.write_text(TINY_CONLLU.replace("cats", "dogs").replace("sleep", "nap") * 3)
    common = ["model=transformer", f"model.path={tiny_bert}", "logger=none", "store.progress=false",
              "report=none", f"store.root={tmp_path / 'stores'}"]
    fast = ["probe.selection.enabled=false", "evaluation.control=false", "evaluation.random_draws=1",
            "evaluation.layer_probes=false"]
    run = lambda *args: subprocess.run([sys.executable, "analyze.py", *common, *args], cwd=REPO,  # noqa: E731
                                       capture_output=True, text=True)
    proc = run(f"task.file={train_corpus}", f"hydra.run.dir={tmp_path / 'train'}", *fast)
    assert proc.returncode == 0, proc.stderr[-2000:]
    first = json.loads((tmp_path / "train" / "results.json").read_text())
    saved = tmp_path / "train" / "probe.safetensors"
    assert first["probe"]["saved"] == str(saved) and (tmp_path / "train" / "probe.json").exists()
    proc = run(f"task.file={other}", f"probe.load={saved}", f"hydra.run.dir={tmp_path / 'eval'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((tmp_path / "eval" / "results.json").read_text())["loaded_probe"]
    assert res["trained_on"]["task"] == "upos" and res["n_tokens"] == 3 * 10 and 0 <= res["accuracy"] <= 1
    assert "test" in res and "lambda_search" not in res
    proc = run(f"task.file={other}", "task=xpos", f"probe.load={saved}", f"hydra.run.dir={tmp_path / 'bad'}")
    assert proc.returncode == 2 and "probe.load" in proc.stderr and "Traceback" not in proc.stderr


def test_train_py_model_probe_trains_saves_and_the_probe_loads(tmp_path: Path, tiny_bert: Path) -> None:
    from hydra import compose, initialize_config_dir

    from neuroscope.training import train

    corpus = distinct_conllu(tmp_path / "a.conllu")
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            "model=probe", "task=upos", f"task.file={corpus}", "model.source.name=transformer",
            f"+model.source.path={tiny_bert}", f"model.store.root={tmp_path / 'stores'}", "model.store.progress=false",
            "model.batch_size=16", "trainer=debug", "trainer.max_epochs=3", "logger=csv", f"output_dir={tmp_path / 'run'}"])
    res = train(cfg)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert set(saved["test"]) >= {"accuracy", "macro_f1"} and "accuracy" in saved["val"]
    probe = load_probe(res["probe"])
    assert probe.classes and probe.meta["task"] == "upos" and len(probe.neurons) == probe.probe.weight.shape[1]
    assert list((tmp_path / "run" / "csv").rglob("metrics.csv"))  # per-epoch curves in the logger


@pytest.mark.parametrize("group", ["default", "neurox"])
def test_probe_configs_reach_every_probe_setting(group: str) -> None:
    from hydra import compose, initialize_config_dir

    from neuroscope.config import to_dict

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="analyze", overrides=[f"probe={group}", "probe.backend=lightning",
                                                        "probe.accelerator=auto", "probe.precision=16-mixed"])
    params = to_dict(cfg.probe)
    for key in ("selection", "save", "load"):
        params.pop(key)
    made = ProbeConfig.from_dict(params)
    assert (made.backend, made.accelerator, made.precision) == ("lightning", "auto", "16-mixed")
    assert set(params) == set(ProbeConfig.__dataclass_fields__) - {"seed"}  # every setting is in the config
