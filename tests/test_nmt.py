"""The attention LSTM NMT: training, decoding, BLEU, checkpoints, neuron sites, train.py / analyze.py."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from neuroscope.data.vocab import EOS, PAD, Vocab
from neuroscope.errors import ConfigError
from neuroscope.models.nmt import NMTModule, NMTNeurons, corpus_bleu, nmt_lstm
from neuroscope.store import ActivationStore, extract
from neuroscope.training import train
from tests.conftest import REPO, SHARED_DATA, tiny_conllu
from tests.test_multi30k import needs_multi30k, tiny_multi30k

TINY = {"emb_dim": 24, "hidden": 20, "dropout": 0.0, "lr": 0.01}
DATA = {"download": False, "min_freq": 1, "batch_size": 16, "eval_batch_size": 16, "seed": 0}
UD_LIKE = [["The", "old", "dog", "sleeps", "."], ["A", "xyzzy", "cat", "ca", "n't", "run", "."], ["Hello"]]


def tiny_module(root: Path, **kw: Any) -> tuple[NMTModule, pl.LightningDataModule]:
    torch.manual_seed(0)
    module = NMTModule(**{**TINY, **kw})
    dm = module.make_datamodule({"root": str(root), **DATA})
    dm.setup()
    return module, dm


def fit(module: pl.LightningModule, dm: pl.LightningDataModule, epochs: int) -> pl.Trainer:
    trainer = pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, deterministic=True, num_sanity_val_steps=0)
    trainer.fit(module, datamodule=dm)
    return trainer


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny NMT fitted on the toy corpus for a few epochs, saved as a Lightning checkpoint."""
    folder = tmp_path_factory.mktemp("nmt")
    root = tiny_multi30k(folder / "data")
    module, dm = tiny_module(root)
    trainer = fit(module, dm, epochs=6)
    trainer.save_checkpoint(folder / "nmt.ckpt")
    module.eval()
    return {"module": module, "dm": dm, "ckpt": folder / "nmt.ckpt", "root": root, "trainer": trainer}


def test_tiny_nmt_overfits_a_few_batches(tmp_path: Path) -> None:
    module, dm = tiny_module(tiny_multi30k(tmp_path))
    batches = [b for _, b in zip(range(3), dm.train_dataloader(), strict=False)]
    opt = torch.optim.Adam(module.parameters(), lr=0.02)
    losses = []
    for _ in range(40):
        for b in batches:
            loss, _ = module._loss(b, 0.0)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert losses[0] > 2.5 and losses[-1] < 0.05 * losses[0]


def test_greedy_equals_beam_one_and_scores_are_log_probabilities(trained: dict[str, Any]) -> None:
    model = trained["module"].model
    batch = next(iter(trained["dm"].test_dataloader()))
    with torch.no_grad():
        greedy = model.greedy(batch["src"], batch["src_len"])
        beam1 = model.beam_search(batch["src"], batch["src_len"], beam=1)
        beam4 = model.beam_search(batch["src"], batch["src_len"], beam=4, length_penalty=0.0)
        assert torch.equal(greedy.tokens, beam1.tokens) and torch.equal(greedy.scores, beam1.scores)
        for out in (greedy, beam4):  # the returned score is the log-probability of the returned words
            ids = [row[: row.index(EOS) + 1] for row in out.tokens.tolist()]
            y_in = torch.nn.utils.rnn.pad_sequence([torch.tensor([2, *r[:-1]]) for r in ids], True, PAD)
            y_out = torch.nn.utils.rnn.pad_sequence([torch.tensor(r) for r in ids], True, PAD)
            logp = model(batch["src"], batch["src_len"], y_in).log_softmax(-1)
            forced = -F.nll_loss(logp.transpose(1, 2), y_out, ignore_index=PAD, reduction="none").sum(1)
            torch.testing.assert_close(out.scores, forced, atol=1e-4, rtol=1e-4)
        assert bool((beam4.scores >= greedy.scores - 1e-4).float().mean() > 0.5)


