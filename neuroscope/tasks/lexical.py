"""Lexical properties of the word form itself: suffixes and capitalization."""

from __future__ import annotations

from neuroscope.data.sentence import Sentence
from neuroscope.errors import ConfigError
from neuroscope.tasks.base import task


@task("suffix")
def suffix(sentence: Sentence, k: int = 3, lowercase: bool = True, min_length: int = 0) -> list[str | None]:
    """Last k characters of each word; words shorter than `min_length` are skipped."""
    if k < 1:
        raise ConfigError(f"task.params.k: must be >= 1, got {k}")
    return [
        (w.lower() if lowercase else w)[-k:] if len(w) >= min_length else None for w in sentence.words
    ]


@task("capitalization")
def capitalization(sentence: Sentence) -> list[str]:
    """Shape of the word's case: lower, upper, title, mixed or none (no letters)."""
    out = []
    for w in sentence.words:
        if not any(c.isalpha() for c in w):
            out.append("none")
        elif w.islower():
            out.append("lower")
        elif w.isupper():
            out.append("upper")
        elif w.istitle():
            out.append("title")
        else:
            out.append("mixed")
    return out
