"""Train/test leakage: the fixture grammar's sentences are distinct, a split of them shares no
sentence, and leaking the test sentences into train shows in the reported oracle accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from neuroscope.analysis import analyze
from neuroscope.data.readers import read_conllu
from neuroscope.tasks.base import SPLITS, load_task
from tests.conftest import REPO, tiny_conllu
from tests.fixture_corpus import WORDS, distinct_conllu


def split_sentences(cfg: dict) -> dict[str, list[tuple[str, ...]]]:
    """The sentences (as word tuples) of each split of the task `cfg`."""
    corpus = load_task(cfg, download=False)
    starts = np.cumsum([0] + [len(s) for s in corpus.sentences[:-1]])  # first token of each sentence
    out: dict[str, list[tuple[str, ...]]] = {s: [] for s in SPLITS}
    for sent, start in zip(corpus.sentences, starts, strict=True):
        out[SPLITS[int(corpus.split[start])]].append(tuple(sent.words))
    return out


def test_fixture_sentences_are_distinct_and_well_formed(tmp_path: Path) -> None:
    sents = read_conllu(distinct_conllu(tmp_path / "g.conllu", 300))
    assert len({tuple(s.words) for s in sents}) == 300
    for s in sents:
        heads, rels, xpos = s.fields["head"], s.fields["deprel"], s.fields["xpos"]
        assert rels.count("root") == 1 and heads[rels.index("root")] == 0
        assert all(0 <= h <= len(s) for h in heads) and s.fields["upos"][-1] == "PUNCT"
        noun, verb = xpos[heads[0] - 1], xpos[heads[heads[0] - 1] - 1]  # det -> noun -> verb
        assert (noun, verb) in {("NN", "VBZ"), ("NNS", "VBP")}  # number agreement


def test_fixture_words_are_in_the_tiny_bert_vocabulary(tiny_bert: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    ids = tok(WORDS, is_split_into_words=True, add_special_tokens=False)["input_ids"]
    assert tok.unk_token_id not in ids
    assert tok.tokenize("sleeps jumps cats") == ["sleep", "##s", "jump", "##s", "cats"]  # old ids kept


@pytest.mark.parametrize("files", [False, True])
def test_split_sentences_are_disjoint(tmp_path: Path, files: bool) -> None:
    """By ratios over one file, and by files (dev taken from train): no sentence in two splits."""
    if files:
        cfg = {"name": "upos", "files": {"train": str(distinct_conllu(tmp_path / "train.conllu", 40, seed=1)),
                                         "test": str(distinct_conllu(tmp_path / "test.conllu", 10, seed=2,
                                                                     half="b"))}}
    else:
        cfg = {"name": "upos", "file": str(distinct_conllu(tmp_path / "g.conllu", 50)),
               "split": {"train": 0.6, "dev": 0.2, "test": 0.2, "seed": 3}}
    parts = split_sentences(cfg)
    assert all(parts.values()) and sum(len(p) for p in parts.values()) == 50
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            assert not set(parts[a]) & set(parts[b]), (a, b)


def test_the_duplicated_corpus_cannot_show_leakage(tmp_path: Path) -> None:
    """Why the distinct corpus exists: every split of TINY_CONLLU holds the train sentences."""
    parts = split_sentences({"name": "upos", "file": str(tiny_conllu(tmp_path / "t.conllu"))})
    assert set(parts["test"]) <= set(parts["train"])


def test_leaking_test_sentences_into_train_raises_oracle_accuracy(tmp_path: Path, tiny_bert: Path) -> None:
    """Control task (a random fixed label per word type): train and test use disjoint open-class
    words, so a clean split leaves most test labels unlearnable; with the test file also in train
    (task.files.train = train + test) the probe memorizes them, and the oracle's test accuracy rises."""
    train = distinct_conllu(tmp_path / "train.conllu", 60, seed=1, half="a")
    test = distinct_conllu(tmp_path / "test.conllu", 30, seed=2, half="b")
    leaked = tmp_path / "train_and_test.conllu"
    leaked.write_text(train.read_text() + test.read_text())
    train_words = {w.lower() for s in read_conllu(train) for w in s.words}
    test_words = [w.lower() for s in read_conllu(test) for w in s.words]
    assert np.mean([w not in train_words for w in test_words]) > 0.6  # mostly unseen when clean

    def oracle(train_file: Path, name: str) -> dict:
        overrides = [
            "model=transformer", f"model.path={tiny_bert}", f"task.files.train={train_file}",
            f"task.files.test={test}", "task.control=true", "logger=none", "report=none", "method=random",
            "evaluation.percents=[50]", "evaluation.random_draws=1", "evaluation.control=false",
            "evaluation.layer_probes=false", f"store.root={tmp_path / 'stores'}", f"output_dir={tmp_path / name}",
            "store.progress=false", "probe.selection.enabled=false", "probe.lambda1=0", "probe.lambda2=0",
            "probe.epochs=60", "probe.patience=60", "probe.batch_size=64", "probe.lr_decay=1",  # memorize
        ]
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
            res = analyze(compose(config_name="analyze", overrides=overrides))
        return res

    clean, leak = oracle(train, "clean"), oracle(leaked, "leaked")
    assert clean["split"]["test"] == leak["split"]["test"]  # the same test tokens
    assert leak["split"]["train"] > clean["split"]["train"]
    assert leak["oracle"]["accuracy"] > clean["oracle"]["accuracy"] + 0.2, (clean["oracle"], leak["oracle"])