def test_bleu_of_references_is_100_and_the_toy_task_is_learnt(trained: dict[str, Any]) -> None:
    refs = trained["dm"].raw["test"]["de"]
    assert corpus_bleu(refs, refs) == pytest.approx(100.0)
    assert corpus_bleu(["Ein Hund"] * len(refs), refs) < 5
    tested = trained["trainer"].test(trained["module"], datamodule=trained["dm"], verbose=False)[0]
    assert tested["test/bleu"] > 60 and tested["test/bleu_greedy"] > 60  # the toy task is nearly word-by-word
    assert tested["test/perplexity"] < 3


def test_checkpoint_round_trip_gives_identical_outputs(trained: dict[str, Any]) -> None:
    module, neurons = trained["module"], NMTNeurons(trained["ckpt"], sites="all")
    assert neurons.src_vocab == module.src_vocab and neurons.tgt_vocab == module.tgt_vocab
    batch = next(iter(trained["dm"].val_dataloader()))
    with torch.no_grad():
        want = module.model.greedy(batch["src"], batch["src_len"]).tokens
        got = neurons.model.greedy(batch["src"], batch["src_len"]).tokens
        assert torch.equal(want, got)
        for a, b in zip(module.model.encode(batch["src"], batch["src_len"])[2],
                        neurons.model.encode(batch["src"], batch["src_len"])[2], strict=True):
            assert torch.equal(a, b)
    lines = trained["dm"].raw["test"]["en"][:5]
    assert neurons.translate(lines) == NMTNeurons(trained["ckpt"]).translate(lines)
    assert neurons.translate(["The old dog sleeps in the park."]) == ["Der alte Hund schläft im Park."]


def test_bad_checkpoints_fail_with_clear_errors(trained: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        nmt_lstm(checkpoint=str(tmp_path / "missing.ckpt"))
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ConfigError, match="cannot be loaded as a safe torch checkpoint"):
        NMTNeurons(garbage)
    code = tmp_path / "code.ckpt"  # a pickle that would run code: refused, never executed
    code.write_bytes(pickle.dumps(Path("x")))
    with pytest.raises(ConfigError, match="safe torch checkpoint"):
        NMTNeurons(code)
    plain = tmp_path / "plain.ckpt"
    torch.save({"state_dict": {}}, plain)
    with pytest.raises(ConfigError, match="not a neuroscope model checkpoint"):
        NMTNeurons(plain)
    ckpt = torch.load(trained["ckpt"], weights_only=True)
    ckpt["neuroscope"]["arch"] = "nlm_lstm"
    torch.save(ckpt, tmp_path / "lm.ckpt")
    with pytest.raises(ConfigError, match="holds a 'nlm_lstm' model, not 'nmt_lstm'; use model=nlm_lstm"):
        NMTNeurons(tmp_path / "lm.ckpt")
    ckpt = torch.load(trained["ckpt"], weights_only=True)
    ckpt["neuroscope"]["src_vocab"]["itos"].append("extra")  # vocabulary and weights disagree
    torch.save(ckpt, tmp_path / "vocab.ckpt")
    with pytest.raises(ConfigError, match="do not fit the model"):
        NMTNeurons(tmp_path / "vocab.ckpt")
    # resuming with data that build another vocabulary
    other = NMTModule(**TINY, src_vocab=Vocab.build([["a"]], min_freq=1), tgt_vocab=trained["module"].tgt_vocab)
    with pytest.raises(ConfigError, match="checkpoint's src_vocab .* differs"):
        other.on_load_checkpoint(torch.load(trained["ckpt"], weights_only=True))
    with pytest.raises(ConfigError, match="model settings differ"):
        NMTModule(**{**TINY, "hidden": 8}).on_load_checkpoint(torch.load(trained["ckpt"], weights_only=True))
    with pytest.raises(ConfigError, match="model.sites: unknown site"):
        NMTNeurons(trained["ckpt"], sites=["decoder.l7"])
    with pytest.raises(ConfigError, match="model.aggregation"):
        NMTNeurons(trained["ckpt"], aggregation="max")
    with pytest.raises(ConfigError, match="model.hiden: not a setting"):
        nmt_lstm(hiden=3)


