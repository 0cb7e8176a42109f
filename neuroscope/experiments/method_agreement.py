"""Do ranking methods agree? (Fan et al., NeurIPS 2023) One store's neurons ranked by each of
`methods` (conf/experiment/method_agreement.yaml), the store built once and one probe shared by the
probe-based rankers; a Borda consensus; each method's overlap with it, pairwise and by layer:

    python analyze.py experiment=method_agreement 'methods=[lca,probeless,iou,weight_norm,random]'

Borda: method m gives neuron i the points n − pos_m(i) (pos 0 = best); the consensus orders the
summed points, ties by neuron index (stable sort). Per class, a method's order is its
`ranking.detail["class_scores"]` row when it has one, else its overall order.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from neuroscope.config import to_dict
from neuroscope.errors import ConfigError, UnknownNameError
from neuroscope.experiments.base import Experiment, Outcome
from neuroscope.files import atomic_write
from neuroscope.methods.base import NeuronRanking, inputs_of, rank
from neuroscope.pipeline import study
from neuroscope.registry import EXPERIMENTS, METHODS, PROJECT_ROOT

log = logging.getLogger(__name__)
METHOD_CONF = PROJECT_ROOT / "conf" / "method"
UNSUPPORTED = ("pairs",)  # inputs this experiment cannot give: correlation methods compare models


def borda(orders: list[np.ndarray]) -> np.ndarray:
    """Consensus order of several orders of the same n neurons: points n − position summed over
    the orders, best first; equal points keep neuron-index order (stable sort)."""
    n = len(orders[0])
    points = np.zeros(n, dtype=np.int64)
    for order in orders:
        points[np.asarray(order)] += n - np.arange(n)
    return np.argsort(-points, kind="stable")


def top_iou(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Intersection over union of the first k neurons of two orders."""
    sa, sb = set(np.asarray(a)[:k].tolist()), set(np.asarray(b)[:k].tolist())
    return len(sa & sb) / len(sa | sb) if sa or sb else 1.0


def set_iou(a: set[int], b: set[int]) -> float | None:
    """IoU of two sets; None when both are empty (nothing to agree on)."""
    return len(a & b) / len(a | b) if a or b else None


def chance_iou(k: int, n: int) -> float:
    """Expected IoU of two independent random k-sets of n neurons (about k²/n shared)."""
    shared = k * k / n
    return shared / (2 * k - shared)


def class_orders(ranking: NeuronRanking, n_classes: int) -> np.ndarray | None:
    """[classes, neurons] orders from `detail["class_scores"]` (higher = better, stable sort), None
    when the method has no per-class scores."""
    scores = ranking.detail.get("class_scores")
    if scores is None:
        return None
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (n_classes, len(ranking.order)):
        raise ConfigError(f"class_scores has shape {scores.shape}, expected {(n_classes, len(ranking.order))}")
    return np.argsort(-scores, axis=1, kind="stable")


def site_of(neuron: str) -> str:
    """`layer2:5` → `layer2`; `layer2.sae:5` → `layer2.sae`."""
    return neuron.rsplit(":", 1)[0]


def measure(orders: dict[str, np.ndarray], per_class: dict[str, np.ndarray | None], neurons: list[str],
            ks: list[int], k_matrix: int, excluded: list[str], classes: list[int]) -> dict[str, Any]:
    """The `agreement` block from each method's overall order and per-class orders ([classes, n] or
    None); `classes`: the class rows averaged over (those seen in train)."""
    methods = list(orders)
    voters = [m for m in methods if m not in excluded]
    n = len(neurons)
    consensus = borda([orders[m] for m in voters])

    def class_order(m: str, c: int) -> np.ndarray:
        rows = per_class[m]
        return rows[c] if rows is not None else orders[m]

    consensus_c = {c: borda([class_order(m, c) for m in voters]) for c in classes}
    with_consensus: dict[str, Any] = {}
    for m in methods:
        overall = {str(k): top_iou(orders[m], consensus, k) for k in ks}
        pc = {str(k): (float(np.mean([top_iou(class_order(m, c), consensus_c[c], k) for c in classes]))
                       if classes else None) for k in ks}
        with_consensus[m] = {"overall": overall, "per_class": pc}
    matrix = [[top_iou(orders[a], orders[b], k_matrix) for b in methods] for a in methods]
    sites = list(dict.fromkeys(site_of(x) for x in neurons))
    site_idx = np.array([sites.index(site_of(x)) for x in neurons])

    def by_site(order: np.ndarray) -> list[set[int]]:
        top = np.asarray(order)[:k_matrix]
        return [set(top[site_idx[top] == s].tolist()) for s in range(len(sites))]

    cons_sets = by_site(consensus)
    layers: dict[str, Any] = {"consensus": {s: {"share": len(cons_sets[i]) / k_matrix} for i, s in enumerate(sites)}}
    for m in methods:
        sets = by_site(orders[m])
        layers[m] = {s: {"share": len(sets[i]) / k_matrix, "iou": set_iou(sets[i], cons_sets[i])}
                     for i, s in enumerate(sites)}
    return {
        "methods": methods, "consensus_methods": voters, "excluded": [m for m in methods if m in excluded],
        "n_neurons": n, "ks": ks, "k_matrix": k_matrix,
        "class_scores": {m: per_class[m] is not None for m in methods}, "n_classes_averaged": len(classes),
        "consensus": [neurons[i] for i in consensus[:max(ks + [k_matrix])]],
        "iou_with_consensus": with_consensus,
        "chance": {str(k): chance_iou(k, n) for k in ks},
        "pairwise": {"methods": methods, "k": k_matrix, "iou": matrix},
        "layers": layers,
    }


