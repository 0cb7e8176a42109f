"""The 2019 paper's experiment in one run (`python analyze.py experiment=dalvi2019_nlm
'checkpoints=[A,B,C]'`): LCA per linguistic property and the correlation rankings of the studied
model A (against B, C, ...), then the model's own metric with each ranking's top neurons silenced.

Each property's study is written as `<output_dir>/studies/<name>/results.json` (the usual
contract); the run's results.json holds `studies` (a summary per study) and `ablation`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig

from neuroscope.ablation.callback import NeuronAblation
from neuroscope.ablation.hooks import store_means
from neuroscope.config import build, to_dict
from neuroscope.errors import ConfigError
from neuroscope.registry import MODELS
from neuroscope.reporting.results import write_results
from neuroscope.reporting.tables import write_tables
from neuroscope.seeding import seed_everything
from neuroscope.store import ActivationStore

log = logging.getLogger(__name__)


def studied_model(cfg: DictConfig) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The studied model node (checkpoints[0]) and the other models' nodes (checkpoints[1:])."""
    node = to_dict(cfg.model)
    checkpoints = [str(c) for c in (cfg.get("checkpoints") or [])]
    if checkpoints:
        node["checkpoint"] = checkpoints[0]
    if not node.get("checkpoint"):
        raise ConfigError("checkpoints: give the trained models, the studied one first, e.g. "
                          "'checkpoints=[A.ckpt,B.ckpt,C.ckpt]'")
    others = [{**node, "checkpoint": c} for c in checkpoints[1:]]
    return node, others


def run_experiment(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Studies (LCA per property, correlation rankings), then the ablation curves; returns results.json."""
    from neuroscope.analysis import property_task, study, study_summary, timed

    t0 = time.perf_counter()
    ab = to_dict(cfg.ablation)
    node, others = studied_model(cfg)
    base_task = to_dict(cfg.task)
    studies: dict[str, dict[str, Any]] = {}
    rankings: dict[str, list[str]] = {}
    lca = to_dict(cfg.method) or {"name": "lca"}
    for prop in ab.get("properties") or []:
        prop_name, task_cfg = property_task(base_task, prop)
        name = f"{lca['name']}_{prop_name}"
        studies[name] = timed(study, cfg, task_cfg, node, dict(lca), None, out_dir / "studies" / name)
    for method_name in ab.get("correlation") or []:
        if not others:
            raise ConfigError("ablation.correlation: correlation rankings need other models; give "
                              "'checkpoints=[A,B,...]' with at least two checkpoints")
        method = {"name": method_name, "others": others, "tokens": "all"}
        words = {**base_task, "name": "sentences", "params": {}, "format": base_task.get("format") or "conllu",
                 **dict(ab.get("words") or {})}
        studies[method_name] = timed(study, cfg, words, node, method)
    for name, res in studies.items():
        write_results(res, out_dir / "studies" / name)
        write_tables(res, out_dir / "studies" / name)
        rankings[name] = res["ranking"]
    extra = ab.get("rankings") or {}  # {name: path of a results.json or a list of neuron ids}
    rankings.update({k: _ranking(v, f"ablation.rankings.{k}") for k, v in extra.items()})
    if not rankings:
        raise ConfigError("ablation: nothing to rank; set ablation.properties, ablation.correlation or ablation.rankings")
    seconds_studies = time.perf_counter() - t0
    block = measure(cfg, node, rankings, ab, out_dir, next((r["store"]["path"] for r in studies.values()), None))
    return {
        "model": node["name"], "task": base_task["name"], "method": "ablation", "seed": int(cfg.seed),
        "checkpoints": [node["checkpoint"]] + [o["checkpoint"] for o in others],
        "studies": {k: study_summary(v) for k, v in studies.items()},
        "ablation": block,
        "timings": {"studies_seconds": round(seconds_studies, 3), "ablation_seconds": block["seconds"]},
    }


def _ranking(value: Any, key: str) -> list[str]:
    if isinstance(value, str):
        import json

        path = Path(value).expanduser()
        try:
            return list(json.loads(path.read_text())["ranking"])
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(f"{key}: {path} is not a results.json with a ranking ({exc})") from exc
    if isinstance(value, list) and value:
        return [str(v) for v in value]
    raise ConfigError(f"{key}: expected a results.json path or a list of neuron ids")


def measure(cfg: DictConfig, node: dict[str, Any], rankings: dict[str, list[str]], ab: dict[str, Any],
            out_dir: Path, store_path: str | None) -> dict[str, Any]:
    """Load the studied checkpoint as its LightningModule, and run `trainer.test` (or validate)
    with a `NeuronAblation` callback on the data group's split."""
    seed_everything(int(cfg.seed), torch=True)
    module = lightning_module(node)
    values = None
    if ab.get("mode", "zero") == "mean":
        if store_path is None:
            raise ConfigError("ablation.mode=mean: the means come from a study's store; set ablation.properties")
        store = ActivationStore(store_path)
        values = store_means(store)
    for key, value in (ab.get("decoding") or {}).items():  # e.g. {beam_size: 1}: greedy BLEU
        if value is None:  # the checkpoint's own setting
            continue
        if key not in module.hparams:
            raise ConfigError(f"ablation.decoding.{key}: not a setting of {node['name']} "
                              f"(settings: {sorted(module.hparams)})")
        module.hparams[key] = value
    dm = module.make_datamodule(to_dict(cfg.data), keep_vocab=True)
    callback = NeuronAblation(rankings, shares=ab.get("shares") or (0,), mode=ab.get("mode", "zero"),
                              where=ab.get("where", "output"), values=values,
                              random_draws=int(ab.get("random_draws", 3)), seed=int(cfg.seed),
                              bottom=bool(ab.get("bottom", True)), stage=ab.get("stage", "test"), out_dir=out_dir)
    trainer = pl.Trainer(logger=False, callbacks=[callback], enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, accelerator="cpu", devices=1)
    if callback.stage == "test":
        trainer.test(module, datamodule=dm, verbose=False)
    else:
        trainer.validate(module, datamodule=dm, verbose=False)
    if callback.results is None:
        raise ConfigError("ablation: the trainer ran no evaluation (empty split?)")
    return {**callback.results, "data": f"{cfg.data.get('name') or 'multi30k'} {callback.stage}"}


def lightning_module(node: dict[str, Any]) -> pl.LightningModule:
    """The trainable LightningModule of a checkpoint written by train.py (NMT, LM, plugins)."""
    bare = {k: v for k, v in node.items() if k not in ("checkpoint", "sites", "aggregation", "device")}
    module = build(MODELS, bare, "model")
    if not isinstance(module, pl.LightningModule) or not hasattr(module, "make_datamodule"):
        raise ConfigError(f"ablation: model '{node['name']}' has no trainable LightningModule with its data "
                          "(ablation re-measures a trained NMT, LM or fine-tuned classifier)")
    if hasattr(type(module), "load_trained"):  # a module that restores itself (e.g. the fine-tuned classifier)
        return type(module).load_trained(node["checkpoint"]).eval()
    from neuroscope.models.lstm_sites import load_checkpoint

    ckpt = load_checkpoint(node["checkpoint"], str(node["name"]))  # checked: file, format, architecture
    hparams = dict(ckpt.get("hyper_parameters") or {})
    module = type(module)(**{k: v for k, v in hparams.items() if k in module.hparams})
    module.on_load_checkpoint(ckpt)  # vocabularies → the network
    module.load_state_dict(ckpt["state_dict"])
    return module.eval()
