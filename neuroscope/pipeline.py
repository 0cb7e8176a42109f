"""One interpretation study as the experiments share it: task corpus → model activations in the store →
ranking → the results.json dict (nothing written but the store and a saved probe)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from neuroscope.config import build, to_dict
from neuroscope.errors import ConfigError
from neuroscope.evaluation.study import correlation_block, run_study
from neuroscope.methods.base import inputs_of, rank
from neuroscope.methods.correlation import PairStats, pair_stats
from neuroscope.methods.floors import attach_heldout
from neuroscope.methods.mapreduce import check_pass
from neuroscope.methods.tiles import check_tile, tiled_pairs
from neuroscope.probes import ProbeConfig
from neuroscope.probes.splits import Splits
from neuroscope.registry import MODELS
from neuroscope.reporting.results import score
from neuroscope.seeding import seed_everything
from neuroscope.store import corpus_store
from neuroscope.tasks import load_task

log = logging.getLogger(__name__)


def task_key(task_cfg: dict[str, Any]) -> str:
    """Short hash naming one task's labels inside a store."""
    blob = json.dumps(task_cfg, sort_keys=True, default=str)
    return f"{task_cfg['name']}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def property_task(base_task: dict[str, Any], prop: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """An experiment's property (`{name, params}`) merged over its base task node, and the
    property's name: `upos`, or `morph_Number` for a task with a feature parameter."""
    task_cfg = {**base_task, "params": {}, **dict(prop)}
    feature = (task_cfg.get("params") or {}).get("feature")
    return (f"{task_cfg['name']}_{feature}" if feature else str(task_cfg["name"])), task_cfg


def _probe_settings(cfg: DictConfig) -> tuple[ProbeConfig, dict[str, Any], str | None, bool]:
    """The `probe` group split into (probe settings, λ selection, probe to load, save the oracle?)."""
    params = to_dict(cfg.probe)
    selection = params.pop("selection", {"enabled": False})
    load, save = params.pop("load", None), bool(params.pop("save", False))
    return ProbeConfig.from_dict({**params, "seed": int(cfg.seed)}), selection, load, save


def _study(cfg: DictConfig, task_cfg: dict[str, Any], corpus: Any, store: Any, method: dict[str, Any],
           out_dir: Path, loaded: Any = None) -> dict[str, Any]:
    """Probe, rank and evaluate (the LCA protocol) for a configured method; on a corpus without
    labels, a label-free method's ranking and similarities only. A saved oracle probe goes to `out_dir`;
    a `loaded` probe (`probe.load`) is scored on the corpus instead, nothing trained."""
    probe_cfg, selection, _, save = _probe_settings(cfg)
    if loaded is not None:
        if corpus.values is not None:
            return {"loaded_probe": loaded.evaluate_values(store, corpus.values, corpus.split, task=corpus.name)}
        return {"loaded_probe": loaded.evaluate(store, corpus.labels, corpus.classes, corpus.split, task=corpus.name)}
    kept: dict[str, Any] = {}
    if corpus.values is not None:  # a numeric task: the regression protocol
        from neuroscope.evaluation.regression import run_regression_study

        out = run_regression_study(store, corpus, dict(method), probe_cfg, selection, to_dict(cfg.evaluation),
                                   int(cfg.seed), keep=kept)
        return _save_oracle(cfg, task_cfg, corpus, store, kept, out, out_dir) if save else out
    if not corpus.classes:
        return _unlabelled(cfg, corpus, store, dict(method))
    ev = to_dict(cfg.evaluation)
    memory = float(ev["memory_gb"])
    splits = Splits.build(store, corpus.labels, corpus.split, len(corpus.classes), memory)
    controls = []
    if ev.get("control"):  # independent control tasks (control_seed, +1, ...) sharing the activations
        first = int(task_cfg.get("control_seed", 0))
        for d in range(max(1, int(ev.get("control_draws", 1)))):
            ctrl = load_task({**task_cfg, "control": True, "control_seed": first + d}, cfg.data.root,
                             download=bool(cfg.data.download))
            controls.append(Splits.build(store, ctrl.labels, ctrl.split, len(ctrl.classes), memory, like=splits))
    method = dict(method)
    extra: dict[str, Any] = {}
    if "pairs" in inputs_of(method["name"]):  # a correlation method: the other models' stores
        pairs = _pairs(cfg, corpus, store, method)
        extra["pairs"] = lambda: pairs
    out = run_study(store, splits, corpus.classes, method, probe_cfg, selection, ev, int(cfg.seed), controls,
                    extra_inputs=extra, keep=kept)
    if "correlation" in out:
        out["correlation"].update(_models_and_stores(cfg, store, pairs))
    return _save_oracle(cfg, task_cfg, corpus, store, kept, out, out_dir) if save else out


