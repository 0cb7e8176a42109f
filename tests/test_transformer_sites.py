"""MLP units and attention outputs as transformer sites: known answers per architecture (BERT,
RoBERTa, GPT-2, XLNet), widths, order, padding invariance, defaults, errors, silencing, and a
store and an analyze.py run over them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from neuroscope.ablation.hooks import record, silence
from neuroscope.ablation.sites import hook_points
from neuroscope.errors import ConfigError
from neuroscope.models.transformer import (
    ARCHITECTURES,
    SiteMap,
    TransformerNeurons,
    register_architecture,
)

ARCHS = ["bert", "roberta", "gpt2", "xlnet"]
MLP_WIDTH = {"bert": 32, "roberta": 24, "gpt2": 64, "xlnet": 40}  # GPT-2: n_inner=None -> 4 x 16
WORDS = ["hello", "unbelievably", "sleeps"]  # [CLS] hello un ##believ ##ably sleep ##s [SEP]
SPANS = [[1], [2, 3, 4], [5, 6]]  # subword positions of each word
SENTS = [["the", "cats", "sleep", "."], ["a", "dog"], ["hello", "world", ",", "unbelievably", "."]]


def _model(kind: str, vocab: int) -> nn.Module:
    """A tiny random model (hidden 16, 2 layers, 2 heads) of one architecture."""
    from transformers import (
        BertConfig,
        BertModel,
        GPT2Config,
        GPT2Model,
        RobertaConfig,
        RobertaModel,
        XLNetConfig,
        XLNetModel,
    )

    torch.manual_seed(0)
    small = {"vocab_size": vocab, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2}
    if kind == "bert":
        return BertModel(BertConfig(**small, intermediate_size=32, max_position_embeddings=64))
    if kind == "roberta":  # pad id 0 like the tokenizer (RoBERTa's positions start after it)
        return RobertaModel(RobertaConfig(**small, intermediate_size=24, max_position_embeddings=66, pad_token_id=0))
    if kind == "gpt2":
        return GPT2Model(GPT2Config(vocab_size=vocab, n_embd=16, n_layer=2, n_head=2, n_positions=64))
    return XLNetModel(XLNetConfig(vocab_size=vocab, d_model=16, n_layer=2, n_head=2, d_inner=40))


def _source(kind: str, tiny_bert: Path, folder: Path, **kwargs: object) -> TransformerNeurons:
    """A tiny model of `kind` with the tiny WordPiece tokenizer (left padding for XLNet)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    if kind == "xlnet":
        tok.padding_side = "left"
    return TransformerNeurons(str(folder), model=_model(kind, tok.vocab_size), tokenizer=tok, **kwargs)


# --- hook-free references: the layer's own submodules applied to hidden state i-1 ----------------

