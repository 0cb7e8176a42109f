"""Accuracy with the top / random / bottom k % of a ranking, and the minimal top subset."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuroscope.evaluation.splits import Splits
from neuroscope.probes import Probe, ProbeConfig


def n_of(percent: float, n_neurons: int) -> int:
    """Neurons in k % of the model (at least one)."""
    return max(1, int(round(percent / 100 * n_neurons)))


def percent_key(percent: float) -> str:
    """Contract key: `"1"`, `"2"`, `"0.5"`."""
    return f"{percent:g}"


def subset_curves(splits: Splits, oracle: Probe, order: np.ndarray, percents: list[float], cfg: ProbeConfig,
                  seed: int, control: Splits | None = None) -> dict[str, dict[str, dict[str, Any]]]:
    """For each kind and k: test accuracy of a probe retrained on the subset (the papers'
    protocol) and of the oracle probe with the other neurons zeroed; selectivity on request."""
    n = len(order)
    random_order = np.random.default_rng(seed).permutation(n)
    kinds = {"top": order, "random": random_order, "bottom": order[::-1]}
    out: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in kinds}
    for kind, ranking in kinds.items():
        for p in percents:
            cols = np.sort(ranking[: n_of(p, n)])
            row: dict[str, Any] = {
                "n_neurons": len(cols),
                "accuracy": splits.columns(cols).fit_score(cfg),
                "accuracy_zeroed": splits.score(oracle.keep(cols))["accuracy"],
            }
            if control is not None:
                row["control_accuracy"] = control.columns(cols).fit_score(cfg)
                row["selectivity"] = row["accuracy"] - row["control_accuracy"]
            out[kind][percent_key(p)] = row
    return out


def minimal_subset(splits: Splits, order: np.ndarray, oracle_dev: float, oracle_test: float,
                   delta: float, cfg: ProbeConfig) -> dict[str, Any]:
    """Smallest top-n whose retrained probe reaches the oracle's dev accuracy within `delta`
    (binary search over n, assuming accuracy grows with n); reports its test accuracy."""
    n = len(order)
    cache: dict[int, float] = {}

    def dev_acc(k: int) -> float:
        if k not in cache:
            cache[k] = splits.columns(np.sort(order[:k])).fit_score(cfg, "dev")
        return cache[k]

    lo, hi = 1, n
    while lo < hi:
        mid = (lo + hi) // 2
        if dev_acc(mid) >= oracle_dev - delta:
            hi = mid
        else:
            lo = mid + 1
    test = splits.columns(np.sort(order[:lo])).fit_score(cfg)
    return {"n_neurons": lo, "share": lo / n, "accuracy": test, "delta": oracle_test - test,
            "dev_accuracy": cache.get(lo, dev_acc(lo)), "tolerance": delta, "probes_trained": len(cache) + 1}