def test_encoder_sites_through_the_store_with_unknown_words_counted(trained: dict[str, Any], tmp_path: Path) -> None:
    source = nmt_lstm(checkpoint=str(trained["ckpt"]))
    assert source.sites == ["encoder.l0.fwd", "encoder.l0.bwd", "encoder.l1.fwd", "encoder.l1.bwd"]
    store, reused = extract(source, UD_LIKE, tmp_path, batch_tokens=8, progress=False)
    assert not reused and store.n_tokens == 13 and store.n_neurons == 4 * 20
    # unknown: xyzzy, ca, n't, run, Hello (the toy corpus has no such words)
    assert store.manifest["extraction_stats"] == {"unknown_words": 5}
    # rows do not depend on the batch: one sentence at a time gives the same numbers
    alone = np.concatenate([np.concatenate([v.numpy() for v in source.extract([s]).values()], 1) for s in UD_LIKE])
    np.testing.assert_allclose(store.read(), alone, atol=1e-5)
    assert all(v.shape == (1, 20) for v in source.extract([[], ["Hello"]]).values())  # an empty sentence: no rows
    fwd, bwd = source.extract([UD_LIKE[0]])["encoder.l0.fwd"], source.extract([UD_LIKE[0][:2]])["encoder.l0.fwd"]
    torch.testing.assert_close(fwd[:2], bwd)  # a forward state sees only the words so far


def test_decoder_sites_are_opt_in(trained: dict[str, Any]) -> None:
    source = NMTNeurons(trained["ckpt"], sites="decoder")
    assert source.sites == ["decoder.l0", "decoder.l1"]
    rows = source.extract(UD_LIKE[:2])
    assert {k: tuple(v.shape) for k, v in rows.items()} == {"decoder.l0": (12, 20), "decoder.l1": (12, 20)}
    assert bool(torch.isfinite(rows["decoder.l1"]).all())
    forced = source.decoder_states([["The", "old", "dog", "sleeps", "."]], [["Der", "alte", "Hund", "."]])
    assert forced[0]["decoder.l1"].shape == (4, 20)
    own = source.decoder_states([["The", "old", "dog", "sleeps", "."]])
    assert own[0]["decoder.l0"].shape[0] >= 1


def test_subword_vocabulary_gives_one_row_per_word(tmp_path: Path) -> None:
    root = tiny_multi30k(tmp_path / "data")
    torch.manual_seed(0)
    module = NMTModule(**TINY, input_feed=True)
    dm = module.make_datamodule({"root": str(root), **DATA, "subword": "bpe", "subword_vocab": 40})
    trainer = fit(module, dm, epochs=1)
    trainer.save_checkpoint(tmp_path / "bpe.ckpt")
    source = NMTNeurons(tmp_path / "bpe.ckpt", sites="all", aggregation="mean")
    assert source.src_vocab.subword == "bpe"
    assert sum(source.lengths(UD_LIKE)) > 13 + 3  # more pieces than words (+ <eos>)
    rows = source.extract(UD_LIKE)
    assert all(v.shape == (13, 20) for v in rows.values())
    batch = next(iter(dm.val_dataloader()))
    with torch.no_grad():
        assert torch.equal(module.model.greedy(batch["src"], batch["src_len"]).tokens,
                           module.model.beam_search(batch["src"], batch["src_len"], 1).tokens)


def compose_train(overrides: list[str]) -> Any:
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


def tiny_overrides(root: Path, out: Path) -> list[str]:
    return ["model=nmt_lstm", "data=multi30k", f"data.root={root}", "data.download=false", "data.min_freq=1",
            "data.batch_size=16", "model.emb_dim=16", "model.hidden=12", "model.beam_size=3", "trainer=debug",
            "logger=csv", f"output_dir={out}"]


