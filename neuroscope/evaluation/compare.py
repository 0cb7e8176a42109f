"""Two models, the same properties: where the salient neurons sit before and after (Durrani et al.
2022, finding iv: fine-tuning moves linguistic neurons to lower layers).

`python analyze.py experiment=durrani2022_finetune finetuned=<train run>/hf_model` studies every
property of `comparison.tasks` on the `before` model (the `model` group, e.g. the pre-trained
MiniLM) and on the `after` model (`comparison.after`, merged over the model node), then compares
per property: oracle accuracy, minimal subset, per-layer probe accuracy, the layer distribution of
the top k % and its mean depth, and how many top neurons the two share — by id (fine-tuning keeps
neuron identity) and through each neuron's best-correlated partner. When both models have the
same neurons, the correlation block adds per site how much the neurons moved (ρ of each neuron with
itself after fine-tuning, linear CKA).

Each study is written as `<output_dir>/studies/{before,after}/<name>/results.json` (the usual contract).
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from neuroscope.config import to_dict
from neuroscope.errors import ConfigError
from neuroscope.methods.correlation import (
    PairStats,
    best_partners,
    linear_cka,
    pair_stats,
    similarity,
)
from neuroscope.reporting.results import score, write_results
from neuroscope.reporting.tables import write_tables

log = logging.getLogger(__name__)
SIDES = ("before", "after")


def site_depth(site: str, order: list[str]) -> float:
    """Depth of a site: N for `layerN…`, `lN` for LSTM sites, 0 for embeddings, else its position."""
    m = re.match(r"layer(\d+)", site) or re.search(r"\bl(\d+)\b", site)
    if m:
        return float(m.group(1))
    return 0.0 if site == "embeddings" else float(order.index(site))


def n_top(n_neurons: int, percent: float) -> int:
    """Neurons in the top `percent` % (as the layer report counts them)."""
    return max(1, int(round(percent / 100 * n_neurons)))


def top_sites(ranking: list[str], percent: float) -> list[str]:
    """The site of each neuron of the top `percent` % of a ranking."""
    return [n.rsplit(":", 1)[0] for n in ranking[: n_top(len(ranking), percent)]]


def mean_depth(ranking: list[str], sites: list[str], percent: float) -> float:
    """Mean site depth of the top `percent` % (lower = the property sits lower in the network)."""
    return float(np.mean([site_depth(s, sites) for s in top_sites(ranking, percent)]))


def compare_studies(before: dict[str, Any], after: dict[str, Any], percent: float,
                    partner: dict[str, str] | None = None) -> dict[str, Any]:
    """Before/after figures of one property from the two studies' results.json dicts; `partner`
    maps each before-neuron to its best-correlated after-neuron."""
    out: dict[str, Any] = {"metric": "r2" if before.get("metric") == "r2" else "accuracy"}  # R² for numeric tasks
    if "oracle" in before and "oracle" in after:
        out["oracle"] = {s: score(r["oracle"]) for s, r in zip(SIDES, (before, after), strict=True)}
    if "minimal_subset" in before and "minimal_subset" in after:
        out["minimal_subset"] = {s: {k: r["minimal_subset"].get(k) for k in ("n_neurons", "share", "accuracy")}
                                 for s, r in zip(SIDES, (before, after), strict=True)}
    layers_b, layers_a = before.get("layers", {}), after.get("layers", {})
    out["layers"] = {site: {s: {k: v for k, v in r.get(site, {}).items() if k in ("accuracy", "r2", "top_share")}
                            for s, r in zip(SIDES, (layers_b, layers_a), strict=True)}
                     for site in dict.fromkeys([*layers_b, *layers_a])}
    rb, ra = before.get("ranking"), after.get("ranking")
    if rb and ra:
        depth = {s: mean_depth(r, res["store"]["sites"], percent)
                 for s, r, res in zip(SIDES, (rb, ra), (before, after), strict=True)}
        out["mean_depth"] = {**depth, "shift": depth["after"] - depth["before"]}
        k_b, k_a = n_top(len(rb), percent), n_top(len(ra), percent)
        top_b, top_a = set(rb[:k_b]), set(ra[:k_a])
        same = len(top_b & top_a)
        shared: dict[str, Any] = {
            "n_top": {"before": k_b, "after": k_a}, "same_neurons": same,
            "jaccard": same / len(top_b | top_a), "chance": k_b * k_a / max(len(rb), 1),
        }
        if partner:
            shared["partner_in_top"] = sum(partner.get(n) in top_a for n in top_b)
        out["shared_top"] = shared
    return out


def movement(stats: PairStats, store: Any, best: np.ndarray, partner: np.ndarray) -> dict[str, Any]:
    """How much each site's neurons moved between two models with the same neurons (`store`'s): mean
    ρ of a neuron with itself, share whose best partner (`best_partners`: |ρ| `best`, index `partner`)
    is itself, linear CKA of the site."""
    own = np.diag(stats.corr())  # [n]
    out = {}
    for site in store.sites:
        c = store.neuron_index([site])
        sub = PairStats(stats.n, stats.mean_x[c], stats.mean_y[c], stats.cxy[np.ix_(c, c)],
                        stats.cxx[np.ix_(c, c)], stats.cyy[np.ix_(c, c)])
        out[site] = {"self_r": float(own[c].mean()), "self_is_partner": float((partner[c] == c).mean()),
                     "best_r": float(best[c].mean()), "linear_cka": linear_cka(sub)}
    return out


def correlation(before_store: Any, after_store: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The comparison's correlation block over the words both stores hold, and each before-neuron's
    best-correlated after-neuron."""
    if before_store.manifest.get("data_sha256") != after_store.manifest.get("data_sha256"):
        raise ConfigError("comparison: the two models' stores hold different words; give both the same task corpus")
    stats = pair_stats(before_store, [after_store])[0]
    best, j = best_partners(stats)
    partner = {n: after_store.neurons[int(k)] for n, k in zip(before_store.neurons, j, strict=True)}
    block: dict[str, Any] = {"n_tokens": stats.n, "similarity": similarity(stats, best)}
    if list(before_store.neurons) == list(after_store.neurons):
        block["sites"] = movement(stats, before_store, best, j)
    return block, partner


