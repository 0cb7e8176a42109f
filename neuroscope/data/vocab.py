"""Tokenization and vocabularies for the NMT and the language model.

Words come from a simple punctuation split (`tokenize`) that `detokenize` undoes well enough
for sacreBLEU's 13a tokenizer (it splits the same punctuation again). A `Vocab` maps words,
or their BPE / unigram pieces (the `tokenizers` library), to ids; ids 0-3 are the specials.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

SPECIALS = ("<unk>", "<pad>", "<bos>", "<eos>")
UNK, PAD, BOS, EOS = range(4)
SUBWORDS = ("bpe", "unigram")
_WORD_START = "\u2581"  # "▁": marks the first piece of a word (Metaspace)

# an acronym (J.P.), a number with decimal/thousands marks, a word with inner hyphens or
# apostrophes (and a trailing hyphen as in German "Obst- und"), or one symbol
_TOKEN = re.compile(r"(?:[^\W\d_]\.){2,}|\d+(?:[.,]\d+)+|\w+(?:[-'’]\w+)*-?|[^\w\s]")
_NO_SPACE_BEFORE = set(".,!?;:)]}%“”") | {"'", "’", "...", "n't"}
_NO_SPACE_AFTER = set("([{„¿¡$")


def tokenize(text: str, lowercase: bool = False) -> list[str]:
    """Words and punctuation marks of a raw line: `"A man, 2.5 m-tall."` → `[A, man, ",", 2.5, m-tall, "."]`."""
    return _TOKEN.findall(text.lower() if lowercase else text)


def detokenize(words: Iterable[str]) -> str:
    """Join words into a raw line: no space before closing punctuation, none after opening marks."""
    out: list[str] = []
    open_quote = False
    glue = True  # no space before the first word
    for w in words:
        if w == '"':
            space = not glue and not open_quote
            glue = not open_quote  # an opening quote sticks to the next word
            open_quote = not open_quote
        else:
            space = not glue and w not in _NO_SPACE_BEFORE and not w.startswith(("'", "’"))
            glue = w in _NO_SPACE_AFTER
        out.append((" " if space else "") + w)
    return "".join(out)


class Vocab:
    """Ids of words (or of their subword pieces), specials first: `<unk>`, `<pad>`, `<bos>`, `<eos>`."""

    def __init__(self, itos: list[str], lowercase: bool = False, subword: str | None = None,
                 subword_model: str | None = None) -> None:
        if tuple(itos[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with {SPECIALS}")
        if subword is not None and (subword not in SUBWORDS or subword_model is None):
            raise ValueError(f"subword must be one of {SUBWORDS} with its model, got {subword!r}")
        self.itos = list(itos)
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        self.lowercase = lowercase
        self.subword = subword
        self.subword_model = subword_model
        self._tokenizer = _load_subwords(subword_model) if subword_model else None

    @classmethod
    def build(cls, sentences: list[list[str]], min_freq: int = 2, max_size: int | None = None,
              lowercase: bool = False, subword: str | None = None, subword_vocab: int = 8000) -> Vocab:
        """Vocabulary of tokenized training sentences: words seen `min_freq` times, most frequent first."""
        if lowercase:
            sentences = [[w.lower() for w in s] for s in sentences]
        if subword:
            if subword not in SUBWORDS:
                raise ValueError(f"subword: expected one of {SUBWORDS} or null, got {subword!r}")
            model = _train_subwords(sentences, subword, subword_vocab, min_freq)
            itos = [t for t, _ in sorted(_load_subwords(model).get_vocab().items(), key=lambda kv: kv[1])]
            return cls(itos, lowercase, subword, model)
        counts = Counter(w for s in sentences for w in s)
        words = sorted((w for w, c in counts.items() if c >= min_freq and w not in SPECIALS),
                       key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max(0, max_size - len(SPECIALS))]
        return cls([*SPECIALS, *words], lowercase)

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.state() == other.state()

    def pieces(self, words: list[str]) -> tuple[list[str], list[int]]:
        """Units the model reads (words, or subword pieces) and the word index of each unit."""
        if self.lowercase:
            words = [w.lower() for w in words]
        if self._tokenizer is None:
            return list(words), list(range(len(words)))
        enc = self._tokenizer.encode(words, is_pretokenized=True, add_special_tokens=False)
        pieces, word_of = list(enc.tokens), [int(w) for w in enc.word_ids]
        if len(set(word_of)) == len(words):
            return pieces, word_of
        # a word without pieces (e.g. a lone zero-width space) is read as <unk>, so it keeps a row
        pieces, word_of = [], []
        for i, w in enumerate(words):
            units = self._tokenizer.encode([w], is_pretokenized=True, add_special_tokens=False).tokens
            pieces += units or [SPECIALS[UNK]]
            word_of += [i] * max(1, len(units))
        return pieces, word_of

    def encode(self, words: list[str]) -> tuple[list[int], list[int]]:
        """Ids of the units of `words` (unknown → `<unk>`) and the word index of each unit."""
        units, word_of = self.pieces(words)
        return [self.stoi.get(u, UNK) for u in units], word_of

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words of an id sequence; stops at `<eos>`, skips `<bos>`/`<pad>`, keeps `<unk>`."""
        units: list[str] = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i not in (BOS, PAD):
                units.append(self.itos[i] if 0 <= i < len(self.itos) else SPECIALS[UNK])
        if self._tokenizer is None:
            return units
        return "".join(u if u in SPECIALS else u.replace(_WORD_START, " ") for u in units).split()

    def state(self) -> dict[str, Any]:
        """Plain JSON-able form (lists and strings): safe to store in a checkpoint."""
        return {"itos": self.itos, "lowercase": self.lowercase, "subword": self.subword,
                "subword_model": self.subword_model}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Vocab:
        return cls(list(state["itos"]), bool(state["lowercase"]), state.get("subword"), state.get("subword_model"))

    def describe(self) -> str:
        kind = self.subword or "word"
        return f"{len(self)} {kind} units{' (lowercased)' if self.lowercase else ''}"


def _train_subwords(sentences: list[list[str]], kind: str, size: int, min_freq: int) -> str:
    """A BPE or unigram model over words (pieces never cross words), as the `tokenizers` JSON."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    if kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token=SPECIALS[UNK]))
        trainer: Any = trainers.BpeTrainer(vocab_size=size, min_frequency=min_freq,
                                           special_tokens=list(SPECIALS), show_progress=False)
    else:
        tok = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(vocab_size=size, special_tokens=list(SPECIALS),
                                          unk_token=SPECIALS[UNK], show_progress=False)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=_WORD_START, prepend_scheme="always")
    tok.train_from_iterator((" ".join(s) for s in sentences), trainer=trainer)
    return tok.to_str()


def _load_subwords(model: str) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_str(model)
