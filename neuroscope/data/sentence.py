"""The one sentence type every reader produces and every task reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Sentence:
    """Words of one sentence with per-word annotation columns and where each word came from."""

    words: list[str]
    fields: dict[str, list[Any]] = field(default_factory=dict)  # column name -> one value per word
    source: str = "<memory>"  # file the sentence was read from
    lines: list[int] = field(default_factory=list)  # 1-based line of each word in `source`

    def __len__(self) -> int:
        return len(self.words)

    def where(self, i: int) -> str:
        """`file:line` of word i, for error messages."""
        line = self.lines[i] if i < len(self.lines) else "?"
        return f"{self.source}:{line}"
