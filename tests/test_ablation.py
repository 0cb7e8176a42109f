"""In-model ablation: hooks change exactly the chosen units, are always removed, and the callback's
curves behave where they must; the two paper experiments end to end on tiny checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from neuroscope.ablation.callback import NeuronAblation, share_key, top_share
from neuroscope.ablation.hooks import lstm_steps, record, silence
from neuroscope.ablation.sites import hook_points
from neuroscope.errors import ConfigError
from neuroscope.models.nlm import LanguageModel
from neuroscope.models.nmt import NMTModel

H = 6


def tiny_lm() -> LanguageModel:
    torch.manual_seed(0)
    return LanguageModel(20, emb_dim=8, hidden=H, layers=2, dropout=0.0, tie_embeddings=False).eval()


def tiny_nmt() -> NMTModel:
    torch.manual_seed(0)
    return NMTModel(20, 22, emb_dim=8, hidden=H, enc_layers=2, dec_layers=2, dropout=0.0).eval()


def lm_batch() -> torch.Tensor:
    return torch.tensor([[1, 5, 6, 7, 8, 9], [1, 4, 4, 3, 0, 0]])  # [B, T] with padding (0)


def nmt_batch() -> tuple[torch.Tensor, torch.Tensor]:
    src = torch.tensor([[5, 6, 7, 8, 3], [9, 10, 3, 0, 0]])  # ends with <eos>=3
    return src, torch.tensor([5, 3])


def site_output(model: nn.Module, site: str, run) -> torch.Tensor:
    """The output tensor a site hands on (recorded after any clamp), padded [B, T, units]."""
    point = hook_points(model)[site]
    with record(model, [site]) as rec:
        run()
    data, _ = rec.calls[id(point.module)][0]
    return data[..., point.start:point.stop]


# --- the stepwise LSTM equals nn.LSTM ---------------------------------------------------------

@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("packed", [False, True])
def test_stepwise_lstm_equals_the_module(bidirectional: bool, packed: bool) -> None:
    torch.manual_seed(1)
    lstm = nn.LSTM(4, 5, batch_first=True, bidirectional=bidirectional)
    x, lengths = torch.randn(3, 7, 4), torch.tensor([7, 4, 1])
    hx = (torch.randn(2 if bidirectional else 1, 3, 5), torch.randn(2 if bidirectional else 1, 3, 5))
    inp = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False) if packed else x
    want_out, (want_h, want_c) = lstm(inp, hx)
    got_out, (got_h, got_c) = lstm_steps(lstm, inp, hx)
    if packed:
        want_out = pad_packed_sequence(want_out, batch_first=True)[0]
        got_out = pad_packed_sequence(got_out, batch_first=True)[0]
    torch.testing.assert_close(got_out, want_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_h, want_h, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got_c, want_c, atol=1e-5, rtol=1e-5)


# --- hooks: exactly the chosen units, always removed ------------------------------------------

def no_hooks_left(model: nn.Module) -> bool:
    return all(not m._forward_hooks and "forward" not in vars(m) for m in model.modules())


@pytest.mark.parametrize("where", ["output", "recurrent"])
def test_silence_changes_exactly_the_chosen_units_of_the_top_layer(where: str) -> None:
    lm, x = tiny_lm(), lm_batch()
    plain = site_output(lm, "lm.l1", lambda: lm(x))
    with silence(lm, ["lm.l1:2", "lm.l1:4"], where=where):
        clamped = site_output(lm, "lm.l1", lambda: lm(x))
    assert torch.all(clamped[..., [2, 4]] == 0)
    keep = [0, 1, 3, 5]
    if where == "output":  # the clamp acts after the layer: its other units are untouched
        torch.testing.assert_close(clamped[..., keep], plain[..., keep], atol=0, rtol=0)
    else:  # inside the recurrence the other units read the clamped state from step 2 on
        torch.testing.assert_close(clamped[:, 0, keep], plain[:, 0, keep], atol=1e-5, rtol=1e-5)
        assert not torch.allclose(clamped[:, 1:, keep], plain[:, 1:, keep], atol=1e-4)
    assert no_hooks_left(lm)
    torch.testing.assert_close(site_output(lm, "lm.l1", lambda: lm(x)), plain, atol=0, rtol=0)


def test_lower_layer_clamp_reaches_the_next_layer_and_logits() -> None:
    lm, x = tiny_lm(), lm_batch()
    logits, _ = lm(x)
    with silence(lm, ["lm.l0:0"]):
        clamped, outs = lm(x)
    assert torch.all(outs[0][..., 0] == 0)  # what the model's own forward returns for layer 0
    assert not torch.allclose(clamped, logits)


def test_hooks_are_removed_after_an_error() -> None:
    lm = tiny_lm()
    for where in ("output", "recurrent"):
        with pytest.raises(RuntimeError, match="boom"), silence(lm, ["lm.l0:1", "lm.l1:1"], where=where):
            raise RuntimeError("boom")
        assert no_hooks_left(lm)


def test_no_neurons_leaves_the_output_exactly_unchanged() -> None:
    lm, x = tiny_lm(), lm_batch()
    with silence(lm, []):
        same, _ = lm(x)
    torch.testing.assert_close(same, lm(x)[0], atol=0, rtol=0)


def test_silencing_a_whole_top_layer_destroys_the_lm() -> None:
    lm, x = tiny_lm(), lm_batch()
    with silence(lm, [f"lm.l1:{u}" for u in range(H)]):
        logits, _ = lm(x)
    assert torch.allclose(logits, logits[0, 0].expand_as(logits))  # same prediction everywhere: no input left


def constant_unit(lstm: nn.LSTM, unit: int) -> None:
    """Make h[unit] a nonzero constant: no input or recurrent weight, forget gate shut, fixed biases."""
    with torch.no_grad():
        rows = [unit + k * H for k in range(4)]
        lstm.weight_ih_l0[rows] = 0
        lstm.weight_hh_l0[rows] = 0
        lstm.bias_hh_l0[rows] = 0
        lstm.bias_ih_l0[rows] = torch.tensor([2.0, -1e4, 0.7, 0.5])  # i, f, g, o


def test_mean_mode_on_a_constant_unit_changes_nothing() -> None:
    lm, x = tiny_lm(), lm_batch()
    constant_unit(lm.lstm.layers[0], 3)
    out = site_output(lm, "lm.l0", lambda: lm(x))
    value = float(out[..., 3].mean())
    assert torch.allclose(out[..., 3], torch.tensor(value))
    logits, _ = lm(x)
    with silence(lm, ["lm.l0:3"], mode="mean", values={"lm.l0:3": value}):
        torch.testing.assert_close(lm(x)[0], logits, atol=1e-6, rtol=1e-6)
    with silence(lm, ["lm.l0:3"], mode="zero"):
        assert not torch.allclose(lm(x)[0], logits, atol=1e-4)


def test_silencing_an_exactly_zero_unit_changes_nothing() -> None:
    lm, x = tiny_lm(), lm_batch()
    lstm = lm.lstm.layers[1]
    constant_unit(lstm, 2)
    with torch.no_grad():
        lstm.bias_ih_l0[2 + 2 * H] = 0.0  # g = tanh(0) = 0: c and h stay exactly 0
    assert torch.all(site_output(lm, "lm.l1", lambda: lm(x))[..., 2] == 0)
    logits, _ = lm(x)
    for where in ("output", "recurrent"):
        with silence(lm, ["lm.l1:2"], where=where):
            torch.testing.assert_close(lm(x)[0], logits, atol=1e-6 if where == "recurrent" else 0, rtol=0)
    ranking = [f"lm.l1:{u}" for u in range(H) if u != 2] + ["lm.l1:2"]  # the dead unit last
    res = NeuronAblation({"r": ranking}, shares=[0, 100 / H], random_draws=0).run(LogitSum(lm), [x])
    one = share_key(100 / H)  # one neuron
    assert res["curves"]["r_bottom"][one] == res["baseline"] != res["curves"]["r_top"][one]


class LogitSum(nn.Module):
    """A module whose metric reads the LM's whole output."""

    ablation_metric_name = "logit_sum"

    def __init__(self, lm: LanguageModel) -> None:
        super().__init__()
        self.model = lm

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def ablation_metric(self, batches: list[torch.Tensor]) -> float:
        return float(sum(self.model(x)[0].double().abs().sum() for x in batches))


