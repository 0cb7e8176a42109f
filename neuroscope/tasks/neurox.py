"""Labels given by a NeuroX label file (one label per word, aligned with the sentence file)."""

from __future__ import annotations

from neuroscope.data.sentence import Sentence
from neuroscope.tasks.base import required, task


@task("neurox", reader="neurox")
def neurox_labels(sentence: Sentence) -> list[str]:
    """The label file's label of each word."""
    return required(sentence, "label", "label")