def test_train_py_writes_results_checkpoints_and_resumes(tmp_path: Path) -> None:
    root = tiny_multi30k(tmp_path / "data")
    res = train(compose_train(tiny_overrides(root, tmp_path / "run")))
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["test"]["bleu"] == pytest.approx(res["test"]["bleu"]) and "bleu_greedy" in saved["test"]
    assert {"bleu", "loss", "perplexity"} <= set(saved["val"]) and saved["train_seconds"] > 0
    ckpt = Path(saved["checkpoint"])
    assert ckpt.exists() and (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()
    assert NMTNeurons(ckpt).arch["hidden"] == 12  # the checkpoint train.py wrote loads with weights_only
    resumed = train(compose_train(tiny_overrides(root, tmp_path / "run2")
                                  + [f"ckpt_path={tmp_path / 'run' / 'checkpoints' / 'last.ckpt'}",
                                     "trainer.max_epochs=2"]))
    assert torch.load(resumed["checkpoint"], weights_only=True)["epoch"] == 1
    with pytest.raises(ConfigError, match="vocabulary|src_vocab"):
        train(compose_train(tiny_overrides(root, tmp_path / "run3")
                            + [f"ckpt_path='{ckpt}'", "data.min_freq=50", "trainer.max_epochs=2"]))


def test_analyze_py_extracts_encoder_neurons_of_a_checkpoint(trained: dict[str, Any], tmp_path: Path) -> None:
    from neuroscope.analysis import analyze

    def cfg(*extra: str) -> Any:
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
            return compose(config_name="analyze", overrides=[
                "model=nmt_lstm", f"task.file={tiny_conllu(tmp_path / 'tiny.conllu')}", "logger=none",
                f"store.root={tmp_path / 'stores'}", f"output_dir={tmp_path / 'out'}", "store.progress=false",
                *extra])

    res = analyze(cfg(f"model.checkpoint={trained['ckpt']}"))
    assert res["store"]["n_tokens"] == 100 and res["store"]["sites"][0] == "encoder.l0.fwd"
    assert res["store"]["n_neurons"] == 4 * 20
    manifest = ActivationStore(res["store"]["path"]).manifest
    assert manifest["extraction_stats"]["unknown_words"] == 50  # cats, sleep, ca, n't, run (x 10)
    assert res["store"]["unknown_words"] == 50  # reported in results.json too
    with pytest.raises(ConfigError, match="needs a trained checkpoint"):
        analyze(cfg())


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, HYDRA_FULL_ERROR="0", NEUROSCOPE_DATA=str(SHARED_DATA))
    return subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=1800)


@pytest.mark.slow
@needs_multi30k
def test_multirun_seeds_give_models_that_differ_only_in_seed(tmp_path: Path) -> None:
    """`train.py --multirun model=nmt_lstm seed=1,2 trainer=debug` on the real data."""
    proc = _cli(["--multirun", "model=nmt_lstm", "seed=1,2", "trainer=debug", "logger=none",
                 f"hydra.sweep.dir={tmp_path / 'multi'}"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = sorted((tmp_path / "multi").glob("*/results.json"))
    assert len(runs) == 2
    cfgs = [OmegaConf.to_container(OmegaConf.load(r.parent / "config.yaml")) for r in runs]
    for c in cfgs:  # the run folders differ, by design
        c.pop("output_dir")
        c["trainer"].pop("default_root_dir", None)
    assert [c.pop("seed") for c in cfgs] == [1, 2] and cfgs[0] == cfgs[1]
    ckpts = [torch.load(json.loads(r.read_text())["checkpoint"], weights_only=True) for r in runs]
    assert ckpts[0]["neuroscope"] == ckpts[1]["neuroscope"]  # same architecture and vocabularies
    weights = [c["state_dict"]["model.encoder.layers.0.weight_ih_l0"] for c in ckpts]
    assert not torch.equal(*weights)


@pytest.mark.slow
@needs_multi30k
def test_real_data_debug_training_and_upos_extraction(tmp_path: Path) -> None:
    """The default config on the real data for a few batches, then its encoder neurons on UD EWT dev."""
    res = train(compose_train(["model=nmt_lstm", "trainer=debug", "logger=none", f"output_dir={tmp_path / 't'}",
                               f"data.root={SHARED_DATA}"]))
    assert set(res["test"]) == {"bleu", "bleu_greedy", "loss", "perplexity"}
    source = NMTNeurons(res["checkpoint"])
    ud = [["The", "cats", "do", "n't", "sleep", "outdoors", "."], ["Qwertyuiop", "walks", "."]]
    rows = source.extract(ud)
    assert all(v.shape == (10, 256) for v in rows.values()) and source.stats()["unknown_words"] >= 2
