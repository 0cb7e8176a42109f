"""What top neurons respond to: their top-activating words (as NeuroX's `get_top_words`) and the
sentences where they fire most, with every word's activation (for colour in the report)."""

from __future__ import annotations

from typing import Any

import numpy as np

MIN_COUNT = 5  # words seen fewer times are left out of a neuron's top / lowest words (report.min_count)


def neuron_profiles(store: Any, sentences: list[list[str]], neurons: list[str], top_words: int = 10,
                    n_sentences: int = 2, min_count: int = MIN_COUNT) -> list[dict[str, Any]]:
    """For each neuron id: `top_words` / `bottom_words` (word types by mean activation over their
    occurrences, only types seen at least `min_count` times, with that mean and the count) and
    `sentences` (the `n_sentences` sentences holding its largest |activation|: words and activations).
    Ties: equal means in word-type order (sorted types), equal |activation| in corpus order.
    Reads only these neurons' columns of the store."""
    if not neurons:
        return []
    words = [w for s in sentences for w in s]
    if len(words) != store.n_tokens:
        raise ValueError(f"{len(words)} corpus words, {store.n_tokens} store tokens: not the store of this corpus")
    acts = store.read(neurons)  # [tokens, k]
    types, word_ids = np.unique(np.array(words, dtype=object), return_inverse=True)
    counts = np.bincount(word_ids, minlength=len(types))  # [types]
    eligible = counts >= min_count
    top_words = min(top_words, int(eligible.sum()))
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sentences])])
    sent_of = np.repeat(np.arange(len(sentences)), np.diff(offsets))  # [tokens]
    out = []
    for j, nid in enumerate(neurons):
        a = acts[:, j].astype(np.float64)
        mean = np.bincount(word_ids, weights=a, minlength=len(types)) / np.maximum(counts, 1)  # [types]
        mean = np.where(eligible, mean, np.nan)
        # stable sorts: equal means keep word-type order, equal |activation| token order (any CPU)
        order = np.argsort(-np.nan_to_num(mean, nan=-np.inf), kind="stable")[:top_words]
        low = np.argsort(np.nan_to_num(mean, nan=np.inf), kind="stable")[:top_words]
        best = np.argsort(-np.abs(a), kind="stable")  # [tokens]
        chosen: list[int] = []
        seen: set[tuple[str, ...]] = set()
        for t in best:  # the sentences of the strongest activations, each text once
            text = tuple(sentences[sent_of[t]])
            if text not in seen:
                seen.add(text)
                chosen.append(int(sent_of[t]))
            if len(chosen) == n_sentences:
                break
        out.append({
            "neuron": nid,
            "top_words": [{"word": str(types[i]), "mean": float(mean[i]), "count": int(counts[i])} for i in order],
            "bottom_words": [{"word": str(types[i]), "mean": float(mean[i]), "count": int(counts[i])} for i in low],
            "max_abs": float(np.abs(a).max()) if len(a) else 0.0,
            "sentences": [{"index": s, "words": sentences[s],
                           "activations": [float(v) for v in a[offsets[s]:offsets[s + 1]]]} for s in chosen],
        })
    return out


def neuron_classes(res: dict[str, Any]) -> dict[str, list[str]] | None:
    """Neuron id → the classes whose per-class top set (`ranking_detail.per_class`, LCA) holds it,
    in class order; None when the method ranks without per-class sets."""
    per_class = (res.get("ranking_detail") or {}).get("per_class")
    if not per_class:
        return None
    out: dict[str, list[str]] = {}
    for cls, ids in per_class.items():
        for nid in ids:
            out.setdefault(nid, []).append(cls)
    return out


def neuron_context(res: dict[str, Any], folder: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """The neuron section's settings beside its profiles: each neuron's classes, the rule that chose
    them (with `method.class_percentage` from the run's config.yaml in `folder`) and `min_count`."""
    from neuroscope.reporting.figures import METHOD_NAMES, cutoffs

    pct = cutoffs(res, folder)["class_percentage"]
    mass = f"{100 * pct:g} %" if pct is not None else "method.class_percentage"
    method = METHOD_NAMES.get(str(res.get("method")), str(res.get("method")))
    return {"classes": neuron_classes(res), "min_count": int(settings.get("min_count", MIN_COUNT)),
            "class_rule": f"{method}: the fewest neurons holding {mass} of a class's |weight| mass"}
