"""k-sparse probing (`evaluation.k_sparse`, SAEBench's sparse probing): per class, a one-vs-rest
probe on the class's own best k neurons; and a multi-class probe on the union of those sets.

Each class's neurons come from its row of `ranking.detail["class_scores"]` ([classes, neurons],
higher = better); a ranking without it gives the overall ranking to every class
(`per_class_ranking: false`). Orders are stable sorts (ties by store column). Probes are the
study's evaluation probe (settings, seed) on the k columns only; F1 and balanced accuracy are on test.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neuroscope.errors import ConfigError
from neuroscope.files import atomic_write
from neuroscope.methods.base import NeuronRanking
from neuroscope.probes import ArrayChunks, StoreChunks, TokenChunks
from neuroscope.probes.probe import Probe, ProbeConfig, predict
from neuroscope.probes.splits import Splits
from neuroscope.progress import stage
from neuroscope.reporting.results import jsonable

KEY = "evaluation.k_sparse"
SAE_SUFFIX = ".sae"  # sites of SAE latents (neuroscope/sae/site.py)


def check_ks(value: Any, n_neurons: int) -> list[int]:
    """`evaluation.k_sparse` as sorted distinct integers in [1, n_neurons] ([] when null);
    a ConfigError naming the key otherwise."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise ConfigError(f"{KEY}: expected a list of neuron counts, e.g. [1, 2, 5, 10], got {value!r}")
    ks = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or float(v) != int(v):
            raise ConfigError(f"{KEY}: {v!r} is not an integer; give neuron counts, e.g. [1, 2, 5, 10]")
        k = int(v)
        if k < 1:
            raise ConfigError(f"{KEY}: {k} is not a neuron count (each k must be >= 1)")
        if k > n_neurons:
            raise ConfigError(f"{KEY}: k={k} is larger than the store's {n_neurons} neurons")
        ks.append(k)
    if not ks:
        raise ConfigError(f"{KEY}: empty list; give neuron counts, e.g. [1, 2, 5, 10], or null (off)")
    if len(set(ks)) != len(ks):
        raise ConfigError(f"{KEY}: {sorted(k for k in set(ks) if ks.count(k) > 1)} given more than once")
    return sorted(ks)


def class_orders(ranking: NeuronRanking, n_classes: int) -> tuple[list[np.ndarray], bool]:
    """Each class's neuron columns, best first, and whether they are the class's own (from
    `class_scores`) or the overall ranking repeated."""
    scores = ranking.detail.get("class_scores")
    if scores is None:
        return [np.asarray(ranking.order) for _ in range(n_classes)], False
    scores = np.asarray(scores, dtype=np.float64)
    n = len(ranking.order)
    if scores.shape != (n_classes, n):
        raise ValueError(f"ranking class_scores has shape {scores.shape}, expected ({n_classes}, {n})")
    return [np.argsort(-row, kind="stable") for row in scores], True


def one_vs_rest(data: TokenChunks, c: int) -> TokenChunks:
    """The same tokens (activations shared, not copied) labelled 1 for class `c`, 0 for the rest."""
    if isinstance(data, ArrayChunks):
        return ArrayChunks(data.x, (data.y == c).astype(np.int64), data.boundaries, data.mixed, data.index)
    if isinstance(data, StoreChunks):
        return data.relabel((data.labels == c).astype(np.int64))
    raise TypeError(f"k-sparse probing cannot relabel {type(data).__name__}")


def binary_splits(splits: Splits, c: int) -> Splits:
    """Class `c` against the rest on the same splits, with its own cache of trained probes."""
    return Splits(one_vs_rest(splits.train, c), one_vs_rest(splits.dev, c), one_vs_rest(splits.test, c),
                  n_classes=2, cols=splits.cols)


def binary_scores(pred: np.ndarray, gold: np.ndarray) -> dict[str, float | None]:
    """F1 of the positive class (None when it is neither present nor predicted) and balanced
    accuracy (mean of the recalls of both sides; None without positives or negatives)."""
    pred, gold = np.asarray(pred, dtype=bool), np.asarray(gold, dtype=bool)
    tp, fp = int((pred & gold).sum()), int((pred & ~gold).sum())
    fn, tn = int((~pred & gold).sum()), int((~pred & ~gold).sum())
    f1 = 2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else None
    balanced = (tp / (tp + fn) + tn / (tn + fp)) / 2 if tp + fn and tn + fp else None
    return {"f1": f1, "balanced_accuracy": balanced}


def _mean(values: list[float | None]) -> float | None:
    """Mean of the defined values (None when there are none)."""
    got = [v for v in values if v is not None]
    return float(np.mean(got)) if got else None


def oracle_block(probe: Probe, splits: Splits, classes: list[str]) -> dict[str, Any]:
    """The all-neuron multi-class probe on test: accuracy, macro-F1 and each class's F1."""
    pred, gold = predict(probe, splits.test)
    scores = splits.score(probe)
    per_class = {name: binary_scores(pred == c, gold == c)["f1"] for c, name in enumerate(classes)}
    return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"],
            "mean_f1": _mean(list(per_class.values())), "per_class_f1": per_class}


