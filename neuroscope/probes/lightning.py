"""The probe objective as a LightningModule, trained on the same batches as `fit_probe`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from neuroscope.probes.data import TokenChunks
from neuroscope.probes.probe import Probe, ProbeConfig, _stats, batches, mixed_rows, probe_loss


class ProbeModule(pl.LightningModule):
    """The same probe and objective as a LightningModule (logs `train/loss`, `val/accuracy`)."""

    def __init__(self, n_neurons: int, n_classes: int, cfg: ProbeConfig,
                 mean: Tensor | None = None, std: Tensor | None = None) -> None:
        super().__init__()
        self.save_hyperparameters({"n_neurons": n_neurons, "n_classes": n_classes, **asdict(cfg)})
        self.cfg = cfg
        self.linear = nn.Linear(n_neurons, n_classes)
        self.register_buffer("mean", mean if mean is not None else torch.zeros(n_neurons))
        self.register_buffer("std", std if std is not None else torch.ones(n_neurons))
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
        return Probe(self.linear.weight.detach().clone(), self.linear.bias.detach().clone(),
                     self.mean.clone(), self.std.clone())


class ChunkBatches(torch.utils.data.IterableDataset):
    """Yields `batches(...)`, advancing the epoch each pass, for a Lightning DataLoader."""

    def __init__(self, data: TokenChunks, batch_size: int, seed: int) -> None:
        self.data, self.batch_size, self.seed, self.epoch = data, batch_size, seed, 0

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        yield from batches(self.data, self.batch_size, self.seed, self.epoch)
        self.epoch += 1


def fit_probe_lightning(train: TokenChunks, n_classes: int, cfg: ProbeConfig, **trainer_kwargs: Any) -> Probe:
    """Train `ProbeModule` with a Lightning Trainer on the same batches as `fit_probe` (no dev)."""
    torch.manual_seed(cfg.seed)
    mean, std = _stats(train, cfg)
    module = ProbeModule(train.n_neurons, n_classes, cfg, mean, std)
    loader = torch.utils.data.DataLoader(ChunkBatches(mixed_rows(train, cfg.seed), cfg.batch_size, cfg.seed),
                                         batch_size=None)
    trainer = pl.Trainer(max_epochs=cfg.epochs, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
                         **trainer_kwargs)
    trainer.fit(module, loader)
    return module.to_probe()
