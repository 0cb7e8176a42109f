"""The 2019 paper's experiment in one run (`python analyze.py experiment=dalvi2019_nlm
'checkpoints=[A,B,C]'`): LCA per linguistic property and the correlation rankings of the studied
model A (against B, C, ...), then the model's own metric with each ranking's top neurons silenced.

Every setting is checked before any study runs (`plan`): the mode, every checkpoint (loaded, each
error naming `checkpoints[<i>]`), every given ranking (`ablation.rankings.<name>`: its file, its
JSON shape and that its neurons are sites of the model), the decoding settings. Each study is
written as `<output_dir>/studies/<name>/results.json` (the usual contract) and its tables as soon
as it ends; the run's results.json holds `studies` (a summary per study) and `ablation`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig

from neuroscope.ablation.callback import NeuronAblation, check_modes
from neuroscope.ablation.hooks import store_moments
from neuroscope.ablation.rankings import read_rankings, unknown_sites
from neuroscope.ablation.sites import hook_points
from neuroscope.config import build, to_dict
from neuroscope.errors import ConfigError
from neuroscope.experiments.base import Experiment, Outcome
from neuroscope.pipeline import property_task, study, study_summary, timed
from neuroscope.registry import EXPERIMENTS, MODELS
from neuroscope.reporting.results import write_results
from neuroscope.reporting.tables import write_tables
from neuroscope.seeding import seed_everything
from neuroscope.store import ActivationStore

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """An ablation experiment's checked settings and its loaded (ablated) model."""

    node: dict[str, Any]  # the studied model's node (checkpoints[0])
    others: list[dict[str, Any]]  # the other models' nodes (checkpoints[1:])
    properties: dict[str, dict[str, Any]]  # study name -> task node of each LCA study
    correlation: list[str]  # label-free ranking methods against the other models
    rankings: dict[str, list[str]]  # the given rankings (ablation.rankings), checked
    module: pl.LightningModule  # the studied checkpoint, decoding settings applied
    widths: dict[str, int] = field(default_factory=dict)  # the module's sites -> units


def studied_model(cfg: DictConfig) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """The studied model node (checkpoints[0]), the other models' nodes (checkpoints[1:]) and the
    config key naming each checkpoint (`checkpoints[<i>]`, or `model.checkpoint`)."""
    node = to_dict(cfg.model)
    checkpoints = [str(c) for c in (cfg.get("checkpoints") or [])]
    keys = [f"checkpoints[{i}]" for i in range(len(checkpoints))] or ["model.checkpoint"]
    if checkpoints:
        node["checkpoint"] = checkpoints[0]
    if not node.get("checkpoint"):
        raise ConfigError("checkpoints: give the trained models, the studied one first, e.g. "
                          "'checkpoints=[A.ckpt,B.ckpt,C.ckpt]'")
    others = [{**node, "checkpoint": c} for c in checkpoints[1:]]
    return node, others, keys