def test_patch_copies_another_inputs_activations() -> None:
    lm = tiny_lm()
    a, b = lm_batch(), torch.tensor([[1, 9, 8, 7, 6, 5], [1, 2, 2, 2, 0, 0]])
    with record(lm, ["lm.l1"]) as rec:
        want, _ = lm(b)
    with silence(lm, [f"lm.l1:{u}" for u in range(H)], mode="patch", values=rec):
        got, _ = lm(a)
    torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)  # the whole top layer from b: b's logits
    with pytest.raises(ConfigError, match="same shape"), \
            silence(lm, ["lm.l1:0"], mode="patch", values=rec):
        lm(a[:1])


def test_bad_neuron_ids_and_modes_are_config_errors() -> None:
    lm = tiny_lm()
    for neurons, match in ((["lm.l7:0"], "names no site"), (["lm.l0:99"], "out of range"), (["lm.l0:x"], "out of range")):
        with pytest.raises(ConfigError, match=match), silence(lm, neurons):
            pass
    with pytest.raises(ConfigError, match="ablation.mode"), silence(lm, [], mode="half"):
        pass
    with pytest.raises(ConfigError, match="needs a value"), silence(lm, ["lm.l0:0"], mode="mean", values={}):
        pass
    assert no_hooks_left(lm)


