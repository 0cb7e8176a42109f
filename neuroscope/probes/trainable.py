"""A stand-alone probe trained by `train.py` with Lightning on a store (built if missing):

    python train.py model=probe task=upos [model.source.name=minilm] [trainer.accelerator=gpu]

The run folder gets results.json (val/test accuracy, test macro-F1), Lightning checkpoints and
the saved probe (`probe.safetensors` + `probe.json`), which `analyze.py probe.load=...` evaluates
on any corpus.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from neuroscope.config import build
from neuroscope.errors import ConfigError
from neuroscope.probes import ProbeConfig
from neuroscope.probes.data import moments
from neuroscope.probes.lightning import ProbeModule, loader
from neuroscope.probes.probe import mixed_rows
from neuroscope.probes.saved import save_probe, store_meta
from neuroscope.probes.splits import Splits
from neuroscope.registry import MODELS
from neuroscope.store import corpus_store
from neuroscope.tasks import load_task


class SplitsData(pl.LightningDataModule):
    """Train / dev / test batches of a study's splits (in memory or streamed from the store)."""

    def __init__(self, splits: Splits, batch_size: int, seed: int, shuffle: bool = True) -> None:
        super().__init__()
        self.splits, self.batch_size, self.seed, self.shuffle = splits, batch_size, seed, shuffle

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        data = mixed_rows(self.splits.train, self.seed) if self.shuffle else self.splits.train
        return loader(data, self.batch_size, self.seed, self.shuffle)  # fit_probe's batches (NeuroX's unshuffled too)

    def val_dataloader(self) -> torch.utils.data.DataLoader:
        return loader(self.splits.dev, 8192, self.seed)

    def test_dataloader(self) -> torch.utils.data.DataLoader:
        return loader(self.splits.test, 8192, self.seed)


class StandaloneProbe(ProbeModule):
    """`ProbeModule` with its data, classes and neuron ids, monitored on dev accuracy."""

    monitor = ("val/accuracy", "max")

    def __init__(self, splits: Splits, classes: list[str], neurons: list[str], cfg: ProbeConfig,
                 info: dict[str, Any]) -> None:
        stats = [torch.from_numpy(s) for s in moments(splits.train)] if cfg.standardize else [None, None]
        super().__init__(splits.train.n_neurons, len(classes), cfg, *stats, has_dev=True)
        self.splits, self.classes, self.neurons, self.info = splits, classes, neurons, info

    def make_datamodule(self, data_cfg: Mapping[str, Any] | None = None) -> SplitsData:
        return SplitsData(self.splits, self.cfg.batch_size, self.cfg.seed, self.cfg.shuffle)

    def export(self, out_dir: str | Path) -> dict[str, str]:
        """Save the probe of the best dev epoch into the run folder: {"probe": its path}."""
        return {"probe": str(save_probe(self.to_probe(), Path(out_dir) / "probe", self.classes, self.neurons,
                                        **self.info))}


@MODELS.register("probe")
def probe(source: Mapping[str, Any] | None = None, task: Mapping[str, Any] | None = None,
          data_root: str | None = None, download: bool = False, store: Mapping[str, Any] | None = None,
          memory_gb: float = 4.0, seed: int = 0, **settings: Any) -> StandaloneProbe:
    """Build (or reuse) the store of `source` over the task corpus and a probe to train on it."""
    if not source or "name" not in source:
        raise ConfigError("model.source: the neurons to probe, e.g. model.source.name=minilm")
    if not task or "name" not in task:
        raise ConfigError("task: choose the property to probe, e.g. `python train.py model=probe task=upos`")
    corpus = load_task(dict(task), data_root, download=download)
    if not corpus.classes:
        raise ConfigError(f"task: '{corpus.name}' has no labels to probe")
    node = dict(source)
    built, _ = corpus_store(lambda: build(MODELS, node, "model.source"), node, corpus,
                            {"root": "~/.cache/neuroscope/stores", **dict(store or {})})
    cfg = ProbeConfig.from_dict({**settings, "seed": int(seed), "backend": "lightning"})
    splits = Splits.build(built, corpus.labels, corpus.split, len(corpus.classes), float(memory_gb))
    info = {"model": str(node["name"]), "task": corpus.name, "task_config": dict(task), "seed": int(seed),
            "lambda1": cfg.lambda1, "lambda2": cfg.lambda2, "penalty": cfg.penalty, **store_meta(built)}
    return StandaloneProbe(splits, corpus.classes, built.neurons, cfg, info)
