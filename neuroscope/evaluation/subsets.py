"""Accuracy with the top / random / bottom k % of a ranking, and the minimal top subset."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuroscope.probes import Probe, ProbeConfig
from neuroscope.probes.splits import Splits
from neuroscope.progress import stage

# Independent random streams of one study seed: the random subsets a study reports never share
# a draw with the ones λ selection compares against (which would tilt "top beats random").
STREAM_REPORT = 1
STREAM_SELECTION = 2
STREAM_ABLATION = 7919  # NeuronAblation's random arms


def n_of(percent: float, n_neurons: int) -> int:
    """Neurons in k % of the model (at least one)."""
    return max(1, int(round(percent / 100 * n_neurons)))


def percent_key(percent: float) -> str:
    """Contract key: `"1"`, `"2"`, `"0.5"`."""
    return f"{percent:g}"


def random_order(n_neurons: int, seed: int, stream: int, draw: int = 0) -> np.ndarray:
    """[neurons] a random permutation from its own stream: (seed, stream, draw) seeds a
    SeedSequence, so streams and draws are independent of each other and of the study seed's
    other uses."""
    return np.random.default_rng([seed, stream, draw]).permutation(n_neurons)


def spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for a single value)."""
    a = np.asarray(values, dtype=np.float64)
    return float(a.mean()), float(a.std(ddof=1)) if len(a) > 1 else 0.0


def _subset_row(splits: Splits, oracle: Probe, cols: np.ndarray, cfg: ProbeConfig,
                control: Splits | None) -> dict[str, Any]:
    """Retrained and zeroed-oracle accuracy of one neuron subset (+ control and selectivity)."""
    row: dict[str, Any] = {
        "n_neurons": len(cols),
        "accuracy": splits.columns(cols).fit_score(cfg),
        "accuracy_zeroed": splits.score(oracle.keep(cols))["accuracy"],
    }
    if control is not None:
        row["control_accuracy"] = control.columns(cols).fit_score(cfg)
        row["selectivity"] = row["accuracy"] - row["control_accuracy"]
    return row


def _mean_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Random draws of one k %: mean of each number, its spread (`<key>_sd`) and the draws."""
    out: dict[str, Any] = {"n_neurons": rows[0]["n_neurons"], "draws": len(rows)}
    for key in ("accuracy", "accuracy_zeroed", "control_accuracy", "selectivity"):
        if key in rows[0]:
            out[key], out[f"{key}_sd"] = spread([r[key] for r in rows])
    out["accuracy_draws"] = [r["accuracy"] for r in rows]
    return out


def subset_curves(splits: Splits, oracle: Probe, order: np.ndarray, percents: list[float], cfg: ProbeConfig,
                  seed: int, control: Splits | None = None, draws: int = 5) -> dict[str, dict[str, dict[str, Any]]]:
    """For each kind and k: test accuracy of a probe retrained on the subset (the papers'
    protocol) and of the oracle probe with the other neurons zeroed; selectivity on request.
    Random is `draws` independent subsets, reported as mean and standard deviation."""
    n = len(order)
    out: dict[str, dict[str, dict[str, Any]]] = {"top": {}, "random": {}, "bottom": {}}
    perms = [random_order(n, seed, STREAM_REPORT, d) for d in range(max(1, draws))]
    with stage("top/random/bottom", total=len(percents) * (2 + len(perms))) as step:
        for kind, ranking in (("top", order), ("bottom", order[::-1])):
            for p in percents:
                out[kind][percent_key(p)] = _subset_row(splits, oracle, np.sort(ranking[: n_of(p, n)]), cfg, control)
                step(note=f"{kind} {p:g} %")
        for p in percents:
            rows = []
            for perm in perms:
                rows.append(_subset_row(splits, oracle, np.sort(perm[: n_of(p, n)]), cfg, control))
                step(note=f"random {p:g} %")
            out["random"][percent_key(p)] = _mean_row(rows)
    return out


def minimal_subset(splits: Splits, order: np.ndarray, oracle_dev: float, oracle_test: float,
                   delta: float, cfg: ProbeConfig, hints: list[int] | None = None) -> dict[str, Any]:
    """Smallest top-n whose retrained probe reaches the oracle's dev accuracy within `delta`
    (binary search over n, assuming accuracy grows with n); reports its test accuracy. `hints`:
    sizes whose probes are trained already (the top k % curve), tried first on dev to narrow the
    search (dev only: the choice never sees test)."""
    n = len(order)
    cache: dict[int, float] = {}

    def dev_acc(k: int) -> float:
        if k not in cache:
            cache[k] = splits.columns(np.sort(order[:k])).fit_score(cfg, "dev")
        return cache[k]

    lo, hi = 1, n
    tried = sorted(set(hints or []))
    with stage("minimal subset", total=len(tried) + max(1, n - 1).bit_length() + 1) as step:  # at most
        for k in tried:
            if not lo <= k < hi:
                continue
            reached = dev_acc(k) >= oracle_dev - delta
            step(note=f"top {k}")
            if reached:
                hi = k
                break
            lo = k + 1
        while lo < hi:
            mid = (lo + hi) // 2
            if dev_acc(mid) >= oracle_dev - delta:
                hi = mid
            else:
                lo = mid + 1
            step(note=f"top {mid}")
        test = splits.columns(np.sort(order[:lo])).fit_score(cfg)
        step(note=f"test {lo}")
    return {"n_neurons": lo, "share": lo / n, "accuracy": test, "delta": oracle_test - test,
            "dev_accuracy": cache.get(lo, dev_acc(lo)), "tolerance": delta, "probes_trained": len(cache) + 1}