def plan(cfg: DictConfig) -> Plan:
    """Every check of the experiment's settings, before any work (see the module doc)."""
    ab = to_dict(cfg.ablation)
    modes = ablation_modes(ab)
    node, others, keys = studied_model(cfg)
    lca = to_dict(cfg.method) or {"name": "lca"}
    properties: dict[str, dict[str, Any]] = {}
    for i, prop in enumerate(ab.get("properties") or []):
        prop_name, task_cfg = property_task(to_dict(cfg.task), prop)
        name = f"{lca['name']}_{prop_name}"
        if name in properties:
            raise ConfigError(f"ablation.properties[{i}]: a second study named '{name}'; give each property once")
        properties[name] = task_cfg
    correlation = [str(m) for m in ab.get("correlation") or []]
    if correlation and not others:
        raise ConfigError("ablation.correlation: correlation rankings need other models; give "
                          "'checkpoints=[A,B,...]' with at least two checkpoints, or ablation.correlation=[]")
    rankings = read_rankings(ab.get("rankings"))
    for name in rankings:
        if name in properties or name in correlation:
            raise ConfigError(f"ablation.rankings.{name}: a study of this run has that name; choose another")
    if not (properties or correlation or rankings):
        raise ConfigError("ablation: nothing to rank; set ablation.properties, ablation.correlation or "
                          "ablation.rankings")
    if "mean" in modes and not properties:
        key = "ablation.mode" if ab.get("mode") is not None else "ablation.modes"
        raise ConfigError(f"{key}: mean takes each neuron's mean from a study's store; set "
                          "ablation.properties, or use ablation.modes=[zero]")
    module = lightning_module(node, keys[0])
    for other, key in zip(others, keys[1:], strict=True):  # each checkpoint loads, before any study
        lightning_module(other, key)
    widths = {site: point.width for site, point in hook_points(module).items()}
    widths.update({f"{site}.sae": int(sae.W_enc.shape[1]) for site, sae in latent_saes(node).items()})  # model.sae
    for name, ranking in rankings.items():
        if problem := unknown_sites(ranking, widths):
            raise ConfigError(f"ablation.rankings.{name}: {problem}")
    decode(module, ab.get("decoding") or {}, str(node["name"]))
    return Plan(node, others, properties, correlation, rankings, module, widths)


def ablation_modes(ab: dict[str, Any]) -> list[str]:
    """The modes to measure: `ablation.mode` (a one-mode shortcut) when set, else `ablation.modes`
    (default zero and mean); each zero or mean, once."""
    expected = "an experiment silences with zero or mean"
    if ab.get("mode") is not None:
        return check_modes(ab["mode"], "ablation.mode", expected)
    return check_modes(ab.get("modes", ["zero", "mean"]), "ablation.modes", expected)


def decode(module: pl.LightningModule, decoding: dict[str, Any], model: str) -> None:
    """Apply `ablation.decoding` (e.g. {beam_size: 1}: greedy BLEU) to the module's settings."""
    for key, value in decoding.items():
        if value is None:  # the checkpoint's own setting
            continue
        if key not in module.hparams:
            raise ConfigError(f"ablation.decoding.{key}: not a setting of {model} (settings: {sorted(module.hparams)})")
        module.hparams[key] = value