def method_params(name: str, given: dict[str, Any] | None) -> dict[str, Any]:
    """A ranker's settings: its conf/method/<name>.yaml (when shipped), then `agreement.params.<name>`."""
    path = METHOD_CONF / f"{name}.yaml"
    base = to_dict(OmegaConf.load(path)) if path.is_file() else {}
    return {k: v for k, v in {**base, **(given or {})}.items() if k != "name"}


def check_methods(methods: Any) -> list[str]:
    """Problems of `methods`: a list of registered rankers, each once, none comparing models."""
    if not isinstance(methods, list) or len(methods) < 2:
        return [f"methods: give at least two ranking methods, e.g. 'methods=[lca,probeless,random]'; got {methods!r}"]
    problems = []
    known = [m for m in METHODS.names() if not any(x in inputs_of(m) for x in UNSUPPORTED)]
    for i, name in enumerate(methods):
        try:
            METHODS.get(str(name))
        except UnknownNameError:
            problems.append(f"methods[{i}]: unknown method '{name}'; known: {', '.join(known)}")
            continue
        if any(x in inputs_of(str(name)) for x in UNSUPPORTED):
            problems.append(f"methods[{i}]: '{name}' compares models (method.others); this experiment ranks "
                            "one store with labelled rankers")
    if len(set(map(str, methods))) != len(methods):
        problems.append(f"methods: each method once, got {methods}")
    return problems


def _probe(cfg: DictConfig, splits: Any) -> tuple[Any, dict[str, Any]]:
    """The one probe the probe-based rankers share: λ by dev accuracy of the oracle (a gap rule
    would favour one ranking) when `probe.selection.enabled`, else `probe.lambda1/2`."""
    from neuroscope.evaluation.study import probe_block, select_lambda
    from neuroscope.probes import ProbeConfig

    params = to_dict(cfg.probe)
    selection = params.pop("selection", {"enabled": False})
    for key in ("load", "save"):  # nothing loaded; the shared probe is not kept
        params.pop(key, None)
    pcfg = ProbeConfig.from_dict({**params, "seed": int(cfg.seed)})
    rule = "fixed"
    if selection.get("enabled"):
        rule = "oracle"
        pcfg, _ = select_lambda(splits, pcfg, list(selection["grid"]), float(selection["percent"]),
                                float(selection["tolerance"]), seed=int(cfg.seed),
                                ranker=lambda p: np.arange(splits.train.n_neurons), rule="oracle")
    probe, info = splits.fit(pcfg)
    return probe, {**probe_block(pcfg), "selection_rule": rule, "epochs": info["epochs"],
                   "accuracy": splits.score(probe)["accuracy"], "dev_accuracy": splits.score(probe, "dev")["accuracy"]}


def _loaders(splits: Any, classes: list[str], seed: int, probe: Callable[[], Any]) -> dict[str, Callable[[], Any]]:
    """The rankers' inputs, each computed once when first asked for."""
    memo: dict[str, Any] = {}

    def once(key: str, make: Callable[[], Any]) -> Callable[[], Any]:
        def get() -> Any:
            if key not in memo:
                memo[key] = make()
            return memo[key]
        return get

    def acts() -> np.ndarray:
        return splits.train.x if splits.in_memory else np.concatenate([x for x, _ in splits.train.chunks()])

    return {"acts": once("acts", acts), "labels": once("labels", lambda: np.concatenate(
                [y for _, y in splits.train.chunks()])),
            "classes": lambda: classes, "seed": lambda: seed, "probe": once("probe", probe)}