def _load_probe(cfg: DictConfig, corpus: Any) -> Any:
    """The saved probe of `probe.load` (None if unset), read and matched to the task's kind (classes or
    numbers) before any store is built: a bad file costs no extraction."""
    _, _, load, _ = _probe_settings(cfg)
    if not load:
        return None
    from neuroscope.probes.saved import load_probe

    saved = load_probe(load)
    if corpus.values is None and not corpus.classes:
        raise ConfigError(f"probe.load: task '{corpus.name}' has no labels to score {saved.path} on; "
                          "choose a labelled task (e.g. task=upos) or leave probe.load unset")
    saved.require("regression" if corpus.values is not None else "classifier", corpus.name)
    return saved


def _save_oracle(cfg: DictConfig, task_cfg: dict[str, Any], corpus: Any, store: Any, kept: dict[str, Any],
                 out: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Save the study's oracle probe (classifier or regression) with its store's model fingerprint
    into `out_dir` as probe.safetensors + probe.json; `out["probe"]["saved"]` names it."""
    if "oracle" not in kept:
        return out
    from neuroscope.probes.saved import save_probe, store_meta

    settings = kept["cfg"]
    tested = {"test_r2": out["oracle"]["r2"]} if corpus.values is not None else {"test_accuracy": out["oracle"]["accuracy"]}
    path = save_probe(kept["oracle"], out_dir / "probe", corpus.classes, store.neurons,
                      model=str(cfg.model.name), task=corpus.name, task_config=task_cfg, seed=int(cfg.seed),
                      lambda1=settings.lambda1, lambda2=settings.lambda2, penalty=settings.penalty,
                      **store_meta(store), **tested)
    out["probe"]["saved"] = str(path)
    return out


def _models_and_stores(cfg: DictConfig, store: Any, pairs: list[PairStats]) -> dict[str, list[str]]:
    """The compared models' names and store paths, the studied model first."""
    return {"models": [str(cfg.model.name)] + [p.model for p in pairs],
            "stores": [str(store.path)] + [p.store for p in pairs]}


def _unlabelled(cfg: DictConfig, corpus: Any, store: Any, method: dict[str, Any]) -> dict[str, Any]:
    """A label-free method on a words-only corpus: ranking, scores and the correlation block."""
    name = method["name"]
    if "pairs" not in inputs_of(name):
        raise ConfigError(f"method.name: '{name}' needs labels, and task '{corpus.name}' has none; "
                          "label-free methods: maxcorr, mincorr, regcorr, svcca, cca")
    t0 = time.perf_counter()
    pairs = _pairs(cfg, corpus, store, method)
    params = {k: v for k, v in method.items() if k != "name"}
    ranking = rank(name, params, store.n_neurons, {"pairs": lambda: pairs, "seed": lambda: int(cfg.seed)})
    return {"ranking": ranking.ids(store.neurons), "ranking_scores": ranking.ordered_scores(),
            "correlation": {**correlation_block(name, ranking, store.neurons), **_models_and_stores(cfg, store, pairs)},
            "timings": {"method_seconds": time.perf_counter() - t0}}


def _store(cfg: DictConfig, node: dict[str, Any], corpus: Any, key: str) -> tuple[Any, bool]:
    """The activation store of the model `node` over the corpus: found through the index without
    loading the model, or built (the model loaded only then)."""
    saes = node.get("sae")
    node = {k: v for k, v in node.items() if k != "sae"}  # the base store does not depend on the SAEs

    def make_source() -> Any:  # only when the store must be built: loads torch and the model
        seed_everything(int(cfg.seed), torch=True)
        return build(MODELS, node, key)

    store, reused = corpus_store(make_source, node, corpus, to_dict(cfg.store))
    if saes:
        from neuroscope.sae.site import split_sae, with_latents  # model.sae: latents as sites

        store, derived_reused = with_latents(store, split_sae({"sae": saes})[1])
        reused = reused and derived_reused
    sites = cfg.store.get("sites")
    return (store.view(list(sites)) if sites else store), reused


def _pairs(cfg: DictConfig, corpus: Any, store: Any, method: dict[str, Any]) -> list[PairStats]:
    """Statistics of the studied model against each model of `method.others` (popped from
    `method`, with `tokens` and `products`), each other model in its own store over the same words."""
    others = method.pop("others", None) or []
    tokens = method.pop("tokens", "train")
    products = method.pop("products", "float64")
    pairing_draws = int(method.pop("pairing_draws", 3))
    engine, device, ray = method.pop("engine", "local"), method.pop("device", "cpu"), method.pop("ray", None)
    check_pass(engine, ray, products, device)  # bad settings fail before any store is built
    tile = check_tile(method.pop("tile", None), method["name"])
    if not others:
        raise ConfigError(f"method.others: {method['name']} compares models; give at least one, e.g. "
                          "'method.others=[{name: nlm_lstm, checkpoint: B.ckpt}]'")
    if tokens not in ("train", "all"):
        raise ConfigError(f"method.tokens: expected train or all, got '{tokens}'")
    stores = []
    for i, node in enumerate(others):
        key = f"method.others[{i}]"
        if not isinstance(node, dict) or "name" not in node:
            raise ConfigError(f"{key}: expected a model node with a name, e.g. {{name: nlm_lstm, checkpoint: B.ckpt}}")
        other, _ = _store(cfg, node, corpus, key)
        if other.n_tokens != store.n_tokens or other.manifest.get("data_sha256") != store.manifest.get("data_sha256"):
            raise ConfigError(f"{key}: its store ({other.path}) holds {other.n_tokens} words, the studied model's "
                              f"{store.n_tokens}, or other words; every model must see the task corpus's words")
        stores.append(other)
    idx = np.nonzero(corpus.split == 0)[0] if tokens == "train" else None
    if tile:  # the rotation baseline's rotations are drawn during the tiled pass (methods/tiles.py)
        draws = int(method.get("baseline_draws", 3)) if method.get("baseline", True) else 0
        pairs = tiled_pairs(store, stores, idx, tile, products=products, device=device, engine=engine, ray=ray,
                            baseline_draws=draws, seed=int(cfg.seed))
    else:
        pairs = pair_stats(store, stores, idx, products=products, engine=engine, device=device, ray=ray)
    for p, node, other in zip(pairs, others, stores, strict=True):
        p.y_neurons, p.model, p.store = other.neurons, str(node["name"]), str(other.path)
    if tokens == "train" and not tile:  # noise floors: fitted on train, scored on held-out tokens (methods/floors.py)
        sentence_of = np.repeat(np.arange(len(corpus.sentences)), [len(s.words) for s in corpus.sentences])
        attach_heldout(pairs, store, stores, corpus.split, sentence_of, pairing_draws, products, device, engine, ray)
    return pairs


def study(cfg: DictConfig, task_cfg: dict[str, Any], model_node: dict[str, Any],
          method: dict[str, Any] | None, keep: dict[str, Any] | None = None,
          out_dir: Path | None = None) -> dict[str, Any]:
    """One study (task corpus → store of `model_node` → `method`'s ranking and evaluation), as the
    results.json dict; nothing written but the store and the saved probe (into `out_dir`, default
    the run folder). `keep` receives the store and the corpus."""
    corpus = load_task(task_cfg, cfg.data.root, download=bool(cfg.data.download))
    loaded = _load_probe(cfg, corpus) if method else None
    store, reused = _store(cfg, model_node, corpus, "model")
    if keep is not None:
        keep.update(store=store, corpus=corpus)
    store.save_labels(task_key(task_cfg), corpus.labels, corpus.split, corpus.classes)
    results: dict[str, Any] = {
        "model": model_node["name"],
        "task": corpus.name,
        "method": method["name"] if method else None,
        "seed": int(cfg.seed),
        "store": {
            "n_tokens": store.n_tokens, "n_neurons": store.n_neurons, "sites": store.sites,
            "reused": reused, "extract_seconds": store.manifest["extract_seconds"],
            "dtype": store.manifest["dtype"], "path": str(store.path),
            **store.manifest.get("extraction_stats", {}),  # e.g. unknown_words of a word-level model
        },
        "split": corpus.counts(),
        "classes": corpus.classes,
        "task_info": corpus.info,
        "timings": {},
    }
    if method:
        results.update(_study(cfg, task_cfg, corpus, store, method, Path(out_dir or cfg.output_dir), loaded))
    return results


def study_summary(res: dict[str, Any]) -> dict[str, Any]:
    """What an experiment's table shows of one of its studies."""
    out: dict[str, Any] = {"task": res["task"], "method": res["method"], "n_neurons": res["store"]["n_neurons"]}
    metric = "r2" if res.get("metric") == "r2" else "accuracy"  # the study's score (`score`): R² for numeric tasks
    if "oracle" in res:
        out[f"oracle_{metric}"] = score(res["oracle"])
    if "minimal_subset" in res:
        out["minimal_subset"] = res["minimal_subset"].get("n_neurons")
    subsets = res.get("subsets", {})
    if subsets:
        pct = next((p for p in ("5", "10", "1") if p in subsets.get("top", {})), None)
        if pct:
            out["percent"] = pct
            out.update({f"{k}_{metric}": score(subsets[k][pct]) for k in ("top", "random", "bottom") if k in subsets})
    if "correlation" in res:
        out["similarity"] = res["correlation"]["similarity"]
    if "timings" in res:
        out["seconds"] = res["timings"].get("total_seconds")
    return out


def timed(run: Any, *args: Any) -> dict[str, Any]:
    """A study's results with its wall time as `timings.total_seconds` (as a single run has)."""
    t0 = time.perf_counter()
    res = run(*args)
    res["timings"]["total_seconds"] = round(time.perf_counter() - t0, 3)
    return res
