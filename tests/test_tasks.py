"""Tasks: labelling functions, splits, class ids, unseen labels and control tasks on tiny files."""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from neuroscope.data import root as root_mod
from neuroscope.data.corpora import CORPORA, corpus_file
from neuroscope.data.root import CorpusFile
from neuroscope.errors import ConfigError, DataError, UnknownNameError
from neuroscope.registry import TASKS
from neuroscope.tasks import TaskCorpus, load_task
from neuroscope.tasks.base import SPLITS, UNK, control_labels, task

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_real_data_roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Corpus look-ups never see the user's ~/.cache or $NEUROSCOPE_DATA."""
    monkeypatch.delenv("NEUROSCOPE_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(root_mod, "DEFAULT_CACHE", tmp_path / "cache")


# ----------------------------------------------------------------------------------- file helpers


def tok(id_: int, form: str, upos: str = "X", xpos: str = "XX", feats: str = "_", deprel: str = "dep") -> str:
    return "\t".join([str(id_), form, form.lower(), upos, xpos, feats, "0", deprel, "_", "_"])


def write_conllu(path: Path, sentences: list[list[tuple]]) -> Path:
    """Sentences of (form, upos, xpos, feats, deprel) tuples (trailing fields optional)."""
    lines = []
    for k, sent in enumerate(sentences):
        lines.append(f"# sent_id = {k + 1}")
        lines += [tok(i + 1, *word) for i, word in enumerate(sent)]
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_text(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def label_strings(tc: TaskCorpus) -> list[str | None]:
    """Each token's class name (None when skipped)."""
    return [tc.classes[i] if i >= 0 else None for i in tc.labels.tolist()]


def sentence_splits(tc: TaskCorpus) -> list[int]:
    """Split id of each sentence (all its tokens share it)."""
    out, t = [], 0
    for s in tc.sentences:
        ids = set(tc.split[t:t + len(s)].tolist())
        assert len(ids) == 1, "a sentence was cut across splits"
        out.append(ids.pop())
        t += len(s)
    return out


# Lines of UD_SENTS in the written file: sentence 1 = lines 2-5, sentence 2 = lines 8-11.
UD_SENTS = [
    [
        ("The", "DET", "DT", "Definite=Def|PronType=Art", "det"),
        ("dogs", "NOUN", "NNS", "Number=Plur", "nsubj"),
        ("barked", "VERB", "VBD", "Mood=Ind|Tense=Past|VerbForm=Fin", "root"),
        (".", "PUNCT", ".", "_", "punct"),
    ],
    [
        ("My", "PRON", "PRP$", "Number=Sing|Person=1|Poss=Yes", "nmod:poss"),
        ("cat", "NOUN", "NN", "Number=Sing", "nsubj"),
        ("sleeps", "VERB", "VBZ", "Number=Sing|Person=3|Tense=Pres", "root"),
        (".", "PUNCT", ".", "_", "punct"),
    ],
]


@pytest.fixture
def ud_train(tmp_path: Path) -> Path:
    return write_conllu(tmp_path / "train.conllu", UD_SENTS)


def load_train_only(ud_train: Path, name: str, **cfg) -> TaskCorpus:
    """The task on UD_SENTS with every sentence in train."""
    return load_task({"name": name, "files": {"train": str(ud_train)}, **cfg})


# ---------------------------------------------------------------------------------- UD tasks


@pytest.mark.parametrize(
    "name, params, expected_labels, expected_classes",
    [
        ("upos", {}, ["DET", "NOUN", "VERB", "PUNCT", "PRON", "NOUN", "VERB", "PUNCT"],
         ["DET", "NOUN", "PRON", "PUNCT", "VERB"]),
        ("xpos", {}, ["DT", "NNS", "VBD", ".", "PRP$", "NN", "VBZ", "."],
         [".", "DT", "NN", "NNS", "PRP$", "VBD", "VBZ"]),
        ("deprel", {}, ["det", "nsubj", "root", "punct", "nmod:poss", "nsubj", "root", "punct"],
         ["det", "nmod:poss", "nsubj", "punct", "root"]),
        ("deprel", {"subtypes": True}, ["det", "nsubj", "root", "punct", "nmod:poss", "nsubj", "root", "punct"],
         ["det", "nmod:poss", "nsubj", "punct", "root"]),
        ("deprel", {"subtypes": False}, ["det", "nsubj", "root", "punct", "nmod", "nsubj", "root", "punct"],
         ["det", "nmod", "nsubj", "punct", "root"]),
        ("morph", {"feature": "Number"}, ["_none", "Plur", "_none", "_none", "Sing", "Sing", "Sing", "_none"],
         ["Plur", "Sing", "_none"]),
        ("morph", {"feature": "Tense", "missing": "label"},
         ["_none", "_none", "Past", "_none", "_none", "_none", "Pres", "_none"], ["Past", "Pres", "_none"]),
    ],
)
def test_ud_task_labels_and_sorted_classes(ud_train: Path, name, params, expected_labels, expected_classes) -> None:
    tc = load_train_only(ud_train, name, params=params)
    assert tc.name == name
    assert tc.classes == expected_classes
    assert label_strings(tc) == expected_labels
    assert tc.labels.dtype == np.int64 and tc.split.dtype == np.int8
    assert tc.labels.tolist() == [expected_classes.index(lab) for lab in expected_labels]
    assert tc.words == [[w[0] for w in s] for s in UD_SENTS]
    assert tc.counts() == {"train": 8, "dev": 0, "test": 0}
    rare = {c: expected_labels.count(c) for c in expected_classes if expected_labels.count(c) < 5}
    assert tc.info == {"unseen_labels": {}, "skipped_tokens": 0, "rare_classes": rare, "sentences": 2}


def test_morph_missing_skip_gives_minus_one(ud_train: Path) -> None:
    tc = load_train_only(ud_train, "morph", params={"feature": "Number", "missing": "skip"})
    assert tc.classes == ["Plur", "Sing"]
    assert tc.labels.tolist() == [-1, 0, -1, -1, 1, 1, 1, -1]
    assert tc.info["skipped_tokens"] == 4
    assert tc.counts() == {"train": 4, "dev": 0, "test": 0}
    assert tc.mask("train").tolist() == [False, True, False, False, True, True, True, False]


def test_morph_missing_error_names_file_and_line(ud_train: Path) -> None:
    with pytest.raises(DataError) as err:
        load_train_only(ud_train, "morph", params={"feature": "Number", "missing": "error"})
    assert str(err.value) == f"{ud_train.resolve()}:2: word 'The' has no feature Number"


def test_morph_bad_missing_value_and_missing_feature_are_config_errors(ud_train: Path) -> None:
    with pytest.raises(ConfigError, match="task.params.missing"):
        load_train_only(ud_train, "morph", params={"feature": "Number", "missing": "drop"})
    with pytest.raises(ConfigError, match="task.params"):  # `feature` is required
        load_train_only(ud_train, "morph")


def test_unknown_param_is_a_config_error(ud_train: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_train_only(ud_train, "upos", params={"subtypes": False})
    assert "task.params" in str(err.value) and "'upos'" in str(err.value)


def test_unknown_task_name(ud_train: Path) -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'upos'"):
        load_train_only(ud_train, "upoz")


@pytest.mark.parametrize("name, column, what", [("xpos", 4, "XPOS tag"), ("upos", 3, "UPOS tag"),
                                                ("deprel", 7, "dependency relation")])
def test_underscore_column_names_file_and_line(tmp_path: Path, name: str, column: int, what: str) -> None:
    cols = tok(2, "cats", "NOUN", "NNS", "Number=Plur", "nsubj").split("\t")
    cols[column] = "_"
    path = write_text(tmp_path / "gap.conllu", [
        tok(1, "Two", "NUM", "CD", "_", "nummod"), "\t".join(cols), "",
    ])
    with pytest.raises(DataError) as err:
        load_task({"name": name, "files": {"train": str(path)}})
    assert str(err.value) == f"{path.resolve()}:2: word 'cats' has no {what} (column is '_')"


def test_wrong_format_for_task_says_which_column_is_missing(tmp_path: Path) -> None:
    path = write_text(tmp_path / "chunks.txt", ["He PRP B-NP"])
    with pytest.raises(DataError) as err:
        load_task({"name": "upos", "format": "conll2000", "files": {"train": str(path)}})
    assert "has no 'upos' column" in str(err.value) and "task.format" in str(err.value)


# ----------------------------------------------------------------------------- lexical tasks


@pytest.mark.parametrize(
    "params, expected",
    [
        ({}, ["the", "ogs", "ked", ".", "my", "cat", "eps", "."]),  # k=3, lowercase
        ({"k": 2}, ["he", "gs", "ed", ".", "my", "at", "ps", "."]),
        ({"k": 2, "lowercase": False}, ["he", "gs", "ed", ".", "My", "at", "ps", "."]),
        ({"k": 1, "lowercase": False}, ["e", "s", "d", ".", "y", "t", "s", "."]),
        ({"k": 3, "min_length": 3}, ["the", "ogs", "ked", None, None, "cat", "eps", None]),
        ({"k": 2, "min_length": 5}, [None, None, "ed", None, None, None, "ps", None]),
    ],
)
def test_suffix(ud_train: Path, params: dict, expected: list) -> None:
    tc = load_train_only(ud_train, "suffix", params=params)
    assert label_strings(tc) == expected
    assert tc.classes == sorted({e for e in expected if e is not None})
    assert tc.info["skipped_tokens"] == expected.count(None)


def test_suffix_k_below_one_is_a_config_error(ud_train: Path) -> None:
    with pytest.raises(ConfigError, match="task.params.k"):
        load_train_only(ud_train, "suffix", params={"k": 0})


def test_capitalization(tmp_path: Path) -> None:
    words = ["Hello", "WORLD", "iPhone", "lower", "42", ".", "A", "McDonald", "U.S.", "3d"]
    path = write_conllu(tmp_path / "caps.conllu", [[(w,) for w in words]])
    tc = load_task({"name": "capitalization", "files": {"train": str(path)}})
    assert label_strings(tc) == [
        "title", "upper", "mixed", "lower", "none", "none", "upper", "mixed", "upper", "lower",
    ]
    assert tc.classes == ["lower", "mixed", "none", "title", "upper"]


# ---------------------------------------------------------------------------- CoNLL-2000 tasks

CONLL2000 = ["He PRP B-NP", "reckons VBZ B-VP", "the DT B-NP", "current JJ I-NP", "deficit NN I-NP", ". . O",
             "", "Rockwell NNP B-NP", "said VBD B-VP"]


@pytest.mark.parametrize(
    "name, params, expected",
    [
        ("chunk", {}, ["B-NP", "B-VP", "B-NP", "I-NP", "I-NP", "O", "B-NP", "B-VP"]),
        ("chunk", {"iob": False}, ["NP", "VP", "NP", "NP", "NP", "O", "NP", "VP"]),
        ("conll2000_pos", {}, ["PRP", "VBZ", "DT", "JJ", "NN", ".", "NNP", "VBD"]),
    ],
)
def test_conll2000_tasks(tmp_path: Path, name: str, params: dict, expected: list[str]) -> None:
    path = write_text(tmp_path / "train.txt", CONLL2000)
    tc = load_task({"name": name, "params": params, "files": {"train": str(path)}})
    assert label_strings(tc) == expected
    assert tc.classes == sorted(set(expected))
    assert tc.words == [["He", "reckons", "the", "current", "deficit", "."], ["Rockwell", "said"]]


# -------------------------------------------------------------------------------- NeuroX task


def test_neurox_task(tmp_path: Path) -> None:
    text = write_text(tmp_path / "s.txt", ["the cat sat", "a dog"])
    labels = write_text(tmp_path / "s.labels", ["DT NN VBD", "DT NN"])
    tc = load_task({"name": "neurox", "files": {"train": {"sentences": str(text), "labels": str(labels)}}})
    assert tc.words == [["the", "cat", "sat"], ["a", "dog"]]
    assert tc.classes == ["DT", "NN", "VBD"]
    assert label_strings(tc) == ["DT", "NN", "VBD", "DT", "NN"]
    assert [s["path"] for s in tc.sources] == [str(text.resolve()), str(labels.resolve())]


def test_neurox_task_single_file_mapping(tmp_path: Path) -> None:
    text = write_text(tmp_path / "s.txt", [f"w{i} x{i}" for i in range(10)])
    labels = write_text(tmp_path / "s.labels", ["A B"] * 10)
    tc = load_task({"name": "neurox", "file": {"sentences": str(text), "labels": str(labels)},
                    "split": {"train": 0.5, "dev": 0.5, "seed": 1}})
    assert tc.info["sentences"] == 10 and len(tc.labels) == 20
    assert tc.classes == ["A", "B"]
    assert sorted(Counter(sentence_splits(tc)).items()) == [(0, 5), (1, 5)]


def test_neurox_mapping_without_sentences_is_a_config_error(tmp_path: Path) -> None:
    labels = write_text(tmp_path / "s.labels", ["A"])
    with pytest.raises(ConfigError, match="task.file"):
        load_task({"name": "neurox", "file": {"labels": str(labels)}})


def test_neurox_task_needs_label_file(tmp_path: Path) -> None:
    text = write_text(tmp_path / "s.txt", ["the cat"])
    with pytest.raises(DataError, match="has no 'label' column"):
        load_task({"name": "neurox", "file": {"sentences": str(text)}})


# ------------------------------------------------------------------------------------- splits


def one_word_corpus(path: Path, n: int) -> Path:
    """n one-word sentences w0..w{n-1}, NOUN and VERB in turn: sentence i is token i."""
    return write_conllu(path, [[(f"w{i}", "NOUN" if i % 2 else "VERB")] for i in range(n)])


def test_files_per_split(tmp_path: Path) -> None:
    train = write_conllu(tmp_path / "train.conllu", UD_SENTS)
    dev = write_conllu(tmp_path / "dev.conllu", [[("Cats", "NOUN"), ("sleep", "VERB")]])
    test = write_conllu(tmp_path / "test.conllu", [[("Run", "VERB")], [("The", "DET"), ("end", "NOUN")]])
    # dict order does not matter: store order is always train, dev, test
    tc = load_task({"name": "upos", "files": {"test": str(test), "dev": str(dev), "train": str(train)}})
    assert [s.words for s in tc.sentences] == [
        ["The", "dogs", "barked", "."], ["My", "cat", "sleeps", "."], ["Cats", "sleep"], ["Run"], ["The", "end"],
    ]
    assert sentence_splits(tc) == [0, 0, 1, 2, 2]
    assert tc.split.tolist() == [0] * 8 + [1] * 2 + [2] * 3
    assert tc.counts() == {"train": 8, "dev": 2, "test": 3}
    assert tc.info["sentences"] == 5
    assert [s["path"] for s in tc.sources] == [str(p.resolve()) for p in (train, dev, test)]
    assert [s["sha256"] for s in tc.sources] == [
        hashlib.sha256(p.read_bytes()).hexdigest() for p in (train, dev, test)
    ]


def test_files_without_dev_and_test(ud_train: Path) -> None:
    tc = load_task({"name": "upos", "files": {"train": str(ud_train), "dev": None}})
    assert sentence_splits(tc) == [0, 0]


def test_single_file_ratio_split(tmp_path: Path) -> None:
    path = one_word_corpus(tmp_path / "all.conllu", 100)
    cfg = {"name": "upos", "file": str(path), "split": {"train": 0.6, "dev": 0.3, "test": 0.1, "seed": 3}}
    tc = load_task(cfg)
    # file order is kept; every sentence is in exactly one split
    assert tc.words == [[f"w{i}"] for i in range(100)]
    splits = sentence_splits(tc)
    assert len(splits) == 100 and set(splits) == {0, 1, 2}
    assert Counter(splits) == {0: 60, 1: 30, 2: 10}
    assert tc.counts() == {"train": 60, "dev": 30, "test": 10}
    # the split is a shuffle, not the first 60 sentences
    assert splits != [0] * 60 + [1] * 30 + [2] * 10
    # same seed -> same split; another seed -> another split with the same sizes
    assert sentence_splits(load_task(cfg)) == splits
    other = sentence_splits(load_task({**cfg, "split": {**cfg["split"], "seed": 4}}))
    assert other != splits and Counter(other) == Counter(splits)


def test_single_file_default_split_is_80_10_10_seed_0(tmp_path: Path) -> None:
    path = one_word_corpus(tmp_path / "all.conllu", 100)
    tc = load_task({"name": "upos", "file": str(path)})
    assert tc.counts() == {"train": 80, "dev": 10, "test": 10}
    explicit = load_task({"name": "upos", "file": str(path),
                          "split": {"train": 0.8, "dev": 0.1, "test": 0.1, "seed": 0}})
    assert sentence_splits(tc) == sentence_splits(explicit)


def test_split_ratios_are_normalised_and_missing_splits_are_empty(tmp_path: Path) -> None:
    path = one_word_corpus(tmp_path / "all.conllu", 10)
    tc = load_task({"name": "upos", "file": str(path), "split": {"train": 3, "test": 1}})
    assert Counter(sentence_splits(tc)) == {0: 8, 2: 2}  # round(7.5) -> 8


@pytest.mark.parametrize("ratios", [{"train": -0.5, "dev": 1.0}, {"train": 0, "dev": 0, "test": 0}])
def test_bad_split_ratios_are_config_errors(tmp_path: Path, ratios: dict) -> None:
    path = one_word_corpus(tmp_path / "all.conllu", 10)
    with pytest.raises(ConfigError, match="task.split"):
        load_task({"name": "upos", "file": str(path), "split": ratios})


def test_empty_train_split_is_a_data_error(tmp_path: Path) -> None:
    path = one_word_corpus(tmp_path / "all.conllu", 10)
    with pytest.raises(DataError, match="no labelled training tokens"):
        load_task({"name": "upos", "file": str(path), "split": {"dev": 1.0}})


def test_unknown_split_key_in_files_is_a_config_error(ud_train: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_task({"name": "upos", "files": {"train": str(ud_train), "valid": str(ud_train)}})
    assert "unknown split(s) ['valid']" in str(err.value)


def test_unknown_split_key_in_ratios_is_a_config_error(tmp_path: Path) -> None:
    """A typo like `valid` for `dev` in task.split must not silently put every sentence in train."""
    path = one_word_corpus(tmp_path / "all.conllu", 10)
    with pytest.raises(ConfigError, match="valid"):
        load_task({"name": "upos", "file": str(path), "split": {"train": 0.8, "valid": 0.2}})


def test_files_without_train_is_a_config_error(ud_train: Path) -> None:
    with pytest.raises(ConfigError, match="'train' file is required"):
        load_task({"name": "upos", "files": {"dev": str(ud_train)}})


def test_no_file_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="task.file"):
        load_task({"name": "upos"})


def test_missing_task_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_task({"name": "upos", "file": str(tmp_path / "absent.conllu")})


# ---------------------------------------------------------------------------- unseen labels


@pytest.fixture
def unseen_files(tmp_path: Path) -> tuple[Path, Path]:
    train = write_conllu(tmp_path / "train.conllu", [[("the", "DET"), ("dog", "NOUN"), ("ran", "VERB")]])
    # "Wow" (line 2) has a label never seen in train; so does "!" (line 5)
    dev = write_conllu(tmp_path / "dev.conllu", [[("Wow", "INTJ"), ("dog", "NOUN")], [("!", "PUNCT")]])
    return train, dev


def test_unknown_label_unk(unseen_files: tuple[Path, Path]) -> None:
    train, dev = unseen_files
    tc = load_task({"name": "upos", "files": {"train": str(train), "dev": str(dev)}})  # unk is default
    assert tc.classes == ["DET", "NOUN", "VERB", UNK]  # <unk> appended after the sorted train labels
    assert label_strings(tc) == ["DET", "NOUN", "VERB", UNK, "NOUN", UNK]
    assert tc.labels.tolist() == [0, 1, 2, 3, 1, 3]
    assert tc.info["unseen_labels"] == {"INTJ": 1, "PUNCT": 1}
    assert tc.info["skipped_tokens"] == 0
    assert tc.counts() == {"train": 3, "dev": 3, "test": 0}


def test_unseen_labels_are_warned_about(unseen_files: tuple[Path, Path], caplog: pytest.LogCaptureFixture) -> None:
    train, dev = unseen_files
    with caplog.at_level("WARNING", logger="neuroscope.tasks.base"):
        load_task({"name": "upos", "files": {"train": str(train), "dev": str(dev)}})
    assert "labels unseen in train, on 2 dev/test token(s), are <unk> (task.unknown_label=unk): " \
           "{'INTJ': 1, 'PUNCT': 1}" in caplog.text


def test_unknown_label_skip(unseen_files: tuple[Path, Path]) -> None:
    train, dev = unseen_files
    tc = load_task({"name": "upos", "files": {"train": str(train), "dev": str(dev)}, "unknown_label": "skip"})
    assert tc.classes == ["DET", "NOUN", "VERB"]
    assert tc.labels.tolist() == [0, 1, 2, -1, 1, -1]
    assert tc.info["unseen_labels"] == {"INTJ": 1, "PUNCT": 1}
    assert tc.info["skipped_tokens"] == 2
    assert tc.counts() == {"train": 3, "dev": 1, "test": 0}


def test_unknown_label_error_names_file_and_line(unseen_files: tuple[Path, Path]) -> None:
    train, dev = unseen_files
    with pytest.raises(DataError) as err:
        load_task({"name": "upos", "files": {"train": str(train), "dev": str(dev)}, "unknown_label": "error"})
    assert str(err.value).startswith(f"{dev.resolve()}:2: label 'INTJ' does not occur in the training split")


def test_unknown_label_bad_value(unseen_files: tuple[Path, Path]) -> None:
    train, _ = unseen_files
    with pytest.raises(ConfigError, match="task.unknown_label"):
        load_task({"name": "upos", "files": {"train": str(train)}, "unknown_label": "drop"})


def test_class_ids_come_from_train_labels_only(tmp_path: Path) -> None:
    train = write_conllu(tmp_path / "train.conllu", [[("b", "VERB"), ("a", "ADJ"), ("c", "NOUN")]])
    dev = write_conllu(tmp_path / "dev.conllu", [[("d", "ADV"), ("e", "VERB")]])
    tc = load_task({"name": "upos", "files": {"train": str(train), "dev": str(dev)}})
    assert tc.classes == ["ADJ", "NOUN", "VERB", UNK]  # ADV (dev only) gets no class of its own
    assert tc.labels.tolist() == [2, 0, 1, 3, 2]


# ------------------------------------------------------------------------------- control task


def test_control_labels_known_answers() -> None:
    train = np.array([True, True, True, False, False])
    words = ["a", "b", "a", "c", "a"]
    # one train label: every labelled word gets it; skipped tokens stay skipped, even of a labelled type
    assert control_labels(words, ["X", "X", None, "Z", "Y"], train, seed=0) == ["X", "X", None, "X", "X"]
    # labels come only from train tokens ("Z" occurs only outside train)
    out = control_labels(words, ["X", "Y", "X", "Z", "Z"], train, seed=5)
    assert set(out) <= {"X", "Y"}
    assert out[0] == out[2] == out[4]


@pytest.fixture
def many_types(tmp_path: Path) -> Path:
    """60 sentences over 150 word types with random UPOS (fixed generator): a corpus for control tasks."""
    rng = random.Random(1234)
    tags = ["ADJ", "DET", "NOUN", "VERB", "ADP"]
    sents = [
        [(f"w{rng.randrange(150)}", rng.choice(tags)) for _ in range(rng.randint(3, 9))] for _ in range(60)
    ]
    return write_conllu(tmp_path / "many.conllu", sents)


def control_cfg(path: Path, **extra) -> dict:
    return {"name": "upos", "file": str(path), "split": {"train": 0.7, "dev": 0.15, "test": 0.15, "seed": 2},
            "control": True, **extra}


def test_control_task_one_label_per_word_type(many_types: Path) -> None:
    real = load_task({**control_cfg(many_types), "control": False})
    ctl = load_task(control_cfg(many_types, control_seed=7))
    assert ctl.name == "upos_control" and real.name == "upos"
    words = [w for s in ctl.words for w in s]
    per_type: dict[str, set[str | None]] = {}
    for w, lab in zip(words, label_strings(ctl), strict=True):
        per_type.setdefault(w, set()).add(lab)
    assert all(len(labs) == 1 for labs in per_type.values())
    assert len(per_type) > 100
    # labels only from the real task's train label set; no <unk> needed
    assert set(ctl.classes) <= set(real.classes)
    assert UNK not in ctl.classes and (ctl.labels >= 0).all()
    # same sentences and splits as the real task; the labels differ
    assert ctl.words == real.words and (ctl.split == real.split).all()
    assert label_strings(ctl) != label_strings(real)


def test_control_task_is_reproducible_and_seed_dependent(many_types: Path) -> None:
    a = load_task(control_cfg(many_types, control_seed=7))
    b = load_task(control_cfg(many_types, control_seed=7))
    c = load_task(control_cfg(many_types, control_seed=8))
    assert label_strings(a) == label_strings(b)
    assert label_strings(a) != label_strings(c)
    default = load_task(control_cfg(many_types))
    assert label_strings(default) == label_strings(load_task(control_cfg(many_types, control_seed=0)))


def test_control_task_keeps_skipped_tokens_skipped(many_types: Path) -> None:
    cfg = control_cfg(many_types, name="suffix", params={"k": 1, "min_length": 3})
    real = load_task({**cfg, "control": False})
    ctl = load_task(cfg)
    skipped = [len(w) < 3 for s in real.words for w in s]  # w0..w9 are two characters long
    assert any(skipped) and not all(skipped)
    assert ((real.labels < 0).tolist()) == skipped
    assert ((ctl.labels < 0).tolist()) == skipped
    assert ctl.info["skipped_tokens"] == sum(skipped)


# --------------------------------------------------------------------------------- misc


def test_task_returning_wrong_number_of_labels_is_a_data_error(ud_train: Path) -> None:
    @task("_test_too_few_labels")
    def too_few(sentence):
        return ["X"] * (len(sentence) - 1)

    try:
        with pytest.raises(DataError) as err:
            load_train_only(ud_train, "_test_too_few_labels")
        assert str(err.value) == f"{ud_train.resolve()}:2: task '_test_too_few_labels' gave 3 labels for 4 words"
    finally:
        TASKS.unregister("_test_too_few_labels")


def test_corpus_names_resolve_via_corpus_file() -> None:
    dev = corpus_file("ud_ewt:dev")
    assert dev.relpath == "ud/en_ewt-ud-dev.conllu"
    assert dev.url == "https://raw.githubusercontent.com/UniversalDependencies/UD_English-EWT/master/en_ewt-ud-dev.conllu"
    assert dev.sha256 == "531a54ff90d6ab12201c5a50c3e78e6ddac4de69abc4bce5d275d3cd29efe2b6"
    assert corpus_file("ud_ewt:train").relpath == "ud/en_ewt-ud-train.conllu"
    assert corpus_file("multi30k:val.en").relpath == "multi30k/val.en.gz"
    # a known relpath keeps its upstream URL; anything else is a plain local path
    assert corpus_file("ud/en_ewt-ud-dev.conllu") == dev
    assert corpus_file("my/own.conllu") == CorpusFile("my/own.conllu")
    assert corpus_file("ud_ewt:nope") == CorpusFile("ud_ewt:nope")
    assert corpus_file("/abs/ud_ewt:dev") == CorpusFile("/abs/ud_ewt:dev")
    assert set(CORPORA["ud_ewt"]) == set(SPLITS)


def test_load_task_by_corpus_name_under_data_root(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "ud").mkdir(parents=True)
    local = write_conllu(data / "ud" / "en_ewt-ud-dev.conllu", UD_SENTS)
    tc = load_task({"name": "upos", "files": {"train": "ud_ewt:dev"}}, root=str(data), download=False)
    assert tc.sources == [{"path": str(local), "sha256": hashlib.sha256(local.read_bytes()).hexdigest()}]
    assert tc.words == [[w[0] for w in s] for s in UD_SENTS]


# ------------------------------------------------------------------------------- real data


def _real_ud_dev() -> Path:
    import os

    base = Path(os.environ["NEUROSCOPE_DATA"]) if os.environ.get("NEUROSCOPE_DATA") else REPO.parent / "shared" / "data"
    return base / "ud" / "en_ewt-ud-dev.conllu"


REAL_UD_DEV = _real_ud_dev()  # computed at import, before the autouse fixture unsets NEUROSCOPE_DATA


@pytest.mark.skipif(not REAL_UD_DEV.exists(), reason=f"{REAL_UD_DEV} not present")
def test_real_ud_ewt_dev_upos() -> None:
    tc = load_task({"name": "upos", "files": {"train": str(REAL_UD_DEV)}}, download=False)
    assert tc.info["sentences"] == 2001
    assert len(tc.labels) == 25147 and (tc.labels >= 0).all()
    assert tc.classes == ["ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART",
                          "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X"]
    # the default 80/10/10 split of the same file keeps every token and sentence
    split = load_task({"name": "upos", "file": str(REAL_UD_DEV)}, download=False)
    assert split.info["sentences"] == 2001 and sum(split.counts().values()) == 25147


# ------------------------------------------------------------------ files per split: both override forms


def _compose_task(extra: list[str]) -> dict:
    """The task node of `analyze.yaml` composed by Hydra with `extra` overrides, as a plain dict."""
    from neuroscope.config import to_dict
    from tests.test_entrypoints import compose_analyze

    return to_dict(compose_analyze(extra).task)


@pytest.mark.parametrize("form", ["one key", "per split"])
def test_files_override_forms_both_compose_and_load(tmp_path: Path, form: str) -> None:
    train = one_word_corpus(tmp_path / "train.conllu", 20)
    test = one_word_corpus(tmp_path / "test.conllu", 4)
    extra = ([f"task.files={{train: {train}, test: {test}}}"] if form == "one key"
             else [f"task.files.train={train}", f"task.files.test={test}"])
    task_cfg = _compose_task(extra)
    assert task_cfg["files"] == {"train": str(train), "dev": None, "test": str(test)}
    assert task_cfg["file"] == "ud_ewt:dev"  # the default stays, unused: files win
    tc = load_task(task_cfg)  # the default corpus is never read (no data root in this test)
    assert [s["path"] for s in tc.sources] == [str(train.resolve()), str(test.resolve())]
    assert tc.counts() == {"train": 18, "dev": 2, "test": 4}


def test_all_null_files_mean_not_set(tmp_path: Path) -> None:
    path = one_word_corpus(tmp_path / "all.conllu", 10)
    task_cfg = _compose_task([f"task.file={path}"])
    assert task_cfg["files"] == {"train": None, "dev": None, "test": None}
    assert load_task(task_cfg).counts() == {"train": 8, "dev": 1, "test": 1}


def test_neurox_files_per_split_override(tmp_path: Path) -> None:
    text = write_text(tmp_path / "s.txt", [f"w{i} x{i}" for i in range(10)])
    labels = write_text(tmp_path / "s.labels", ["A B"] * 10)
    task_cfg = _compose_task(["task=neurox", f"task.files.train={{sentences: {text}, labels: {labels}}}",
                              f"task.files.test={{sentences: {text}, labels: {labels}}}"])
    tc = load_task(task_cfg)
    assert tc.counts() == {"train": 18, "dev": 2, "test": 20} and tc.classes == ["A", "B"]


# ------------------------------------------------------------------------- dev taken from train


def test_train_and_test_without_dev_take_a_seeded_tenth_of_train(tmp_path: Path) -> None:
    train = one_word_corpus(tmp_path / "train.conllu", 30)
    test = one_word_corpus(tmp_path / "test.conllu", 5)
    cfg = {"name": "upos", "files": {"train": str(train), "test": str(test)}, "split": {"seed": 3}}
    tc = load_task(cfg)
    assert tc.info["dev_from_train"] == {"sentences": 3, "ratio": 0.1, "seed": 3}
    splits = sentence_splits(tc)
    assert Counter(splits) == {0: 27, 1: 3, 2: 5}
    assert splits[30:] == [2] * 5  # test stays test; dev sentences come from the train file only
    assert sentence_splits(load_task(cfg)) == splits  # seeded
    other = sentence_splits(load_task({**cfg, "split": {"seed": 4}}))
    assert other != splits and Counter(other) == Counter(splits)
    assert tc.words == [[f"w{i}"] for i in range(30)] + [[f"w{i}"] for i in range(5)]  # file order kept


def test_train_only_and_given_dev_take_nothing_from_train(tmp_path: Path) -> None:
    train = one_word_corpus(tmp_path / "train.conllu", 10)
    dev = one_word_corpus(tmp_path / "dev.conllu", 2)
    only = load_task({"name": "upos", "files": {"train": str(train)}})
    given = load_task({"name": "upos", "files": {"train": str(train), "dev": str(dev), "test": str(dev)}})
    assert "dev_from_train" not in only.info and "dev_from_train" not in given.info
    assert only.counts()["dev"] == 0 and given.counts()["dev"] == 2


def test_one_train_sentence_cannot_give_a_dev_split(tmp_path: Path) -> None:
    train = write_conllu(tmp_path / "train.conllu", [[("a", "DET"), ("cat", "NOUN")]])
    with pytest.raises(DataError) as err:
        load_task({"name": "upos", "files": {"train": str(train), "test": str(train)}})
    assert str(err.value).startswith(f"{train.resolve()}: 1 train sentence(s), too few")
    assert "task.files.dev" in str(err.value)


# ------------------------------------------------------------------- single class, rare classes


def test_single_train_class_fails_naming_task_and_label(tmp_path: Path) -> None:
    path = write_conllu(tmp_path / "nouns.conllu", [[("cat", "NOUN"), ("dog", "NOUN")]] * 5)
    with pytest.raises(DataError) as err:
        load_task({"name": "upos", "file": str(path)})
    assert str(err.value) == ("task 'upos' (task.params={}): every labelled train token has the label 'NOUN'; "
                              "a probe needs at least 2 classes.")


def test_morph_feature_nobody_has_lists_the_features_present(ud_train: Path) -> None:
    with pytest.raises(DataError) as err:
        load_train_only(ud_train, "morph", params={"feature": "Nope"})
    msg = str(err.value)
    assert msg.startswith("task 'morph' (task.params={'feature': 'Nope'}): every labelled train token has the "
                          "label '_none'")
    assert msg.endswith("No token has the feature 'Nope'; features present: Definite, Mood, Number, Person, "
                        "Poss, PronType, Tense, VerbForm (set task.params.feature=...).")
    with pytest.raises(DataError, match="no labelled training tokens.*No token has the feature 'Nope'"):
        load_train_only(ud_train, "morph", params={"feature": "Nope", "missing": "skip"})


def test_morph_feature_with_one_value_says_so(ud_train: Path) -> None:
    with pytest.raises(DataError, match="The 1 token\\(s\\) with Poss all share one value"):
        load_train_only(ud_train, "morph", params={"feature": "Poss", "missing": "skip"})


def test_rare_classes_are_listed_and_warned_about_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sents = [[("cat", "NOUN"), ("runs", "VERB")]] * 6 + [[("wow", "INTJ")]] * 2
    path = write_conllu(tmp_path / "rare.conllu", sents)
    with caplog.at_level("WARNING", logger="neuroscope.tasks.base"):
        tc = load_task({"name": "upos", "files": {"train": str(path)}})
        load_task({"name": "upos", "files": {"train": str(path)}, "control": True})  # controls stay quiet
    assert tc.info["rare_classes"] == {"INTJ": 2}
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["task 'upos': 1 class(es) have fewer than 5 train tokens (probe results on them are "
                        "noisy): {'INTJ': 2}"]


def test_control_task_of_a_two_class_task_is_not_checked_for_classes(tmp_path: Path) -> None:
    path = write_conllu(tmp_path / "two.conllu", [[("cat", "NOUN"), ("runs", "VERB")]] * 5)
    ctl = load_task({"name": "upos", "files": {"train": str(path)}, "control": True, "control_seed": 1})
    assert "rare_classes" not in ctl.info and ctl.name == "upos_control"
