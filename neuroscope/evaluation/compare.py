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
from typing import Any

import numpy as np

from neuroscope.errors import ConfigError
from neuroscope.methods.correlation import (
    PairStats,
    best_partners,
    linear_cka,
    pair_stats,
    similarity,
)
from neuroscope.reporting.results import score

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