def run_agreement(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Build the store, rank it with every method, measure agreement; the run's results.json."""
    from neuroscope.probes.splits import Splits

    t0 = time.perf_counter()
    settings = to_dict(cfg.get("agreement")) or {}
    methods = [str(m) for m in cfg.methods]
    keep: dict[str, Any] = {}
    res = study(cfg, to_dict(cfg.task), to_dict(cfg.model), None, keep, out_dir)
    store, corpus = keep["store"], keep["corpus"]
    if corpus.values is not None or not corpus.classes:
        raise ConfigError(f"task: '{corpus.name}' has no classes; the rankers compared here need class labels "
                          "(e.g. task=upos)")
    n = store.n_neurons
    k_matrix = int(settings.get("k_matrix", 50))
    if k_matrix > n:
        raise ConfigError(f"agreement.k_matrix: {k_matrix} is more than the store's {n} neurons")
    ks = [int(k) for k in settings.get("ks") or []]
    dropped = [k for k in ks if k > n]
    ks = [k for k in ks if k <= n]
    if dropped:
        log.warning("agreement.ks: %s above the store's %d neurons, left out", dropped, n)
    if not ks:
        raise ConfigError(f"agreement.ks: no k up to the store's {n} neurons (got {settings.get('ks')})")
    splits = Splits.build(store, corpus.labels, corpus.split, len(corpus.classes), float(cfg.evaluation.memory_gb))
    probe_info: dict[str, Any] = {}

    def probe() -> np.ndarray:
        t = time.perf_counter()
        fitted, info = _probe(cfg, splits)
        probe_info.update(info, seconds=round(time.perf_counter() - t, 3))
        return fitted.weight

    inputs = _loaders(splits, corpus.classes, int(cfg.seed), probe)
    orders, per_class, seconds = {}, {}, {}
    all_params = settings.get("params") or {}
    for i, m in enumerate(methods):
        t = time.perf_counter()
        try:
            ranking = rank(m, method_params(m, all_params.get(m)), n, inputs)
            per_class[m] = class_orders(ranking, len(corpus.classes))
        except ConfigError as exc:
            raise ConfigError(f"methods[{i}] ({m}): {exc}") from exc
        orders[m] = ranking.order
        seconds[m] = round(time.perf_counter() - t, 3)
        log.info("%s ranked %d neurons in %.1f s%s", m, n, seconds[m],
                 "" if per_class[m] is None else " (with per-class scores)")
    seen = np.unique(inputs["labels"]())
    t = time.perf_counter()
    block = measure(orders, per_class, store.neurons, ks, k_matrix, [str(x) for x in settings.get("exclude") or []],
                    [int(c) for c in seen if 0 <= c < len(corpus.classes)])
    block.update(ks_dropped=dropped, method_seconds=seconds, probe=probe_info or None)
    res.update(method="method_agreement", agreement=block)
    res["timings"] = {"probe_seconds": probe_info.get("seconds", 0.0),
                      "methods_seconds": round(sum(seconds.values()), 3),
                      "agreement_seconds": round(time.perf_counter() - t, 3),
                      "experiment_seconds": round(time.perf_counter() - t0, 3)}
    return res


@EXPERIMENTS.register("method_agreement")
class MethodAgreement(Experiment):
    """How far ranking methods agree on one store: IoU with a Borda consensus, pairwise, by layer."""

    name = "method_agreement"

    def check(self, cfg: DictConfig) -> list[str]:
        methods = cfg.get("methods")
        methods = list(methods) if OmegaConf.is_list(methods) else methods
        problems = check_methods(methods)
        settings = to_dict(cfg.get("agreement")) or {}
        ks = settings.get("ks")
        if not isinstance(ks, list) or not ks or not all(isinstance(k, int) and k > 0 for k in ks):
            problems.append(f"agreement.ks: positive whole numbers of neurons, e.g. [10,20,50]; got {ks!r}")
        k_matrix = settings.get("k_matrix")
        if not isinstance(k_matrix, int) or isinstance(k_matrix, bool) or k_matrix <= 0:
            problems.append(f"agreement.k_matrix: a positive whole number of neurons, got {k_matrix!r}")
        exclude = settings.get("exclude") or []
        if not isinstance(exclude, list):
            problems.append(f"agreement.exclude: a list of method names, got {exclude!r}")
        elif isinstance(methods, list):
            if not [m for m in methods if m not in exclude]:
                problems.append("agreement.exclude: leaves no method to build the consensus from")
        params = settings.get("params") or {}
        if not isinstance(params, dict):
            problems.append(f"agreement.params: a mapping method -> settings, got {params!r}")
        if (to_dict(cfg.get("probe")) or {}).get("load"):
            problems.append("probe.load: this experiment trains the shared probe itself; leave probe.load unset")
        if cfg.store.get("sites") is not None and not cfg.store.sites:
            problems.append("store.sites: empty; give sites or leave it null")
        return problems

    def run(self, cfg: DictConfig, out_dir: Path) -> Outcome:
        return Outcome(run_agreement(cfg, out_dir))

    def write(self, outcome: Outcome, cfg: DictConfig, out_dir: Path) -> Outcome:
        """agreement.csv beside the usual outputs (the figure and report section come with the report)."""
        from neuroscope.reporting.agreement import agreement_table
        from neuroscope.reporting.tables import csv_text

        atomic_write(out_dir / "agreement.csv", csv_text(*agreement_table(outcome.results["agreement"])))
        return super().write(outcome, cfg, out_dir)
