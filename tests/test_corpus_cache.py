"""Parsed corpora are cached by content: parsed once, re-parsed when the file or reader changes."""

from __future__ import annotations

import os
from pathlib import Path

from neuroscope.data import cache
from neuroscope.data.readers import read_conllu
from tests.conftest import TINY_CONLLU, tiny_conllu


def test_a_corpus_is_parsed_once_and_again_when_it_changes(tmp_path: Path) -> None:
    calls = []

    def reader(path: Path) -> list:
        calls.append(path)
        return read_conllu(path)

    f = tiny_conllu(tmp_path / "a.conllu", copies=2)
    first = cache.read_cached("conllu", reader, f)
    cache._memory.clear()  # a new process: from the disk cache
    again = cache.read_cached("conllu", reader, f)
    assert len(calls) == 1 and [s.words for s in again] == [s.words for s in first]
    assert again[0].source == first[0].source and again[0].fields == first[0].fields
    f.write_text(TINY_CONLLU.replace("cats", "dogs") * 2)  # same size, new content
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 1_000_000))
    changed = cache.read_cached("conllu", reader, f)
    assert len(calls) == 2 and changed[0].words[1] == "dogs"
    g = tiny_conllu(tmp_path / "b.conllu", copies=2)  # same content, other file: its own source
    other = cache.read_cached("conllu", reader, g)
    assert len(calls) == 3 and other[0].source.endswith("b.conllu")
