"""Train a registered LightningModule (NMT, LM, ...) with the configured Trainer and logger."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint

from neuroscope.config import build, to_dict
from neuroscope.errors import ConfigError
from neuroscope.registry import MODELS, set_plugin_dirs
from neuroscope.reporting.loggers import experiment_logger
from neuroscope.reporting.results import write_config, write_results
from neuroscope.seeding import seed_everything


def _metrics(values: dict[str, Any], prefix: str) -> dict[str, float]:
    """`val/bleu` → {"bleu": ...} for the metrics of one stage."""
    return {k.split("/", 1)[1]: float(v) for k, v in values.items() if k.startswith(f"{prefix}/")}


class EpochSeed(pl.Callback):
    """Reseeds Python, NumPy and torch from (seed, epoch) at the first training batch of every
    epoch, so an epoch's shuffles and dropout masks depend on nothing before it: a run resumed from
    an epoch-end checkpoint (`ckpt_path=.../last.ckpt`) trains exactly as an uninterrupted one.
    (The generators' state alone cannot be carried over: Lightning draws from them in places that
    differ between a fresh and a resumed run, e.g. the sanity check and the dataloader's base seed.)"""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if batch_idx == 0:
            import torch

            epoch_seed = (self.seed * 1_000_003 + trainer.current_epoch) % 2**32
            random.seed(epoch_seed)
            np.random.seed(epoch_seed)
            torch.manual_seed(epoch_seed)


def link_best(path: str) -> str:
    """Point `checkpoints/best.ckpt` at the best checkpoint (a stable name for analyze.py)."""
    if not path:
        return path
    link = Path(path).with_name("best.ckpt")
    tmp = link.with_name(f".best.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(Path(path).name)
    os.replace(tmp, link)
    return str(link)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Fit `cfg.model`, keep the best checkpoint by its monitored metric, test it, write results.json."""
    t0 = time.perf_counter()
    seed_everything(int(cfg.seed), torch=True)
    set_plugin_dirs(list(cfg.plugins.dirs))
    if cfg.get("model") is None:
        raise ConfigError("model: choose a trainable model, e.g. `python train.py model=<name>`")
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_config(cfg, out_dir)
    node = to_dict(cfg.model)
    if node.pop("sae", None):
        raise ConfigError("model.sae: SAE latents are a site for analyze.py; train.py trains the model itself")
    model = build(MODELS, node, "model")
    if not isinstance(model, pl.LightningModule):
        raise ConfigError(
            f"model '{cfg.model.name}' is not trainable (train.py trains LightningModules); "
            "pretrained models are analysed with analyze.py"
        )
    datamodule = model.make_datamodule(cfg.data) if hasattr(model, "make_datamodule") else None
    monitor = getattr(model, "monitor", None)  # e.g. ("val/bleu", "max")
    callbacks: list[pl.Callback] = [ModelCheckpoint(  # no "=" in names: they go into Hydra overrides
        dirpath=out_dir / "checkpoints", filename="epoch{epoch}-step{step}", auto_insert_metric_name=False,
        monitor=monitor[0] if monitor else None, mode=monitor[1] if monitor else "min", save_last=True,
    ), EpochSeed(int(cfg.seed))]
    patience = cfg.get("early_stopping_patience")
    if monitor and patience:
        callbacks.append(EarlyStopping(monitor=monitor[0], mode=monitor[1], patience=int(patience)))
    with experiment_logger(cfg.get("logger"), cfg) as logger:
        trainer: pl.Trainer = instantiate(cfg.trainer, logger=logger if logger is not None else False,
                                          callbacks=callbacks)
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        best = link_best(callbacks[0].best_model_path or callbacks[0].last_model_path)
        results: dict[str, Any] = {
            "model": cfg.model.name, "seed": int(cfg.seed),
            "val": _metrics(trainer.callback_metrics, "val"),
            "train_seconds": round(time.perf_counter() - t0, 3),
            "checkpoint": best,
        }
        if type(model).test_step is not pl.LightningModule.test_step:
            tested = trainer.test(model, datamodule=datamodule, ckpt_path=best or None, verbose=False)
            results["test"] = _metrics(tested[0] if tested else {}, "test")
        if hasattr(model, "export"):  # e.g. a probe or a fine-tuned model: its saved form beside the checkpoints
            results.update(model.export(out_dir))
    write_results(results, out_dir)
    return results
