"""Readers of token-level corpora: CoNLL-U, CoNLL-2000 chunking and NeuroX sentence/label files.

Each returns a list of `Sentence`; malformed input raises `DataError` naming file and line.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import conllu

from neuroscope.data.sentence import Sentence
from neuroscope.errors import DataError
from neuroscope.registry import READERS

CONLLU_COLUMNS = ("id", "form", "lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc")
_WORD_ID = re.compile(r"^[1-9][0-9]*$")
_RANGE_ID = re.compile(r"^[1-9][0-9]*-[1-9][0-9]*$")
_EMPTY_ID = re.compile(r"^[0-9]+\.[1-9][0-9]*$")


def open_text(path: str | Path) -> Iterator[str]:
    """Lines of a UTF-8 text file (gzip if it ends in .gz), without line ends (LF, CRLF or CR)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file does not exist")
    opener = gzip.open if path.suffix == ".gz" else open
    n = 0
    try:
        with opener(path, "rt", encoding="utf-8-sig") as f:  # -sig: a leading byte-order mark is dropped
            for line in f:
                n += 1  # lines read so far, for errors
                yield line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}:{_bad_utf8_line(path, opener)}: not UTF-8 text ({exc.reason}); "
                        "convert the file to UTF-8") from exc
    except (EOFError, zlib.error) as exc:  # the compressed stream stops or is damaged
        raise DataError(f"{path}:{n + 1}: gzip data is truncated or damaged after line {n} ({exc}); "
                        "download or compress the file again") from exc
    except gzip.BadGzipFile as exc:  # e.g. an HTML error page saved as .gz
        raise DataError(f"{path}: not a valid gzip file ({exc})") from exc
    except OSError as exc:  # a folder, no permission
        raise DataError(f"{path}: cannot be read ({exc.strerror or exc})") from exc


def _bad_utf8_line(path: Path, opener: Callable[..., Any]) -> int | str:
    """Number of the first line that is not valid UTF-8 ("?" if every line decodes alone)."""
    with opener(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return n
    return "?"


def _blocks(path: Path) -> Iterator[list[tuple[int, str]]]:
    """Blank-line separated blocks of (line number, line)."""
    block: list[tuple[int, str]] = []
    for n, line in enumerate(open_text(path), start=1):
        if line.strip():
            block.append((n, line))
        elif block:
            yield block
            block = []
    if block:
        yield block


def _nonempty(sentences: list[Sentence], path: Path) -> list[Sentence]:
    if not sentences:
        raise DataError(f"{path}: file is empty (no sentences found)")
    return sentences


@READERS.register("conllu")
def read_conllu(path: str | Path) -> list[Sentence]:
    """Syntactic words of each sentence (multiword ranges and empty nodes skipped) with UD columns."""
    path = Path(path)
    sentences = []
    for block in _blocks(path):
        token_lines: list[int] = []
        text_lines: list[str] = []
        for n, line in block:
            if line.startswith("#"):
                text_lines.append(line)
                continue
            cols = line.split("\t")
            if len(cols) != 10:
                raise DataError(
                    f"{path}:{n}: malformed CoNLL-U line: expected 10 tab-separated columns, "
                    f"found {len(cols)}"
                )
            if not (cols[6] == "_" or cols[6].isdigit()):
                raise DataError(f"{path}:{n}: malformed CoNLL-U line: HEAD '{cols[6]}' is not a word ID (or _)")
            if _WORD_ID.match(cols[0]):
                if int(cols[0]) != len(token_lines) + 1:
                    raise DataError(
                        f"{path}:{n}: malformed CoNLL-U line: word ID {cols[0]} where {len(token_lines) + 1} "
                        "was expected (IDs count 1, 2, ... in each sentence; a blank line missing before it?)"
                    )
                token_lines.append(n)
                text_lines.append(line)
            elif not (_RANGE_ID.match(cols[0]) or _EMPTY_ID.match(cols[0])):
                raise DataError(f"{path}:{n}: malformed CoNLL-U line: bad ID '{cols[0]}'")
        if not token_lines:
            continue
        try:
            (tokens,) = conllu.parse("\n".join(text_lines) + "\n\n")
        except Exception as exc:  # conllu's own parse errors
            raise DataError(f"{path}:{block[0][0]}: malformed CoNLL-U sentence: {exc}") from exc
        fields: dict[str, list] = {c: [] for c in CONLLU_COLUMNS if c not in ("id", "form")}
        for tok in tokens:
            for c in fields:
                fields[c].append(tok[c])
        sentences.append(
            Sentence([t["form"] for t in tokens], fields, str(path), token_lines)
        )
    return _nonempty(sentences, path)


@READERS.register("conll2000")
def read_conll2000(path: str | Path) -> list[Sentence]:
    """CoNLL-2000 chunking: one `word POS chunk` line per word, blank line between sentences."""
    path = Path(path)
    sentences = []
    for block in _blocks(path):
        words, pos, chunk, lines = [], [], [], []
        for n, line in block:
            cols = line.split()
            if len(cols) != 3:
                raise DataError(
                    f"{path}:{n}: malformed CoNLL-2000 line: expected 3 columns "
                    f"(word POS chunk), found {len(cols)}"
                )
            words.append(cols[0])
            pos.append(cols[1])
            chunk.append(cols[2])
            lines.append(n)
        sentences.append(Sentence(words, {"pos": pos, "chunk": chunk}, str(path), lines))
    return _nonempty(sentences, path)


@READERS.register("neurox")
def read_neurox(path: str | Path, labels: str | Path | None = None) -> list[Sentence]:
    """NeuroX text: one whitespace-tokenized sentence per line; `labels` aligned by position."""
    path = Path(path)
    text = list(open_text(path))
    label_lines = list(open_text(labels)) if labels is not None else None
    if label_lines is not None and len(label_lines) != len(text):
        pairs = enumerate(zip(text, label_lines, strict=False))
        first = next((i for i, (a, b) in pairs if len(a.split()) != len(b.split())), min(len(text), len(label_lines)))
        raise DataError(
            f"{path} has {len(text)} lines but label file {labels} has {len(label_lines)}; "
            f"they must have one line per sentence (the first line whose word and label counts differ "
            f"is {path}:{first + 1} / {labels}:{first + 1})"
        )
    sentences = []
    for i, line in enumerate(text):
        words = line.split()
        if not words:
            raise DataError(f"{path}:{i + 1}: empty sentence line")
        fields = {}
        if label_lines is not None:
            tags = label_lines[i].split()
            if len(tags) != len(words):
                raise DataError(
                    f"{path}:{i + 1}: sentence has {len(words)} words but {labels}:{i + 1} "
                    f"has {len(tags)} labels"
                )
            fields["label"] = tags
        sentences.append(Sentence(words, fields, str(path), [i + 1] * len(words)))
    return _nonempty(sentences, path)


def write_neurox(sentences: list[Sentence], text_path: Path, labels_path: Path | None, column: str = "label") -> None:
    """Write sentences (and one label column) in NeuroX's text format, e.g. to feed NeuroX itself."""
    from neuroscope.files import atomic_write

    atomic_write(text_path, "".join(" ".join(s.words) + "\n" for s in sentences))
    if labels_path is not None:
        atomic_write(labels_path, "".join(" ".join(map(str, s.fields[column])) + "\n" for s in sentences))
