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

Several modes (`modes=["zero", "mean"]`) measure every arm under each: the block then holds
`curves.<mode>.<arm>`, `random_sd.<mode>`, `random_draws.<mode>` (one mode keeps the flat layout;
`reporting.results.mode_views` reads both). With `stats` (each neuron's mean, sd and mean square over
the property corpus, `store_moments`), `silenced_stats.<arm>.<p>` says what each silenced set was
made of: mean |μ|/σ (how far zero is from the units' usual values) and mean squared activation.
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
from neuroscope.ablation.latents import spliced
from neuroscope.errors import ConfigError
from neuroscope.evaluation.subsets import STREAM_ABLATION, random_order
from neuroscope.models.sites import hook_points
from neuroscope.progress import stage
from neuroscope.reporting.results import mode_views
from neuroscope.reporting.tables import ablation_table, log_tables, write_tables

log = logging.getLogger(__name__)
DEFAULT_SHARES = (0, 1, 2, 5, 10, 15, 20, 30, 50)
MODES = ("zero", "mean")  # patch needs a Recording of the same batches: silence() in Python only


def check_modes(given: str | Sequence[str] | None, key: str, expected: str = "expected zero or mean") -> list[str]:
    """The ablation modes `given` (one name or a list), each zero or mean and given once; errors name
    `key` and say `expected`."""
    modes = [given] if isinstance(given, str) else [str(m) for m in given or []]
    if not modes or len(set(modes)) != len(modes):
        raise ConfigError(f"{key}: give each mode once, e.g. [zero, mean]; got {modes}")
    for m in modes:
        if m not in MODES:
            raise ConfigError(f"{key}: {expected}, got '{m}' (patch copies recorded activations: use "
                              "neuroscope.ablation.hooks.silence(mode='patch') with record() in Python)")
    return modes


def silenced_stats(sets: Sequence[Sequence[str]], stats: Mapping[str, tuple[float, float, float]]) -> dict[str, float]:
    """Mean over the units of `sets` (one set, or a random arm's draws) of |μ|/σ (0 for a constant
    unit) and of the mean squared activation, from `stats` {neuron: (mean, sd, mean square)}."""
    offsets, squares = [], []
    for units in sets:
        rows = [stats[u] for u in units if u in stats]
        if rows:
            offsets.append(statistics.fmean(abs(m) / sd if sd > 0 else 0.0 for m, sd, _ in rows))
            squares.append(statistics.fmean(sq for _, _, sq in rows))
    return {"offset": statistics.fmean(offsets) if offsets else 0.0,
            "mean_square": statistics.fmean(squares) if squares else 0.0}


def top_share(ranking: Sequence[str], share: float) -> list[str]:
    """The first `share` % of a ranking (rounded to whole neurons)."""
    return list(ranking[: int(round(len(ranking) * share / 100))])


def share_key(share: float) -> str:
    """JSON key of a share: "5", "2.5"."""
    return f"{share:g}"


class NeuronAblation(pl.Callback):
    """Curves of the model's metric vs % of neurons silenced, one per arm (see the module doc)."""

    def __init__(self, rankings: Mapping[str, Sequence[str]], shares: Sequence[float] = DEFAULT_SHARES,
                 mode: str | Sequence[str] = "zero", where: str = "output", values: Any = None, random_draws: int = 3,
                 seed: int = 0, bottom: bool = True, stage: str = "test", out_dir: str | Path | None = None,
                 stats: Mapping[str, tuple[float, float, float]] | None = None,
                 saes: Mapping[str, Any] | None = None) -> None:
        if not rankings or any(len(r) == 0 for r in rankings.values()):
            raise ConfigError("ablation.rankings: give at least one non-empty ranking of neuron ids")
        bad = [s for s in shares if not 0 <= float(s) <= 100]
        if bad:
            raise ConfigError(f"ablation.shares: shares are percents in 0..100, got {bad}")
        modes = check_modes(mode, "ablation.mode" if isinstance(mode, str) else "ablation.modes")
        if "mean" in modes and not values:
            raise ConfigError("ablation.mode: mean needs each neuron's mean (values=store_means(store))")
        if where not in WHERE:
            raise ConfigError(f"ablation.where: expected one of {WHERE}, got '{where}'")
        if stage not in ("test", "validate"):
            raise ConfigError(f"ablation.stage: expected test or validate, got '{stage}'")
        if random_draws < 0:
            raise ConfigError(f"ablation.random_draws: must be >= 0, got {random_draws}")
        self.rankings = {str(k): [str(n) for n in v] for k, v in rankings.items()}
        self.shares = sorted({float(s) for s in shares} | {0.0})
        self.modes, self.where, self.values, self.stats = modes, where, values, stats
        self.random_draws, self.seed, self.bottom, self.stage = int(random_draws), int(seed), bottom, stage
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.saes = dict(saes or {})  # {site: SAE module}: rankings may name its latents (`site.sae:i`)
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
        arms = self.arms()
        total = 1 + len(self.modes) * len(arms) * (len(self.shares) - 1)
        try:
            with stage("ablation arms × shares", total=total) as step:
                baseline = float(pl_module.ablation_metric(batches))
                step(note="baseline")
                splices = self._splices(pl_module, batches, baseline)
                measured: dict[str, dict[str, dict[str, float]]] = {}  # mode -> arm -> curve
                for mode in self.modes:
                    for arm, order in arms.items():
                        curve = measured.setdefault(mode, {}).setdefault(arm, {"0": baseline})
                        for share in self.shares[1:]:
                            with silence(pl_module, top_share(order, share), mode, self.values, self.where, self.saes):
                                curve[share_key(share)] = float(pl_module.ablation_metric(batches))
                            step(note=f"{mode} {arm} {share:g} %")
                        log.info("ablation %s %s: %s", mode, arm, {k: round(v, 3) for k, v in curve.items()})
        finally:
            pl_module.train(was_training)
        self.results = self._block(pl_module, baseline, measured, time.perf_counter() - t0)
        if splices:
            self.results["sae"] = splices
        self._log(loggers)
        return self.results

    def _splices(self, pl_module: Any, batches: list[Any], baseline: float) -> dict[str, dict[str, float]]:
        """Per SAE site: the metric with the site replaced by its reconstruction (`spliced`), with the
        whole site zeroed, and the share of the zeroing's damage the SAE recovers:
        (zeroed − spliced) / (zeroed − baseline), 1 = the reconstruction loses nothing the model uses."""
        out: dict[str, dict[str, float]] = {}
        points = hook_points(pl_module)
        for site, sae in self.saes.items():
            with spliced(pl_module, {site: sae}):
                with_sae = float(pl_module.ablation_metric(batches))
            with silence(pl_module, [f"{site}:{i}" for i in range(points[site].width)], "zero", None, self.where):
                zeroed = float(pl_module.ablation_metric(batches))
            gap = zeroed - baseline
            out[site] = {"spliced": with_sae, "site_zeroed": zeroed,
                         "recovered": (zeroed - with_sae) / gap if gap else float("nan")}
            log.info("ablation: SAE on %s: metric %.4g spliced, %.4g with the site zeroed, baseline %.4g",
                     site, with_sae, zeroed, baseline)
        return out

    def _curves(self, measured: dict[str, dict[str, float]]) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
        """One mode's curves per arm (random arms: mean over draws) and the random arms' spread."""
        keys = [share_key(s) for s in self.shares]
        measured = dict(measured)
        curves: dict[str, dict[str, float]] = {}
        spread: dict[str, dict[str, Any]] = {}  # random arm -> sd per share and each draw's curve
        for arm, n in self.random_arms().items():
            draws = [measured.pop(f"{arm}_{d}") for d in range(self.random_draws)]
            if draws:
                curves[arm] = {k: statistics.fmean(d[k] for d in draws) for k in keys}
                sd = {k: statistics.stdev(d[k] for d in draws) if len(draws) > 1 else 0.0 for k in keys}
                spread[arm] = {"n_neurons": n, "sd": sd, "draws": draws}
        curves.update(measured)
        if self.bottom:  # the contract's `bottom`: the first ranking reversed (its `<name>_bottom` arm)
            curves["bottom"] = dict(curves[f"{next(iter(self.rankings))}_bottom"])
        return curves, spread

    def _silenced(self) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, dict[str, float]]]]:
        """Per arm (random arms: their first draw's count, the draws' mean statistics) and share: the
        neurons silenced, and with `stats` the silenced units' mean |μ|/σ and mean square."""
        orders = self.arms()
        counts: dict[str, dict[str, int]] = {}
        stats: dict[str, dict[str, dict[str, float]]] = {}
        groups = {arm: [f"{arm}_{d}" for d in range(self.random_draws)] for arm in self.random_arms()}
        groups = {arm: names for arm, names in groups.items() if names}
        groups.update({arm: [arm] for arm in orders if not any(arm in names for names in groups.values())})
        for arm, names in groups.items():
            counts[arm] = {share_key(s): len(top_share(orders[names[0]], s)) for s in self.shares}
            if self.stats:
                stats[arm] = {share_key(s): silenced_stats([top_share(orders[a], s) for a in names], self.stats)
                              for s in self.shares[1:]}
        if self.bottom:
            first = f"{next(iter(self.rankings))}_bottom"
            counts["bottom"] = dict(counts[first])
            if self.stats:
                stats["bottom"] = dict(stats[first])
        return counts, stats

    def _block(self, pl_module: Any, baseline: float, measured: dict[str, dict[str, dict[str, float]]],
               seconds: float) -> dict[str, Any]:
        """The results.json `ablation` block (docs/results.md): one mode flat, several by mode."""
        keys = [share_key(s) for s in self.shares]
        per_mode = {mode: self._curves(measured[mode]) for mode in self.modes}
        silenced, stats = self._silenced()
        n = len(next(iter(self.rankings.values())))
        empty = {"sd": {}, "draws": []}
        curves = {m: c for m, (c, _) in per_mode.items()}
        random_sd = {m: sp.get("random", empty)["sd"] for m, (_, sp) in per_mode.items()}
        random_draws = {m: sp.get("random", empty)["draws"] for m, (_, sp) in per_mode.items()}
        by_length = {m: {a: v for a, v in sp.items() if a != "random"} for m, (_, sp) in per_mode.items()}
        one = len(self.modes) == 1
        first = self.modes[0]
        block = {
            "metric": str(getattr(pl_module, "ablation_metric_name", "metric")),
            "higher_is_better": bool(getattr(pl_module, "higher_is_better", True)),
            "baseline": baseline, "mode": first if one else "+".join(self.modes), "modes": list(self.modes),
            "where": self.where, "decoding": str(getattr(pl_module, "ablation_decoding", "")),
            "shares": keys, "n_neurons": n,
            "neurons_silenced": {k: int(round(n * s / 100)) for k, s in zip(keys, self.shares, strict=True)},
            "curves": curves[first] if one else curves,
            "random_sd": random_sd[first] if one else random_sd,
            "random_draws": random_draws[first] if one else random_draws,
            "silenced": silenced, "seconds": round(seconds, 3),
        }
        if any(by_length.values()):  # rankings of other lengths: their random arms' spread
            block["random_by_length"] = by_length[first] if one else by_length
        if stats:
            block["silenced_stats"] = stats
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
                views = mode_views(res)
                for i, k in enumerate(res["shares"]):
                    logger.log_metrics({(f"ablation/{res['metric']}/{arm}" if len(views) == 1 else
                                         f"ablation/{res['metric']}/{mode}/{arm}"): c[k]
                                        for mode, view in views.items() for arm, c in view["curves"].items()}
                                       | {"ablation/percent": float(k)}, step=i)
                log_tables(logger, {"ablation": ablation_table(res)}, block)
            except Exception as exc:  # a logger failure must not lose the measured curves
                log.warning("ablation: logging to %s failed (%s)", type(logger).__name__, exc)
