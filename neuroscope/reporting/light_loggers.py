"""Loggers for analysis runs without Lightning: the same W&B run and CSV files as Lightning's
`WandbLogger` / `CSVLogger` (same config group, same folders), for a process that never imports
torch. Training runs keep Lightning's loggers (the Trainer needs them)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from neuroscope.reporting.results import atomic_write

LIGHTNING_ONLY = ("log_model", "prefix", "checkpoint_name", "experiment", "_target_", "offline", "save_dir")


class WandbRun:
    """A W&B run (offline unless `offline: false`) with Lightning's logger methods."""

    def __init__(self, project: str = "neuroscope", offline: bool = True, save_dir: str = ".", **kwargs: Any) -> None:
        import wandb

        self._wandb = wandb
        init = {k: v for k, v in kwargs.items() if k not in LIGHTNING_ONLY}
        if "tags" in init:
            init["tags"] = list(init["tags"] or [])
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        self.experiment = wandb.init(project=project, dir=str(save_dir), mode="offline" if offline else "online", **init)

    def log_hyperparams(self, params: dict[str, Any]) -> None:
        self.experiment.config.update(params, allow_val_change=True)

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        self.experiment.log(metrics, step=step)

    def log_table(self, key: str, columns: list[str], data: list[list[Any]]) -> None:
        self.experiment.log({key: self._wandb.Table(columns=columns, data=data)})

    def log_image(self, key: str, images: list[Any]) -> None:
        self.experiment.log({key: [self._wandb.Image(i) for i in images]})

    def finalize(self, status: str) -> None:
        self.experiment.finish(exit_code=0 if status == "success" else 1)


class CsvRun:
    """`<save_dir>/<name>/version_<n>/hparams.yaml` and `metrics.csv`, as Lightning's CSVLogger."""

    def __init__(self, save_dir: str = ".", name: str = "csv", version: int | None = None, **_: Any) -> None:
        root = Path(save_dir) / name
        if version is None:
            taken = [int(p.name.split("_")[1]) for p in root.glob("version_*") if p.name.split("_")[1].isdigit()]
            version = max(taken, default=-1) + 1
        self.dir = root / f"version_{version}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict[str, Any]] = []

    def log_hyperparams(self, params: dict[str, Any]) -> None:
        atomic_write(self.dir / "hparams.yaml", OmegaConf.to_yaml(OmegaConf.create(params)))

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        self.rows.append({"step": step if step is not None else len(self.rows), **metrics})

    def finalize(self, status: str) -> None:
        cols = list(dict.fromkeys(k for row in self.rows for k in row))
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=cols, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write(self.dir / "metrics.csv", text.getvalue())


LIGHT = {
    "pytorch_lightning.loggers.WandbLogger": WandbRun,
    "lightning.pytorch.loggers.WandbLogger": WandbRun,
    "pytorch_lightning.loggers.CSVLogger": CsvRun,
    "lightning.pytorch.loggers.CSVLogger": CsvRun,
}