def k_sparse(splits: Splits, ranking: NeuronRanking, classes: list[str], neurons: list[str], ks: list[int],
             cfg: ProbeConfig) -> dict[str, Any]:
    """results.json's `k_sparse`: per k, each class's one-vs-rest probe on its top k (F1,
    balanced accuracy, neurons), their mean, and a multi-class probe on the union of the top-k sets."""
    orders, own = class_orders(ranking, len(classes))
    per_class: dict[str, dict[str, Any]] = {name: {} for name in classes}
    union: dict[str, dict[str, Any]] = {}
    with stage("k-sparse", total=len(ks) * (len(classes) + 1)) as step:
        for c, name in enumerate(classes):
            binary = binary_splits(splits, c)
            for k in ks:
                top = orders[c][:k]
                sub = binary.columns(np.sort(top))
                probe, _ = sub.fit(cfg)
                pred, gold = predict(probe, sub.test)
                per_class[name][str(k)] = {**binary_scores(pred == 1, gold == 1),
                                           "neurons": [neurons[int(i)] for i in top]}
                step(note=f"{name} k={k}")
        for k in ks:
            cols = np.unique(np.concatenate([o[:k] for o in orders]))
            sub = splits.columns(cols)
            scores = sub.score(sub.fit(cfg)[0])
            union[str(k)] = {"n_neurons": len(cols), "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}
            step(note=f"union k={k}")
    return {
        "ks": list(ks), "per_class_ranking": own, "classes": per_class,
        "mean_f1": {str(k): _mean([per_class[n][str(k)]["f1"] for n in classes]) for k in ks},
        "mean_balanced_accuracy": {str(k): _mean([per_class[n][str(k)]["balanced_accuracy"] for n in classes])
                                   for k in ks},
        "union": union,
        "oracle": oracle_block(splits.fit(cfg)[0], splits, classes),
    }


def saebench_category(sites: list[str]) -> str:
    """SAEBench's metric family of a store: `sae` (every site holds SAE latents), `llm` (none
    does), `mixed` (both: not an SAEBench family)."""
    sae = [s.endswith(SAE_SUFFIX) for s in sites]
    return "sae" if sites and all(sae) else "mixed" if any(sae) else "llm"


def saebench_output(results: dict[str, Any]) -> dict[str, Any]:
    """The `k_sparse` block of a study in the layout of SAEBench's sparse_probing result file: the
    class-mean balanced accuracy of the one-vs-rest probes as `<family>_top_<k>_test_accuracy`."""
    block = results["k_sparse"]
    ks, classes = block["ks"], list(block["classes"])
    fam = saebench_category(list(results.get("store", {}).get("sites") or []))
    metrics: dict[str, Any] = {f"{fam}_test_accuracy": None}  # SAEBench's all-dims one-vs-rest probes: not trained
    metrics.update({f"{fam}_top_{k}_test_accuracy": block["mean_balanced_accuracy"][str(k)] for k in ks})
    dataset = f"{results.get('task')}_results"
    unstructured = {f"{fam}_top_{k}_test_accuracy": {
        c: block["classes"][c][str(k)]["balanced_accuracy"] for c in classes
        if block["classes"][c][str(k)]["balanced_accuracy"] is not None} for k in ks}
    split = results.get("split") or {}
    ident = json.dumps([results.get("model"), results.get("task"), results.get("method"), results.get("seed"),
                        block], sort_keys=True, default=str)
    return {
        "eval_type_id": "sparse_probing",
        "eval_config": {"random_seed": results.get("seed"), "dataset_names": [results.get("task")],
                        "probe_train_set_size": split.get("train"), "probe_test_set_size": split.get("test"),
                        "context_length": None, "model_name": results.get("model"), "k_values": ks},
        "eval_id": str(uuid.uuid5(uuid.NAMESPACE_URL, "neuroscope-k-sparse:" + ident)),
        "datetime_epoch_millis": int(time.time() * 1000),
        "eval_result_metrics": {fam: metrics},
        "eval_result_details": [{"dataset_name": dataset, **metrics}],
        "eval_result_unstructured": {dataset: unstructured},
        "sae_bench_commit_hash": None, "sae_lens_id": None, "sae_lens_release_id": None,
        "sae_lens_version": None, "sae_cfg_dict": None,
        "neuroscope": {
            "source": "results.json k_sparse (docs/results.md: k-sparse probing)",
            "metric": "balanced accuracy on the token-level test split of a one-vs-rest probe per class, "
                      "mean over classes",
            "selection": "each class's own ranking (method class_scores)" if block["per_class_ranking"]
                         else "the method's overall ranking for every class",
            "method": results.get("method"), "sites": (results.get("store") or {}).get("sites"),
            "mean_f1": block["mean_f1"], "union": block["union"], "oracle": block["oracle"],
        },
    }


def write_saebench(results: dict[str, Any], out_dir: str | Path) -> Path | None:
    """`<out_dir>/k_sparse_saebench.json` (atomically) when the study has a `k_sparse` block."""
    if not results.get("k_sparse"):
        return None
    path = Path(out_dir) / "k_sparse_saebench.json"
    atomic_write(path, json.dumps(jsonable(saebench_output(results)), indent=2))
    return path
