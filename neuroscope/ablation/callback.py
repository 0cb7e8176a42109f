"""`NeuronAblation`: a Lightning callback that, after `trainer.test` (or `trainer.validate`),
re-measures the model's own metric with the top share of each neuron ranking silenced.

The module says what its metric is: `ablation_metric_name` ("bleu", "perplexity", ...), and
`ablation_metric(batches) -> float`, `higher_is_better`. Arms: `<ranking>_top` for each ranking,
`<ranking>_bottom` (its reverse; `bottom` repeats the first ranking's, the results contract's key)
and `random` (mean of `random_draws` seeded permutations of the neurons; its sd per share in `random_sd`). Share 0 is the unablated model, measured once.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.apply_func import move_data_to_device

from neuroscope.ablation.hooks import WHERE, silence
from neuroscope.errors import ConfigError
from neuroscope.evaluation.subsets import STREAM_ABLATION, random_order
from neuroscope.reporting.tables import ablation_table, log_tables, write_tables

log = logging.getLogger(__name__)
DEFAULT_SHARES = (0, 1, 2, 5, 10, 15, 20, 30, 50)


def top_share(ranking: Sequence[str], share: float) -> list[str]:
    """The first `share` % of a ranking (rounded to whole neurons)."""
    return list(ranking[: int(round(len(ranking) * share / 100))])


def share_key(share: float) -> str:
    """JSON key of a share: "5", "2.5"."""
    return f"{share:g}"


class NeuronAblation(pl.Callback):
    """Curves of the model's metric vs % of neurons silenced, one per arm (see the module doc)."""

    def __init__(self, rankings: Mapping[str, Sequence[str]], shares: Sequence[float] = DEFAULT_SHARES,
                 mode: str = "zero", where: str = "output", values: Any = None, random_draws: int = 3,
                 seed: int = 0, bottom: bool = True, stage: str = "test", out_dir: str | Path | None = None) -> None:
        if not rankings or any(len(r) == 0 for r in rankings.values()):
            raise ConfigError("ablation.rankings: give at least one non-empty ranking of neuron ids")
        bad = [s for s in shares if not 0 <= float(s) <= 100]
        if bad:
            raise ConfigError(f"ablation.shares: shares are percents in 0..100, got {bad}")
        if where not in WHERE:
            raise ConfigError(f"ablation.where: expected one of {WHERE}, got '{where}'")
        if stage not in ("test", "validate"):
            raise ConfigError(f"ablation.stage: expected test or validate, got '{stage}'")
        if random_draws < 0:
            raise ConfigError(f"ablation.random_draws: must be >= 0, got {random_draws}")
        self.rankings = {str(k): [str(n) for n in v] for k, v in rankings.items()}
        self.shares = sorted({float(s) for s in shares} | {0.0})
        self.mode, self.where, self.values = mode, where, values
        self.random_draws, self.seed, self.bottom, self.stage = int(random_draws), int(seed), bottom, stage
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.results: dict[str, Any] | None = None

    def arms(self) -> dict[str, list[str]]:
        """Every arm's full ordering of neurons (a share silences its first share %)."""
        arms: dict[str, list[str]] = {}
        for name, ranking in self.rankings.items():
            arms[f"{name}_top"] = ranking
            if self.bottom:
                arms[f"{name}_bottom"] = ranking[::-1]
        neurons = next(iter(self.rankings.values()))
        for d in range(self.random_draws):  # own stream: adding a ranking changes no random draw
            arms[f"random_{d}"] = [neurons[i] for i in random_order(len(neurons), self.seed, STREAM_ABLATION, d)]
        return arms

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.stage == "test":
            self.run(pl_module, trainer.test_dataloaders, trainer.loggers)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.stage == "validate" and not trainer.sanity_checking and trainer.state.fn == "validate":
            self.run(pl_module, trainer.val_dataloaders, trainer.loggers)

    @torch.inference_mode()
    def run(self, pl_module: Any, dataloaders: Any, loggers: Iterable[Any] = ()) -> dict[str, Any]:
        """Measure every arm at every share on `dataloaders`; log curves and tables; return the block."""
        if not hasattr(pl_module, "ablation_metric"):
            raise ConfigError(f"ablation: {type(pl_module).__name__} has no ablation_metric(batches); "
                              "the NMT (BLEU) and the LM (perplexity) have one")
        loaders = dataloaders if isinstance(dataloaders, list | tuple) else [dataloaders]
        batches = [move_data_to_device(b, pl_module.device) for loader in loaders for b in loader]
        was_training = pl_module.training
        pl_module.eval()
        t0 = time.perf_counter()
        try:
            baseline = float(pl_module.ablation_metric(batches))
            measured: dict[str, dict[str, float]] = {}
            for arm, order in self.arms().items():
                curve = measured.setdefault(arm, {"0": baseline})
                for share in self.shares[1:]:
                    with silence(pl_module, top_share(order, share), self.mode, self.values, self.where):
                        curve[share_key(share)] = float(pl_module.ablation_metric(batches))
                log.info("ablation %s: %s", arm, {k: round(v, 3) for k, v in curve.items()})
        finally:
            pl_module.train(was_training)
        self.results = self._block(pl_module, baseline, measured, time.perf_counter() - t0)
        self._log(loggers)
        return self.results

    def _block(self, pl_module: Any, baseline: float, measured: dict[str, dict[str, float]],
               seconds: float) -> dict[str, Any]:
        """The results.json `ablation` block (docs/results.md)."""
        draws = [measured.pop(f"random_{d}") for d in range(self.random_draws)]
        curves = dict(measured)
        if self.bottom:  # the contract's `bottom`: the first ranking reversed (its `<name>_bottom` arm)
            curves["bottom"] = dict(curves[f"{next(iter(self.rankings))}_bottom"])
        keys = [share_key(s) for s in self.shares]
        random_sd = {}
        if draws:
            curves["random"] = {k: statistics.fmean(d[k] for d in draws) for k in keys}
            random_sd = {k: statistics.stdev(d[k] for d in draws) if len(draws) > 1 else 0.0 for k in keys}
        n = len(next(iter(self.rankings.values())))
        return {
            "metric": str(getattr(pl_module, "ablation_metric_name", "metric")),
            "higher_is_better": bool(getattr(pl_module, "higher_is_better", True)),
            "baseline": baseline, "mode": self.mode, "where": self.where,
            "decoding": str(getattr(pl_module, "ablation_decoding", "")),
            "shares": keys, "n_neurons": n,
            "neurons_silenced": {k: int(round(n * s / 100)) for k, s in zip(keys, self.shares, strict=True)},
            "curves": curves, "random_sd": random_sd, "random_draws": draws,
            "seconds": round(seconds, 3),
        }

    def _log(self, loggers: Iterable[Any]) -> None:
        """ablation.csv in `out_dir`; per logger a metric per arm at each share (step = share index),
        the table and, for W&B, a line chart."""
        block = {"ablation": self.results or {}}
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            write_tables(block, self.out_dir)
        res = block["ablation"]
        for logger in loggers or ():
            try:
                for i, k in enumerate(res["shares"]):
                    logger.log_metrics({f"ablation/{res['metric']}/{arm}": c[k] for arm, c in res["curves"].items()}
                                       | {"ablation/percent": float(k)}, step=i)
                log_tables(logger, {"ablation": ablation_table(res)}, block)
            except Exception as exc:  # a logger failure must not lose the measured curves
                log.warning("ablation: logging to %s failed (%s)", type(logger).__name__, exc)