def _reference(kind: str, model: nn.Module, enc: dict[str, torch.Tensor], i: int
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(attn [T, H], mlp [T, units], layer output [T, H]) of layer i (1-based) for one unpadded
    sentence, from hidden state i-1 and the layer's submodules; the layer output checks the chain."""
    hs = model(**enc, output_hidden_states=True).hidden_states
    h = hs[i - 1]  # [1, T, H]
    if kind in ("bert", "roberta"):
        layer = model.encoder.layer[i - 1]
        attn = layer.attention(h)[0]  # no padding, bidirectional: no mask needed
        mlp = layer.intermediate(attn)
        out = layer.output(mlp, attn)
    elif kind == "gpt2":
        block = model.h[i - 1]
        t = h.shape[1]
        causal = torch.full((t, t), float("-inf")).triu(1)[None, None]  # [1, 1, T, T] additive
        attn = block.attn(block.ln_1(h), attention_mask=causal)[0]  # before the residual add
        mid = h + attn
        mlp = block.mlp.act(block.mlp.c_fc(block.ln_2(mid)))
        out = mid + block.mlp.c_proj(mlp)
    else:
        layer = model.layer[i - 1]
        x = h.transpose(0, 1)  # [T, 1, H]: XLNet's layout
        t = x.shape[0]
        pos = model.relative_positional_encoding(t, t, bsz=1)
        seg = None  # as in XLNetModel: segments only with token_type_ids
        if "token_type_ids" in enc:
            tt = enc["token_type_ids"].transpose(0, 1)  # [T, 1]
            seg = nn.functional.one_hot((tt[:, None] != tt[None, :]).long(), num_classes=2).float()
        attn = layer.rel_attn(x, None, None, None, pos, seg)[0]
        mlp = layer.ff.activation_function(layer.ff.layer_1(attn))
        out = layer.ff(attn)
        attn, mlp, out = (a.transpose(0, 1) for a in (attn, mlp, out))
    return attn[0], mlp[0], out[0]


def _hooks(src: TransformerNeurons) -> dict[str, int]:
    """Forward hooks per module."""
    return {name: len(m._forward_hooks) for name, m in src.model.named_modules()}


def _words(vectors: torch.Tensor) -> torch.Tensor:
    """Mean over each word's subwords: [T, units] -> [3, units]."""
    return torch.stack([vectors[s].mean(0) for s in SPANS])


@pytest.mark.parametrize("kind", ARCHS)
def test_mlp_and_attn_words_equal_the_layer_submodules(kind: str, tiny_bert: Path, tmp_path: Path) -> None:
    src = _source(kind, tiny_bert, tmp_path, sites=["hidden", "attn", "mlp"], aggregation="mean")
    enc = src.tokenizer([WORDS], is_split_into_words=True, return_tensors="pt")
    assert enc.word_ids(0) == [None, 0, 1, 1, 1, 2, 2, None]
    got = src.extract([WORDS])
    with torch.inference_mode():
        hs = src.model(**enc, output_hidden_states=True).hidden_states
        for i in (1, 2):
            attn, mlp, out = _reference(kind, src.model, dict(enc), i)
            if not (kind == "gpt2" and i == 2):  # GPT-2's last hidden state is after the final ln_f
                torch.testing.assert_close(out, hs[i][0], rtol=1e-4, atol=1e-5)  # the reference chain is the layer
            torch.testing.assert_close(got[f"layer{i}.mlp"], _words(mlp), rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(got[f"layer{i}.attn"], _words(attn), rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(got[f"layer{i}"], _words(hs[i][0]), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ARCHS)
def test_widths_order_and_padding_invariance(kind: str, tiny_bert: Path, tmp_path: Path) -> None:
    src = _source(kind, tiny_bert, tmp_path, sites=["mlp", "hidden", "attn"])
    assert src.sites == ["embeddings", "layer1", "layer1.attn", "layer1.mlp", "layer2", "layer2.attn", "layer2.mlp"]
    assert src.units == {s: MLP_WIDTH[kind] if s.endswith(".mlp") else 16 for s in src.sites}
    batch = src.extract(SENTS)
    before = _hooks(src)  # transformers keeps output-capturing hooks of its own after a forward
    alone = [src.extract([s]) for s in SENTS]
    assert _hooks(src) == before  # ours exist only during extract
    for site in src.sites:
        assert batch[site].shape == (11, src.units[site])
        torch.testing.assert_close(batch[site], torch.cat([a[site] for a in alone]), rtol=1e-4, atol=1e-4)


def test_kind_and_layer_selection(tiny_bert: Path, tmp_path: Path) -> None:
    assert TransformerNeurons(str(tiny_bert), sites=["mlp"]).sites == ["layer1.mlp", "layer2.mlp"]
    assert TransformerNeurons(str(tiny_bert), sites="attn", layers=[2]).sites == ["layer2.attn"]
    src = TransformerNeurons(str(tiny_bert), sites=["hidden", "mlp"], layers=[0, 2])
    assert src.sites == ["embeddings", "layer2", "layer2.mlp"]
    assert {s: v.shape for s, v in src.extract([["a", "dog"]]).items()} == {
        "embeddings": (2, 16), "layer2": (2, 16), "layer2.mlp": (2, 32)}
    with pytest.raises(ConfigError, match="model.sites: .*no site"):
        TransformerNeurons(str(tiny_bert), sites=["mlp"], layers=[0])


def test_default_sites_units_and_fingerprint_are_unchanged(tiny_bert: Path) -> None:
    old = TransformerNeurons(str(tiny_bert))
    assert old.sites == ["embeddings", "layer1", "layer2"] and old.units == dict.fromkeys(old.sites, 16)
    same = TransformerNeurons(str(tiny_bert), sites=["hidden"])
    assert same.sites == old.sites and same.units == old.units and same.fingerprint() == old.fingerprint()
    assert set(old.fingerprint()) == {"path", "revision", "model_type", "files", "sites", "aggregation", "max_length"}
    mlp = TransformerNeurons(str(tiny_bert), sites=["hidden", "mlp"]).fingerprint()
    assert mlp["site_modules"] == {"mlp": "encoder.layer.{i}.intermediate"} and mlp["sites"][-1] == "layer2.mlp"


def test_config_node_reaches_the_source(tiny_bert: Path) -> None:
    from hydra import compose, initialize_config_dir

    from neuroscope.config import build, to_dict
    from neuroscope.registry import MODELS
    from tests.conftest import REPO

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        for name in ("minilm", "transformer", "bert_base_cased", "gpt2", "roberta_base", "xlnet_base_cased"):
            assert list(compose(config_name="analyze", overrides=[f"model={name}"]).model.sites) == ["hidden"]
        cfg = compose(config_name="analyze", overrides=["model=transformer", f"model.path={tiny_bert}",
                                                        "model.sites=[hidden,mlp]"])
    node = {k: v for k, v in to_dict(cfg.model).items() if k != "sae"}  # model.sae is the study's, not the source's
    assert build(MODELS, node, "model").sites[-2:] == ["layer2", "layer2.mlp"]


def test_bad_kinds_unknown_architectures_and_shared_modules(tiny_bert: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer, BertModel, DistilBertConfig, DistilBertModel

    with pytest.raises(ConfigError, match=r"model.sites: unknown site kind\(s\) \['ffn'\]; allowed: hidden, attn, mlp"):
        TransformerNeurons(str(tiny_bert), sites=["hidden", "ffn"])
    with pytest.raises(ConfigError, match="model.sites: unknown"):
        TransformerNeurons(str(tiny_bert), sites=[])
    tok = AutoTokenizer.from_pretrained(tiny_bert)
    distil = DistilBertModel(DistilBertConfig(vocab_size=tok.vocab_size, dim=16, n_layers=2, n_heads=2, hidden_dim=24))
    assert TransformerNeurons(str(tmp_path), model=distil, tokenizer=tok).sites[-1] == "layer2"  # hidden: any model
    with pytest.raises(ConfigError, match="model_type 'distilbert'.*register_architecture"):
        TransformerNeurons(str(tmp_path), model=distil, tokenizer=tok, sites=["mlp"])
    register_architecture("distilbert", SiteMap("transformer.layer", "ffn.activation", "ffn.lin1",
                                                "attention", "attention.out_lin"))
    try:  # a plugin's architecture
        src = TransformerNeurons(str(tmp_path), model=distil, tokenizer=tok, sites=["mlp", "attn"])
        assert src.units == {"layer1.attn": 16, "layer1.mlp": 24, "layer2.attn": 16, "layer2.mlp": 24}
        assert src.extract([["a", "dog"]])["layer2.mlp"].shape == (2, 24)
        with pytest.raises(ConfigError, match="registered already"):
            register_architecture("distilbert", SiteMap("x", "y", "z", "u", "v"))
    finally:
        del ARCHITECTURES["distilbert"]
    shared = BertModel.from_pretrained(tiny_bert)
    shared.encoder.layer[1].intermediate = shared.encoder.layer[0].intermediate
    with pytest.raises(ConfigError, match="layer2.mlp and layer1.mlp are the same module"):
        TransformerNeurons(str(tiny_bert), model=shared, sites=["mlp"])


def test_chunked_feed_forward_gives_the_same_units(tiny_bert: Path) -> None:
    from transformers import BertModel

    plain = TransformerNeurons(str(tiny_bert), sites=["mlp"])
    chunked = BertModel.from_pretrained(tiny_bert, chunk_size_feed_forward=1)  # intermediate runs per position
    got = TransformerNeurons(str(tiny_bert), model=chunked, sites=["mlp"]).extract(SENTS)
    for site, want in plain.extract(SENTS).items():
        torch.testing.assert_close(got[site], want, rtol=1e-5, atol=1e-6)


# --- ablation on the same modules ----------------------------------------------------------------

@pytest.mark.parametrize("kind", ARCHS)
def test_silencing_an_mlp_unit_zeroes_it_and_changes_the_layer(kind: str, tiny_bert: Path, tmp_path: Path) -> None:
    src = _source(kind, tiny_bert, tmp_path, sites=["hidden", "attn", "mlp"])
    points = hook_points(src)
    for site, module in src._hooked.items():
        assert points[site].module is module and points[site].width == src.units[site] and points[site].kind == "tensor"
    plain = src.extract(SENTS)
    before = _hooks(src)
    with silence(src, ["layer1.mlp:3", "layer1.mlp:5"]):
        muted = src.extract(SENTS)  # extraction's hook runs after the clamp: it sees the silenced units
    assert torch.all(muted["layer1.mlp"][:, [3, 5]] == 0) and torch.all(plain["layer1.mlp"][:, 3] != 0)
    torch.testing.assert_close(muted["layer1.mlp"][:, 6:], plain["layer1.mlp"][:, 6:])  # others untouched
    torch.testing.assert_close(muted["layer1.attn"], plain["layer1.attn"])  # upstream of the MLP
    assert not torch.allclose(muted["layer1"], plain["layer1"]) and not torch.allclose(muted["layer2"], plain["layer2"])
    with silence(src, ["layer2.attn:0"]):
        muted = src.extract(SENTS)
    assert torch.all(muted["layer2.attn"][:, 0] == 0) and not torch.allclose(muted["layer2.mlp"], plain["layer2.mlp"])
    torch.testing.assert_close(muted["layer1"], plain["layer1"])
    assert _hooks(src) == before


def test_record_reads_the_mlp_site_under_silence(tiny_bert: Path) -> None:
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny_bert).eval()
    inputs = {"input_ids": torch.tensor([[2, 5, 6, 7, 3]])}
    point = hook_points(model)["layer1.mlp"]
    assert point.module is model.encoder.layer[0].intermediate and point.width == 32
    with silence(model, ["layer1.mlp:7"]), record(model, ["layer1.mlp"]) as rec:
        changed = model(**inputs).last_hidden_state
    data, _ = rec.calls[id(point.module)][0]  # [1, 5, 32]
    assert torch.all(data[..., 7] == 0) and torch.all(data[..., 8] != 0)
    assert not torch.allclose(changed, model(**inputs).last_hidden_state)


# --- end to end: a store and an analyze.py run ---------------------------------------------------

def test_store_over_mlp_sites(tiny_bert: Path, tmp_path: Path) -> None:
    from neuroscope.data.readers import read_conllu
    from neuroscope.store import extract
    from tests.conftest import tiny_conllu

    sentences = [s.words for s in read_conllu(tiny_conllu(tmp_path / "tiny.conllu", copies=2))]
    src = TransformerNeurons(str(tiny_bert), sites=["hidden", "mlp"])
    store, reused = extract(src, sentences, tmp_path / "stores", shard_tokens=7, progress=False)
    assert not reused and store.sites == ["embeddings", "layer1", "layer1.mlp", "layer2", "layer2.mlp"]
    assert store.units["layer1.mlp"] == 32 and store.n_neurons == 3 * 16 + 2 * 32
    assert store.neurons[31:34] == ["layer1:15", "layer1.mlp:0", "layer1.mlp:1"]
    want = src.extract(sentences)["layer2.mlp"].numpy()
    torch.testing.assert_close(torch.from_numpy(store.read(["layer2.mlp"])), torch.from_numpy(want), rtol=1e-5, atol=1e-6)


def test_analyze_ranks_and_reports_mlp_and_attn_sites(tiny_bert: Path, tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir

    from neuroscope.analysis import analyze
    from tests.conftest import REPO
    from tests.fixture_corpus import distinct_conllu

    out = tmp_path / "run"
    overrides = ["model=transformer", f"model.path={tiny_bert}", "model.sites=[hidden,mlp,attn]",
                 f"task.file={distinct_conllu(tmp_path / 'tiny.conllu')}", "logger=none",
                 f"store.root={tmp_path / 'stores'}", f"output_dir={out}", "store.progress=false",
                 "evaluation.control_draws=1", "evaluation.random_draws=1"]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        analyze(compose(config_name="analyze", overrides=overrides))
    res = json.loads((out / "results.json").read_text())
    sites = ["embeddings", "layer1", "layer1.attn", "layer1.mlp", "layer2", "layer2.attn", "layer2.mlp"]
    assert res["store"]["sites"] == sites and res["store"]["n_neurons"] == 5 * 16 + 2 * 32
    assert list(res["layers"]) == sites and res["layers"]["layer2.mlp"]["n_neurons"] == 32
    assert sum(r["top_share"] for r in res["layers"].values()) == pytest.approx(1.0)
    ranked_sites = {n.rpartition(":")[0] for n in res["ranking"]}
    assert len(res["ranking"]) == 144 and ranked_sites == set(sites)
    assert any((out / name).exists() for name in ("report.html", "figures")), sorted(p.name for p in out.iterdir())
