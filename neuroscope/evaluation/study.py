"""A whole LCA-style study on one store: λ choice, oracle, ranking, subsets, minimal subset,
layers and selectivity — the numbers of the results.json contract.

Every choice (λ, early stopping, the minimal subset) is made on train and dev; test is only
reported. Random baselines are independent draws, reported as mean and spread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from neuroscope.errors import ConfigError
from neuroscope.evaluation.k_sparse import check_ks, k_sparse
from neuroscope.evaluation.layers import layer_report
from neuroscope.evaluation.subsets import (
    STREAM_SELECTION,
    minimal_subset,
    n_of,
    percent_key,
    random_order,
    spread,
    subset_curves,
)
from neuroscope.methods.base import NeuronRanking, inputs_of, rank
from neuroscope.methods.lca import lca
from neuroscope.probes import Probe, ProbeConfig
from neuroscope.probes.splits import Splits
from neuroscope.progress import Step, stage

log = logging.getLogger(__name__)
RULES = ("auto", "gap", "oracle")
Ranker = Callable[[Probe], np.ndarray]  # trained probe -> neuron columns, best first


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
                  classes: list[str] | None = None, seed: int = 0, ranker: Ranker | None = None,
                  rule: str = "gap") -> tuple[ProbeConfig, list[dict[str, Any]]]:
    """Choose (λ1, λ2) on dev. `gap`: among the grid points whose oracle is within `tolerance` of
    the best oracle, the one whose ranking's (`ranker`, default LCA) top-`percent` % beats a
    random `percent` % by the most; the random subset is drawn from the selection stream, never
    the one reported. `oracle`: the best oracle dev accuracy (for rankings that do not use the
    probe). Ties: the smaller penalty."""
    if rule not in ("gap", "oracle"):
        raise ConfigError(f"probe.selection.rule: expected one of {RULES}, got '{rule}'")
    if ranker is None:
        if classes is None:
            raise ValueError("select_lambda: give `ranker` or `classes` (for LCA)")
        ranker = lambda probe: lca(probe.weight, classes, seed).order  # noqa: E731
    n = splits.train.n_neurons
    k = n_of(percent, n)
    random_cols = np.sort(random_order(n, seed, STREAM_SELECTION)[:k])
    rows = []
    pairs = grid_pairs(grid)
    with stage("λ search", total=len(pairs)) as step:
        for l1, l2 in pairs:
            c = cfg.with_(lambda1=l1, lambda2=l2)
            probe, _ = splits.fit(c)
            row = {"lambda": l1 if l1 == l2 else None, "lambda1": l1, "lambda2": l2,
                   "oracle_dev": splits.score(probe, "dev")["accuracy"]}
            if rule == "gap":
                top = np.sort(ranker(probe)[:k])
                row["top_dev"] = splits.columns(top).fit_score(c, "dev")
                row["random_dev"] = splits.columns(random_cols).fit_score(c, "dev")
            rows.append(row)
            step(note=f"λ {l1:g}" if l1 == l2 else f"λ {l1:g}/{l2:g}")
    best_oracle = max(r["oracle_dev"] for r in rows)
    if rule == "gap":
        ok = [r for r in rows if r["oracle_dev"] >= best_oracle - tolerance]
        chosen = max(ok, key=lambda r: (r["top_dev"] - r["random_dev"], -(r["lambda1"] + r["lambda2"])))
    else:
        chosen = max(rows, key=lambda r: (r["oracle_dev"], -(r["lambda1"] + r["lambda2"])))
    for r in rows:
        r["chosen"] = r is chosen
    return cfg.with_(lambda1=chosen["lambda1"], lambda2=chosen["lambda2"]), rows


def selection_rule(rule: str, method: str) -> str:
    """`auto`: `gap` for a method whose ranking reads the probe (lca, weight_norm), else `oracle`
    (probeless, iou, random: λ cannot favour a ranking that ignores the probe)."""
    if rule not in RULES:
        raise ConfigError(f"probe.selection.rule: expected one of {RULES}, got '{rule}'")
    if rule != "auto":
        return rule
    return "gap" if "probe" in inputs_of(method) else "oracle"


def evaluation_probe(cfg: ProbeConfig, spec: Any) -> ProbeConfig:
    """The probe that judges subsets: `same` (null) as the ranking probe, `linear` = the same
    without penalty (a classifier that did not produce the ranking), or a dict of probe
    settings overriding the ranking probe's."""
    if spec in (None, "same"):
        return cfg
    if spec == "linear":
        return cfg.with_(lambda1=0.0, lambda2=0.0)
    if isinstance(spec, dict):
        unknown = set(spec) - set(ProbeConfig.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"evaluation.probe: unknown probe setting(s) {sorted(unknown)}")
        return cfg.with_(**spec)
    raise ConfigError(f"evaluation.probe: expected same, linear or a dict of probe settings, got {spec!r}")