# --- the NMT: encoder directions, the bridge, greedy and beam search --------------------------

@pytest.mark.parametrize("where", ["output", "recurrent"])
def test_silencing_the_encoder_top_cuts_the_decoder_off_the_source(where: str) -> None:
    net = tiny_nmt()
    src, lengths = nmt_batch()
    other = torch.tensor([[11, 12, 13, 14, 3], [15, 16, 3, 0, 0]])
    y = torch.tensor([[1, 5, 6], [1, 7, 8]])
    top = [f"encoder.l1.{d}:{u}" for d in ("fwd", "bwd") for u in range(H)]
    assert not torch.allclose(net(src, lengths, y), net(other, lengths, y))
    with silence(net, top, where=where):  # memory and the decoder's initial state no longer depend on the source
        torch.testing.assert_close(net(src, lengths, y), net(other, lengths, y), atol=1e-6, rtol=1e-6)
    assert no_hooks_left(net)


def test_encoder_directions_are_separate_sites() -> None:
    net = tiny_nmt()
    src, lengths = nmt_batch()
    plain = site_output(net, "encoder.l0.bwd", lambda: net.encode(src, lengths))
    with silence(net, ["encoder.l0.fwd:1"]):
        fwd = site_output(net, "encoder.l0.fwd", lambda: net.encode(src, lengths))
        bwd = site_output(net, "encoder.l0.bwd", lambda: net.encode(src, lengths))
    assert torch.all(fwd[..., 1] == 0) and not torch.all(fwd[..., 0] == 0)
    torch.testing.assert_close(bwd, plain, atol=0, rtol=0)


@pytest.mark.parametrize("where", ["output", "recurrent"])
def test_greedy_and_beam_search_respect_the_hooks(where: str) -> None:
    net = tiny_nmt()
    src, lengths = nmt_batch()
    neurons = [f"decoder.l0:{u}" for u in range(3)] + ["encoder.l0.fwd:2"]
    with silence(net, neurons, where=where):
        greedy = net.greedy(src, lengths, max_len_b=4)
        beam1 = net.beam_search(src, lengths, beam=1, max_len_b=4)
        # teacher forcing on greedy's own output picks the same words under the same hooks
        y_in = torch.cat([torch.ones_like(greedy.tokens[:, :1]), greedy.tokens[:, :-1]], 1)
        forced = net(src, lengths, y_in).argmax(-1)
        beam = net.beam_search(src, lengths, beam=3, max_len_b=4)
    torch.testing.assert_close(forced, greedy.tokens)
    torch.testing.assert_close(beam1.tokens, greedy.tokens)
    plain = net.greedy(src, lengths, max_len_b=4)
    unhooked_forced = net(src, lengths, torch.cat([torch.ones_like(plain.tokens[:, :1]), plain.tokens[:, :-1]], 1))
    assert torch.equal(unhooked_forced.argmax(-1), plain.tokens)
    assert beam.tokens.shape[0] == 2


# --- the callback ------------------------------------------------------------------------------

