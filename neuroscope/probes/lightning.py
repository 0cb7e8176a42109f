"""The probe objective as a LightningModule, trained on the same batches as `fit_numpy`."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from neuroscope.probes.data import TokenChunks, moments
from neuroscope.probes.probe import Probe, ProbeConfig, batches, init_params, penalty, train_rows


def probe_loss(logits: Tensor, y: Tensor, weight: Tensor, cfg: ProbeConfig) -> Tensor:
    """Mean cross-entropy over the batch plus the penalty (autograd version of `gradients`)."""
    return nn.functional.cross_entropy(logits, y) + penalty(weight, cfg)


class ProbeModule(pl.LightningModule):
    """The same probe, initialisation and objective as a LightningModule (logs `train/loss`,
    `val/accuracy`). With `cfg.proximal` (the default) the L1 term is applied as in `fit_numpy`:
    a proximal step after each Adam step, in Adam's per-weight metric (exact zeros); otherwise
    autograd takes its subgradient. The weights of the best dev epoch are kept (`to_probe`)."""

    def __init__(self, n_neurons: int, n_classes: int, cfg: ProbeConfig,
                 mean: Tensor | None = None, std: Tensor | None = None, has_dev: bool = False) -> None:
        super().__init__()
        self.has_dev = has_dev  # lr halved on dev plateaus (as fit_numpy), else every epoch
        self.save_hyperparameters({"n_neurons": n_neurons, "n_classes": n_classes, **asdict(cfg)})
        self.cfg = cfg
        self.linear = nn.Linear(n_neurons, n_classes)
        w, b = init_params(n_neurons, n_classes, cfg.seed)  # the fast loop's initial weights
        with torch.no_grad():
            self.linear.weight.copy_(torch.from_numpy(w))
            self.linear.bias.copy_(torch.from_numpy(b))
        self.register_buffer("mean", torch.zeros(n_neurons) if mean is None else mean.float())
        self.register_buffer("std", torch.ones(n_neurons) if std is None else std.float())
        self.standardized = mean is not None
        self.val_accuracy = MulticlassAccuracy(n_classes, average="micro")
        self.test_accuracy = MulticlassAccuracy(n_classes, average="micro")
        self.test_f1 = MulticlassF1Score(n_classes, average="macro")
        self.best: tuple[float, int, Tensor, Tensor] | None = None
        self.dev_history: list[float] = []

    def forward(self, x: Tensor) -> Tensor:  # x: [batch, neurons] -> [batch, classes]
        return self.linear((x - self.mean) / self.std)

    def training_step(self, batch: tuple[Tensor, Tensor], _: int) -> Tensor:
        x, y = batch
        smooth = self.cfg.with_(lambda1=0.0) if self.cfg.proximal else self.cfg
        loss = probe_loss(self(x), y, self.linear.weight, smooth)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        """Adam's step, then the proximal L1 step at the lr Adam used (in on_train_batch_end an
        epoch's last batch saw the lr an epoch-wise scheduler had already decayed)."""
        super().optimizer_step(*args, **kwargs)
        self.proximal_step()

    def proximal_step(self) -> None:
        """Proximal L1 step after Adam's, as `Adam.step(l1=...)` of the NumPy loop."""
        if not (self.cfg.proximal and self.cfg.lambda1 > 0):
            return
        opt = self.optimizers()
        opt = getattr(opt, "optimizer", opt)
        w = self.linear.weight
        state = opt.state.get(w)
        if not state:
            return
        b1, b2 = opt.param_groups[0]["betas"]
        t = float(state["step"])
        step = opt.param_groups[0]["lr"] / (1 - b1 ** t)
        denom = state["exp_avg_sq"].sqrt() / math.sqrt(1 - b2 ** t) + opt.param_groups[0]["eps"]
        with torch.no_grad():
            w.copy_(w.sign() * (w.abs() - step * self.cfg.lambda1 / denom).clamp_min(0))

    def validation_step(self, batch: tuple[Tensor, Tensor], _: int) -> None:
        x, y = batch
        self.val_accuracy.update(self(x).argmax(1), y)

    def on_validation_epoch_end(self) -> None:
        acc = float(self.val_accuracy.compute())
        self.val_accuracy.reset()
        self.log("val/accuracy", acc, prog_bar=True)
        if self.trainer.sanity_checking:
            return
        self.dev_history.append(acc)
        if self.best is None or acc > self.best[0]:
            self.best = (acc, self.current_epoch, self.linear.weight.detach().clone(), self.linear.bias.detach().clone())

    def test_step(self, batch: tuple[Tensor, Tensor], _: int) -> None:
        x, y = batch
        pred = self(x).argmax(1)
        self.test_accuracy.update(pred, y)
        self.test_f1.update(pred, y)
        self.log("test/accuracy", self.test_accuracy, on_epoch=True)
        self.log("test/macro_f1", self.test_f1, on_epoch=True)

    def configure_optimizers(self) -> dict[str, Any]:
        opt = torch.optim.Adam(self.parameters(), lr=self.cfg.lr)
        if self.cfg.lr_decay == 1.0:  # a constant lr (NeuroX); ReduceLROnPlateau refuses factor 1
            return {"optimizer": opt}
        if self.has_dev:  # decay on dev plateaus
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", factor=self.cfg.lr_decay, patience=0,
                                                               threshold=self.cfg.min_delta, threshold_mode="abs")
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val/accuracy"}}
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.ExponentialLR(opt, self.cfg.lr_decay)}

    def to_probe(self) -> Probe:
        """The probe of the best dev epoch (or the last weights without dev), as NumPy."""
        stats = (self.mean.cpu().numpy().copy(), self.std.cpu().numpy().copy()) if self.standardized else (None, None)
        w, b = (self.best[2], self.best[3]) if self.best else (self.linear.weight.detach(), self.linear.bias.detach())
        return Probe(w.cpu().float().numpy().copy(), b.cpu().float().numpy().copy(), *stats)


