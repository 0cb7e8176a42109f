"""`NeuronAblation`: a Lightning callback that, after `trainer.test` (or `trainer.validate`),
re-measures the model's own metric with the top share of each neuron ranking silenced.

The module says what its metric is: `ablation_metric_name` ("bleu", "perplexity", ...), and
`ablation_metric(batches) -> float`, `higher_is_better`. Arms: `<ranking>_top` for each ranking,
`<ranking>_bottom` (its reverse; `bottom` repeats the first ranking's, the results contract's key)
and `random` (mean of `random_draws` seeded draws; its sd per share in `random_sd`). Share 0 is the
unablated model, measured once.

Each arm silences the first k % of its own ordering, so rankings of different lengths silence
different counts (`silenced.<arm>.<p>` in the block). Random arms are drawn from one pool (the
longest ranking's neurons, then those of other rankings it lacks: for full rankings, every neuron
of the store) and silence as many neurons as the rankings they stand beside: `random` as the first
ranking, and `random_n<L>` for each other ranking length L, when lengths differ.
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
MODES = ("zero", "mean")  # patch needs a Recording of the same batches: silence() in Python only


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
        if mode not in MODES:
            raise ConfigError(f"ablation.mode: expected zero or mean, got '{mode}' (patch copies recorded "
                              "activations: use neuroscope.ablation.hooks.silence(mode='patch') with record())")
        if mode == "mean" and not values:
            raise ConfigError("ablation.mode: mean needs each neuron's mean (values=store_means(store))")
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

    def random_pool(self) -> list[str]:
        """The neurons random arms draw from: the longest ranking's (the first of equal ones), then
        the other rankings' neurons it lacks, in order."""
        pool: dict[str, None] = {}
        for ranking in sorted(self.rankings.values(), key=len, reverse=True):  # stable
            pool.update(dict.fromkeys(ranking))
        return list(pool)

    def random_arms(self) -> dict[str, int]:
        """{random arm: ranking length it matches}: `random` for the first ranking's, `random_n<L>`
        for each other length."""
        lengths = [len(r) for r in self.rankings.values()]
        return {"random": lengths[0], **{f"random_n{n}": n for n in dict.fromkeys(lengths) if n != lengths[0]}}

    def arms(self) -> dict[str, list[str]]:
        """Every arm's ordering of neurons (a share silences its first share %); random draws as
        `<random arm>_<draw>`."""
        arms: dict[str, list[str]] = {}
        for name, ranking in self.rankings.items():
            arms[f"{name}_top"] = ranking
            if self.bottom:
                arms[f"{name}_bottom"] = ranking[::-1]
        pool = self.random_pool()
        for d in range(self.random_draws):  # own stream: adding a ranking changes no random draw
            order = [pool[i] for i in random_order(len(pool), self.seed, STREAM_ABLATION, d)]
            for arm, n in self.random_arms().items():
                arms[f"{arm}_{d}"] = order[:n]  # n random neurons of the pool, in random order
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
        keys = [share_key(s) for s in self.shares]
        orders = self.arms()
        curves: dict[str, dict[str, float]] = {}
        spread: dict[str, dict[str, Any]] = {}  # random arm -> sd per share and each draw's curve
        silenced: dict[str, dict[str, int]] = {}  # arm -> neurons silenced per share
        for arm, n in self.random_arms().items():
            draws = [measured.pop(f"{arm}_{d}") for d in range(self.random_draws)]
            if draws:
                curves[arm] = {k: statistics.fmean(d[k] for d in draws) for k in keys}
                sd = {k: statistics.stdev(d[k] for d in draws) if len(draws) > 1 else 0.0 for k in keys}
                spread[arm] = {"n_neurons": n, "sd": sd, "draws": draws}
                silenced[arm] = {k: len(top_share(orders[f"{arm}_0"], s)) for k, s in zip(keys, self.shares, strict=True)}
        for arm, curve in measured.items():
            curves[arm] = curve
            silenced[arm] = {k: len(top_share(orders[arm], s)) for k, s in zip(keys, self.shares, strict=True)}
        if self.bottom:  # the contract's `bottom`: the first ranking reversed (its `<name>_bottom` arm)
            first = f"{next(iter(self.rankings))}_bottom"
            curves["bottom"], silenced["bottom"] = dict(curves[first]), dict(silenced[first])
        n = len(next(iter(self.rankings.values())))
        main = spread.pop("random", {"sd": {}, "draws": []})
        block = {
            "metric": str(getattr(pl_module, "ablation_metric_name", "metric")),
            "higher_is_better": bool(getattr(pl_module, "higher_is_better", True)),
            "baseline": baseline, "mode": self.mode, "where": self.where,
            "decoding": str(getattr(pl_module, "ablation_decoding", "")),
            "shares": keys, "n_neurons": n,
            "neurons_silenced": {k: int(round(n * s / 100)) for k, s in zip(keys, self.shares, strict=True)},
            "curves": curves, "random_sd": main["sd"], "random_draws": main["draws"],
            "silenced": silenced, "seconds": round(seconds, 3),
        }
        if spread:  # rankings of other lengths: their random arms' spread
            block["random_by_length"] = spread
        return block

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