class ToyModule(nn.Module):
    """A 'model' whose metric is the sum of its layer's output over a fixed input: unit u gives u + 1."""

    ablation_metric_name, higher_is_better = "score", True

    def __init__(self) -> None:
        super().__init__()
        self.model = tiny_lm()
        lstm = self.model.lstm.layers[0]
        for u in range(H):
            constant_unit(lstm, u)
        self.weights = torch.arange(1, H + 1, dtype=torch.float32)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def ablation_metric(self, batches: list[torch.Tensor]) -> float:
        total = 0.0
        for x in batches:
            _, outs = self.model(x)
            total += float((outs[0][..., :H].mean((0, 1)) * self.weights).sum())
        return total


def test_callback_curves_follow_the_ranking() -> None:
    module = ToyModule()
    ranking = [f"lm.l0:{u}" for u in reversed(range(H))] + [f"lm.l1:{u}" for u in range(H)]
    cb = NeuronAblation({"planted": ranking}, shares=[0, 25, 50, 100], random_draws=3, seed=0)
    res = cb.run(module, [lm_batch()])
    curves = res["curves"]
    assert set(curves) == {"planted_top", "planted_bottom", "bottom", "random"}
    assert curves["bottom"] == curves["planted_bottom"]
    assert all(c["0"] == res["baseline"] for c in curves.values())
    top = [curves["planted_top"][k] for k in res["shares"]]
    assert top == sorted(top, reverse=True) and top[-1] == pytest.approx(0.0, abs=1e-6)
    # the bottom 25 % and 50 % are layer-1 units, which the metric does not read: nothing changes
    assert curves["planted_bottom"]["25"] == curves["planted_bottom"]["50"] == res["baseline"]
    assert curves["planted_top"]["25"] < curves["random"]["25"] < curves["planted_bottom"]["25"] + 1e-9
    assert set(res["random_sd"]) == set(res["shares"]) and len(res["random_draws"]) == 3
    assert res["neurons_silenced"] == {"0": 0, "25": 3, "50": 6, "100": 12}
    assert no_hooks_left(module.model)


def test_callback_random_draws_are_reproducible_and_independent_of_other_arms() -> None:
    ranking = [f"lm.l0:{u}" for u in range(H)]
    one = NeuronAblation({"a": ranking}, random_draws=2, seed=3).arms()
    two = NeuronAblation({"a": ranking, "b": ranking[::-1]}, random_draws=2, seed=3).arms()
    assert one["random_0"] == two["random_0"] and one["random_1"] != one["random_0"]
    assert top_share(ranking, 50) == ranking[:3] and top_share(ranking, 0) == []


def test_rankings_of_different_lengths_report_what_each_arm_silenced() -> None:
    """A 4-id ranking beside a 12-id one: at 50 % it silences 2 neurons (reported per arm), and a
    random arm of 4-neuron draws (`random_n4`) stands beside it; `random` keeps the first ranking's count."""
    module = ToyModule()  # metric = sum of (u + 1) * v over the layer-0 units u, all equal to v
    full = [f"lm.l0:{u}" for u in reversed(range(H))] + [f"lm.l1:{u}" for u in range(H)]
    short = ["lm.l0:5", "lm.l0:4", "lm.l0:3", "lm.l0:2"]
    loaders = [[lm_batch()]]  # one loader of one batch
    res = NeuronAblation({"full": full, "short": short}, shares=[0, 50, 100], random_draws=3).run(module, loaders)
    assert res["n_neurons"] == 12 and res["neurons_silenced"] == {"0": 0, "50": 6, "100": 12}  # the first ranking's
    silenced = res["silenced"]
    assert silenced["short_top"] == silenced["short_bottom"] == silenced["random_n4"] == {"0": 0, "50": 2, "100": 4}
    assert silenced["full_top"] == silenced["random"] == silenced["bottom"] == {"0": 0, "50": 6, "100": 12}
    base = res["baseline"]
    assert res["curves"]["short_top"]["50"] == pytest.approx(base * (21 - 6 - 5) / 21)  # units 5 and 4 only
    assert res["curves"]["short_top"]["100"] == pytest.approx(base * (21 - 6 - 5 - 4 - 3) / 21)
    assert res["curves"]["full_top"]["50"] == pytest.approx(0.0, abs=1e-6)  # all six layer-0 units
    by_length = res["random_by_length"]["random_n4"]
    assert by_length["n_neurons"] == 4 and len(by_length["draws"]) == 3 and set(by_length["sd"]) == {"0", "50", "100"}
    for d in range(3):  # each draw silences 2 of the 12 neurons at 50 %: at least the layer-0 sum of
        assert base * (21 - 11) / 21 - 1e-6 <= by_length["draws"][d]["50"] <= base + 1e-6  # the top two
    arms = NeuronAblation({"full": full, "short": short}, random_draws=2).arms()
    assert all(set(arms[f"random_n4_{d}"]) <= set(full) and len(arms[f"random_n4_{d}"]) == 4 for d in range(2))
    same = NeuronAblation({"full": full}, random_draws=2).arms()
    assert arms["random_0"] == same["random_0"]  # draws of equal-length rankings are unchanged
    assert "random_by_length" not in NeuronAblation({"full": full}, random_draws=1).run(module, loaders)


