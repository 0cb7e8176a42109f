"""A whole LCA-style study on one store: λ choice, oracle, ranking, subsets, minimal subset,
layers and selectivity — the numbers of the results.json contract."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from neuroscope.errors import ConfigError
from neuroscope.evaluation.layers import layer_report
from neuroscope.evaluation.splits import Splits
from neuroscope.evaluation.subsets import minimal_subset, n_of, subset_curves
from neuroscope.methods.base import NeuronRanking, rank
from neuroscope.methods.lca import lca
from neuroscope.probes import ProbeConfig

log = logging.getLogger(__name__)


def grid_pairs(grid: list[Any]) -> list[tuple[float, float]]:
    """(λ1, λ2) pairs of `probe.selection.grid`: a number x means λ1 = λ2 = x, a pair [a, b]
    means λ1 = a, λ2 = b (so the diagonal, a full 2-D grid or any mix can be searched)."""
    pairs = []
    for item in grid:
        if isinstance(item, (int, float)):
            pairs.append((float(item), float(item)))
        elif isinstance(item, Sequence) and not isinstance(item, str) and len(item) == 2 \
                and all(isinstance(v, (int, float)) for v in item):
            pairs.append((float(item[0]), float(item[1])))
        else:
            raise ConfigError(f"probe.selection.grid: {item!r} is neither a number (λ1 = λ2) nor a pair [λ1, λ2]")
    if not pairs:
        raise ConfigError("probe.selection.grid: empty; give numbers (λ1 = λ2) or pairs [λ1, λ2]")
    return pairs


def select_lambda(splits: Splits, cfg: ProbeConfig, grid: list[Any], percent: float, tolerance: float,
                  classes: list[str], seed: int) -> tuple[ProbeConfig, list[dict[str, Any]]]:
    """Choose (λ1, λ2) on dev: among the grid points whose oracle is within `tolerance` of the
    best oracle, the one whose LCA top-`percent` % beats a random `percent` % by the most
    (ties: the smaller penalty)."""
    n = splits.train.n_neurons
    k = n_of(percent, n)
    random_cols = np.sort(np.random.default_rng(seed).permutation(n)[:k])
    rows = []
    for l1, l2 in grid_pairs(grid):
        c = cfg.with_(lambda1=l1, lambda2=l2)
        probe, _ = splits.fit(c)
        top = np.sort(lca(probe.weight, classes, seed).order[:k])
        rows.append({"lambda": l1 if l1 == l2 else None, "lambda1": l1, "lambda2": l2,
                     "oracle_dev": splits.score(probe, "dev")["accuracy"],
                     "top_dev": splits.columns(top).fit_score(c, "dev"),
                     "random_dev": splits.columns(random_cols).fit_score(c, "dev")})
    best_oracle = max(r["oracle_dev"] for r in rows)
    ok = [r for r in rows if r["oracle_dev"] >= best_oracle - tolerance]
    chosen = max(ok, key=lambda r: (r["top_dev"] - r["random_dev"], -(r["lambda1"] + r["lambda2"])))
    for r in rows:
        r["chosen"] = r is chosen
    return cfg.with_(lambda1=chosen["lambda1"], lambda2=chosen["lambda2"]), rows


def run_study(store: Any, splits: Splits, classes: list[str], method: dict[str, Any], probe_cfg: ProbeConfig,
              selection: dict[str, Any], evaluation: dict[str, Any], seed: int,
              control: Splits | None = None) -> dict[str, Any]:
    """Everything a study reports, as a dict following the results.json contract."""
    t0 = time.perf_counter()
    out: dict[str, Any] = {}
    cfg = probe_cfg
    if selection.get("enabled"):
        cfg, rows = select_lambda(splits, cfg, list(selection["grid"]), float(selection["percent"]),
                                  float(selection["tolerance"]), classes, seed)
        out["lambda_search"] = rows
    out["probe"] = {"lambda1": cfg.lambda1, "lambda2": cfg.lambda2, "penalty": cfg.penalty,
                    "standardize": cfg.standardize, "proximal": cfg.proximal, "shuffle": cfg.shuffle,
                    "batch_size": cfg.batch_size, "lr": cfg.lr,
                    "in_memory": splits.in_memory}
    oracle, info = splits.fit(cfg)
    out["probe"].update(epochs=info["epochs"], best_epoch=info["best_epoch"])
    probe_seconds = info["seconds"]
    scores = splits.score(oracle, per_class=True)
    out["oracle"] = {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"],
                     "per_class": dict(zip(classes, scores["per_class"], strict=True)),
                     "dev_accuracy": splits.score(oracle, "dev")["accuracy"]}
    if control is not None:
        control_probe, _ = control.fit(cfg)
        out["control"] = {"accuracy": control.score(control_probe)["accuracy"]}
        out["selectivity"] = out["oracle"]["accuracy"] - out["control"]["accuracy"]

    t1 = time.perf_counter()
    params = dict(method)
    name = params.pop("name")
    ranking: NeuronRanking = rank(name, params, splits.train.n_neurons, {
        "acts": lambda: _train_array(splits), "labels": lambda: _train_labels(splits),
        "probe": lambda: oracle.weight, "classes": lambda: classes, "seed": lambda: seed,
    })
    out["timings"] = {"probe_seconds": probe_seconds, "method_seconds": time.perf_counter() - t1}
    order = ranking.order
    percents = [float(p) for p in evaluation["percents"]]
    out["subsets"] = subset_curves(splits, oracle, order, percents, cfg, seed,
                                   control if evaluation.get("control_subsets") else None)
    out["minimal_subset"] = minimal_subset(splits, order, out["oracle"]["dev_accuracy"], out["oracle"]["accuracy"],
                                           float(evaluation["minimal_delta"]), cfg)
    out["layers"] = layer_report(store, splits, order, float(evaluation["layer_top_percent"]), cfg,
                                 bool(evaluation.get("layer_probes", True)))
    out["ranking"] = ranking.ids(store.neurons)
    if "per_class" in ranking.detail:
        out["ranking_detail"] = {"per_class": {c: [store.neurons[i] for i in v]
                                               for c, v in ranking.detail["per_class"].items()}}
    out["timings"]["study_seconds"] = time.perf_counter() - t0
    return out


def _train_array(splits: Splits) -> np.ndarray:
    if splits.in_memory:
        return splits.train.x
    return np.concatenate([x for x, _ in splits.train.chunks()])


def _train_labels(splits: Splits) -> np.ndarray:
    return np.concatenate([y for _, y in splits.train.chunks()])

