"""The LCA protocol for a numeric task (e.g. `task=depth`): a linear regression probe, its neurons
ranked by |weight|, R² of probes retrained on the top / random / bottom k %, and per site."""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from neuroscope.errors import ConfigError
from neuroscope.evaluation.subsets import STREAM_REPORT, random_order
from neuroscope.methods.base import rank
from neuroscope.probes import ProbeConfig
from neuroscope.probes.regression import fit_regression, regression_scores

METHODS = ("lca", "weight_norm", "random")  # the rankings defined for one real-valued output


def run_regression_study(store: Any, corpus: Any, method: dict[str, Any], cfg: ProbeConfig,
                         selection: dict[str, Any], evaluation: dict[str, Any], seed: int,
                         keep: dict[str, Any] | None = None) -> dict[str, Any]:
    """results.json entries of a regression study (docs/results.md, "Numeric tasks"); `keep`
    receives the oracle probe and its settings (`oracle`, `cfg`), as `run_study`'s does."""
    t0 = time.perf_counter()
    name = method["name"]
    if name not in METHODS:
        raise ConfigError(f"method.name: '{name}' ranks classes; on the numeric task '{corpus.name}' use one of {METHODS}")
    masks = [(corpus.split == i) & (corpus.labels >= 0) for i in range(3)]
    need = sum(int(m.sum()) for m in masks) * store.n_neurons * 4 / 2**30
    if need > float(evaluation["memory_gb"]):
        raise ConfigError(f"evaluation.memory_gb: a regression study holds its tokens in RAM ({need:.1f} GiB here); "
                          "raise evaluation.memory_gb or use fewer sites")
    (xtr, ytr), (xdv, ydv), (xte, yte) = [(store.read(tokens=m), corpus.values[m]) for m in masks]

    def fit(cols: np.ndarray | None, c: ProbeConfig) -> tuple[Any, dict[str, Any]]:
        pick = (lambda a: a) if cols is None else (lambda a: a[:, cols])
        return fit_regression(pick(xtr), ytr, c, (pick(xdv), ydv))

    def test_r2(cols: np.ndarray, c: ProbeConfig) -> float:
        model, _ = fit(cols, c)
        return regression_scores(model.predict(xte[:, cols]), yte)["r2"]

    out: dict[str, Any] = {"metric": "r2"}
    if selection.get("enabled"):  # oracle rule: the λ with the best dev R²
        rows = []
        for entry in selection["grid"]:
            l1, l2 = (entry, entry) if not isinstance(entry, list | tuple) else entry
            c = cfg.with_(lambda1=float(l1), lambda2=float(l2))
            model, _ = fit(None, c)
            rows.append({"lambda1": c.lambda1, "lambda2": c.lambda2,
                         "oracle_dev": regression_scores(model.predict(xdv), ydv)["r2"], "chosen": False})
        best = max(range(len(rows)), key=lambda i: rows[i]["oracle_dev"])
        rows[best]["chosen"] = True
        cfg = cfg.with_(lambda1=rows[best]["lambda1"], lambda2=rows[best]["lambda2"])
        out["lambda_search"] = rows
    oracle, info = fit(None, cfg)
    if keep is not None:
        keep.update(oracle=oracle, cfg=cfg)
    out["probe"] = {"lambda1": cfg.lambda1, "lambda2": cfg.lambda2, "penalty": cfg.penalty, "kind": "regression",
                    "selection_rule": "oracle" if selection.get("enabled") else "fixed",
                    "epochs": info["epochs"], "best_epoch": info["best_epoch"]}
    out["oracle"] = {**regression_scores(oracle.predict(xte), yte),
                     "dev_r2": regression_scores(oracle.predict(xdv), ydv)["r2"]}
    t1 = time.perf_counter()
    n = store.n_neurons
    # Ranked through the method registry. With one output, LCA's weight mass per neuron is |w|, the
    # weight norm's score: `lca` ranks as `weight_norm` (its class-percentage steps need classes).
    ranker = "weight_norm" if name == "lca" else name
    params = {k: v for k, v in method.items() if k != "name"} if ranker == name else {}
    weight = np.asarray(oracle.weight, dtype=np.float64).reshape(1, -1)  # [1 output, neurons]
    ranking = rank(ranker, params, n, {"probe": lambda: weight, "seed": lambda: seed})
    order = ranking.order
    out["timings"] = {"probe_seconds": info["seconds"], "method_seconds": time.perf_counter() - t1}
    draws = max(1, int(evaluation.get("random_draws", 5)))
    subsets: dict[str, dict[str, Any]] = {"top": {}, "random": {}, "bottom": {}}
    for p in (float(x) for x in evaluation["percents"]):
        k = max(1, int(round(n * p / 100)))
        key = f"{p:g}"
        subsets["top"][key] = {"n_neurons": k, "r2": test_r2(order[:k], cfg)}
        subsets["bottom"][key] = {"n_neurons": k, "r2": test_r2(order[::-1][:k], cfg)}
        vals = [test_r2(random_order(n, seed, STREAM_REPORT, d)[:k], cfg) for d in range(draws)]
        subsets["random"][key] = {"n_neurons": k, "r2": statistics.fmean(vals), "draws": draws, "r2_draws": vals,
                                  "r2_sd": statistics.stdev(vals) if draws > 1 else 0.0}
    out["subsets"] = subsets
    top = set(order[: max(1, int(round(n * float(evaluation["layer_top_percent"]) / 100)))].tolist())
    layers, start = {}, 0
    for site in store.sites:
        cols = np.arange(start, start + store.units[site])
        layers[site] = {"n_neurons": len(cols), "top_share": len(top & set(cols.tolist())) / len(top)}
        if evaluation.get("layer_probes", True):
            layers[site]["r2"] = test_r2(cols, cfg)
        start += len(cols)
    out["layers"] = layers
    out["ranking"] = ranking.ids(store.neurons)
    out["ranking_scores"] = ranking.ordered_scores()
    out["timings"]["study_seconds"] = time.perf_counter() - t0
    return out
