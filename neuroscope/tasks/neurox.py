"""Labels given by a NeuroX label file (one label per word, aligned with the sentence file), and
a words-only corpus (a sentence file, no labels) for label-free methods such as maxcorr."""

from __future__ import annotations

from neuroscope.data.sentence import Sentence
from neuroscope.tasks.base import required, task


@task("neurox", reader="neurox")
def neurox_labels(sentence: Sentence) -> list[str]:
    """The label file's label of each word."""
    return required(sentence, "label", "label")


@task("sentences", reader="neurox", labelled=False)
def sentences(sentence: Sentence) -> list[None]:
    """No label: the words only (correlation methods need no labels)."""
    return [None] * len(sentence)