def run_experiment(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Checks (`plan`), studies (LCA per property, correlation rankings; each written when it ends),
    then the ablation curves; returns results.json."""
    t0 = time.perf_counter()
    ab = to_dict(cfg.ablation)
    p = plan(cfg)
    base_task = to_dict(cfg.task)
    lca = to_dict(cfg.method) or {"name": "lca"}
    studies: dict[str, dict[str, Any]] = {}
    jobs = [(name, task_cfg, dict(lca)) for name, task_cfg in p.properties.items()]
    words = {**base_task, "name": "sentences", "params": {}, "format": base_task.get("format") or "conllu",
             **dict(ab.get("words") or {})}
    jobs += [(m, words, {"name": m, "others": p.others, "tokens": "all"}) for m in p.correlation]
    for name, task_cfg, method in jobs:
        folder = out_dir / "studies" / name
        res = timed(study, cfg, task_cfg, p.node, method, None, folder)
        write_results(res, folder)  # now: a later failure loses no finished study
        write_tables(res, folder)
        if problem := unknown_sites(res["ranking"], p.widths):
            raise ConfigError(f"ablation: study {name} ranks neurons the ablated model does not have ({problem}); "
                              "the model's neuron source and its LightningModule disagree")
        studies[name] = res
    rankings = {name: res["ranking"] for name, res in studies.items()} | p.rankings
    seconds_studies = time.perf_counter() - t0
    block = measure(cfg, p.module, rankings, ab, out_dir, next((r["store"]["path"] for r in studies.values()), None))
    return {
        "model": p.node["name"], "task": base_task["name"], "method": "ablation", "seed": int(cfg.seed),
        "checkpoints": [p.node["checkpoint"]] + [o["checkpoint"] for o in p.others],
        "studies": {k: study_summary(v) for k, v in studies.items()},
        "ablation": block,
        "timings": {"studies_seconds": round(seconds_studies, 3), "ablation_seconds": block["seconds"]},
    }


def latent_saes(node: dict[str, Any]) -> dict[str, Any]:
    """{site: SAE module} of `model.sae`, so that rankings naming latents (`layer2.sae:17`) are
    silenced through their SAE inside the model."""
    if not node.get("sae"):
        return {}
    from neuroscope.sae.saelens import load_sae
    from neuroscope.sae.site import split_sae

    return {site: load_sae(folder).eval() for site, folder in split_sae(node)[1].items()}


def measure(cfg: DictConfig, module: pl.LightningModule, rankings: dict[str, list[str]], ab: dict[str, Any],
            out_dir: Path, store_path: str | None) -> dict[str, Any]:
    """Run `trainer.test` (or validate) of the loaded checkpoint with a `NeuronAblation` callback on
    the data group's split."""
    seed_everything(int(cfg.seed), torch=True)
    modes = ablation_modes(ab)
    stats = store_moments(ActivationStore(store_path)) if store_path else None  # what each silenced set holds
    values = {nid: m for nid, (m, _, _) in stats.items()} if stats and "mean" in modes else None
    dm = module.make_datamodule(to_dict(cfg.data), keep_vocab=True)
    callback = NeuronAblation(rankings, shares=ab.get("shares") or (0,), mode=modes, stats=stats,
                              where=ab.get("where", "output"), values=values,
                              random_draws=int(ab.get("random_draws", 3)), seed=int(cfg.seed),
                              bottom=bool(ab.get("bottom", True)), stage=ab.get("stage", "test"), out_dir=out_dir,
                              saes=latent_saes(to_dict(cfg.model)))
    trainer = pl.Trainer(logger=False, callbacks=[callback], enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, accelerator="cpu", devices=1)
    if callback.stage == "test":
        trainer.test(module, datamodule=dm, verbose=False)
    else:
        trainer.validate(module, datamodule=dm, verbose=False)
    if callback.results is None:
        raise ConfigError("ablation: the trainer ran no evaluation (empty split?)")
    return {**callback.results, "data": f"{cfg.data.get('name') or 'multi30k'} {callback.stage}"}


def lightning_module(node: dict[str, Any], key: str = "model.checkpoint") -> pl.LightningModule:
    """The trainable LightningModule of a checkpoint written by train.py (NMT, LM, plugins); a bad
    checkpoint is a `ConfigError` naming `key`."""
    bare = {k: v for k, v in node.items() if k not in ("checkpoint", "sites", "aggregation", "device", "sae")}
    module = build(MODELS, bare, "model")
    if not isinstance(module, pl.LightningModule) or not hasattr(module, "make_datamodule"):
        raise ConfigError(f"ablation: model '{node['name']}' has no trainable LightningModule with its data "
                          "(ablation re-measures a trained NMT, LM or fine-tuned classifier)")
    if hasattr(type(module), "load_trained"):  # a module that restores itself (e.g. the fine-tuned classifier)
        return type(module).load_trained(node["checkpoint"], key=key).eval()
    from neuroscope.models.lstm_sites import load_checkpoint

    ckpt = load_checkpoint(node["checkpoint"], str(node["name"]), key)  # checked: file, format, architecture
    hparams = dict(ckpt.get("hyper_parameters") or {})
    module = type(module)(**{k: v for k, v in hparams.items() if k in module.hparams})
    module.on_load_checkpoint(ckpt)  # vocabularies → the network
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:  # weights of other shapes than the checkpoint's own settings
        raise ConfigError(f"{key}: {node['checkpoint']}: its weights do not fit its settings "
                          f"({str(exc).splitlines()[0]})") from exc
    return module.eval()


@EXPERIMENTS.register("dalvi2019")
class Dalvi2019(Experiment):
    """Rankings of a trained model (LCA per property, correlation against other seeds), then its
    metric with each ranking's top / bottom / random k % silenced (conf/experiment/dalvi2019_*.yaml)."""

    name = "dalvi2019"

    def run(self, cfg: DictConfig, out_dir: Path) -> Outcome:
        return Outcome(run_experiment(cfg, out_dir))