def model_nodes(cfg: DictConfig) -> dict[str, dict[str, Any]]:
    """The `before` node (the model group) and the `after` node (comparison.after merged over it)."""
    before = to_dict(cfg.model)
    after = to_dict(cfg.comparison.get("after"))
    if not after:
        raise ConfigError("comparison.after: give the second model, e.g. finetuned=<train run>/hf_model "
                          "with experiment=durrani2022_finetune")
    if after.get("path") in (None, "", "???"):
        raise ConfigError("finetuned: the fine-tuned model folder is missing; pass finetuned=<train run>/hf_model "
                          "(written by `python train.py experiment=finetune_sst2`)")
    path = str(after["path"])
    if path.startswith((".", "/", "~")) and not Path(path).expanduser().exists():  # a folder, not a hub name
        raise ConfigError(f"finetuned: {path} does not exist (expected the hf_model folder of a train.py run)")
    return {"before": before, "after": {**before, **after}}


def run_comparison(cfg: DictConfig, out_dir: Path) -> dict[str, Any]:
    """Study each property on both models, then compare; returns the run's results.json dict."""
    from neuroscope.analysis import property_task, study, study_summary, timed

    t0 = time.perf_counter()
    cmp = to_dict(cfg.comparison)
    nodes = model_nodes(cfg)
    base_task = to_dict(cfg.task)
    method = to_dict(cfg.method) or {"name": "lca"}
    if not method.get("name") or method["name"] == "none":
        raise ConfigError("method: the comparison ranks neurons; use a labelled ranker, e.g. method=lca")
    percent = float(cmp.get("top_percent") or cfg.evaluation.layer_top_percent)
    tasks = cmp.get("tasks") or [{"name": base_task["name"]}]
    studies: dict[str, dict[str, Any]] = {}
    compared: dict[str, Any] = {}
    stores: dict[str, Any] = {}
    partner: dict[str, str] | None = None
    corr_block: dict[str, Any] | None = None
    corr_words = None  # data hash of the words the correlation was measured on
    for prop in tasks:
        name, task_cfg = property_task(base_task, prop)
        res = {}
        for side in SIDES:
            keep: dict[str, Any] = {}
            folder = out_dir / "studies" / side / name
            res[side] = timed(study, cfg, task_cfg, nodes[side], dict(method), keep, folder)
            write_results(res[side], folder)
            write_tables(res[side], folder)
            stores[side] = keep["store"]
            studies[f"{side}/{name}"] = study_summary(res[side])
        if cmp.get("correlation", True) and corr_block is None:  # once: every property's words are alike
            t1 = time.perf_counter()
            corr_block, partner = correlation(stores["before"], stores["after"])
            corr_block["seconds"] = round(time.perf_counter() - t1, 3)
            corr_block["corpus"] = name
            corr_words = stores["before"].manifest.get("data_sha256")
        same_words = corr_words is not None and stores["before"].manifest.get("data_sha256") == corr_words
        compared[name] = compare_studies(res["before"], res["after"], percent, partner if same_words else None)
        log.info("%s: mean depth of the top %g %% %.2f before, %.2f after", name, percent,
                 *(compared[name].get("mean_depth", {}).get(s, float("nan")) for s in SIDES))
    block: dict[str, Any] = {"top_percent": percent, "tasks": compared}
    if corr_block is not None:
        block["correlation"] = corr_block
    return {
        "model": nodes["before"]["name"], "task": base_task["name"], "method": "comparison", "seed": int(cfg.seed),
        "models": nodes, "ranker": method["name"], "studies": studies, "comparison": block,
        "timings": {"studies_seconds": round(sum(s.get("seconds") or 0 for s in studies.values()), 3),
                    "comparison_seconds": round(time.perf_counter() - t0, 3)},
    }