def test_callback_rejects_bad_settings() -> None:
    with pytest.raises(ConfigError, match="ablation.shares"):
        NeuronAblation({"a": ["lm.l0:0"]}, shares=[150])
    with pytest.raises(ConfigError, match="rankings"):
        NeuronAblation({})
    with pytest.raises(ConfigError, match="ablation.mode: expected zero or mean, got 'patch'.*silence"):
        NeuronAblation({"a": ["lm.l0:0"]}, mode="patch")
    with pytest.raises(ConfigError, match="ablation.mode: mean needs"):
        NeuronAblation({"a": ["lm.l0:0"]}, mode="mean")


def test_transformer_layers_are_sites(tiny_bert: Path) -> None:
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny_bert).eval()
    inputs = {"input_ids": torch.tensor([[2, 5, 6, 7, 3]])}
    plain = model(**inputs).last_hidden_state
    run = lambda: model(**inputs)  # noqa: E731
    with silence(model, ["layer1:0", "embeddings:1"]):
        first = site_output(model, "layer1", run)
        emb = site_output(model, "embeddings", run)
        changed = model(**inputs).last_hidden_state
    assert torch.all(first[..., 0] == 0) and torch.all(emb[..., 1] == 0) and not torch.all(emb[..., 2] == 0)
    assert not torch.allclose(changed, plain)
    last = f"layer{model.config.num_hidden_layers}"
    with silence(model, [f"{last}:{u}" for u in range(model.config.hidden_size)]):
        assert torch.all(model(**inputs).last_hidden_state == 0)  # what the model hands on sees the clamp
    assert no_hooks_left(model)
    torch.testing.assert_close(model(**inputs).last_hidden_state, plain)


def test_results_block_is_json() -> None:
    cb = NeuronAblation({"a": [f"lm.l0:{u}" for u in range(H)]}, shares=[0, 50], random_draws=2)
    res = cb.run(ToyModule(), [lm_batch()])
    assert json.loads(json.dumps(res))["curves"]["random"]["50"] == pytest.approx(np.mean(
        [d["50"] for d in res["random_draws"]]))