def probe_block(cfg: ProbeConfig) -> dict[str, Any]:
    """The settings of a probe as reported in results.json."""
    return {"lambda1": cfg.lambda1, "lambda2": cfg.lambda2, "penalty": cfg.penalty,
            "standardize": cfg.standardize, "proximal": cfg.proximal, "shuffle": cfg.shuffle,
            "batch_size": cfg.batch_size, "lr": cfg.lr}


def run_study(store: Any, splits: Splits, classes: list[str], method: dict[str, Any], probe_cfg: ProbeConfig,
              selection: dict[str, Any], evaluation: dict[str, Any], seed: int,
              control: Splits | list[Splits] | None = None,
              extra_inputs: dict[str, Callable[[], Any]] | None = None,
              keep: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything a study reports, as a dict following the results.json contract. `control`:
    the control task's splits, one per control draw (selectivity is their mean, with spread);
    `extra_inputs`: method inputs the caller provides (e.g. `pairs` of a correlation method);
    `keep` receives the oracle probe and its settings (`oracle`, `cfg`)."""
    n_controls = 1 if isinstance(control, Splits) else len(control or [])
    phases = 5 + bool(selection.get("enabled")) + bool(n_controls) + (int(evaluation.get("seeds", 1)) > 1) \
        + bool(evaluation.get("k_sparse"))
    with stage("study", total=phases) as phase:
        return _run_study(store, splits, classes, method, probe_cfg, selection, evaluation, seed, control,
                          extra_inputs, keep, phase)


def _run_study(store: Any, splits: Splits, classes: list[str], method: dict[str, Any], probe_cfg: ProbeConfig,
               selection: dict[str, Any], evaluation: dict[str, Any], seed: int,
               control: Splits | list[Splits] | None, extra_inputs: dict[str, Callable[[], Any]] | None,
               keep: dict[str, Any] | None, phase: Step) -> dict[str, Any]:
    """run_study's work, `phase()` after each of its phases (progress only)."""
    t0 = time.perf_counter()
    ks = check_ks(evaluation.get("k_sparse"), splits.train.n_neurons)  # a bad k fails before any probe
    out: dict[str, Any] = {}
    cfg = probe_cfg
    params = dict(method)
    name = params.pop("name")
    inputs = {"acts": lambda: _train_array(splits), "labels": lambda: _train_labels(splits),
              "classes": lambda: classes, "seed": lambda: seed, **(extra_inputs or {})}
    rule = None
    if selection.get("enabled"):
        phase(0, "λ search")  # a note names the phase running now
        rule = selection_rule(str(selection.get("rule", "auto")), name)
        n = splits.train.n_neurons
        ranker = lambda probe: rank(name, params, n, {**inputs, "probe": lambda: probe.weight}).order  # noqa: E731
        cfg, rows = select_lambda(splits, cfg, list(selection["grid"]), float(selection["percent"]),
                                  float(selection["tolerance"]), seed=seed, ranker=ranker, rule=rule)
        out["lambda_search"] = rows
        phase()
    phase(0, "oracle probe")
    out["probe"] = {**probe_block(cfg), "in_memory": splits.in_memory,
                    "selection_rule": rule or "fixed"}
    oracle, info = splits.fit(cfg)
    if keep is not None:
        keep.update(oracle=oracle, cfg=cfg)
    out["probe"].update(epochs=info["epochs"], best_epoch=info["best_epoch"])
    probe_seconds = info["seconds"]
    scores = splits.score(oracle, per_class=True)
    out["oracle"] = {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"],
                     "per_class": dict(zip(classes, scores["per_class"], strict=True)),
                     "dev_accuracy": splits.score(oracle, "dev")["accuracy"]}
    phase()
    controls = [control] if isinstance(control, Splits) else list(control or [])
    if controls:
        phase(0, "control draws")
        accs = []
        with stage("control draws", total=len(controls)) as step:
            for c in controls:
                accs.append(c.score(c.fit(cfg)[0])["accuracy"])
                step()
        mean, sd = spread(accs)
        sels = [out["oracle"]["accuracy"] - a for a in accs]
        out["control"] = {"accuracy": mean, "accuracy_sd": sd, "draws": len(accs), "accuracy_draws": accs}
        out["selectivity"] = out["oracle"]["accuracy"] - mean
        out["selectivity_sd"] = spread(sels)[1]
        phase()

    phase(0, "ranking")
    eval_cfg = evaluation_probe(cfg, evaluation.get("probe"))
    target = out["oracle"]
    if eval_cfg != cfg:  # judge subsets against the evaluation probe's own accuracy on all neurons
        full, _ = splits.fit(eval_cfg)
        target = {"accuracy": splits.score(full)["accuracy"], "dev_accuracy": splits.score(full, "dev")["accuracy"]}
    out["evaluation_probe"] = {**probe_block(eval_cfg), "spec": evaluation.get("probe") or "same",
                               "accuracy": target["accuracy"], "dev_accuracy": target["dev_accuracy"]}

    t1 = time.perf_counter()
    ranking: NeuronRanking = rank(name, params, splits.train.n_neurons, {**inputs, "probe": lambda: oracle.weight})
    out["timings"] = {"probe_seconds": probe_seconds, "method_seconds": time.perf_counter() - t1}
    phase(note="subsets")
    order = ranking.order
    percents = [float(p) for p in evaluation["percents"]]
    out["subsets"] = subset_curves(splits, oracle, order, percents, eval_cfg, seed,
                                   controls[0] if controls and evaluation.get("control_subsets") else None,
                                   draws=int(evaluation.get("random_draws", 5)))
    phase(note="minimal subset")
    out["minimal_subset"] = minimal_subset(splits, order, target["dev_accuracy"], target["accuracy"],
                                           float(evaluation["minimal_delta"]), eval_cfg,
                                           hints=[n_of(p, len(order)) for p in percents])
    phase(note="layers")
    out["layers"] = layer_report(store, splits, order, float(evaluation["layer_top_percent"]), eval_cfg,
                                 bool(evaluation.get("layer_probes", True)))
    if ks:  # k-sparse probing: each class's own top k neurons (evaluation/k_sparse.py)
        phase(note="k-sparse")
        t2 = time.perf_counter()
        out["k_sparse"] = k_sparse(splits, ranking, classes, store.neurons, ks, eval_cfg)
        out["timings"]["k_sparse_seconds"] = time.perf_counter() - t2
    n_seeds = int(evaluation.get("seeds", 1))
    phase(note="seeds" if n_seeds > 1 else "done")
    if n_seeds > 1:  # how stable "how localized" is: ranking, top-k curve and minimal subset again per seed
        t2 = time.perf_counter()

        def again(s: int) -> dict[str, Any]:
            def ranker(probe: Probe) -> np.ndarray:
                return rank(name, params, splits.train.n_neurons,
                            {**inputs, "seed": lambda: s, "probe": lambda: probe.weight}).order
            return _localization(splits, cfg.with_(seed=s), eval_cfg.with_(seed=s), target, percents,
                                 float(evaluation["minimal_delta"]), ranker)

        first = {"minimal_subset": out["minimal_subset"],
                 "top": {k: row["accuracy"] for k, row in out["subsets"]["top"].items()}}
        out["seed_spread"] = seed_spread([seed + i for i in range(n_seeds)], first, again)
        ms = out["seed_spread"]["minimal_subset"]
        out["minimal_subset"].update(n_neurons_sd=ms["n_neurons_sd"], share_sd=ms["share_sd"], seeds=n_seeds)
        out["timings"]["seed_spread_seconds"] = time.perf_counter() - t2
        phase(note="done")
    out["ranking"] = ranking.ids(store.neurons)
    if "correlation" in ranking.detail:
        out["correlation"] = correlation_block(name, ranking, store.neurons)
    out["ranking_scores"] = ranking.ordered_scores()
    if "per_class" in ranking.detail:
        out["ranking_detail"] = {"per_class": {c: [store.neurons[i] for i in v]
                                               for c, v in ranking.detail["per_class"].items()}}
    out["timings"]["study_seconds"] = time.perf_counter() - t0
    return out


def _localization(splits: Splits, cfg: ProbeConfig, eval_cfg: ProbeConfig, target: dict[str, Any],
                  percents: list[float], delta: float, ranker: Ranker) -> dict[str, Any]:
    """One more seed of the localization measures: oracle probe (`cfg`'s seed), its ranking, test
    accuracy of the top k % and the minimal subset, judged by `eval_cfg` (same seed)."""
    probe, _ = splits.fit(cfg)
    order = ranker(probe)
    n = len(order)
    top = {}
    with stage("top per k", total=len(percents)) as step:
        for p in percents:
            top[percent_key(p)] = splits.columns(np.sort(order[:n_of(p, n)])).fit_score(eval_cfg)
            step(note=f"{p:g} %")
    minimal = minimal_subset(splits, order, target["dev_accuracy"], target["accuracy"], delta, eval_cfg,
                             hints=[n_of(p, n) for p in percents])
    return {"minimal_subset": minimal, "top": top}


def seed_spread(seeds: list[int], first: dict[str, Any], again: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    """results.json's `seed_spread`: the minimal subset and the top-k curve for each seed (`first` is
    the study's own, `again(seed)` measures another), with mean and sample sd."""
    runs = [first]
    with stage("seeds", total=len(seeds) - 1) as step:
        for s in seeds[1:]:
            runs.append(again(s))
            step(note=f"seed {s}")
    minimal: dict[str, Any] = {}
    for key in ("n_neurons", "share", "accuracy"):
        values = [float(r["minimal_subset"][key]) for r in runs]
        minimal[key] = values
        minimal[f"{key}_mean"], minimal[f"{key}_sd"] = spread(values)
    top = {}
    for k in first["top"]:
        values = [float(r["top"][k]) for r in runs]
        top[k] = {"accuracy": values, "mean": spread(values)[0], "sd": spread(values)[1]}
    return {"seeds": list(seeds), "minimal_subset": minimal, "top": top}


def correlation_block(name: str, ranking: NeuronRanking, neurons: list[str]) -> dict[str, Any]:
    """results.json's `correlation` of a correlation ranking, partners keyed by neuron id, the
    rotation baseline's per-neuron scores in ranking order (as `ranking_scores`)."""
    corr = dict(ranking.detail["correlation"])
    corr["partners"] = {neurons[int(i)]: p for i, p in corr["partners"].items()}
    if "baseline_scores" in corr:
        corr["baseline_scores"] = [float(v) for v in np.asarray(corr["baseline_scores"])[ranking.order]]
    return {"method": name, **corr}


def _train_array(splits: Splits) -> np.ndarray:
    if splits.in_memory:
        return splits.train.x
    return np.concatenate([x for x, _ in splits.train.chunks()])


def _train_labels(splits: Splits) -> np.ndarray:
    return np.concatenate([y for _, y in splits.train.chunks()])
