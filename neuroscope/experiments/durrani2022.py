"""Durrani et al. (2022), finding iv, as one run: `python analyze.py experiment=durrani2022_finetune
finetuned=<train run>/hf_model` studies every property of `comparison.tasks` on the `before` and `after`
models and compares them (neuroscope.evaluation.compare). Each study is written as
`<output_dir>/studies/{before,after}/<name>/results.json` (the usual contract).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from neuroscope.config import to_dict
from neuroscope.errors import ConfigError
from neuroscope.evaluation.compare import SIDES, compare_studies, correlation
from neuroscope.experiments.base import Experiment, Outcome
from neuroscope.pipeline import property_task, study, study_summary, timed
from neuroscope.registry import EXPERIMENTS
from neuroscope.reporting.results import write_results
from neuroscope.reporting.tables import write_tables

log = logging.getLogger(__name__)


def model_nodes(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """The `before` node (the model group) and the `after` node (comparison.after merged over it)."""
    before = to_dict(cfg.model)
    after = to_dict(cfg.comparison.get("after"))
    if not after:
        raise ConfigError("comparison.after: give the second model, e.g. finetuned=<train run>/hf_model "
                          "with experiment=durrani2022_finetune")
    if after.get("path") in (None, "", "???"):
        raise ConfigError("finetuned: the fine-tuned model folder is missing; pass finetuned=<train run>/hf_model "
                          "(written by `python train.py experiment=finetune_sst2`)")
    path = str(after["path"])
    if path.startswith((".", "/", "~")) and not Path(path).expanduser().exists():  # a folder, not a hub name
        raise ConfigError(f"finetuned: {path} does not exist (expected the hf_model folder of a train.py run)")
    return {"before": before, "after": {**before, **after}}


def run_comparison(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Study each property on both models, then compare; returns the run's results.json dict."""
    t0 = time.perf_counter()
    cmp = to_dict(cfg.comparison)
    nodes = model_nodes(cfg)
    base_task = to_dict(cfg.task)
    method = to_dict(cfg.method) or {"name": "lca"}
    if not method.get("name") or method["name"] == "none":
        raise ConfigError("method: the comparison ranks neurons; use a labelled ranker, e.g. method=lca")
    percent = float(cmp.get("top_percent") or cfg.evaluation.layer_top_percent)
    tasks = cmp.get("tasks") or [{"name": base_task["name"]}]
    studies: dict[str, dict[str, Any]] = {}
    compared: dict[str, Any] = {}
    stores: dict[str, Any] = {}
    partner: dict[str, str] | None = None
    corr_block: dict[str, Any] | None = None
    corr_words = None  # data hash of the words the correlation was measured on
    for prop in tasks:
        name, task_cfg = property_task(base_task, prop)
        res = {}
        for side in SIDES:
            keep: dict[str, Any] = {}
            folder = out_dir / "studies" / side / name
            res[side] = timed(study, cfg, task_cfg, nodes[side], dict(method), keep, folder)
            write_results(res[side], folder)
            write_tables(res[side], folder)
            stores[side] = keep["store"]
            studies[f"{side}/{name}"] = study_summary(res[side])
        if cmp.get("correlation", True) and corr_block is None:  # once: every property's words are alike
            t1 = time.perf_counter()
            corr_block, partner = correlation(stores["before"], stores["after"])
            corr_block["seconds"] = round(time.perf_counter() - t1, 3)
            corr_block["corpus"] = name
            corr_words = stores["before"].manifest.get("data_sha256")
        same_words = corr_words is not None and stores["before"].manifest.get("data_sha256") == corr_words
        compared[name] = compare_studies(res["before"], res["after"], percent, partner if same_words else None)
        log.info("%s: mean depth of the top %g %% %.2f before, %.2f after", name, percent,
                 *(compared[name].get("mean_depth", {}).get(s, float("nan")) for s in SIDES))
    block: dict[str, Any] = {"top_percent": percent, "tasks": compared}
    if corr_block is not None:
        block["correlation"] = corr_block
    return {
        "model": nodes["before"]["name"], "task": base_task["name"], "method": "comparison", "seed": int(cfg.seed),
        "models": nodes, "ranker": method["name"], "studies": studies, "comparison": block,
        "timings": {"studies_seconds": round(sum(s.get("seconds") or 0 for s in studies.values()), 3),
                    "comparison_seconds": round(time.perf_counter() - t0, 3)},
    }


@EXPERIMENTS.register("durrani2022")
class Durrani2022(Experiment):
    """The same properties studied before and after fine-tuning, compared per property and site
    (conf/experiment/durrani2022_finetune.yaml)."""

    name = "durrani2022"

    def run(self, cfg: DictConfig, out_dir: Path) -> Outcome:
        return Outcome(run_comparison(cfg, out_dir))
