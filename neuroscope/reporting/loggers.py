"""Experiment loggers (W&B offline by default, CSV, none): created safely, always closed."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from neuroscope.reporting.light_loggers import LIGHT
from neuroscope.reporting.results import flatten

log = logging.getLogger(__name__)


def make_logger(node: DictConfig | None, light: bool = False) -> Any:
    """Instantiate the `logger` config group; a failing logger warns and the run goes on without it.
    `light`: Lightning's W&B and CSV loggers are replaced by equivalents that need no torch."""
    if node is None or not OmegaConf.to_container(node):
        return None
    if "Wandb" in str(node.get("_target_", "")) and node.get("offline", True):
        os.environ.setdefault("WANDB_MODE", "offline")  # never ask for a login or the network
    try:
        target = str(node.get("_target_", ""))
        if light and target in LIGHT:
            return LIGHT[target](**OmegaConf.to_container(node, resolve=True))
        return instantiate(node)
    except Exception as exc:  # a missing account, package or network must not end a run
        log.warning("logger %s unavailable (%s); continuing without it", node.get("_target_"), exc)
        return None


@contextmanager
def experiment_logger(node: DictConfig | None, cfg: DictConfig, light: bool = False) -> Iterator[Any]:
    """A logger with the resolved config as hyperparameters; finalized (W&B run closed) on exit."""
    logger = make_logger(node, light)
    try:
        if logger is not None:
            logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        yield logger
    finally:
        if logger is not None:
            try:
                logger.finalize("success")
            finally:
                if "Wandb" in type(logger).__name__ and "wandb" in sys.modules:
                    import wandb

                    wandb.finish()


def log_results(logger: Any, results: dict[str, Any]) -> None:
    """Send every numeric leaf of `results` to the logger."""
    if logger is not None:
        metrics = flatten(results)
        if metrics:
            logger.log_metrics(metrics)
