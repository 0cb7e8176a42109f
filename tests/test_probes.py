"""Probe objective, training paths (in-memory, streaming, Lightning) and metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from neuroscope.errors import ConfigError
from neuroscope.probes import ArrayChunks, ProbeConfig, StoreChunks, evaluate, fit_probe
from neuroscope.probes.data import moments
from neuroscope.probes.lightning import fit_probe_lightning, probe_loss
from neuroscope.probes.probe import Adam, gradients, penalty, scores
from neuroscope.store import extract
from tests.fakes import HashNeurons


@pytest.mark.parametrize("penalty", ["elastic", "neurox"])
@pytest.mark.parametrize("standardized", [False, True])
def test_closed_form_gradient_equals_autograd_of_the_loss(penalty: str, standardized: bool) -> None:
    """NumPy gradient (standardization folded into the weights) == torch autograd of the loss on
    explicitly standardized inputs."""
    g = torch.Generator().manual_seed(0)
    w, b = torch.randn(3, 7, generator=g, requires_grad=True), torch.randn(3, generator=g, requires_grad=True)
    x, y = torch.randn(50, 7, generator=g) * 3 + 2, torch.randint(0, 3, (50,), generator=g)
    mean, std = (x.mean(0), x.std(0)) if standardized else (torch.zeros(7), torch.ones(7))
    cfg = ProbeConfig(lambda1=0.01, lambda2=0.05, penalty=penalty, proximal=False)
    probe_loss(((x - mean) / std) @ w.T + b, y, w, cfg).backward()
    stats = (mean.numpy(), (1 / std).numpy()) if standardized else (None, None)
    gw, gb = gradients(w.detach().numpy(), b.detach().numpy(), x.numpy(), y.numpy(), cfg, *stats)
    np.testing.assert_allclose(gw, w.grad.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gb, b.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_adam_matches_torch_adam() -> None:
    rng = np.random.default_rng(0)
    p = rng.normal(size=(4, 6)).astype(np.float32)
    tp = torch.nn.Parameter(torch.from_numpy(p.copy()))
    ours, theirs = Adam([p]), torch.optim.Adam([tp], lr=0.05)
    for lr in (0.05, 0.05, 0.02, 0.02, 0.01):
        grad = rng.normal(size=p.shape).astype(np.float32)
        ours.step([grad], lr)
        for group in theirs.param_groups:
            group["lr"] = lr
        tp.grad = torch.from_numpy(grad.copy())
        theirs.step()
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_proximal_step_soft_thresholds_in_adams_metric() -> None:
    """Adam step, then each weight shrinks towards 0 by step * l1 / denom and stops at exactly 0."""
    p = np.array([[0.5, -0.5, 0.001, -0.002]], dtype=np.float32)
    grad = np.array([[0.1, -0.1, 0.0, 0.0]], dtype=np.float32)
    plain, prox = p.copy(), p.copy()
    Adam([plain]).step([grad], 0.001)
    Adam([prox]).step([grad], 0.001, l1=0.5)
    step = 0.001 / (1 - 0.9)  # lr over Adam's first bias correction
    denom = np.sqrt((1 - 0.999) * grad ** 2) / np.sqrt(1 - 0.999) + 1e-8  # after one step
    want = np.sign(plain) * np.maximum(np.abs(plain) - step * 0.5 / denom, 0)
    np.testing.assert_allclose(prox, want, rtol=1e-5)
    assert prox[0, 0] == pytest.approx(0.499 - 0.05, abs=1e-5) and prox[0, 1] == pytest.approx(-0.449, abs=1e-5)
    assert prox[0, 2] == 0 and prox[0, 3] == 0 and 0 < abs(prox[0, 0]) < abs(plain[0, 0])


def test_proximal_probe_zeroes_uninformative_weights_and_keeps_the_informative() -> None:
    x, y = separable()
    cfg = ProbeConfig(seed=0, lambda1=0.01, lambda2=0.0)
    probe, _ = fit_probe(ArrayChunks(x[:1600], y[:1600]), 3, cfg, ArrayChunks(x[1600:1800], y[1600:1800]))
    assert (np.abs(probe.weight[:, [0, 5]]).max(0) > 0.2).all()  # both informative neurons kept
    assert (probe.weight[:, [1, 2, 3, 4, 6, 7, 8, 9, 10, 11]] == 0).mean() > 0.5  # exact zeros, not just small
    subgradient, _ = fit_probe(ArrayChunks(x[:1600], y[:1600]), 3, cfg.with_(proximal=False),
                               ArrayChunks(x[1600:1800], y[1600:1800]))
    assert (subgradient.weight == 0).mean() == 0  # the subgradient only makes them small
    assert evaluate(probe, ArrayChunks(x[1800:], y[1800:]), 3)["accuracy"] > 0.95


def test_penalties_differ_as_documented() -> None:
    w = torch.tensor([[3.0, -4.0]])
    for cfg in (ProbeConfig(lambda1=1.0, lambda2=1.0), ProbeConfig(lambda1=1.0, lambda2=1.0, penalty="neurox")):
        assert float(penalty(w.numpy(), cfg)) == pytest.approx(float(penalty(w, cfg)))  # NumPy == torch
    logits, y = torch.zeros(1, 1), torch.zeros(1, dtype=torch.long)
    base = 0.0  # cross-entropy of a single class is 0
    elastic = probe_loss(logits, y, w, ProbeConfig(lambda1=1.0, lambda2=1.0))
    neurox = probe_loss(logits, y, w, ProbeConfig(lambda1=1.0, lambda2=1.0, penalty="neurox"))
    assert elastic.item() == pytest.approx(base + 7 + 25) and neurox.item() == pytest.approx(base + 7 + 5)
    with pytest.raises(ConfigError, match="probe.penalty"):
        ProbeConfig(penalty="l3")
    with pytest.raises(ConfigError, match="unknown setting"):
        ProbeConfig.from_dict({"lambda": 1})


def separable(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, 12)).astype(np.float32)
    x[:, 0] += 6 * (y == 0)
    x[:, 5] += 6 * (y == 1)
    return x, y


def test_probe_learns_separable_data_with_early_stopping() -> None:
    x, y = separable()
    probe, info = fit_probe(ArrayChunks(x[:1600], y[:1600]), 3, ProbeConfig(seed=0, batch_size=128),
                            ArrayChunks(x[1600:1800], y[1600:1800]))
    scores = evaluate(probe, ArrayChunks(x[1800:], y[1800:]), 3, per_class=True)
    assert scores["accuracy"] > 0.95 and scores["macro_f1"] > 0.95 and len(scores["per_class"]) == 3
    assert info["best_epoch"] < info["epochs"] and len(info["dev_accuracy"]) == info["epochs"]


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    x, y = separable()
    data = ArrayChunks(x, y)
    a, _ = fit_probe(data, 3, ProbeConfig(seed=1, epochs=3))
    b, _ = fit_probe(data, 3, ProbeConfig(seed=1, epochs=3))
    c, _ = fit_probe(data, 3, ProbeConfig(seed=2, epochs=3))
    assert np.array_equal(a.weight, b.weight) and not np.array_equal(a.weight, c.weight)


def test_streaming_and_in_memory_training_give_the_same_weights(tmp_path: Path) -> None:
    sentences = [[f"w{i % 7}_{j}" for j in range(3 + i % 5)] for i in range(300)]
    store, _ = extract(HashNeurons(units=5), sentences, tmp_path, shard_tokens=200, progress=False)
    labels = np.arange(store.n_tokens) % 3
    mask = np.arange(store.n_tokens) % 4 != 0
    streamed = StoreChunks(store, mask, labels)
    assert streamed.n_chunks > 3
    in_memory = streamed.load()
    assert in_memory.boundaries == streamed.boundaries() and in_memory.n_tokens == int(mask.sum())
    cfg = ProbeConfig(seed=3, epochs=3, batch_size=64)
    dev = StoreChunks(store, ~mask, labels)
    a, _ = fit_probe(streamed, 3, cfg, dev)
    b, _ = fit_probe(in_memory, 3, cfg, dev.load())
    np.testing.assert_allclose(a.weight, b.weight, rtol=0, atol=1e-6)
    np.testing.assert_allclose(a.mean, b.mean)


def test_lightning_module_trains_the_same_probe() -> None:
    x, y = separable(600)
    cfg = ProbeConfig(seed=0, epochs=2, batch_size=100, patience=0, proximal=False)  # autograd: L1 subgradient
    fast, _ = fit_probe(ArrayChunks(x, y), 3, cfg)
    lit, _ = fit_probe_lightning(ArrayChunks(x, y), 3, cfg)
    np.testing.assert_allclose(fast.weight, lit.weight, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fast.bias, lit.bias, rtol=1e-4, atol=1e-5)


def test_lightning_backend_trains_the_same_proximal_probe_with_early_stopping() -> None:
    x, y = separable(900)
    train, dev = ArrayChunks(x[:600], y[:600]), ArrayChunks(x[600:], y[600:])
    cfg = ProbeConfig(seed=0, epochs=4, batch_size=100, lambda1=1e-2)  # proximal L1 (exact zeros), dev plateaus
    fast, fast_info = fit_probe(train, 3, cfg, dev)
    lit, lit_info = fit_probe(train, 3, cfg.with_(backend="lightning"), dev)  # dispatched by probe.backend
    np.testing.assert_allclose(fast.weight, lit.weight, rtol=0, atol=1e-6)
    assert np.count_nonzero(fast.weight == 0) == np.count_nonzero(lit.weight == 0) > 0
    assert fast_info["best_epoch"] == lit_info["best_epoch"]
    np.testing.assert_allclose(fast_info["dev_accuracy"], lit_info["dev_accuracy"], atol=1e-6)


def neurox_config() -> ProbeConfig:
    """conf/probe/neurox.yaml as a study reads it (NeuroX's settings: shuffle false, batch 32, constant lr)."""
    from omegaconf import OmegaConf

    params = OmegaConf.to_container(OmegaConf.load(Path(__file__).parents[1] / "conf" / "probe" / "neurox.yaml"))
    for key in ("selection", "save", "load"):
        params.pop(key)
    return ProbeConfig.from_dict(params)


@pytest.mark.parametrize("with_dev", [False, True])
def test_lightning_backend_trains_the_neurox_probe_of_the_numpy_loop(with_dev: bool) -> None:
    """probe=neurox: unshuffled batches in data order and a constant lr (with a dev split the
    Lightning backend used to fail on ReduceLROnPlateau(factor=1)); weights equal to 1e-6."""
    cfg = neurox_config()
    assert (cfg.shuffle, cfg.lr_decay, cfg.batch_size) == (False, 1.0, 32)
    x, y = separable(900)
    order = np.argsort(y, kind="stable")  # a corpus in label blocks: the data order matters
    train = ArrayChunks(x[order][:600], y[order][:600])
    dev = ArrayChunks(x[600:], y[600:]) if with_dev else None
    fast, fast_info = fit_probe(train, 3, cfg.with_(epochs=3), dev)
    lit, lit_info = fit_probe(train, 3, cfg.with_(epochs=3, backend="lightning"), dev)
    np.testing.assert_allclose(fast.weight, lit.weight, rtol=0, atol=1e-6)
    np.testing.assert_allclose(fast.bias, lit.bias, rtol=0, atol=1e-6)
    assert fast_info["best_epoch"] == lit_info["best_epoch"]


@pytest.mark.parametrize("shuffle", [True, False])
def test_lightning_backend_draws_the_numpy_loops_batches_in_the_same_order(
        shuffle: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every batch of every epoch, in order: the same rows (tracked by a row-id label) for both backends."""
    import pytorch_lightning as pl

    import neuroscope.probes.probe as probe_module

    n = 250
    x = np.random.default_rng(0).normal(size=(n, 3)).astype(np.float32)
    ids = np.arange(n)  # the label is the row id: a batch's labels name its rows
    cfg = ProbeConfig(seed=4, epochs=3, batch_size=32, shuffle=shuffle, patience=0)
    seen_numpy: list[list[int]] = []
    real = probe_module.gradients

    def recording(w, b, xb, yb, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        seen_numpy.append(yb.tolist())
        return real(w, b, xb, yb, *args, **kwargs)

    monkeypatch.setattr(probe_module, "gradients", recording)
    fit_probe(ArrayChunks(x, ids, boundaries=[0, 100, n]), n, cfg)

    seen_lightning: list[list[int]] = []

    class Record(pl.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):  # noqa: ANN001, ANN202
            seen_lightning.append(batch[1].tolist())

    fit_probe_lightning(ArrayChunks(x, ids, boundaries=[0, 100, n]), n, cfg, callbacks=[Record()])
    assert len(seen_numpy) == 3 * (4 + 5) and seen_lightning == seen_numpy
    if shuffle:
        assert seen_numpy[:9] != seen_numpy[9:18] and seen_numpy[0] != list(range(32))  # reshuffled each epoch
    else:
        assert seen_numpy[:9] == seen_numpy[9:18] and seen_numpy[0] == list(range(32))  # NeuroX: data order


def test_moments_are_exact_over_chunks() -> None:
    x = np.random.default_rng(0).normal(3, 2, size=(1000, 4)).astype(np.float32)
    x[:, 3] = 7.0  # constant neuron: std 1 to avoid division by zero
    mean, std = moments(ArrayChunks(x, np.zeros(1000), [0, 100, 550, 1000]))
    np.testing.assert_allclose(mean, x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(std[:3], x.std(0)[:3], rtol=1e-4)
    assert std[3] == 1.0


def test_moments_are_computed_once_and_shared_by_column_subsets_and_relabellings() -> None:
    """A study computes the train rows' moments once: column subsets take theirs sliced (equal to
    computing them afresh), relabelled copies share them, and the gather keeps the columns' values."""
    rng = np.random.default_rng(1)
    x = rng.normal(2, 3, size=(900, 12)).astype(np.float32)
    root = ArrayChunks(x, rng.integers(0, 3, 900), [0, 400, 900], index=np.arange(900))
    assert root.stats is None
    mean, std = moments(root)
    assert root.stats is not None and moments(root)[0] is mean  # cached, not recomputed
    cols = np.array([0, 3, 4, 11])
    sub = root.columns(cols)
    np.testing.assert_array_equal(sub.x, x[:, cols])
    np.testing.assert_array_equal(sub.stats[0], mean[cols])
    fresh = moments(ArrayChunks(x[:, cols], root.y, root.boundaries))
    np.testing.assert_allclose(sub.stats[0], fresh[0], rtol=1e-6)
    np.testing.assert_allclose(sub.stats[1], fresh[1], rtol=1e-6)
    assert root.relabel(np.zeros(900, dtype=np.int64)).stats is root.stats


def test_populated_empty_is_a_plain_writable_array() -> None:
    from neuroscope.probes.data import populated_empty

    big = populated_empty((2**20 * 17, 1), np.float32)  # 68 MiB: the MAP_POPULATE path on Linux
    small = populated_empty((3, 4), np.float64)
    for a, shape, dtype in ((big, (2**20 * 17, 1), np.float32), (small, (3, 4), np.float64)):
        assert a.shape == shape and a.dtype == dtype and a.flags.writeable and a.flags.c_contiguous
        a[-1] = 7
        assert a[-1, 0] == 7
    del big  # the map goes with its array


def test_keep_zeroes_the_other_neurons() -> None:
    x, y = separable()
    probe, _ = fit_probe(ArrayChunks(x, y), 3, ProbeConfig(seed=0, epochs=20, batch_size=256, lr=1e-2))
    kept = probe.keep(np.array([0, 5]))
    assert np.count_nonzero(kept.weight[:, [1, 2, 3, 4, 6]]) == 0
    assert evaluate(kept, ArrayChunks(x, y), 3)["accuracy"] > 0.9
    assert evaluate(probe.keep(np.array([2])), ArrayChunks(x, y), 3)["accuracy"] < 0.5


def test_scores_equal_torchmetrics_including_absent_classes() -> None:
    from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        n = int(torch.randint(2, 9, (1,), generator=g))
        k = int(torch.randint(1, 50, (1,), generator=g))
        gold = torch.randint(0, max(1, n - 2), (k,), generator=g)  # some classes never occur
        preds = torch.randint(0, n, (k,), generator=g)
        got = scores(preds.numpy(), gold.numpy(), n, per_class=True)
        assert got["accuracy"] == pytest.approx(float(multiclass_accuracy(preds, gold, n, average="micro")), abs=1e-6)
        assert got["macro_f1"] == pytest.approx(float(multiclass_f1_score(preds, gold, n, average="macro")), abs=1e-6)
        want = multiclass_accuracy(preds, gold, n, average="none").tolist()
        assert got["per_class"] == pytest.approx(want, abs=1e-6)


def test_store_chunks_split_shards_into_bounded_row_ranges(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sentences = [[f"w{i % 7}_{j}" for j in range(5)] for i in range(400)]  # 2,000 tokens
    store, _ = extract(HashNeurons(units=8), sentences, tmp_path, shard_tokens=1000, progress=False)
    assert len(store.shards) == 2
    monkeypatch.setattr(StoreChunks, "MIN_CHUNK_ROWS", 1)
    labels = np.arange(store.n_tokens) % 3
    mask = np.arange(store.n_tokens) % 5 != 0
    chunked = StoreChunks(store, mask, labels, chunk_mib=300 * store.n_neurons * 4 / 2**20)  # 300 rows per chunk
    # 800 selected rows per shard = 25 segments of 32; 3 pieces per shard take every 3rd segment
    assert [len(rows) for _, rows in chunked.pieces] == [9 * 32, 8 * 32, 8 * 32] * 2
    rows = chunked.pieces[0][1]
    selected = np.nonzero(mask[:1000])[0]
    segments = rows.reshape(9, 32)
    starts = sorted(np.searchsorted(selected, segments[:, 0]).tolist())
    assert starts == list(range(0, 800, 96))  # segments 0, 3, 6, ... of the shard: it spans the shard
    assert all(np.array_equal(seg, selected[i:i + 32]) for seg, i in
               zip(segments, np.searchsorted(selected, segments[:, 0]), strict=True))  # each one consecutive
    assert not (np.diff(segments[:, 0]) > 0).all()  # read in a shuffled order: batches mix the shard
    loaded = chunked.load()
    order = np.concatenate([store.shards[i]["start"] + rows for i, rows in chunked.pieces])  # chunk order
    assert sorted(order.tolist()) == np.nonzero(mask)[0].tolist()
    np.testing.assert_array_equal(loaded.x, store.read(tokens=order))
    np.testing.assert_array_equal(loaded.y, labels[order])
    cfg = ProbeConfig(seed=1, epochs=2, batch_size=50)
    a, _ = fit_probe(chunked, 3, cfg)
    b, _ = fit_probe(loaded, 3, cfg)
    np.testing.assert_allclose(a.weight, b.weight, rtol=0, atol=1e-6)
    sub = chunked.columns(np.array([1, 6]))
    np.testing.assert_array_equal(sub.load().x, store.read(neurons=[1, 6], tokens=order))
    a, _ = fit_probe(sub, 3, cfg)  # a neuron subset keeps the chunks, so the batches match in memory too
    b, _ = fit_probe(loaded.columns(np.array([1, 6])), 3, cfg)
    np.testing.assert_allclose(a.weight, b.weight, rtol=0, atol=1e-6)


def test_lightning_module_logs_torchmetrics_validation_accuracy() -> None:
    import pytorch_lightning as pl

    from neuroscope.probes.lightning import ChunkBatches, ProbeModule

    x, y = separable(600)
    cfg = ProbeConfig(seed=0, epochs=3, batch_size=100, patience=0)
    module = ProbeModule(x.shape[1], 3, cfg)
    loader = torch.utils.data.DataLoader(ChunkBatches(ArrayChunks(x, y), 100, 0), batch_size=None)
    val = torch.utils.data.DataLoader(ChunkBatches(ArrayChunks(x[:200], y[:200]), 50, 0), batch_size=None)
    trainer = pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu")
    trainer.fit(module, loader, val)
    want = evaluate(module.to_probe(), ArrayChunks(x[:200], y[:200]), 3)["accuracy"]  # the best epoch's probe
    assert float(trainer.callback_metrics["val/accuracy"]) == pytest.approx(module.dev_history[-1], abs=1e-6)
    assert max(module.dev_history) == pytest.approx(want, abs=1e-6) and want > 0.8


def test_streamed_chunks_read_into_a_reused_buffer(tmp_path: Path) -> None:
    sentences = [[f"w{i % 7}_{j}" for j in range(4)] for i in range(100)]
    store, _ = extract(HashNeurons(units=6), sentences, tmp_path, progress=False)
    mask = np.arange(store.n_tokens) % 3 != 0
    chunks = StoreChunks(store, mask, np.zeros(store.n_tokens, dtype=np.int64))
    buf = np.full((chunks.max_chunk_rows + 5, store.n_neurons), np.nan, dtype=np.float32)
    x, _ = chunks.chunk(0, out=buf)
    shard, rows = chunks.pieces[0]
    np.testing.assert_array_equal(x, store.read(tokens=store.shards[shard]["start"] + rows))
    assert np.shares_memory(x, buf)
    with pytest.raises(Exception, match="out must be"):
        store.shard_block(0, rows=np.arange(3), out=np.empty((2, store.n_neurons), dtype=np.float32))


def test_arrays_in_corpus_order_are_shuffled_before_batching() -> None:
    """Labels sorted in blocks (as a corpus in order can be): batches must still mix classes."""
    x, y = separable(3000)
    order = np.argsort(y, kind="stable")
    xs, ys = x[order], y[order]
    cfg = ProbeConfig(seed=0, epochs=5, batch_size=100, patience=0)
    probe, _ = fit_probe(ArrayChunks(xs, ys), 3, cfg)
    assert evaluate(probe, ArrayChunks(xs, ys), 3)["accuracy"] > 0.95
    assert np.array_equal(ArrayChunks(xs, ys).x, xs) and np.array_equal(xs, x[order])  # untouched


def test_the_probe_path_does_not_import_torch() -> None:
    """Probes, rankers and evaluations on a stored model run on NumPy alone (torch costs ~1 s and
    ~200 MB of RSS per process)."""
    import subprocess
    import sys

    code = ("import sys, neuroscope.probes, neuroscope.methods, neuroscope.evaluation.study, neuroscope.store; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_numpy_loop_and_the_lightning_module_do_not_import_each_other() -> None:
    """The backend is chosen in `neuroscope.probes.fit_probe`: probe.py never imports lightning.py
    (it did at function level: a cycle probe <-> lightning)."""
    import ast

    src = Path(__file__).parents[1] / "neuroscope" / "probes" / "probe.py"
    imported = {node.module for node in ast.walk(ast.parse(src.read_text())) if isinstance(node, ast.ImportFrom)}
    assert "neuroscope.probes.lightning" not in imported and "neuroscope.probes" not in imported


@pytest.mark.parametrize("standardize", [False, True])
def test_lightning_proximal_step_without_dev_uses_the_lr_adam_used(standardize: bool) -> None:
    """No dev split: lr decays every epoch; the proximal step of an epoch's last batch used the
    already-decayed lr (4e-3 apart after one epoch). Standardized inputs take another float32 path
    in the LightningModule ((x - mean) / std, not folded into the weights): 2e-6 there."""
    x, y = separable(300)
    cfg = ProbeConfig(seed=0, epochs=2, batch_size=100, patience=0, standardize=standardize)  # proximal L1, lr_decay .5
    fast, _ = fit_probe(ArrayChunks(x, y), 3, cfg)  # dispatched by probe.backend
    lit, _ = fit_probe(ArrayChunks(x, y), 3, cfg.with_(backend="lightning"))
    np.testing.assert_allclose(fast.weight, lit.weight, rtol=0, atol=2e-6 if standardize else 1e-6)
    assert np.count_nonzero(fast.weight == 0) == np.count_nonzero(lit.weight == 0)


def test_unshuffled_batches_are_neurox_batches_in_data_order() -> None:
    """`shuffle=False` (probe=neurox): consecutive fixed-size batches, the same every epoch, and
    arrays in corpus order are not shuffled first."""
    from neuroscope.probes.probe import batches

    x, y = separable(250)
    data = ArrayChunks(x, y)
    for epoch in (0, 1):
        got = [b for _, b in batches(data, 32, seed=0, epoch=epoch, shuffle=False)]
        assert [len(b) for b in got] == [32] * 7 + [26]
        np.testing.assert_array_equal(np.concatenate(got), y)
    cfg = ProbeConfig(seed=0, epochs=2, batch_size=32, shuffle=False, proximal=False, penalty="neurox")
    a, _ = fit_probe(data, 3, cfg)
    b, _ = fit_probe(ArrayChunks(x, y, mixed=True), 3, cfg)  # the same data order either way
    np.testing.assert_array_equal(a.weight, b.weight)


def test_row_blocks_cover_the_rows_in_bounded_views() -> None:
    from neuroscope.probes.data import row_blocks

    x = np.arange(300 * 64, dtype=np.float32).reshape(300, 64)  # 256 B per row
    blocks = list(row_blocks(x, mib=100 * 256 / 2**20))  # 100 rows per block
    assert [len(b) for b in blocks] == [100, 100, 100] and all(np.shares_memory(b, x) for b in blocks)
    np.testing.assert_array_equal(np.concatenate(blocks), x)
