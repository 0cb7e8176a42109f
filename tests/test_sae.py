"""Sparse autoencoders on a store site (neuroscope/sae/): a planted feature is found by one latent and
by no single neuron, FVU is low on data sparse in some basis, seeded runs are identical, the saved
folder loads in SAELens with the same latents (and SAELens' own SAEs load here), and
`train.py model=sae sae.site=...` writes results.json and the sae/ folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch import Tensor

from neuroscope.errors import ConfigError
from neuroscope.sae.config import SAEConfig
from neuroscope.sae.data import SiteTokens
from neuroscope.sae.model import SparseAutoencoder
from neuroscope.sae.saelens import load_sae, save_sae
from neuroscope.sae.site import FolderEncoder
from neuroscope.sae.training import SAEModule
from neuroscope.store import ActivationStore, extract
from tests.conftest import REPO
from tests.fixture_corpus import distinct_conllu


class RowSource:
    """A NeuronSource serving fixed rows: word `t<i>` has row i of `x` at site `layer1`."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = torch.from_numpy(x.astype(np.float32))
        self.sites, self.units = ["layer1"], {"layer1": x.shape[1]}

    def fingerprint(self) -> dict[str, Any]:
        return {"fake": "rows", "sum": float(self.x.double().sum()), "shape": list(self.x.shape)}

    def extract(self, sentences: list[list[str]]) -> dict[str, Tensor]:
        return {"layer1": self.x[[int(w[1:]) for s in sentences for w in s]]}


def row_store(x: np.ndarray, root: Path) -> ActivationStore:
    """A store of `x` [tokens, d_in] as the site `layer1`, in sentences of 10 tokens, several shards."""
    words = [f"t{i}" for i in range(len(x))]
    sentences = [words[i:i + 10] for i in range(0, len(words), 10)]
    store, _ = extract(RowSource(x), sentences, root, shard_tokens=1000, batch_tokens=500, progress=False)
    return store


