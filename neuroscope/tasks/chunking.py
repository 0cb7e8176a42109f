"""Tasks over CoNLL-2000 files (`word POS chunk`): chunk tags and their POS column."""

from __future__ import annotations

from neuroscope.data.sentence import Sentence
from neuroscope.tasks.base import required, task


@task("chunk", reader="conll2000")
def chunk(sentence: Sentence, iob: bool = True) -> list[str]:
    """Chunk tag (`B-NP`); with `iob=False` only the chunk type (`NP`, `O`)."""
    tags = required(sentence, "chunk", "chunk tag")
    return tags if iob else [t.split("-", 1)[-1] for t in tags]


@task("conll2000_pos", reader="conll2000")
def conll2000_pos(sentence: Sentence) -> list[str]:
    """The Penn POS column of a CoNLL-2000 file."""
    return required(sentence, "pos", "POS tag")
