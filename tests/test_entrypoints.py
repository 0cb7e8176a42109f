"""analyze.py / train.py end to end on tiny configs: results.json, reuse, multirun, W&B offline, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from neuroscope import registry
from neuroscope.analysis import analyze
from neuroscope.training import train
from tests.conftest import REPO, tiny_conllu

TOY_METHODS = """
import numpy as np
from neuroscope.registry import METHODS

@METHODS.register("toy_x")
def toy_x(acts, labels, unit: int = 3):
    scores = np.zeros(acts.shape[1])
    scores[unit] = 1.0
    return scores

@METHODS.register("toy_y")
def toy_y(acts, labels):
    return np.abs(acts).mean(0)
"""

TOY_MODEL = """
import torch
import pytorch_lightning as pl
from neuroscope.registry import MODELS

@MODELS.register("toy_regressor")
class ToyRegressor(pl.LightningModule):
    monitor = ("val/loss", "min")

    def __init__(self, hidden: int = 8):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1))
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(256, 4, generator=g)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5], [0.0]])

    def _loader(self):
        ds = torch.utils.data.TensorDataset(self.x, self.y)
        return torch.utils.data.DataLoader(ds, batch_size=32)

    train_dataloader = val_dataloader = test_dataloader = _loader

    def _loss(self, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def training_step(self, batch, i):
        return self._loss(batch)

    def validation_step(self, batch, i):
        self.log("val/loss", self._loss(batch))

    def test_step(self, batch, i):
        self.log("test/loss", self._loss(batch))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.05)
