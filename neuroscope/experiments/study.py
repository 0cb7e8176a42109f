"""The single study (the default): one model, one task, one ranking method (conf/analyze.yaml)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from neuroscope.config import to_dict
from neuroscope.evaluation.k_sparse import write_saebench
from neuroscope.experiments.base import Experiment, Outcome
from neuroscope.pipeline import study
from neuroscope.registry import EXPERIMENTS


@EXPERIMENTS.register("study")
class Study(Experiment):
    """Task corpus → store → ranking → evaluation (LCA protocol); `method=none` extracts only."""

    name = "study"

    def run(self, cfg: DictConfig, out_dir: Path) -> Outcome:
        keep: dict = {}
        results = study(cfg, to_dict(cfg.task), to_dict(cfg.model), to_dict(cfg.get("method")) or None, keep,
                        out_dir)
        write_saebench(results, out_dir)  # evaluation.k_sparse: k_sparse_saebench.json beside results.json
        return Outcome(results, keep.get("store"), keep.get("corpus"))
