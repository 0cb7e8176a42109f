"""Readers of CoNLL-U, CoNLL-2000 and NeuroX files on tiny synthetic files with known answers."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from neuroscope.data.readers import (
    open_text,
    read_conll2000,
    read_conllu,
    read_neurox,
    write_neurox,
)
from neuroscope.data.sentence import Sentence
from neuroscope.errors import DataError
from neuroscope.registry import READERS


def tok(id_: str, form: str, upos: str = "_", xpos: str = "_", feats: str = "_", head: str = "0",
        deprel: str = "_") -> str:
    """One CoNLL-U line (lemma = lower-cased form, deps/misc empty)."""
    return "\t".join([id_, form, form.lower(), upos, xpos, feats, head, deprel, "_", "_"])


def write_lines(path: Path, lines: list[str]) -> Path:
    """Write lines (line i of the list is line i+1 of the file) with a trailing newline."""
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# Line numbers matter: index i in this list is line i + 1 of the file.
CONLLU_LINES = [
    "# newdoc id = d1",                                                          # 1
    "# sent_id = 1",                                                             # 2
    "# text = The cats sleep.",                                                  # 3
    tok("1", "The", "DET", "DT", "Definite=Def|PronType=Art", "2", "det"),       # 4
    tok("2", "cats", "NOUN", "NNS", "Number=Plur", "3", "nsubj"),                # 5
    tok("3", "sleep", "VERB", "VBP", "Mood=Ind|Tense=Pres", "0", "root"),        # 6
    tok("4", ".", "PUNCT", ".", "_", "3", "punct"),                              # 7
    "",                                                                          # 8
    "# sent_id = 2",                                                             # 9
    tok("1", "My", "PRON", "PRP$", "Person=1|Poss=Yes", "2", "nmod:poss"),       # 10
    tok("2", "dog", "NOUN", "NN", "Number=Sing", "5", "nsubj"),                  # 11
    "3-4\tcan't\t_\t_\t_\t_\t_\t_\t_\t_",                                        # 12
    tok("3", "ca", "AUX", "MD", "VerbForm=Fin", "5", "aux"),                     # 13
    tok("4", "n't", "PART", "RB", "_", "5", "advmod"),                           # 14
    tok("5", "run", "VERB", "VB", "VerbForm=Inf", "0", "root"),                  # 15
    "5.1\trun\trun\tVERB\tVB\t_\t_\t_\t5:conj\t_",                               # 16
    tok("6", ".", "PUNCT", ".", "_", "5", "punct"),                              # 17
    "",                                                                          # 18
    "",                                                                          # 19
    "# sent_id = 3",                                                             # 20
    tok("1", "Hi", "INTJ", "UH", "_", "0", "root"),                              # 21
]


@pytest.fixture
def conllu_file(tmp_path: Path) -> Path:
    return write_lines(tmp_path / "tiny.conllu", CONLLU_LINES)


# --------------------------------------------------------------------------------------- CoNLL-U


def test_conllu_words_skip_multiword_ranges_and_empty_nodes(conllu_file: Path) -> None:
    sents = read_conllu(conllu_file)
    assert [s.words for s in sents] == [
        ["The", "cats", "sleep", "."],
        ["My", "dog", "ca", "n't", "run", "."],  # 3-4 "can't" and 5.1 are not words
        ["Hi"],
    ]
    assert [len(s) for s in sents] == [4, 6, 1]


def test_conllu_columns_per_word(conllu_file: Path) -> None:
    first, second, third = read_conllu(conllu_file)
    assert first.fields["upos"] == ["DET", "NOUN", "VERB", "PUNCT"]
    assert first.fields["xpos"] == ["DT", "NNS", "VBP", "."]
    assert first.fields["deprel"] == ["det", "nsubj", "root", "punct"]
    assert first.fields["lemma"] == ["the", "cats", "sleep", "."]
    assert first.fields["head"] == [2, 3, 0, 3]
    assert first.fields["feats"] == [
        {"Definite": "Def", "PronType": "Art"},
        {"Number": "Plur"},
        {"Mood": "Ind", "Tense": "Pres"},
        None,  # "_" = no features
    ]
    assert second.fields["upos"] == ["PRON", "NOUN", "AUX", "PART", "VERB", "PUNCT"]
    assert second.fields["deprel"] == ["nmod:poss", "nsubj", "aux", "advmod", "root", "punct"]
    assert second.fields["feats"][0] == {"Person": "1", "Poss": "Yes"}
    assert third.fields["xpos"] == ["UH"]
    # every column has exactly one value per word
    for s in (first, second, third):
        assert set(s.fields) == {"lemma", "upos", "xpos", "feats", "head", "deprel", "deps", "misc"}
        assert all(len(v) == len(s) for v in s.fields.values())


def test_conllu_line_numbers_and_source(conllu_file: Path) -> None:
    first, second, third = read_conllu(conllu_file)
    assert first.lines == [4, 5, 6, 7]
    assert second.lines == [10, 11, 13, 14, 15, 17]  # 12 (range) and 16 (empty node) skipped
    assert third.lines == [21]
    assert all(s.source == str(conllu_file) for s in (first, second, third))
    assert second.where(2) == f"{conllu_file}:13"
    assert second.words[2] == "ca"


def test_conllu_comment_only_block_is_not_a_sentence(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.conllu", [
        "# a lone comment", "# another one", "",
        tok("1", "Yes", "INTJ", "UH"), "",
        "# only a range below", "1-2\tdunno\t_\t_\t_\t_\t_\t_\t_\t_", "",
    ])
    sents = read_conllu(path)
    assert [s.words for s in sents] == [["Yes"]]
    assert sents[0].lines == [4]


def test_conllu_gzip_reads_the_same(tmp_path: Path, conllu_file: Path) -> None:
    gz = tmp_path / "tiny.conllu.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write(conllu_file.read_text(encoding="utf-8"))
    plain, packed = read_conllu(conllu_file), read_conllu(gz)
    assert [s.words for s in packed] == [s.words for s in plain]
    assert [s.fields for s in packed] == [s.fields for s in plain]
    assert [s.lines for s in packed] == [s.lines for s in plain]
    assert packed[0].source == str(gz)


def test_conllu_crlf_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "crlf.conllu"
    path.write_bytes(("\r\n".join(CONLLU_LINES) + "\r\n").encode())
    sents = read_conllu(path)
    assert [s.words[-1] for s in sents] == [".", ".", "Hi"]
    assert sents[0].fields["misc"] == [None] * 4
    assert sents[1].lines == [10, 11, 13, 14, 15, 17]


@pytest.mark.parametrize(
    "bad_line, found",
    [
        ("2\tcats\tcat\tNOUN\tNNS\t_\t0\troot\t_", "found 9"),  # 9 columns
        ("2\tcats\tcat\tNOUN\tNNS\t_\t0\troot\t_\t_\t_", "found 11"),  # 11 columns
        ("2 cats cat NOUN NNS _ 0 root _ _", "found 1"),  # spaces instead of tabs
    ],
)
def test_conllu_wrong_column_count_names_file_and_line(tmp_path: Path, bad_line: str, found: str) -> None:
    path = write_lines(tmp_path / "bad.conllu", [
        "# sent_id = 1", tok("1", "The", "DET", "DT"), bad_line, "",
    ])
    with pytest.raises(DataError) as err:
        read_conllu(path)
    msg = str(err.value)
    assert f"{path}:3:" in msg
    assert "expected 10 tab-separated columns" in msg and found in msg


@pytest.mark.parametrize("bad_id", ["x", "0", "01", "1.0", "2-", "-1"])
def test_conllu_bad_id_names_file_and_line(tmp_path: Path, bad_id: str) -> None:
    path = write_lines(tmp_path / "bad.conllu", [
        tok("1", "The", "DET", "DT"), "", tok("1", "Yes", "INTJ", "UH"), tok(bad_id, "no", "INTJ", "UH"), "",
    ])
    with pytest.raises(DataError) as err:
        read_conllu(path)
    assert f"{path}:4:" in str(err.value)
    assert f"bad ID '{bad_id}'" in str(err.value)


def test_conllu_unparsable_head_names_file_and_line(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "bad.conllu", [tok("1", "The", "DET", "DT", "_", "2"), tok("2", "x", head="abc")])
    with pytest.raises(DataError) as err:
        read_conllu(path)
    assert str(err.value) == f"{path}:2: malformed CoNLL-U line: HEAD 'abc' is not a word ID (or _)"


@pytest.mark.parametrize("content", ["", "\n\n\n", "# only a comment\n\n# another\n"])
def test_conllu_empty_file_is_a_data_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.conllu"
    path.write_text(content)
    with pytest.raises(DataError, match="file is empty"):
        read_conllu(path)


@pytest.mark.parametrize("reader", [read_conllu, read_conll2000, read_neurox])
def test_missing_file_is_a_data_error(tmp_path: Path, reader) -> None:
    path = tmp_path / "nope.txt"
    with pytest.raises(DataError) as err:
        reader(path)
    assert str(err.value) == f"{path}: file does not exist"


def test_neurox_missing_label_file_is_a_data_error(tmp_path: Path) -> None:
    text = write_lines(tmp_path / "s.txt", ["a b"])
    with pytest.raises(DataError, match="file does not exist"):
        read_neurox(text, tmp_path / "nope.labels")


def test_non_utf8_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.conllu"
    path.write_bytes(tok("1", "café", "NOUN", "NN").encode("latin-1") + b"\n")
    with pytest.raises(DataError) as err:
        read_conllu(path)
    assert str(path) in str(err.value) and "not UTF-8" in str(err.value)


def test_corrupt_gzip_is_a_data_error(tmp_path: Path) -> None:
    """A `.gz` that is not gzip data (e.g. a truncated/HTML download) is malformed input: DataError."""
    path = tmp_path / "broken.conllu.gz"
    path.write_bytes(b"<html>not gzip</html>\n")
    with pytest.raises(DataError) as err:
        read_conllu(path)
    assert str(path) in str(err.value)


def test_open_text_yields_lines_without_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_bytes(b"one\r\ntwo\n\nthree")
    assert list(open_text(path)) == ["one", "two", "", "three"]
    gz = tmp_path / "t.txt.gz"
    with gzip.open(gz, "wb") as f:
        f.write(b"one\ntwo\n")
    assert list(open_text(gz)) == ["one", "two"]


def test_readers_are_registered() -> None:
    assert READERS.get("conllu") is read_conllu
    assert READERS.get("conll2000") is read_conll2000
    assert READERS.get("neurox") is read_neurox


# ------------------------------------------------------------------------------------ CoNLL-2000

CONLL2000_LINES = [
    "Confidence NN B-NP",   # 1
    "in IN B-PP",           # 2
    "the DT B-NP",          # 3
    "pound NN I-NP",        # 4
    ". . O",                # 5
    "",                     # 6
    "Rockwell NNP B-NP",    # 7
    "said VBD B-VP",        # 8
]


def test_conll2000_words_pos_chunk(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "train.txt", CONLL2000_LINES)
    first, second = read_conll2000(path)
    assert first.words == ["Confidence", "in", "the", "pound", "."]
    assert first.fields == {
        "pos": ["NN", "IN", "DT", "NN", "."],
        "chunk": ["B-NP", "B-PP", "B-NP", "I-NP", "O"],
    }
    assert second.words == ["Rockwell", "said"]
    assert second.fields == {"pos": ["NNP", "VBD"], "chunk": ["B-NP", "B-VP"]}
    assert first.lines == [1, 2, 3, 4, 5] and second.lines == [7, 8]
    assert second.source == str(path)


@pytest.mark.parametrize("bad_line, found", [("said VBD", 2), ("said VBD B-VP extra", 4)])
def test_conll2000_malformed_line_names_file_and_line(tmp_path: Path, bad_line: str, found: int) -> None:
    path = write_lines(tmp_path / "train.txt", CONLL2000_LINES[:7] + [bad_line])
    with pytest.raises(DataError) as err:
        read_conll2000(path)
    msg = str(err.value)
    assert f"{path}:8:" in msg
    assert f"expected 3 columns (word POS chunk), found {found}" in msg


def test_conll2000_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("\n\n")
    with pytest.raises(DataError, match="file is empty"):
        read_conll2000(path)


# ---------------------------------------------------------------------------------------- NeuroX


@pytest.fixture
def neurox_files(tmp_path: Path) -> tuple[Path, Path]:
    text = write_lines(tmp_path / "sents.txt", ["the cat sat", "a  dog\tbarks loudly", "Hi"])
    labels = write_lines(tmp_path / "sents.labels", ["DT NN VBD", "DT NN VBZ RB", "UH"])
    return text, labels


def test_neurox_sentences_and_labels_aligned(neurox_files: tuple[Path, Path]) -> None:
    text, labels = neurox_files
    sents = read_neurox(text, labels)
    assert [s.words for s in sents] == [["the", "cat", "sat"], ["a", "dog", "barks", "loudly"], ["Hi"]]
    assert [s.fields["label"] for s in sents] == [["DT", "NN", "VBD"], ["DT", "NN", "VBZ", "RB"], ["UH"]]
    assert [s.lines for s in sents] == [[1, 1, 1], [2, 2, 2, 2], [3]]
    assert sents[1].where(3) == f"{text}:2"


def test_neurox_without_labels(neurox_files: tuple[Path, Path]) -> None:
    text, _ = neurox_files
    sents = read_neurox(text)
    assert [len(s) for s in sents] == [3, 4, 1]
    assert all(s.fields == {} for s in sents)


def test_neurox_label_count_mismatch_names_line_and_counts(tmp_path: Path) -> None:
    text = write_lines(tmp_path / "s.txt", ["the cat sat", "a dog barks"])
    labels = write_lines(tmp_path / "s.labels", ["DT NN VBD", "DT NN"])
    with pytest.raises(DataError) as err:
        read_neurox(text, labels)
    assert str(err.value) == f"{text}:2: sentence has 3 words but {labels}:2 has 2 labels"


@pytest.mark.parametrize("n_text, n_labels", [(3, 2), (2, 3)])
def test_neurox_line_count_mismatch_names_both_counts(tmp_path: Path, n_text: int, n_labels: int) -> None:
    text = write_lines(tmp_path / "s.txt", ["a b"] * n_text)
    labels = write_lines(tmp_path / "s.labels", ["X Y"] * n_labels)
    with pytest.raises(DataError) as err:
        read_neurox(text, labels)
    msg = str(err.value)
    assert f"{text} has {n_text} lines" in msg
    assert f"label file {labels} has {n_labels}" in msg


def test_neurox_empty_line_is_an_error(tmp_path: Path) -> None:
    text = write_lines(tmp_path / "s.txt", ["a b", "   ", "c"])
    with pytest.raises(DataError) as err:
        read_neurox(text)
    assert str(err.value) == f"{text}:2: empty sentence line"


def test_neurox_empty_file(tmp_path: Path) -> None:
    text = tmp_path / "s.txt"
    text.write_text("")
    with pytest.raises(DataError, match="file is empty"):
        read_neurox(text)


def test_write_neurox_round_trip(tmp_path: Path, neurox_files: tuple[Path, Path]) -> None:
    sents = read_neurox(*neurox_files)
    out_text, out_labels = tmp_path / "out.txt", tmp_path / "out.labels"
    write_neurox(sents, out_text, out_labels)
    assert out_text.read_text() == "the cat sat\na dog barks loudly\nHi\n"
    assert out_labels.read_text() == "DT NN VBD\nDT NN VBZ RB\nUH\n"
    again = read_neurox(out_text, out_labels)
    assert [s.words for s in again] == [s.words for s in sents]
    assert [s.fields for s in again] == [s.fields for s in sents]


def test_write_neurox_other_column_and_no_labels(tmp_path: Path, conllu_file: Path) -> None:
    sents = read_conllu(conllu_file)
    out_text, out_labels = tmp_path / "ud.txt", tmp_path / "ud.labels"
    write_neurox(sents, out_text, out_labels, column="upos")
    assert out_labels.read_text().splitlines() == [
        "DET NOUN VERB PUNCT", "PRON NOUN AUX PART VERB PUNCT", "INTJ",
    ]
    again = read_neurox(out_text, out_labels)
    assert [s.fields["label"] for s in again] == [s.fields["upos"] for s in sents]
    only_text = tmp_path / "only.txt"
    write_neurox(sents, only_text, None)
    assert only_text.read_text() == "The cats sleep .\nMy dog ca n't run .\nHi\n"


# -------------------------------------------------------------------------------------- Sentence


def test_sentence_where_and_len() -> None:
    s = Sentence(["a", "b"], {"x": [1, 2]}, "f.txt", [7])
    assert len(s) == 2
    assert s.where(0) == "f.txt:7"
    assert s.where(1) == "f.txt:?"  # no line known
    assert Sentence(["z"]).where(0) == "<memory>:?"


# ----------------------------------------------------------------- line ends, encodings, damage


@pytest.mark.parametrize("reader, lines", [
    (read_conllu, CONLLU_LINES),
    (read_conll2000, CONLL2000_LINES),
    (read_neurox, ["the cat sat", "a dog barks loudly", "Hi"]),
])
@pytest.mark.parametrize("ending", ["\r\n", "\r"])
def test_crlf_and_cr_line_ends_read_like_lf(tmp_path: Path, reader, lines: list[str], ending: str) -> None:
    lf = write_lines(tmp_path / "lf.txt", lines)
    other = tmp_path / "other.txt"
    other.write_bytes((ending.join(lines) + ending).encode())
    a, b = reader(lf), reader(other)
    assert [(s.words, s.fields, s.lines) for s in a] == [(s.words, s.fields, s.lines) for s in b]


def test_neurox_crlf_labels_with_lf_sentences(tmp_path: Path) -> None:
    text = write_lines(tmp_path / "s.txt", ["the cat", "a dog"])
    labels = tmp_path / "s.labels"
    labels.write_bytes(b"DT NN\r\nDT NN\r\n")
    assert [s.fields["label"] for s in read_neurox(text, labels)] == [["DT", "NN"], ["DT", "NN"]]


def test_utf8_byte_order_mark_is_ignored(tmp_path: Path, conllu_file: Path) -> None:
    bom = tmp_path / "bom.conllu"
    bom.write_bytes(b"\xef\xbb\xbf" + conllu_file.read_bytes())
    assert [s.words for s in read_conllu(bom)] == [s.words for s in read_conllu(conllu_file)]


def test_non_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.conllu"
    path.write_bytes("\n".join(CONLLU_LINES[:7]).encode() + b"\n" + tok("5", "caf\xe9", "NOUN").encode("latin-1"))
    with pytest.raises(DataError) as err:
        read_conllu(path)
    assert str(err.value).startswith(f"{path}:8: not UTF-8 text (invalid continuation byte)")


def test_truncated_gzip_names_the_line_it_stops_after(tmp_path: Path, conllu_file: Path) -> None:
    packed = gzip.compress(conllu_file.read_bytes() * 200)
    path = tmp_path / "cut.conllu.gz"
    path.write_bytes(packed[: len(packed) // 2])
    lines_read = 0
    with pytest.raises(DataError) as err:
        for _ in open_text(path):
            lines_read += 1
    assert str(err.value).startswith(f"{path}:{lines_read + 1}: gzip data is truncated or damaged after line "
                                     f"{lines_read}")
    assert lines_read > 0


def test_a_folder_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot be read"):
        read_conllu(tmp_path)


def test_conllu_word_ids_must_count_up(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "merged.conllu", [tok("1", "Hi", "INTJ"), tok("1", "Yes", "INTJ"), ""])
    with pytest.raises(DataError) as err:
        read_conllu(path)
    assert str(err.value).startswith(f"{path}:2: malformed CoNLL-U line: word ID 1 where 2 was expected")


def test_neurox_line_count_mismatch_points_at_the_first_differing_line(tmp_path: Path) -> None:
    text = write_lines(tmp_path / "s.txt", ["a b", "c d e", "f"])
    labels = write_lines(tmp_path / "s.labels", ["X Y", "Z"])  # the middle line is missing
    with pytest.raises(DataError) as err:
        read_neurox(text, labels)
    assert str(err.value).endswith(f"(the first line whose word and label counts differ is {text}:2 / {labels}:2)")
