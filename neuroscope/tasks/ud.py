"""Tasks over Universal Dependencies (CoNLL-U) files: UPOS, XPOS, dependency relation, morphology."""

from __future__ import annotations

from collections import Counter

from neuroscope.data.sentence import Sentence
from neuroscope.errors import ConfigError, DataError
from neuroscope.tasks.base import column, required, task


@task("upos")
def upos(sentence: Sentence) -> list[str]:
    """Universal POS tag of each word."""
    return required(sentence, "upos", "UPOS tag")


@task("xpos")
def xpos(sentence: Sentence) -> list[str]:
    """Language-specific POS tag (Penn Treebank for English, as in the papers)."""
    return required(sentence, "xpos", "XPOS tag")


@task("deprel")
def deprel(sentence: Sentence, subtypes: bool = True) -> list[str]:
    """Syntactic role: the dependency relation to the head (`nmod:poss`, or `nmod` without subtypes)."""
    rels = required(sentence, "deprel", "dependency relation")
    return rels if subtypes else [r.split(":")[0] for r in rels]


def _morph_hint(sentences: list[Sentence], feature: str, **_: object) -> str:
    """Which features the corpus does have (shown when `feature` gives a single class)."""
    present = Counter(f for s in sentences for feats in column(s, "feats") for f in (feats or {}))
    if feature in present:
        return f"The {present[feature]} token(s) with {feature} all share one value; choose another feature or corpus."
    listed = ", ".join(sorted(present)) or "none"
    return f"No token has the feature {feature!r}; features present: {listed} (set task.params.feature=...)."


@task("morph", hint=_morph_hint)
def morph(sentence: Sentence, feature: str, missing: str = "label") -> list[str | None]:
    """Value of one morphological feature (e.g. Number); words without it get `_none`, are skipped or fail."""
    if missing not in ("label", "skip", "error"):
        raise ConfigError(f"task.params.missing: expected label, skip or error, got '{missing}'")
    out: list[str | None] = []
    for i, feats in enumerate(column(sentence, "feats")):
        value = (feats or {}).get(feature)
        if value is None:
            if missing == "error":
                raise DataError(f"{sentence.where(i)}: word '{sentence.words[i]}' has no feature {feature}")
            value = "_none" if missing == "label" else None
        out.append(value)
    return out


@task("depth", numeric=True)
def depth(sentence: Sentence) -> list[float]:
    """Syntactic depth: the number of dependency edges from the word up to the root (the root: 1),
    a real-valued property for a regression probe (Hewitt & Manning 2019 probe it too)."""
    heads = [int(h) for h in required(sentence, "head", "HEAD")]
    out = []
    for i in range(len(heads)):
        d, node, seen = 1, i, set()
        while heads[node] != 0:
            if node in seen or not 0 < heads[node] <= len(heads):
                raise DataError(f"{sentence.where(i)}: the HEAD chain of '{sentence.words[i]}' does not reach the root")
            seen.add(node)
            node, d = heads[node] - 1, d + 1
        out.append(float(d))
    return out