@pytest.mark.parametrize("kind", ["gpt2", "bert", "xlnet"])
def test_transformer_hook_points_act_on_the_hidden_states_the_store_records(kind: str, tiny_bert: Path,
                                                                            tmp_path: Path) -> None:
    """Recording at `embeddings` / `layerN` equals hidden_states[0] / [N] (GPT-2's last layer is after
    ln_f, its embeddings wte + wpe) and the store's word vectors; silencing a unit zeroes exactly that
    unit of hidden_states[N]."""
    from tests.test_transformer_sites import _source

    src = _source(kind, tiny_bert, tmp_path, aggregation="first")
    model = src.model
    words = ["the", "cats", "sleep", "."]  # one subword each
    enc = src.tokenizer([words], is_split_into_words=True, return_tensors="pt")
    enc = {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    pos = [i for i, w in enumerate(src.tokenizer([words], is_split_into_words=True).word_ids(0)) if w is not None]
    points = hook_points(model)
    hooks = lambda: sum(len(m._forward_hooks) for m in model.modules())  # noqa: E731 (HF keeps its own)
    sites = ["embeddings", "layer1", "layer2"]
    assert set(sites) <= set(points)
    with torch.inference_mode():
        hidden = model(**enc, output_hidden_states=True).hidden_states
        with record(model, sites) as rec:
            model(**enc)
        stored = src.extract([words])  # {site: [words, units]}
    for n, site in enumerate(sites):
        calls = rec.calls[id(points[site].module)]
        seen = calls[0][0].transpose(0, 1) if kind == "xlnet" else calls[0][0]  # [1, positions, units]
        torch.testing.assert_close(seen, hidden[n], rtol=0, atol=0)
        torch.testing.assert_close(seen[0, pos], stored[site], rtol=0, atol=0)
        before = hooks()
        with torch.inference_mode(), silence(model, [f"{site}:3"]):
            muted = model(**enc, output_hidden_states=True).hidden_states[n]
        assert torch.all(muted[..., 3] == 0)
        keep = [u for u in range(muted.shape[-1]) if u != 3]
        torch.testing.assert_close(muted[..., keep], hidden[n][..., keep], rtol=0, atol=0)
        assert hooks() == before


class OffsetModule(ToyModule):
    """A tiny LM whose layer-0 unit 3 is a large constant (an offset carrying no information); the
    metric is the mean logit, which reads every layer-0 unit through layer 1."""

    def __init__(self) -> None:
        nn.Module.__init__(self)
        self.model = tiny_lm()
        constant_unit(self.model.lstm.layers[0], 3)

    def ablation_metric(self, batches: list[torch.Tensor]) -> float:
        return float(sum(self.model(x)[0].mean() for x in batches))


def test_zeroing_an_offset_unit_hurts_and_mean_ablating_it_does_not() -> None:
    """modes=[zero, mean] from one callback: the informationless constant unit changes the metric
    when zeroed and leaves it as it is when set to its mean; both modes are in the block (by mode),
    with the silenced set's mean |μ|/σ and mean square."""
    from neuroscope.reporting.results import mode_views
    from neuroscope.reporting.tables import ablation_table

    module = OffsetModule()
    out = site_output(module.model, "lm.l0", lambda: module.model(lm_batch()))
    value = float(out[..., 3].mean())
    assert abs(value) > 0.3  # an offset far from 0
    ranking = ["lm.l0:3", "lm.l0:0"]
    stats = {f"lm.l0:{u}": (0.1, 1.0, 1.01) for u in range(H)} | {"lm.l0:3": (value, 0.01, value ** 2)}
    means = {f"lm.l0:{u}": 0.0 for u in range(H)} | {"lm.l0:3": value}
    res = NeuronAblation({"offset": ranking}, shares=[0, 50, 100], mode=["zero", "mean"], values=means,
                         stats=stats, random_draws=2).run(module, [lm_batch()])
    base = res["baseline"]
    assert res["modes"] == ["zero", "mean"] and res["mode"] == "zero+mean" and set(res["curves"]) == {"zero", "mean"}
    assert abs(res["curves"]["zero"]["offset_top"]["50"] - base) > 1e-3  # zeroing the offset unit hurts
    assert res["curves"]["mean"]["offset_top"]["50"] == pytest.approx(base, abs=1e-6)  # its mean does not
    assert set(res["random_sd"]) == {"zero", "mean"} and len(res["random_draws"]["mean"]) == 2
    assert res["silenced_stats"]["offset_top"]["50"] == pytest.approx({"offset": abs(value) / 0.01,
                                                                       "mean_square": value ** 2})
    assert res["silenced_stats"]["offset_bottom"]["50"] == pytest.approx({"offset": 0.1, "mean_square": 1.01})
    views = mode_views(res)
    assert list(views) == ["zero", "mean"] and views["mean"]["curves"]["offset_top"]["50"] == pytest.approx(base)
    cols, rows = ablation_table(res)
    assert {r[cols.index("mode")] for r in rows} == {"zero", "mean"}
    one = NeuronAblation({"offset": ranking}, shares=[0, 50], random_draws=1).run(module, [lm_batch()])
    assert one["modes"] == ["zero"] and one["curves"]["offset_top"]["50"] == res["curves"]["zero"]["offset_top"]["50"]
    assert list(mode_views(one)) == ["zero"]  # one mode: the flat layout of earlier runs
