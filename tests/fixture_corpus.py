"""A fixture corpus of DISTINCT sentences: a tiny deterministic English grammar written as CoNLL-U.

Every sentence is  Det (Adj) Noun Verb (Adv) Punct  with consistent UPOS / XPOS / lemma / feats /
heads / deprels (number agreement between determiner, noun and verb), so that a split of it into
train / dev / test shares no sentence (the duplicated TINY_CONLLU cannot show leakage). The open
word classes come in two disjoint halves ("a" and "b") for corpora whose words never meet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# (form, lemma, feats) per grammatical number
DETS = {
    "Sing": [("the", "the", "Definite=Def|PronType=Art"), ("a", "a", "Definite=Ind|PronType=Art"),
             ("this", "this", "Number=Sing|PronType=Dem"), ("that", "that", "Number=Sing|PronType=Dem"),
             ("every", "every", "PronType=Tot")],
    "Plur": [("the", "the", "Definite=Def|PronType=Art"), ("these", "this", "Number=Plur|PronType=Dem"),
             ("those", "that", "Number=Plur|PronType=Dem"), ("some", "some", "PronType=Ind")],
}
ADJS = ["red", "blue", "green", "small", "big", "old", "young", "happy", "lazy", "quick"]
NOUNS = [("cat", "cats"), ("dog", "dogs"), ("bird", "birds"), ("horse", "horses"), ("cow", "cows"),
         ("fox", "foxes"), ("frog", "frogs"), ("duck", "ducks")]
VERBS = [("sleep", "sleeps"), ("run", "runs"), ("jump", "jumps"), ("swim", "swims"), ("sing", "sings"),
         ("walk", "walks")]  # (lemma = plural form, 3rd person singular)
ADVS = ["fast", "slowly", "again", "often", "quietly", "loudly"]
PUNCTS = [".", "!"]
VERB_FEATS = {"Sing": ("VBZ", "Mood=Ind|Number=Sing|Person=3|Tense=Pres|VerbForm=Fin"),
              "Plur": ("VBP", "Mood=Ind|Tense=Pres|VerbForm=Fin")}

# every lower-cased word form of the grammar (for the tiny BERT's vocabulary)
WORDS = sorted({d[0] for ds in DETS.values() for d in ds} | set(ADJS) | {f for n in NOUNS for f in n}
               | {f for v in VERBS for f in v} | set(ADVS) | set(PUNCTS))

Row = tuple[str, str, str, str, str, int, str]  # form, lemma, upos, xpos, feats, head, deprel


def _half(words: list, half: str | None) -> list:
    """All words (None), or the even ("a") / odd ("b") positions: two disjoint halves."""
    if half is None:
        return list(words)
    if half not in ("a", "b"):
        raise ValueError(f"half must be None, 'a' or 'b', got {half!r}")
    return list(words[0 if half == "a" else 1::2])


def _sentence(number: str, det: tuple, adj: str | None, noun: tuple, verb: tuple, adv: str | None,
              punct: str) -> list[Row]:
    """One sentence's rows; heads are 1-based word ids (0 = root)."""
    words: list[tuple[str, str, str, str, str, str]] = [(det[0], det[1], "DET", "DT", det[2], "det")]
    if adj is not None:
        words.append((adj, adj, "ADJ", "JJ", "Degree=Pos", "amod"))
    sing = number == "Sing"
    words.append((noun[0] if sing else noun[1], noun[0], "NOUN", "NN" if sing else "NNS", f"Number={number}", "nsubj"))
    xpos, feats = VERB_FEATS[number]
    words.append((verb[1] if sing else verb[0], verb[0], "VERB", xpos, feats, "root"))
    if adv is not None:
        words.append((adv, adv, "ADV", "RB", "_", "advmod"))
    words.append((punct, punct, "PUNCT", ".", "_", "punct"))
    n_id = 3 if adj is not None else 2
    v_id = n_id + 1
    heads = {"det": n_id, "amod": n_id, "nsubj": v_id, "root": 0, "advmod": v_id, "punct": v_id}
    rows = [(f, lem, u, x, ft, heads[rel], rel) for f, lem, u, x, ft, rel in words]
    first = rows[0]
    return [(first[0].capitalize(), *first[1:]), *rows[1:]]  # sentence-initial capital


def sentences(n: int, seed: int = 0, half: str | None = None, adjectives: bool = True) -> list[list[Row]]:
    """`n` distinct sentences drawn without replacement (seeded) from every sentence of the grammar
    over the chosen word `half`; `adjectives=False`: no adjective slot (shorter sentences)."""
    adjs: list[str | None] = _half(ADJS, half) if adjectives else [None]
    nouns, verbs = _half(NOUNS, half), _half(VERBS, half)
    advs: list[str | None] = [None, *_half(ADVS, half)]
    slots = [adjs, nouns, verbs, advs, PUNCTS]
    combos = [(number, det) for number in ("Sing", "Plur") for det in DETS[number]]
    sizes = [len(combos)] + [len(s) for s in slots]
    total = int(np.prod(sizes))
    if n > total:
        raise ValueError(f"the grammar has only {total} distinct sentences over half={half!r}, asked for {n}")
    out = []
    for flat in np.random.default_rng(seed).choice(total, size=n, replace=False):
        idx = np.unravel_index(int(flat), sizes)
        number, det = combos[idx[0]]
        adj, noun, verb, adv, punct = (s[int(i)] for s, i in zip(slots, idx[1:], strict=True))
        out.append(_sentence(number, det, adj, noun, verb, adv, punct))
    return out


def conllu_text(rows: list[list[Row]], first_id: int = 1) -> str:
    """CoNLL-U text of the sentences (sent_id counting from `first_id`, a `# text` line each)."""
    blocks = []
    for k, sent in enumerate(rows):
        lines = [f"# sent_id = {first_id + k}", "# text = " + " ".join(r[0] for r in sent)]
        lines += [f"{i}\t{f}\t{lem}\t{u}\t{x}\t{ft}\t{h}\t{rel}\t_\t_"
                  for i, (f, lem, u, x, ft, h, rel) in enumerate(sent, 1)]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks) + "\n"


def distinct_conllu(path: Path, n: int = 20, seed: int = 0, half: str | None = None, adjectives: bool = True) -> Path:
    """Write `n` distinct grammar sentences to `path` as CoNLL-U."""
    path.write_text(conllu_text(sentences(n, seed, half, adjectives)))
    return path


def grammar_vocabulary(vocab: list[str]) -> list[str]:
    """The grammar's words to append to a WordPiece `vocab`: all not yet in it, except a stem + "s"
    whose stem is in it (those stay `stem ##s`, as "sleeps" is in the transformer tests)."""
    have = set(vocab)
    new: list[str] = []
    for w in WORDS:
        if w in have or (w.endswith("s") and (w[:-1] in have or w[:-1] in new) and "##s" in have):
            continue
        new.append(w)
    return new
