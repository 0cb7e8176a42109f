"""Saved probes: save → load → identical predictions; clear errors for missing neurons, other
classes, foreign files; a study saves its oracle probe and `probe.load` evaluates it elsewhere."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neuroscope.errors import ConfigError
from neuroscope.probes import ArrayChunks, ProbeConfig, fit_probe
from neuroscope.probes.probe import Probe
from neuroscope.probes.saved import digest, load_probe, model_identity, save_probe, store_meta
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
    (tmp_path / "bad.json").write_text(json.dumps({"format": 1, "classes": ["neg"], "neurons": ["embeddings:0"]}))
    with pytest.raises(ConfigError, match="not a saved probe"):
        load_probe(tmp_path / "bad.safetensors")


def save_as_json(tmp_path: Path, trained: dict, content: str) -> Path:
    """A good saved probe whose JSON is then replaced by `content`; returns the JSON's path."""
    save_probe(trained["probe"], tmp_path / "p", ["neg", "pos"], trained["store"].neurons)
    (tmp_path / "p.json").write_text(content)
    return tmp_path / "p.json"


GOOD_JSON = {"format": 1, "classes": ["neg", "pos"], "neurons": None}  # neurons: the store's


@pytest.mark.parametrize(("content", "message"), [
    ("{ not json", "not readable JSON"),
    ("[1, 2]", "expected a JSON object with format, classes and neurons, got a list"),
    ({"format": 1, "neurons": None}, "lacks 'classes'"),
    ({"format": 1, "classes": ["neg", "pos"]}, "lacks 'neurons'"),
    ({"format": 1, "classes": "neg pos", "neurons": None}, "has a bad 'classes'"),
    ({"format": 2, "classes": ["neg", "pos"], "neurons": None}, "not a neuroscope probe of format 1"),
    ({**GOOD_JSON, "kind": "ranker"}, "'kind' is 'ranker'"),
    ({**GOOD_JSON, "classes": ["neg", "pos", "other"]}, "holds weights (2, 8), its JSON a classifier probe of 3"),
    ({**GOOD_JSON, "kind": "regression"}, "lacks tensor(s) ['target'], its JSON a regression probe of 8 neurons"),
])
def test_a_damaged_probe_json_is_a_probe_load_error_naming_the_file(trained: dict, tmp_path: Path, content: object,
                                                                    message: str) -> None:
    """Not JSON, not an object, required keys missing or wrong, files that do not belong together:
    `probe.load: <file>: ...`, never a KeyError."""
    if isinstance(content, dict):
        content = json.dumps({**content, "neurons": trained["store"].neurons} if content.get("neurons", 0) is None
                             else content)
    path = save_as_json(tmp_path, trained, str(content))
    with pytest.raises(ConfigError) as err:
        load_probe(path)
    assert str(err.value).startswith("probe.load: ") and message in str(err.value)
    assert str(path if "tensor" not in message and "weights" not in message else path.with_suffix(".safetensors")) \
        in str(err.value)


class OtherHash(HashNeurons):
    """Another model with the same sites and units as HashNeurons (another fingerprint)."""

    def fingerprint(self) -> dict:
        return {"fake": "other-hash", "sites": self.sites, "units": self.units}