class ChunkBatches(torch.utils.data.IterableDataset):
    """Yields `batches(...)` as tensors, advancing the epoch each pass, for a Lightning DataLoader:
    pass i is the NumPy loop's epoch i (same seed, batch size, `shuffle`)."""

    def __init__(self, data: TokenChunks, batch_size: int, seed: int, shuffle: bool = True) -> None:
        self.data, self.batch_size, self.seed, self.shuffle, self.epoch = data, batch_size, seed, shuffle, 0

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for x, y in batches(self.data, self.batch_size, self.seed, self.epoch, shuffle=self.shuffle):
            yield torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)
        self.epoch += 1


def loader(data: TokenChunks, batch_size: int, seed: int, shuffle: bool = True) -> torch.utils.data.DataLoader:
    """A DataLoader of `ChunkBatches` (evaluation data: any order gives the same scores)."""
    return torch.utils.data.DataLoader(ChunkBatches(data, batch_size, seed, shuffle), batch_size=None)


def train_loader(train: TokenChunks, cfg: ProbeConfig) -> torch.utils.data.DataLoader:
    """The training batches of `fit_numpy` for `cfg` (rows, order, batch size, shuffle), epoch by epoch."""
    return loader(train_rows(train, cfg), cfg.batch_size, cfg.seed, cfg.shuffle)


def fit_probe_lightning(train: TokenChunks, n_classes: int, cfg: ProbeConfig, dev: TokenChunks | None = None,
                        logger: Any = False, **trainer_kwargs: Any) -> tuple[Probe, dict[str, Any]]:
    """`fit_numpy` with a Lightning Trainer (`cfg.accelerator`, `devices`, `precision`): the same
    batches, initial weights and objective; early stopping on dev accuracy with `patience`, the best
    dev epoch kept. Returns (probe, info) like `fit_numpy`."""
    t0 = time.perf_counter()
    stats = [torch.from_numpy(s) for s in moments(train)] if cfg.standardize else [None, None]
    module = ProbeModule(train.n_neurons, n_classes, cfg, *stats, has_dev=dev is not None)
    callbacks = list(trainer_kwargs.pop("callbacks", None) or [])  # the caller's, beside early stopping
    if dev is not None and cfg.patience:
        callbacks.append(EarlyStopping(monitor="val/accuracy", mode="max", patience=cfg.patience,
                                       min_delta=cfg.min_delta))
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)  # no banner per probe
    trainer = pl.Trainer(max_epochs=cfg.epochs, logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator=cfg.accelerator, devices=cfg.devices,
                         precision=cfg.precision, num_sanity_val_steps=0, callbacks=callbacks, **trainer_kwargs)
    trainer.fit(module, train_loader(train, cfg),
                loader(dev, 8192, cfg.seed) if dev is not None else None)
    info = {"epochs": len(module.dev_history) or cfg.epochs,
            "best_epoch": module.best[1] if module.best else cfg.epochs - 1,
            "dev_accuracy": module.dev_history, "seconds": time.perf_counter() - t0}
    return module.to_probe(), info
