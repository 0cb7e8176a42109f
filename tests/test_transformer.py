"""Transformer neuron sites: known subword aggregation, windows, batch invariance, other architectures."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from neuroscope.errors import ConfigError
from neuroscope.models.transformer import TransformerNeurons, _aggregate


def test_aggregate_first_last_mean_on_known_positions() -> None:
    vectors = torch.arange(12.0).reshape(6, 2)  # [subwords, units]
    word = torch.tensor([0, 1, 1, 1, 2, 2])  # word 1 has three subwords, word 2 two
    assert _aggregate(vectors, word, 3, "first").tolist() == [[0, 1], [2, 3], [8, 9]]
    assert _aggregate(vectors, word, 3, "last").tolist() == [[0, 1], [6, 7], [10, 11]]
    assert _aggregate(vectors, word, 3, "mean").tolist() == [[0, 1], [4, 5], [9, 10]]


def _hidden(model_dir: Path, words: list[str]) -> tuple[tuple[torch.Tensor, ...], list[int | None]]:
    src = TransformerNeurons(str(model_dir))
    enc = src.tokenizer([words], is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
        out = src.model(**enc, output_hidden_states=True)
    return out.hidden_states, enc.word_ids(0)


@pytest.mark.parametrize("how", ["first", "last", "mean"])
def test_word_vectors_follow_the_tokenization(tiny_bert: Path, how: str) -> None:
    words = ["hello", "unbelievably", "sleeps"]
    hidden, word_ids = _hidden(tiny_bert, words)
    assert word_ids == [None, 0, 1, 1, 1, 2, 2, None]  # [CLS] hello un ##believ ##ably sleep ##s [SEP]
    spans = {0: [1], 1: [2, 3, 4], 2: [5, 6]}
    pick = {"first": lambda s: hidden_i[0, s[0]], "last": lambda s: hidden_i[0, s[-1]],
            "mean": lambda s: hidden_i[0, s].mean(0)}[how]
    got = TransformerNeurons(str(tiny_bert), aggregation=how).extract([words])
    assert list(got) == ["embeddings", "layer1", "layer2"]
    for i, site in enumerate(got):
        hidden_i = hidden[i]
        want = torch.stack([pick(spans[w]) for w in range(3)])
        torch.testing.assert_close(got[site], want, rtol=1e-5, atol=1e-5)


def test_batch_extraction_equals_one_by_one(tiny_bert: Path) -> None:
    src = TransformerNeurons(str(tiny_bert))
    sents = [["the", "cats", "sleep", "."], ["a", "dog"], ["hello", "world", ",", "unbelievably", "."]]
    batch = src.extract(sents)
    alone = [src.extract([s]) for s in sents]
    for site in src.sites:
        torch.testing.assert_close(batch[site], torch.cat([a[site] for a in alone]), rtol=1e-4, atol=1e-5)


def test_long_sentences_are_windowed_not_truncated(tiny_bert: Path) -> None:
    src = TransformerNeurons(str(tiny_bert), max_length=8)  # 6 subwords per window
    words = ["the", "cats", "sleep", "."] * 5  # 20 words, 20 subwords
    got = src.extract([words, ["a", "dog"]])
    assert got["layer2"].shape == (22, 16)
    assert src.windowed_sentences == 1
    first_window = src.extract([words[:6]])
    torch.testing.assert_close(got["layer2"][:6], first_window["layer2"], rtol=1e-4, atol=1e-5)


def test_words_without_subwords_still_get_a_row(tiny_bert: Path) -> None:
    src = TransformerNeurons(str(tiny_bert))
    got = src.extract([["hello", "\u200b", "world"]])
    assert got["layer1"].shape[0] == 3 and src.replaced_words == 1


def test_lengths_counts_serve_the_batches_so_each_sentence_is_tokenized_twice(tiny_bert: Path) -> None:
    """A store shard calls `lengths` on its sentences, then extracts them in batches: the subword
    counts of `lengths` cut the windows (one tokenizer pass fewer), with the same vectors, windows
    and unk replacements as an extraction that never called `lengths`."""
    sents = [["the", "cats", "sleep", "."] * 5, ["hello", "\u200b", "world"], ["a", "dog"]]
    plain = TransformerNeurons(str(tiny_bert), max_length=8)
    want = plain.extract(sents)
    src = TransformerNeurons(str(tiny_bert), max_length=8)
    assert src.lengths(sents) == plain.lengths(sents)
    seen: list[list[list[str]]] = []
    tokenize = src.tokenizer.__class__.__call__

    def counting(tok, text, *args, **kwargs):  # noqa: ANN001, ANN202
        seen.append(text)
        return tokenize(tok, text, *args, **kwargs)

    src.tokenizer.__class__.__call__ = counting
    try:
        got = src.extract(sents)
    finally:
        src.tokenizer.__class__.__call__ = tokenize
    assert len(seen) == 1  # the padded forward call only: the windows came from `lengths`' counts
    for site in want:
        torch.testing.assert_close(got[site], want[site], rtol=0, atol=0)
    assert (src.windowed_sentences, src.replaced_words) == (plain.windowed_sentences, plain.replaced_words) == (1, 1)


def test_layer_selection_and_bad_settings(tiny_bert: Path) -> None:
    src = TransformerNeurons(str(tiny_bert), layers=[2, 0])
    assert src.sites == ["embeddings", "layer2"] and src.units == {"embeddings": 16, "layer2": 16}
    with pytest.raises(ConfigError, match=r"model.layers: layer 5 is out of range.*0 \(embeddings\) to 2"):
        TransformerNeurons(str(tiny_bert), layers=[5])
    with pytest.raises(ConfigError, match="model.aggregation"):
        TransformerNeurons(str(tiny_bert), aggregation="max")
    with pytest.raises(ConfigError, match="cannot load"):
        TransformerNeurons(str(tiny_bert / "missing"))


def _other_architecture(kind: str, tiny_bert: Path, folder: Path) -> TransformerNeurons:
    """A tiny random GPT-2 (right padding, causal) or XLNet (left padding) with a local tokenizer."""
    from transformers import AutoTokenizer, GPT2Config, GPT2Model, XLNetConfig, XLNetModel

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    torch.manual_seed(0)
    if kind == "gpt2":
        model = GPT2Model(GPT2Config(vocab_size=tok.vocab_size, n_embd=16, n_layer=2, n_head=2, n_positions=64))
    else:
        model = XLNetModel(XLNetConfig(vocab_size=tok.vocab_size, d_model=16, n_layer=2, n_head=2, d_inner=32))
        tok.padding_side = "left"
    return TransformerNeurons(str(folder), model=model, tokenizer=tok)


@pytest.mark.parametrize("kind", ["gpt2", "xlnet"])
def test_other_architectures_batch_invariant(kind: str, tiny_bert: Path, tmp_path: Path) -> None:
    src = _other_architecture(kind, tiny_bert, tmp_path)
    assert src.sites == ["embeddings", "layer1", "layer2"]
    sents = [["the", "cats", "sleep", "."], ["a", "dog"]]
    batch = src.extract(sents)
    alone = [src.extract([s]) for s in sents]
    for site in src.sites:
        assert batch[site].shape == (6, 16)
        torch.testing.assert_close(batch[site], torch.cat([a[site] for a in alone]), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_minilm_sites_offline() -> None:
    from neuroscope.registry import MODELS

    src = MODELS.get("minilm")()
    assert src.sites == ["embeddings"] + [f"layer{i}" for i in range(1, 7)]
    assert sum(src.units.values()) == 2688
    out = src.extract([["The", "cats", "sleep", "."]])
    assert out["layer6"].shape == (4, 384) and torch.isfinite(out["layer6"]).all()
