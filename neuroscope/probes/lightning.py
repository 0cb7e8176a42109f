"""The probe objective as a LightningModule, trained on the same batches as `fit_probe`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from neuroscope.probes.data import TokenChunks, moments
from neuroscope.probes.probe import Probe, ProbeConfig, batches, init_params, mixed_rows, penalty


def probe_loss(logits: Tensor, y: Tensor, weight: Tensor, cfg: ProbeConfig) -> Tensor:
    """Mean cross-entropy over the batch plus the penalty (autograd version of `gradients`)."""
    return nn.functional.cross_entropy(logits, y) + penalty(weight, cfg)


class ProbeModule(pl.LightningModule):
    """The same probe, initialisation and objective as a LightningModule (logs `train/loss`,
    `val/accuracy`); autograd and torch's Adam take the L1 term by its subgradient, i.e. it
    trains what `fit_probe` does with `proximal=False`."""

    def __init__(self, n_neurons: int, n_classes: int, cfg: ProbeConfig,
                 mean: Tensor | None = None, std: Tensor | None = None) -> None:
        super().__init__()
        self.save_hyperparameters({"n_neurons": n_neurons, "n_classes": n_classes, **asdict(cfg)})
        self.cfg = cfg
        self.linear = nn.Linear(n_neurons, n_classes)
        w, b = init_params(n_neurons, n_classes, cfg.seed)  # the fast loop's initial weights
        with torch.no_grad():
            self.linear.weight.copy_(torch.from_numpy(w))
            self.linear.bias.copy_(torch.from_numpy(b))
        self.register_buffer("mean", torch.zeros(n_neurons) if mean is None else mean)
        self.register_buffer("std", torch.ones(n_neurons) if std is None else std)
        self.standardized = mean is not None
        self.val_accuracy = MulticlassAccuracy(n_classes, average="micro")

    def forward(self, x: Tensor) -> Tensor:  # x: [batch, neurons] -> [batch, classes]
        return self.linear((x - self.mean) / self.std)

    def training_step(self, batch: tuple[Tensor, Tensor], _: int) -> Tensor:
        x, y = batch
        loss = probe_loss(self(x), y, self.linear.weight, self.cfg)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], _: int) -> None:
        x, y = batch
        self.val_accuracy(self(x).argmax(1), y)
        self.log("val/accuracy", self.val_accuracy, on_epoch=True)

    def configure_optimizers(self) -> dict[str, Any]:
        opt = torch.optim.Adam(self.parameters(), lr=self.cfg.lr)
        return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.ExponentialLR(opt, self.cfg.lr_decay)}

    def to_probe(self) -> Probe:
        stats = (self.mean.numpy().copy(), self.std.numpy().copy()) if self.standardized else (None, None)
        return Probe(self.linear.weight.detach().numpy().copy(), self.linear.bias.detach().numpy().copy(), *stats)


class ChunkBatches(torch.utils.data.IterableDataset):
    """Yields `batches(...)` as tensors, advancing the epoch each pass, for a Lightning DataLoader."""

    def __init__(self, data: TokenChunks, batch_size: int, seed: int) -> None:
        self.data, self.batch_size, self.seed, self.epoch = data, batch_size, seed, 0

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for x, y in batches(self.data, self.batch_size, self.seed, self.epoch):
            yield torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)
        self.epoch += 1


def fit_probe_lightning(train: TokenChunks, n_classes: int, cfg: ProbeConfig, **trainer_kwargs: Any) -> Probe:
    """Train `ProbeModule` with a Lightning Trainer on the same batches as `fit_probe` (no dev)."""
    stats = [torch.from_numpy(s) for s in moments(train)] if cfg.standardize else [None, None]
    module = ProbeModule(train.n_neurons, n_classes, cfg, *stats)
    loader = torch.utils.data.DataLoader(ChunkBatches(mixed_rows(train, cfg.seed), cfg.batch_size, cfg.seed),
                                         batch_size=None)
    trainer = pl.Trainer(max_epochs=cfg.epochs, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                         **trainer_kwargs)
    trainer.fit(module, loader)
    return module.to_probe()
