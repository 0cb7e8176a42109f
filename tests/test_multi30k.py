"""Multi30k data: tokenization, vocabularies (words, BPE, unigram), bucketed batches, the real files."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest
import torch

from neuroscope.data.multi30k import BucketBatchSampler, Multi30kDataModule, collate, load_split
from neuroscope.data.vocab import BOS, EOS, PAD, SPECIALS, UNK, Vocab, detokenize, tokenize
from neuroscope.errors import ConfigError, DataError
from tests.conftest import SHARED_DATA

MULTI30K = SHARED_DATA / "multi30k"
needs_multi30k = pytest.mark.skipif(not (MULTI30K / "train.en.gz").exists(),
                                    reason=f"Multi30k mirror not found at {MULTI30K}")

# A toy en→de corpus: a word-by-word translation with German adjective endings, learnable in seconds.
_EN = {"det": ["A", "The"], "adj": ["red", "small", "old", "happy", "tall"],
       "noun": ["dog", "man", "woman", "child", "cat", "bird"], "verb": ["runs", "sleeps", "sits", "jumps"],
       "place": ["park", "garden", "house", "street"]}
_DE = {"A": "Ein", "The": "Der", "red": "rote", "small": "kleine", "old": "alte", "happy": "frohe",
       "tall": "große", "dog": "Hund", "man": "Mann", "woman": "Frau", "child": "Kind", "cat": "Katze",
       "bird": "Vogel", "runs": "läuft", "sleeps": "schläft", "sits": "sitzt", "jumps": "springt",
       "park": "Park", "garden": "Garten", "house": "Haus", "street": "Straße"}


def toy_pair(rng: random.Random) -> tuple[str, str]:
    """One English caption and its German translation."""
    w = {k: rng.choice(v) for k, v in _EN.items()}
    en = f"{w['det']} {w['adj']} {w['noun']} {w['verb']} in the {w['place']}."
    de = f"{_DE[w['det']]} {_DE[w['adj']]} {_DE[w['noun']]} {_DE[w['verb']]} im {_DE[w['place']]}."
    return en, de


def tiny_multi30k(root: Path, sizes: tuple[int, int, int] = (240, 24, 24), seed: int = 0) -> Path:
    """A data root holding toy `multi30k/{train,val,test_2016_flickr}.{en,de}.gz` files."""
    rng = random.Random(seed)
    folder = root / "multi30k"
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in zip(("train", "val", "test_2016_flickr"), sizes, strict=True):
        pairs = [toy_pair(rng) for _ in range(n)]
        for lang, side in (("en", 0), ("de", 1)):
            with gzip.open(folder / f"{split}.{lang}.gz", "wt", encoding="utf-8") as f:
                f.write("\n".join(p[side] for p in pairs) + "\n")
    return root


@pytest.fixture()
def tiny_root(tmp_path: Path) -> Path:
    return tiny_multi30k(tmp_path / "data")


@pytest.mark.parametrize("line, words", [
    ("A man, in a T-shirt.", ["A", "man", ",", "in", "a", "T-shirt", "."]),
    ('He says "hi" (twice)...', ["He", "says", '"', "hi", '"', "(", "twice", ")", ".", ".", "."]),
    ("2.5 m tall, isn't it?", ["2.5", "m", "tall", ",", "isn't", "it", "?"]),
    ("Obst- und Gemüsehändler „Mongolian BBQ“ J.P. Morgan", ["Obst-", "und", "Gemüsehändler", "„",
                                                            "Mongolian", "BBQ", "“", "J.P.", "Morgan"]),
])
def test_tokenize_splits_punctuation_and_detokenize_restores_the_line(line: str, words: list[str]) -> None:
    assert tokenize(line) == words
    assert detokenize(words) == line
    assert tokenize(line, lowercase=True) == [w.lower() for w in words]


def test_word_vocab_specials_min_freq_and_unknowns() -> None:
    vocab = Vocab.build([["a", "b", "a"], ["a", "c", "b"], ["d"]], min_freq=2)
    assert vocab.itos == [*SPECIALS, "a", "b"]  # most frequent first; c, d too rare
    assert (UNK, PAD, BOS, EOS) == (0, 1, 2, 3)
    assert vocab.encode(["a", "zzz", "b"]) == ([4, UNK, 5], [0, 1, 2])
    assert vocab.decode([BOS, 4, UNK, 5, EOS, 4]) == ["a", "<unk>", "b"]  # stops at <eos>
    assert len(Vocab.build([["a", "b", "a", "b", "c", "c"]], min_freq=1, max_size=6)) == 6
    lower = Vocab.build([["The", "the"]], min_freq=2, lowercase=True)
    assert lower.encode(["THE"])[0] == [4]
    assert Vocab.from_state(lower.state()) == lower and Vocab.from_state(lower.state()) != vocab


@pytest.mark.parametrize("kind", ["bpe", "unigram"])
def test_subword_vocab_maps_pieces_to_words_and_back(kind: str) -> None:
    rng = random.Random(0)
    sentences = [tokenize(toy_pair(rng)[0]) for _ in range(200)]
    vocab = Vocab.build(sentences, min_freq=1, subword=kind, subword_vocab=60)
    assert vocab.itos[:4] == list(SPECIALS) and vocab.subword == kind
    words = ["The", "reddish", "dogs", "sleep", "."]
    pieces, word_of = vocab.pieces(words)
    assert len(pieces) > len(words) and sorted(set(word_of)) == [0, 1, 2, 3, 4]
    assert word_of == sorted(word_of)  # pieces in word order
    ids, _ = vocab.encode(words)
    assert vocab.decode(ids) == words
    assert sorted(set(vocab.pieces(["dog", "", "cat"])[1])) == [0, 1, 2]  # a word without pieces reads <unk>
    again = Vocab.from_state(vocab.state())
    assert again.encode(words) == vocab.encode(words)
    with pytest.raises(ValueError, match="subword"):
        Vocab.build(sentences, subword="wordpiece")


def test_bucket_sampler_covers_every_sentence_once_per_epoch_in_length_buckets() -> None:
    rng = random.Random(1)
    lengths = [rng.randint(1, 30) for _ in range(203)]
    sampler = BucketBatchSampler(lengths, batch_size=16, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 13
    assert sorted(i for b in batches for i in b) == list(range(203))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread <= max(lengths) - min(lengths)  # batches are consecutive runs of the sorted lengths
    assert list(sampler) == batches  # same epoch, same order
    sampler.set_epoch(1)
    assert list(sampler) != batches
    assert list(BucketBatchSampler(lengths, 16, seed=4)) != batches
    fixed = list(BucketBatchSampler(lengths, 16, shuffle=False))
    assert [lengths[b[0]] for b in fixed] == sorted(lengths[b[0]] for b in fixed)


def test_collate_pads_and_adds_specials() -> None:
    batch = collate([{"index": 0, "src": [5, 6, 7], "tgt": [8], "ref": "x"},
                     {"index": 1, "src": [5], "tgt": [9, 10], "ref": "y"}])
    assert batch["src"].tolist() == [[5, 6, 7, EOS], [5, EOS, PAD, PAD]] and batch["src_len"].tolist() == [4, 2]
    assert batch["tgt_in"].tolist() == [[BOS, 8, PAD], [BOS, 9, 10]]
    assert batch["tgt_out"].tolist() == [[8, EOS, PAD], [9, 10, EOS]] and batch["ref"] == ["x", "y"]


def test_datamodule_on_a_tiny_root(tiny_root: Path) -> None:
    dm = Multi30kDataModule(root=str(tiny_root), download=False, min_freq=1, batch_size=32, seed=0)
    src, tgt = dm.build_vocab()
    assert "dog" in src.stoi and "Hund" in tgt.stoi and "Hund" not in src.stoi
    dm.setup()
    assert {k: len(v) for k, v in dm.examples.items()} == {"train": 240, "val": 24, "test": 24}
    batch = next(iter(dm.train_dataloader()))
    assert batch["src"].shape[0] == 32 and batch["tgt_in"].shape == batch["tgt_out"].shape
    assert len(dm.val_dataloader()) == 1
    ref = dm.raw["val"]["de"][0]
    assert dm.examples["val"][0]["ref"] == ref
    lm = Multi30kDataModule.from_config({"root": str(tiny_root), "download": False, "unknown_key": 1},
                                        tgt_lang=None, seed=0)
    lm.setup()
    assert lm.tgt_vocab is None and set(lm.examples["train"][0]) == {"index", "tgt"}


def test_datamodule_errors_name_the_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEUROSCOPE_DATA", raising=False)  # only tmp_path is a data root here
    monkeypatch.setattr("neuroscope.data.root.DEFAULT_CACHE", tmp_path / "no-cache")
    with pytest.raises(DataError, match="multi30k/train.en.gz"):
        Multi30kDataModule(root=str(tmp_path), download=False).build_vocab()
    with pytest.raises(ConfigError, match="no file 'train.fr'"):
        load_split("train", "fr", str(tmp_path), download=False)
    with pytest.raises(ConfigError, match="batch_size"):
        Multi30kDataModule(batch_size=0)
    root = tiny_multi30k(tmp_path / "r")
    with gzip.open(root / "multi30k" / "val.de.gz", "wt") as f:
        f.write("nur eine Zeile\n")
    dm = Multi30kDataModule(root=str(root), download=False, min_freq=1)
    with pytest.raises(DataError, match="sides differ"):
        dm.setup()


@needs_multi30k
def test_real_multi30k_sizes_and_vocabularies() -> None:
    dm = Multi30kDataModule(root=str(SHARED_DATA), download=False)
    dm.setup()
    assert {k: len(v) for k, v in dm.examples.items()} == {"train": 29000, "val": 1014, "test": 1000}
    assert (len(dm.src_vocab), len(dm.tgt_vocab)) == (6275, 8017)  # cased words seen twice in train
    unk = torch.tensor([t == UNK for ex in dm.examples["test"] for t in ex["tgt"]]).float().mean()
    assert 0.03 < float(unk) < 0.05  # German test words unseen (twice) in train


@needs_multi30k
def test_detokenized_references_score_bleu_100() -> None:
    """Our tokenize → detokenize is lossless for sacreBLEU (13a) on the real references."""
    from neuroscope.models.nmt import corpus_bleu

    for lang in ("de", "en"):
        refs = load_split("test_2016_flickr", lang, str(SHARED_DATA), download=False)
        assert corpus_bleu(refs, refs) == pytest.approx(100.0)
        assert corpus_bleu([detokenize(tokenize(r)) for r in refs], refs) == pytest.approx(100.0)
