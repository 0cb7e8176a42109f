"""What top neurons respond to: their top-activating words (as NeuroX's `get_top_words`) and the
sentences where they fire most, with every word's activation (for colour in the report)."""

from __future__ import annotations

from typing import Any

import numpy as np


def neuron_profiles(store: Any, sentences: list[list[str]], neurons: list[str], top_words: int = 10,
                    n_sentences: int = 2, min_count: int = 2) -> list[dict[str, Any]]:
    """For each neuron id: `top_words` / `bottom_words` (word types by mean activation over their
    occurrences, types seen at least `min_count` times, with that mean and the count) and
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
    eligible = counts >= min_count if (counts >= min_count).sum() >= top_words else counts >= 1
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