def test_a_probe_refuses_the_store_of_another_model_and_accepts_its_own_on_another_corpus(
        trained: dict, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = trained["store"]
    path = save_probe(trained["probe"], tmp_path / "p", ["neg", "pos"], store.neurons, model="hash",
                      **store_meta(store))
    saved = load_probe(path)
    assert saved.meta["model_fingerprint"] == digest({"fake": "hash"}) and saved.meta["store_key"] == store.manifest["key"]
    other, _ = extract(OtherHash(units=4), SENTENCES, tmp_path / "other", progress=False)
    assert other.neurons == store.neurons  # the same neuron ids: only the fingerprint tells them apart
    with pytest.raises(ConfigError) as err:
        saved.evaluate(other, trained["y"], ["neg", "pos"])
    msg = str(err.value)
    assert msg.startswith(f"probe.load: {path} was trained on model 'hash' (model fingerprint {digest({'fake': 'hash'})})")
    assert f"holds model 'store' (model fingerprint {digest({'fake': 'other-hash'})})" in msg and "differ in fake" in msg
    with pytest.raises(ConfigError, match="model fingerprint"):
        saved.predict(other)
    # the same model on another corpus: accepted, the same predictions for the same words
    more, _ = extract(HashNeurons(units=4), SENTENCES[:3] + [["dogs", "ran"]], tmp_path / "more", progress=False)
    np.testing.assert_array_equal(saved.predict(more)[:len(SENTENCES[0])], saved.predict(store)[:len(SENTENCES[0])])
    # a probe saved before fingerprints were recorded: accepted with a warning
    old = json.loads((tmp_path / "p.json").read_text())
    for key in ("model_fingerprint", "model_identity", "store_key"):
        old.pop(key)
    (tmp_path / "p.json").write_text(json.dumps(old))
    with caplog.at_level("WARNING", logger="neuroscope.probes.saved"):
        assert len(load_probe(path).predict(other)) == other.n_tokens
    assert "records no model fingerprint" in caplog.text and str(path) in caplog.text


def test_model_identity_leaves_out_stored_sites_and_hashed_locations() -> None:
    fp = {"path": "/a/minilm", "files": {"model.safetensors": "ab"}, "sites": ["layer1"], "aggregation": "first",
          "max_length": 512, "site_modules": {"mlp": "x"}}
    assert model_identity(fp) == {"files": {"model.safetensors": "ab"}, "aggregation": "first", "max_length": 512}
    moved = {**fp, "path": "/b/copy-of-minilm", "sites": ["embeddings", "layer1", "layer2"]}
    assert digest(model_identity(moved)) == digest(model_identity(fp))  # a copy of the same files: the same model
    hub = {"path": "bert-base-cased", "files": {}, "revision": None}  # nothing hashed: the name is the identity
    assert model_identity(hub) == hub and digest(model_identity(hub)) != digest(model_identity({**hub, "path": "gpt2"}))
    lstm = {"arch": "nlm_lstm", "checkpoint": "/x/a.ckpt", "sha256": "cd", "sites": ["lm.l0"], "aggregation": "last"}
    assert model_identity(lstm) == {"arch": "nlm_lstm", "sha256": "cd", "aggregation": "last"}


def test_regression_probes_save_and_load_with_identical_predictions(tmp_path: Path) -> None:
    from neuroscope.probes.regression import fit_regression, regression_scores

    store, _ = extract(HashNeurons(units=4), SENTENCES, tmp_path / "stores", shard_tokens=7, progress=False)
    x = store.read()  # [tokens, 8]
    values = 2.0 * x[:, 5].astype(np.float64) + 1.0  # planted: neuron layer1:1 is the value
    reg, _ = fit_regression(x, values, ProbeConfig(epochs=40, batch_size=8, lr_decay=1.0, lambda1=1e-4, lambda2=1e-4))
    path = save_probe(reg, tmp_path / "r", [], store.neurons, task="depth", **store_meta(store))
    saved = load_probe(path)
    assert saved.kind == "regression" and saved.classes == [] and saved.meta["task"] == "depth"
    np.testing.assert_array_equal(saved.predict(store), reg.predict(x))
    values[::4] = np.nan  # unlabelled tokens
    split = np.arange(store.n_tokens) % 3
    res = saved.evaluate_values(store, values, split, task="depth")
    keep = ~np.isnan(values)
    assert res["r2"] == pytest.approx(regression_scores(reg.predict(x[keep]), values[keep])["r2"], abs=1e-12)
    assert res["r2"] > 0.95 and res["n_tokens"] == int(keep.sum()) and res["test"]["n_tokens"] == int((keep & (split == 2)).sum())
    with pytest.raises(ConfigError, match=r"probe.load: .*r.safetensors is a regression probe .*task 'upos' is classified"):
        saved.evaluate(store, np.zeros(store.n_tokens, dtype=np.int64), ["neg"], task="upos")
    classifier = load_probe(save_probe(Probe(np.zeros((2, 8), np.float32), np.zeros(2, np.float32)), tmp_path / "c",
                                       ["neg", "pos"], store.neurons))
    with pytest.raises(ConfigError, match=r"c.safetensors is a classifier probe .*task 'depth' is numeric"):
        classifier.evaluate_values(store, values, task="depth")


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
    # loaded on the corpus (and store) it was trained on: the oracle's test-split scores, exactly
    proc = run(f"task.file={train_corpus}", f"probe.load={saved}", f"hydra.run.dir={tmp_path / 'same'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    same = json.loads((tmp_path / "same" / "results.json").read_text())["loaded_probe"]
    assert same["test"]["n_tokens"] == first["split"]["test"]
    assert (same["test"]["accuracy"], same["test"]["macro_f1"]) == (first["oracle"]["accuracy"], first["oracle"]["macro_f1"])
    assert same["trained_on"]["model_fingerprint"] and same["trained_on"]["store"] == first["store"]["path"]
    from neuroscope.store import ActivationStore
    from neuroscope.tasks import load_task

    store, probe = ActivationStore(first["store"]["path"]), load_probe(saved)
    corpus = load_task(probe.meta["task_config"], None)  # the run's labels and split
    test = (corpus.split == 2) & (corpus.labels >= 0)
    gold = probe.class_map(corpus.classes)[corpus.labels[test]]
    assert float((probe.predict(store, test) == gold).mean()) == first["oracle"]["accuracy"]  # the same predictions
    proc = run(f"task.file={other}", f"probe.load={saved}", f"hydra.run.dir={tmp_path / 'eval'}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((tmp_path / "eval" / "results.json").read_text())["loaded_probe"]
    assert res["trained_on"]["task"] == "upos" and res["n_tokens"] == 3 * 10 and 0 <= res["accuracy"] <= 1
    assert "test" in res and "lambda_search" not in res
    proc = run(f"task.file={other}", "task=xpos", f"probe.load={saved}", f"hydra.run.dir={tmp_path / 'bad'}")
    assert proc.returncode == 2 and "probe.load" in proc.stderr and "Traceback" not in proc.stderr
    # another model with the same sites and neuron ids: refused, naming both fingerprints
    retrained = retrained_bert(tiny_bert, tmp_path / "other_bert")
    proc = run(f"task.file={other}", f"probe.load={saved}", f"model.path={retrained}", f"hydra.run.dir={tmp_path / 'm'}")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    fp = json.loads((tmp_path / "train" / "probe.json").read_text())["model_fingerprint"]
    assert f"error: probe.load: {saved} was trained on model 'transformer' (model fingerprint {fp})" in proc.stderr
    assert re.search(r"holds model 'transformer' \(model fingerprint [0-9a-f]{16}\); they differ in files", proc.stderr)
    assert not (tmp_path / "m" / "results.json").exists()


def retrained_bert(tiny_bert: Path, folder: Path) -> Path:
    """A copy of the tiny BERT with other weights (the same architecture, sites and tokenizer)."""
    import shutil

    import torch
    from transformers import BertModel

    shutil.copytree(tiny_bert, folder)
    model = BertModel.from_pretrained(tiny_bert)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    model.save_pretrained(folder)
    return folder


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
    # the saved probe's predictions on the test split reproduce the test accuracy train.py reported
    from neuroscope.store import ActivationStore
    from neuroscope.tasks import load_task

    store = ActivationStore(probe.meta["store"])
    assert probe.meta["model_fingerprint"] and probe.meta["store_key"] == store.manifest["key"]
    corpus = load_task(probe.meta["task_config"], None)  # the run's labels and split
    test = (corpus.split == 2) & (corpus.labels >= 0)
    gold = probe.class_map(corpus.classes)[corpus.labels[test]]
    assert float((probe.predict(store, test) == gold).mean()) == pytest.approx(saved["test"]["accuracy"], abs=1e-6)
    reloaded = probe.evaluate(store, corpus.labels, corpus.classes, corpus.split)["test"]
    assert reloaded["accuracy"] == pytest.approx(saved["test"]["accuracy"], abs=1e-6)
    assert reloaded["macro_f1"] == pytest.approx(saved["test"]["macro_f1"], abs=1e-6)
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