"""


@pytest.fixture()
def study(tmp_path: Path, tiny_bert: Path) -> dict[str, Path]:
    """A tiny corpus, a plugin folder with toy methods/model and their method configs."""
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "toy_methods.py").write_text(TOY_METHODS)
    (tmp_path / "plugins" / "toy_model.py").write_text(TOY_MODEL)
    for name in ("toy_x", "toy_y"):
        (tmp_path / "conf" / "method").mkdir(parents=True, exist_ok=True)
        (tmp_path / "conf" / "method" / f"{name}.yaml").write_text(f"name: {name}\n")
    yield {"root": tmp_path, "corpus": tiny_conllu(tmp_path / "tiny.conllu"), "bert": tiny_bert}
    registry.set_plugin_dirs(["plugins"])
    for name in ("toy_x", "toy_y"):
        registry.METHODS.unregister(name)
    registry.MODELS.unregister("toy_regressor")


def overrides(s: dict[str, Path], out: Path) -> list[str]:
    return [
        "model=transformer", f"model.path={s['bert']}", f"task.file={s['corpus']}", "logger=none",
        f"store.root={s['root'] / 'stores'}", f"output_dir={out}", f"plugins.dirs=[{s['root'] / 'plugins'}]",
        "store.progress=false",
    ]


def compose_analyze(extra: list[str]) -> object:
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="analyze", overrides=extra)


def test_analyze_writes_results_and_reuses_the_store(study: dict[str, Path]) -> None:
    out = study["root"] / "run1"
    res = analyze(compose_analyze(overrides(study, out) + ["method=none"]))
    saved = json.loads((out / "results.json").read_text())
    assert saved == json.loads(json.dumps(res))
    assert res["model"] == "transformer" and res["task"] == "upos" and res["method"] is None
    assert res["store"]["n_tokens"] == 100 and res["store"]["n_neurons"] == 48  # 3 sites x 16
    assert res["store"]["sites"] == ["embeddings", "layer1", "layer2"] and res["store"]["reused"] is False
    assert sum(res["split"].values()) == 100 and res["seed"] == 0
    assert OmegaConf.load(out / "config.yaml").task.file == str(study["corpus"])
    again = analyze(compose_analyze(overrides(study, study["root"] / "run2") + ["method=none"]))
    assert again["store"]["reused"] is True and again["store"]["path"] == res["store"]["path"]


def test_plugin_method_ranking_in_results(study: dict[str, Path]) -> None:
    out = study["root"] / "ranked"
    cfg = compose_analyze(overrides(study, out))
    with open_dict(cfg):
        cfg.method = {"name": "toy_x", "unit": 20}
    res = analyze(cfg)
    assert res["method"] == "toy_x" and res["ranking"][0] == "layer1:4" and len(res["ranking"]) == 48


def test_wandb_offline_run_writes_a_local_folder(study: dict[str, Path]) -> None:
    out = study["root"] / "wb"
    analyze(compose_analyze(overrides(study, out)[:-1] + ["logger=wandb", "store.progress=false"]))
    runs = list((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and any(runs[0].rglob("*.wandb"))


def test_train_fits_checkpoints_and_tests_a_plugin_model(study: dict[str, Path]) -> None:
    out = study["root"] / "train"
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            "logger=csv", f"output_dir={out}", f"plugins.dirs=[{study['root'] / 'plugins'}]",
            "trainer.max_epochs=15", "trainer.enable_progress_bar=false",
        ])
    with open_dict(cfg):
        cfg.model = {"name": "toy_regressor", "hidden": 8}
    res = train(cfg)
    assert Path(res["checkpoint"]).exists() and res["train_seconds"] > 0
    best = Path(res["checkpoint"])  # a stable name, linked to the best epoch; no "=" (Hydra overrides)
    assert best.name == "best.ckpt" and best.is_symlink() and "=" not in best.resolve().name
    assert all("=" not in f.name for f in best.parent.iterdir())
    assert res["val"]["loss"] < 0.5 and res["test"]["loss"] < 0.5  # starts near 5.25 (variance of y)
    assert json.loads((out / "results.json").read_text())["test"]["loss"] == pytest.approx(res["test"]["loss"])
    assert list((out / "csv").rglob("metrics.csv"))


def _cli(script: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, HYDRA_FULL_ERROR="0")
    return subprocess.run([sys.executable, str(REPO / script), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_multirun_2x2_gives_four_result_dirs(study: dict[str, Path]) -> None:
    root = study["root"]
    args = ["--multirun", "task=upos,xpos", "method=toy_x,toy_y", f"hydra.sweep.dir={root / 'multi'}",
            f"hydra.searchpath=[file://{root / 'conf'}]"]
    args += [o for o in overrides(study, root) if not o.startswith("output_dir")]
    proc = _cli("analyze.py", args, root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads(p.read_text()) for p in sorted((root / "multi").glob("*/results.json"))]
    assert len(results) == 4
    assert sorted((r["task"], r["method"]) for r in results) == [
        ("upos", "toy_x"), ("upos", "toy_y"), ("xpos", "toy_x"), ("xpos", "toy_y")]
    assert sum(r["store"]["reused"] for r in results) == 3  # one store shared by all four runs


def test_cli_user_errors_print_a_message_not_a_traceback(study: dict[str, Path]) -> None:
    root = study["root"]
    proc = _cli("analyze.py", overrides(study, root / "e1") + ["model.name=transformr"], root)
    assert proc.returncode == 2
    assert "unknown model 'transformr'; did you mean 'transformer'" in proc.stderr
    assert "Traceback" not in proc.stderr
    bad = root / "bad.conllu"
    bad.write_text("1\tThe\tthe\tDET\n")
    proc = _cli("analyze.py", overrides(study, root / "e2") + [f"task.file={bad}"], root)
    assert proc.returncode == 2 and f"{bad}:1: malformed CoNLL-U line" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_train_without_a_trainable_model_is_a_clear_error(study: dict[str, Path]) -> None:
    proc = _cli("train.py", ["logger=none", "model=minilm", f"hydra.run.dir={study['root'] / 't'}"], study["root"])
    assert proc.returncode == 2 and "is not trainable" in proc.stderr and "Traceback" not in proc.stderr
