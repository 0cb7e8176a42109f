"""The LSTM language model: training, perplexity, checkpoints, neuron sites, train.py end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir

from neuroscope.data.vocab import PAD
from neuroscope.errors import ConfigError
from neuroscope.models.nlm import LanguageModel, NLMModule, NLMNeurons, nlm_lstm
from neuroscope.models.nmt import NMTModule
from neuroscope.store import extract
from neuroscope.training import train
from tests.conftest import REPO, SHARED_DATA
from tests.test_multi30k import needs_multi30k, tiny_multi30k

TINY = {"emb_dim": 16, "hidden": 24, "dropout": 0.0, "lr": 0.01}
DATA = {"download": False, "min_freq": 1, "batch_size": 16, "eval_batch_size": 16, "seed": 0}
UD_LIKE = [["The", "old", "dog", "sleeps", "."], ["A", "xyzzy", "cat", "ca", "n't", "run", "."], ["Hello"]]


def tiny_lm(root: Path, **kw: Any) -> tuple[NLMModule, pl.LightningDataModule]:
    torch.manual_seed(0)
    module = NLMModule(**{**TINY, **kw})
    dm = module.make_datamodule({"root": str(root), **DATA})
    dm.setup()
    return module, dm


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("nlm")
    module, dm = tiny_lm(tiny_multi30k(folder / "data"))
    trainer = pl.Trainer(max_epochs=4, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, deterministic=True, num_sanity_val_steps=0)
    trainer.fit(module, datamodule=dm)
    trainer.save_checkpoint(folder / "lm.ckpt")
    module.eval()
    return {"module": module, "dm": dm, "trainer": trainer, "ckpt": folder / "lm.ckpt"}


def test_tiny_lm_overfits_a_few_batches(tmp_path: Path) -> None:
    module, dm = tiny_lm(tiny_multi30k(tmp_path), tie_embeddings=False)
    batches = [b for _, b in zip(range(2), dm.train_dataloader(), strict=False)]
    opt = torch.optim.Adam(module.parameters(), lr=0.02)
    losses = []
    for _ in range(60):
        for b in batches:
            nll, tokens, _ = module._nll_sum(b)
            loss = nll / tokens
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    # the toy captions are random word choices: the loss floor is their entropy (~1.5 nats / 10 tokens)
    assert losses[0] > 3.0 and losses[-1] < 0.4 * losses[0]


def test_tied_embeddings_share_one_matrix() -> None:
    tied = LanguageModel(50, emb_dim=8, hidden=12, tie_embeddings=True)
    assert tied.generator.weight is tied.embed.weight and isinstance(tied.project, torch.nn.Linear)
    untied = LanguageModel(50, emb_dim=8, hidden=12, tie_embeddings=False)
    assert untied.generator.weight.shape == (50, 12)


def test_perplexity_is_exp_of_the_mean_token_nll_over_the_split(trained: dict[str, Any]) -> None:
    module, dm = trained["module"], trained["dm"]
    tested = trained["trainer"].test(module, datamodule=dm, verbose=False)[0]
    total, count = 0.0, 0
    with torch.no_grad():
        for b in dm.test_dataloader():
            logits, _ = module.model(b["tgt_in"])
            total += float(F.cross_entropy(logits.transpose(1, 2), b["tgt_out"], ignore_index=PAD, reduction="sum"))
            count += int((b["tgt_out"] != PAD).sum())
    assert tested["test/perplexity"] == pytest.approx(math.exp(total / count), rel=1e-5)
    assert tested["test/loss"] == pytest.approx(total / count, rel=1e-5)
    assert tested["test/perplexity"] < 8  # vocabulary ~50: the toy captions are well predicted


def test_checkpoint_round_trip_gives_identical_outputs(trained: dict[str, Any]) -> None:
    module, neurons = trained["module"], NLMNeurons(trained["ckpt"])
    assert neurons.vocab == module.vocab and neurons.sites == ["lm.l0", "lm.l1"]
    batch = next(iter(trained["dm"].val_dataloader()))
    with torch.no_grad():
        a, la = module.model(batch["tgt_in"])
        b, lb = neurons.model(batch["tgt_in"])
    assert torch.equal(a, b) and all(torch.equal(x, y) for x, y in zip(la, lb, strict=True))
    words = [s.split() for s in ("The old dog sleeps in the park .", "A cat runs in the garden .")]
    ppl = neurons.perplexity(words)
    assert ppl == NLMNeurons(trained["ckpt"]).perplexity(words) and ppl < 20


def test_bad_checkpoints_fail_with_clear_errors(trained: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        nlm_lstm(checkpoint=str(tmp_path / "none.ckpt"))
    ckpt = torch.load(trained["ckpt"], weights_only=True)
    ckpt["neuroscope"]["arch"] = "nmt_lstm"
    torch.save(ckpt, tmp_path / "nmt.ckpt")
    with pytest.raises(ConfigError, match="holds a 'nmt_lstm' model, not 'nlm_lstm'"):
        NLMNeurons(tmp_path / "nmt.ckpt")
    with pytest.raises(ConfigError, match="not an nmt_lstm model"):
        NMTModule().on_load_checkpoint(torch.load(trained["ckpt"], weights_only=True))
    with pytest.raises(ConfigError, match="model settings differ"):
        NLMModule(**{**TINY, "layers": 3}, vocab=trained["module"].vocab).on_load_checkpoint(
            torch.load(trained["ckpt"], weights_only=True))
    with pytest.raises(ConfigError, match="model.sites"):
        NLMNeurons(trained["ckpt"], sites=["encoder.l0.fwd"])


def test_lm_sites_through_the_store_are_causal_and_count_unknowns(trained: dict[str, Any], tmp_path: Path) -> None:
    source = nlm_lstm(checkpoint=str(trained["ckpt"]), sites=["lm.l1"])
    store, _ = extract(source, UD_LIKE, tmp_path, batch_tokens=8, progress=False)
    assert store.sites == ["lm.l1"] and store.n_tokens == 13 and store.n_neurons == 24
    assert store.manifest["extraction_stats"] == {"unknown_words": 5}  # xyzzy, ca, n't, run, Hello
    prefix = source.extract([UD_LIKE[0][:3]])["lm.l1"]
    np.testing.assert_allclose(store.read()[:3], prefix.numpy(), atol=1e-5)  # a word's row ignores later words


def test_train_py_writes_perplexity_results(tmp_path: Path) -> None:
    root = tiny_multi30k(tmp_path / "data")
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            "model=nlm_lstm", "data=multi30k", f"data.root={root}", "data.download=false", "data.min_freq=1",
            "model.emb_dim=16", "model.hidden=16", "trainer=debug", "logger=csv", f"output_dir={tmp_path / 'run'}"])
    res = train(cfg)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert set(saved["test"]) == {"loss", "perplexity"} and set(saved["val"]) == {"loss", "perplexity"}
    assert saved["test"]["perplexity"] == pytest.approx(math.exp(saved["test"]["loss"]), rel=1e-5)
    assert NLMNeurons(res["checkpoint"]).arch["hidden"] == 16
    assert list((tmp_path / "run" / "csv").rglob("metrics.csv"))


@pytest.mark.slow
@needs_multi30k
def test_real_data_debug_training(tmp_path: Path) -> None:
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[
            "model=nlm_lstm", "trainer=debug", "logger=none", f"output_dir={tmp_path}", f"data.root={SHARED_DATA}"])
    res = train(cfg)
    assert res["test"]["perplexity"] < 6275  # better than uniform over the vocabulary after 5 batches
    source = NLMNeurons(res["checkpoint"])
    rows = source.extract([["The", "cats", "do", "n't", "sleep", "."]])
    assert all(v.shape == (6, 512) for v in rows.values())