def split_of(n: int, seed: int = 0) -> np.ndarray:
    """[n] split ids by sentence of 10 tokens: 80 % train, 10 % dev, 10 % test."""
    sent = np.random.default_rng(seed).choice(3, size=-(-n // 10), p=[0.8, 0.1, 0.1])
    return np.repeat(sent, 10)[:n].astype(np.int8)


def fit(store: ActivationStore, split: np.ndarray, epochs: int, **settings: Any) -> SAEModule:
    """An SAE trained on `layer1` for `epochs` passes (no logger, no checkpoints)."""
    cfg = SAEConfig.from_dict({"site": "layer1", "batch_tokens": 256, "buffer_tokens": 2048, "lr": 3e-3,
                               "dead_tokens": 5000, **settings})
    module = SAEModule(store, "layer1", split, cfg)
    trainer = pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, deterministic=True, accelerator="cpu", num_sanity_val_steps=0)
    trainer.fit(module, datamodule=module.make_datamodule())
    return module


def sparse_data(n: int, d_in: int, atoms: int, active: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x [n, d_in], dictionary [atoms, d_in] of unit rows, codes [n, atoms]): `active` atoms per token."""
    rng = np.random.default_rng(seed)
    dic = rng.normal(size=(atoms, d_in))
    dic /= np.linalg.norm(dic, axis=1, keepdims=True)
    codes = np.zeros((n, atoms))
    for i in range(n):
        codes[i, rng.choice(atoms, size=active, replace=False)] = rng.uniform(0.5, 1.5, size=active)
    return codes @ dic, dic, codes


def precision_recall(score: np.ndarray, truth: np.ndarray, threshold: float) -> tuple[float, float]:
    pred = score > threshold
    tp = float((pred & truth).sum())
    return tp / max(pred.sum(), 1), tp / max(truth.sum(), 1)


def test_a_planted_feature_gets_a_latent_and_no_neuron(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n, d_in = 8000, 64
    background, _, _ = sparse_data(n, d_in, atoms=128, active=4, seed=1)  # 4 other features per token
    d = rng.normal(size=d_in)
    d /= np.linalg.norm(d)  # the planted direction mixes every neuron
    on = rng.random(n) < 0.08
    x = background + 0.05 * rng.normal(size=(n, d_in)) + np.outer(on * rng.uniform(1.5, 2.5, size=n), d)
    split = split_of(n)
    module = fit(row_store(x, tmp_path / "stores"), split, epochs=12, k=4, expansion=4)
    held = split == 2
    z = module.raw_sae().encode(torch.from_numpy(x[held]).float()).detach().numpy()  # [tokens, d_sae]
    truth = on[held]
    fires = z > 0
    tp = (fires & truth[:, None]).sum(0)
    precision = tp / np.maximum(fires.sum(0), 1)
    recall = tp / truth.sum()
    best = int(np.argmax(np.where(precision >= 0.9, recall, 0)))
    assert precision[best] >= 0.9 and recall[best] >= 0.9, (precision[best], recall[best])
    # every neuron (either sign), thresholded to reach the same recall, is far less precise
    for sign in (1, -1):
        for j in range(d_in):
            score = sign * x[held, j]
            cut = np.quantile(score[truth], 1 - recall[best])
            p, _ = precision_recall(score, truth, cut - 1e-12)
            assert p < 0.7, (j, sign, p)  # the best neuron: 0.50


def test_fvu_is_low_on_sparse_data_and_seeded_runs_are_identical(tmp_path: Path) -> None:
    x, _, _ = sparse_data(6000, 16, atoms=40, active=2, seed=3)
    store, split = row_store(x, tmp_path / "stores"), split_of(len(x), seed=1)
    a = fit(store, split, epochs=10, k=4, seed=5, batch_tokens=64)
    b = fit(store, split, epochs=10, k=4, seed=5, batch_tokens=64)
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(pa, pb), name
    trainer = pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu")
    test = trainer.test(a, datamodule=a.make_datamodule(), verbose=False)[0]
    train = x[split == 0] - x[split == 0].mean(0)
    top4 = np.linalg.svd(train, full_matrices=False)[2][:4]  # [4, d_in]: PCA with as many dims as k
    held = x[split == 2] - x[split == 2].mean(0)
    pca_fvu = float(((held - held @ top4.T @ top4) ** 2).sum() / (held ** 2).sum())
    assert test["test/fvu"] < 0.12 and test["test/fvu"] < 0.2 * pca_fvu and test["test/mean_l0"] <= 4
    assert test["test/tokens"] == (split == 2).sum()
    # FVU by hand on the raw test tokens with the saved (scale-folded) SAE
    raw = torch.from_numpy(x[split == 2]).float()
    fvu = float(((a.raw_sae()(raw) - raw) ** 2).sum() / ((raw - raw.mean(0)) ** 2).sum())
    assert fvu == pytest.approx(test["test/fvu"], rel=1e-3)
    relu = fit(store, split, epochs=5, architecture="relu", l1_coefficient=0.3, seed=5)
    assert float(relu.sae.W_dec.norm(dim=1).sub(1).abs().max()) < 1e-5  # unit decoder rows
    assert relu.raw_sae().encode(raw).gt(0).float().sum(1).mean() < 0.5 * relu.sae.d_sae


def test_the_stream_covers_each_token_once_and_shuffles_by_epoch(tmp_path: Path) -> None:
    x = np.arange(3000, dtype=np.float32)[:, None].repeat(2, 1)  # row i = (i, i)
    store = row_store(x, tmp_path / "stores")
    mask = split_of(len(x)) == 0
    epoch = [0]
    ds = SiteTokens(store, "layer1", mask, batch_tokens=100, shuffle=True, seed=1, buffer_tokens=400,
                    epoch=lambda: epoch[0])
    first = torch.cat(list(ds))[:, 0].numpy()
    assert sorted(first.tolist()) == np.nonzero(mask)[0].tolist() and len(list(ds)) == len(ds)
    assert np.array_equal(first, torch.cat(list(ds))[:, 0].numpy())  # the same epoch: the same order
    epoch[0] = 1
    assert not np.array_equal(first, torch.cat(list(ds))[:, 0].numpy())
    ordered = SiteTokens(store, "layer1", mask, batch_tokens=100)
    assert torch.cat(list(ordered))[:, 0].numpy().tolist() == np.nonzero(mask)[0].tolist()


def test_max_tokens_ends_training(tmp_path: Path) -> None:
    x, _, _ = sparse_data(3000, 8, atoms=16, active=2, seed=0)
    split = split_of(len(x))
    module = fit(row_store(x, tmp_path / "stores"), split, epochs=50, k=2, max_tokens=1000)
    assert int(module.tokens_seen) == 1024 and module.current_epoch <= 1  # 4 batches of 256, then stop
    assert int(module.trainer.global_step) == 4


def random_sae(arch: str, seed: int = 0, **kw: Any) -> SparseAutoencoder:
    sae = SparseAutoencoder(12, 40, arch, k=5, seed=seed, **kw)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in sae.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g))
    return sae


@pytest.mark.parametrize("arch", ["topk", "relu"])
def test_saved_sae_loads_in_saelens_and_here_with_the_same_latents(arch: str, tmp_path: Path) -> None:
    sae_lens = pytest.importorskip("sae_lens")
    ours = random_sae(arch)
    save_sae(ours, tmp_path / "sae", {"hook_name": "layer2"})
    x = torch.randn(64, 12, generator=torch.Generator().manual_seed(9))
    theirs = sae_lens.SAE.load_from_disk(tmp_path / "sae")
    assert theirs.cfg.architecture() == ("topk" if arch == "topk" else "standard")
    assert theirs.cfg.metadata.hook_name == "layer2"
    with torch.no_grad():
        torch.testing.assert_close(theirs.encode(x), ours.encode(x), atol=1e-5, rtol=0)
        torch.testing.assert_close(theirs(x), ours(x), atol=1e-5, rtol=0)
        back = load_sae(tmp_path / "sae")
        for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
            assert torch.equal(getattr(back, name), getattr(ours, name)), name
        assert back.architecture == ours.architecture and (arch == "relu" or back.k == ours.k)
        assert torch.equal(back.encode(x), ours.encode(x))


@pytest.mark.parametrize("arch,extra", [("standard", {}), ("topk", {"k": 7}),
                                        ("topk", {"k": 7, "rescale_acts_by_decoder_norm": True,
                                                  "apply_b_dec_to_input": False})])
def test_saes_saved_by_saelens_load_with_the_same_latents(arch: str, extra: dict, tmp_path: Path) -> None:
    sae_lens = pytest.importorskip("sae_lens")
    cfg_cls, sae_cls = ((sae_lens.StandardSAEConfig, sae_lens.StandardSAE) if arch == "standard"
                        else (sae_lens.TopKSAEConfig, sae_lens.TopKSAE))
    theirs = sae_cls(cfg_cls(d_in=10, d_sae=30, **extra))
    g = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    theirs.save_model(tmp_path / "theirs")
    ours = load_sae(tmp_path / "theirs")
    x = torch.randn(50, 10, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(ours.encode(x), theirs.encode(x), atol=1e-5, rtol=0)
        torch.testing.assert_close(ours(x), theirs(x), atol=1e-5, rtol=1e-5)
    assert ours.encode(x).gt(0).sum(1).max() <= extra.get("k", 30)


def test_bad_sae_folders_and_settings_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not an SAE folder"):
        load_sae(tmp_path)
    save_sae(random_sae("topk"), tmp_path / "s")
    cfg = json.loads((tmp_path / "s" / "cfg.json").read_text())
    (tmp_path / "s" / "cfg.json").write_text(json.dumps({**cfg, "architecture": "jumprelu"}))
    with pytest.raises(ConfigError, match=r"cfg.json: architecture 'jumprelu' is not supported"):
        load_sae(tmp_path / "s")
    (tmp_path / "s" / "cfg.json").write_text(json.dumps({**cfg, "d_sae": 41}))
    with pytest.raises(ConfigError, match=r"W_enc must have shape \(12, 41\)"):
        load_sae(tmp_path / "s")
    old = {k: v for k, v in cfg.items() if k not in ("architecture", "k")}  # a pre-6.0 SAELens cfg.json
    (tmp_path / "s" / "cfg.json").write_text(json.dumps({**old, "activation_fn": "topk",
                                                          "activation_fn_kwargs": {"k": 5}}))
    x = torch.randn(20, 12)
    assert torch.equal(load_sae(tmp_path / "s").encode(x), random_sae("topk").encode(x))
    with pytest.raises(ConfigError, match="sae.site: which site"):
        SAEConfig.from_dict({})
    with pytest.raises(ConfigError, match="sae.architecture: 'gated'"):
        SAEConfig.from_dict({"site": "layer1", "architecture": "gated"})
    with pytest.raises(ConfigError, match=r"sae.colour: not a setting"):
        SAEConfig.from_dict({"site": "layer1", "colour": 1})
    with pytest.raises(ConfigError, match="sae.k: expected a positive integer"):
        SAEConfig.from_dict({"site": "layer1", "k": 0})


def test_train_py_model_sae_writes_results_and_the_sae_folder(tmp_path: Path, tiny_bert: Path) -> None:
    from hydra import compose, initialize_config_dir

    from neuroscope.training import train

    corpus = distinct_conllu(tmp_path / "a.conllu", n=60)
    common = ["model=sae", f"task.file={corpus}", "model.source.name=transformer", f"+model.source.path={tiny_bert}",
              f"model.store.root={tmp_path / 'stores'}", "model.store.progress=false", "sae.batch_tokens=32",
              "sae.k=4", "trainer=cpu", "trainer.max_epochs=2", "trainer.enable_progress_bar=false", "logger=csv"]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[*common, "sae.site=layer1", f"output_dir={tmp_path / 'run'}"])
        bad = compose(config_name="train", overrides=[*common, "sae.site=layer9", f"output_dir={tmp_path / 'bad'}",
                                                      f"model.store.root={tmp_path / 'stores2'}"])
    res = train(cfg)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert set(saved["test"]) >= {"fvu", "mean_l0", "dead", "dense"} and "fvu" in saved["val"]
    assert saved["test"]["mean_l0"] <= 4 and saved["train_seconds"] > 0 and saved["d_sae"] == 8 * 16
    folder = Path(res["sae"])
    assert folder == tmp_path / "run" / "sae" and (folder / "sae_weights.safetensors").is_file()
    meta = json.loads((folder / "cfg.json").read_text())
    assert meta["architecture"] == "topk" and meta["k"] == 4 and meta["metadata"]["hook_name"] == "layer1"
    store = ActivationStore(meta["metadata"]["neuroscope"]["store"])
    sae = load_sae(folder)
    z = sae.encode(torch.from_numpy(store.read(["layer1"])))
    assert z.shape == (store.n_tokens, 128) and bool((z.gt(0).sum(1) <= 4).all())
    # the folder serves as `model.sae` for a latent site
    np.testing.assert_array_equal(FolderEncoder(folder).encode_numpy(store.read(["layer1"])), z.detach().numpy())
    for _ in range(2):  # refused before extraction (no store built), and by the module on the store
        with pytest.raises(ConfigError, match=r"sae.site: the store has no site 'layer9'; sites: \['embeddings'"):
            train(bad)
        assert not list((tmp_path / "stores2").glob("*/manifest.json"))
        bad.model.store.root = str(tmp_path / "stores")


def test_a_resumed_run_equals_an_uninterrupted_one(tmp_path: Path, tiny_bert: Path) -> None:
    from hydra import compose, initialize_config_dir

    from neuroscope.training import train

    corpus = distinct_conllu(tmp_path / "a.conllu", n=60)
    common = ["model=sae", f"task.file={corpus}", "model.source.name=transformer", f"+model.source.path={tiny_bert}",
              f"model.store.root={tmp_path / 'stores'}", "model.store.progress=false", "sae.batch_tokens=32",
              "sae.k=4", "sae.site=layer2", "sae.dead_tokens=100", "trainer=cpu", "trainer.enable_progress_bar=false",
              "logger=none", "early_stopping_patience=null"]

    def run(name: str, epochs: int, *extra: str) -> dict[str, Tensor]:
        with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
            cfg = compose(config_name="train", overrides=[*common, f"trainer.max_epochs={epochs}",
                                                          f"output_dir={tmp_path / name}", *extra])
        train(cfg)
        last = torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)
        assert last["epoch"] == epochs - 1
        return last["state_dict"]  # the SAE after the last epoch, its counters and scale

    straight = run("straight", 3)
    run("first", 2)
    resumed = run("resumed", 3, f"ckpt_path={tmp_path / 'first' / 'checkpoints' / 'last.ckpt'}")
    assert set(resumed) == set(straight) >= {"sae.W_enc", "since_fired", "tokens_seen", "scale"}
    for name, value in straight.items():
        torch.testing.assert_close(resumed[name], value, atol=1e-6, rtol=0, msg=name)
