"""Linear probe with an elastic-net penalty (Dalvi et al. 2019; Durrani et al. 2020).

loss = cross-entropy + λ1·‖W‖₁ + λ2·‖W‖₂²  (`penalty="elastic"`, the standard elastic net), or
NeuroX's λ1·Σ|W| + λ2·‖W‖_F (`penalty="neurox"`, L2 not squared) to reproduce NeuroX exactly.
The bias is never penalised. `fit_probe` is the fast loop used by studies; `neuroscope.probes.lightning.ProbeModule`
is the same objective as a LightningModule, fed by the same batches.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from neuroscope.errors import ConfigError
from neuroscope.probes.data import ArrayChunks, StoreChunks, TokenChunks, moments

PENALTIES = ("elastic", "neurox")


@dataclass(frozen=True)
class ProbeConfig:
    """Probe hyper-parameters; config group `probe`."""

    lambda1: float = 1e-3
    lambda2: float = 1e-3
    penalty: str = "elastic"
    standardize: bool = True  # z-score each neuron with train statistics (makes |W| comparable)
    epochs: int = 20
    batch_size: int = 1024
    lr: float = 2e-2
    lr_decay: float = 0.8  # learning rate multiplied by this after every epoch (1 = constant)
    patience: int = 3  # epochs without a dev-accuracy gain of > min_delta before stopping (0 = never stop early)
    min_delta: float = 0.001  # smallest dev-accuracy gain (0.1 point) that counts as progress, as in Lightning
    seed: int = 0

    def __post_init__(self) -> None:
        if self.penalty not in PENALTIES:
            raise ConfigError(f"probe.penalty: expected one of {PENALTIES}, got '{self.penalty}'")
        if self.lambda1 < 0 or self.lambda2 < 0:
            raise ConfigError("probe.lambda1/lambda2 must be >= 0")
        if self.min_delta < 0 or self.patience < 0:
            raise ConfigError("probe.min_delta and probe.patience must be >= 0")
        if self.batch_size < 1 or self.epochs < 1:
            raise ConfigError("probe.batch_size and probe.epochs must be >= 1")

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> ProbeConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(params) - known
        if unknown:
            raise ConfigError(f"probe: unknown setting(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**params)

    def with_(self, **changes: Any) -> ProbeConfig:
        return replace(self, **changes)


@dataclass
class Probe:
    """A trained linear probe; `weight` is in standardized units when `mean`/`std` are set."""

    weight: Tensor  # [classes, neurons]
    bias: Tensor  # [classes]
    mean: Tensor | None = None  # [neurons]
    std: Tensor | None = None  # [neurons]

    def logits(self, x: Tensor) -> Tensor:
        """[tokens, classes] scores for raw activations x: [tokens, neurons]."""
        if self.mean is not None:
            x = (x - self.mean) / self.std
        return x @ self.weight.T + self.bias

    def keep(self, cols: np.ndarray) -> Probe:
        """The same probe with every other neuron's (standardized) input zeroed."""
        mask = torch.zeros(self.weight.shape[1], dtype=torch.bool)
        mask[torch.as_tensor(cols, dtype=torch.long)] = True
        return replace(self, weight=self.weight * mask)

    def parameters(self) -> Iterator[Tensor]:
        """Weight first, like a torch module: NeuroX-style helpers accept a Probe too."""
        yield self.weight
        yield self.bias


def penalty(weight: Tensor, cfg: ProbeConfig) -> Tensor:
    """The regulariser on W (bias excluded)."""
    l1 = weight.abs().sum()
    if cfg.penalty == "neurox":
        return cfg.lambda1 * l1 + cfg.lambda2 * weight.pow(2).sum().sqrt()
    return cfg.lambda1 * l1 + cfg.lambda2 * weight.pow(2).sum()


def probe_loss(logits: Tensor, y: Tensor, weight: Tensor, cfg: ProbeConfig) -> Tensor:
    """Mean cross-entropy over the batch plus the penalty."""
    return nn.functional.cross_entropy(logits, y) + penalty(weight, cfg)


def batches(data: TokenChunks, batch_size: int, seed: int, epoch: int,
            buffer: np.ndarray | None = None) -> Iterator[tuple[Tensor, Tensor]]:
    """Balanced batches as contiguous row slices of one chunk at a time (views, no copy: BLAS reads them
    at full speed, which strided or gathered rows are not). Each epoch visits chunks, and batches
    within a chunk, in an order drawn from (seed, epoch); the same chunk boundaries give the same
    batches, streamed or in memory. `buffer`: streamed chunks are read into it (a batch is valid
    only until the next one is drawn)."""
    g = torch.Generator().manual_seed(seed * 100_003 + epoch + 1)
    for c in torch.randperm(data.n_chunks, generator=g).tolist():
        x, y = data.chunk(c) if buffer is None else data.chunk(c, out=buffer)  # one chunk in memory at a time
        n = -(-len(y) // batch_size)
        cuts = [len(y) * b // n for b in range(n + 1)]  # n balanced batches of <= batch_size rows
        for b in torch.randperm(n, generator=g).tolist():
            yield x[cuts[b]:cuts[b + 1]], y[cuts[b]:cuts[b + 1]]
        del x, y  # before the next chunk is read


def mixed_rows(data: TokenChunks, seed: int) -> TokenChunks:
    """`data`, or for in-memory rows in corpus order (not `mixed`) a copy shuffled once within
    each chunk: batches are contiguous slices, and consecutive tokens make poor batches."""
    if not isinstance(data, ArrayChunks) or data.mixed:
        return data
    g = torch.Generator().manual_seed(seed)
    b = data.boundaries
    rows = torch.cat([lo + torch.randperm(hi - lo, generator=g) for lo, hi in zip(b[:-1], b[1:], strict=True)])
    return ArrayChunks(data.x[rows], data.y[rows], b, mixed=True)  # the one copy of the rows


def _stats(train: TokenChunks, cfg: ProbeConfig) -> tuple[Tensor | None, Tensor | None]:
    return moments(train) if cfg.standardize else (None, None)


def _gradients(layer: nn.Linear, x: Tensor, y: Tensor, cfg: ProbeConfig) -> None:
    """Set .grad of the probe to the gradient of `probe_loss` (closed form, no autograd graph)."""
    w, b = layer.weight, layer.bias
    with torch.no_grad():
        p = torch.addmm(b, x, w.T).softmax(1)  # [batch, classes]
        p[torch.arange(len(y)), y] -= 1.0
        p /= len(y)
        gw = (x.T @ p).T  # [classes, neurons]; this operand order is the faster BLAS call
        gw += cfg.lambda1 * w.sign()
        if cfg.penalty == "neurox":
            norm = w.norm()
            if norm > 0:
                gw += cfg.lambda2 * w / norm
        else:
            gw += 2 * cfg.lambda2 * w
        w.grad, b.grad = gw, p.sum(0)


def fit_probe(train: TokenChunks, n_classes: int, cfg: ProbeConfig, dev: TokenChunks | None = None) -> tuple[Probe, dict[str, Any]]:
    """Train with Adam on batches in random order; keep the epoch with the best dev accuracy.

    In-memory data is used in place if its chunks are `mixed` (else a once-shuffled copy is made;
    standardized: one copy); streamed data is standardized batch by batch (the same numbers).
    """
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    mean, std = _stats(train, cfg)
    per_batch, buffer = mean is not None, None
    if isinstance(train, StoreChunks):  # one read buffer for every chunk of every epoch
        buffer = np.empty((train.max_chunk_rows, train.n_neurons), dtype=np.float32)
    data = mixed_rows(train, cfg.seed)
    if isinstance(data, ArrayChunks) and mean is not None:  # standardize in-memory data once
        x = data.x if data is not train else data.x.clone()  # never the caller's arrays
        data, per_batch = ArrayChunks(x.sub_(mean).div_(std), data.y, data.boundaries, mixed=True), False
    layer = nn.Linear(train.n_neurons, n_classes)
    opt = torch.optim.Adam(layer.parameters(), lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.ExponentialLR(opt, cfg.lr_decay)
    best: tuple[float, int, Tensor, Tensor] | None = None
    progress: tuple[float, int] | None = None
    history = []
    for epoch in range(cfg.epochs):
        for x, y in batches(data, cfg.batch_size, cfg.seed, epoch, buffer):
            if per_batch:
                x = (x - mean) / std
            _gradients(layer, x, y, cfg)
            opt.step()
        schedule.step()
        if dev is None:
            continue
        probe = Probe(layer.weight.detach(), layer.bias.detach(), mean, std)
        acc = evaluate(probe, dev, n_classes)["accuracy"]
        history.append(acc)
        if best is None or acc > best[0]:  # the weights kept: best dev accuracy
            best = (acc, epoch, layer.weight.detach().clone(), layer.bias.detach().clone())
        if progress is None or acc > progress[0] + cfg.min_delta:  # what resets the patience
            progress = (acc, epoch)
        elif cfg.patience and epoch - progress[1] >= cfg.patience:
            break
    weight, bias = (best[2], best[3]) if best else (layer.weight.detach().clone(), layer.bias.detach().clone())
    info = {"epochs": len(history) or cfg.epochs, "best_epoch": best[1] if best else cfg.epochs - 1,
            "dev_accuracy": history, "seconds": time.perf_counter() - t0}
    return Probe(weight, bias, mean, std), info


@torch.no_grad()
def predict(probe: Probe, data: TokenChunks) -> tuple[Tensor, Tensor]:
    """Predicted and gold class ids over all tokens of `data`."""
    preds, gold = [], []
    for x, y in data.chunks():
        preds.append(probe.logits(x).argmax(1))
        gold.append(y)
        del x, y  # before the next chunk is read
    return torch.cat(preds), torch.cat(gold)


def scores(preds: Tensor, gold: Tensor, n_classes: int, per_class: bool = False) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class accuracy (recall) from one confusion matrix: the numbers of
    torchmetrics' multiclass_accuracy / multiclass_f1_score (tested equal) without importing it,
    which costs seconds and ~130 MB of RSS (it pulls in scipy and transformers)."""
    cm = torch.bincount(gold * n_classes + preds, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    tp, support, predicted = cm.diagonal().double(), cm.sum(1).double(), cm.sum(0).double()
    seen = support + predicted > 0  # macro-F1 skips classes neither present nor predicted, as torchmetrics does
    f1 = 2 * tp[seen] / (support + predicted)[seen]
    out: dict[str, Any] = {
        "accuracy": float(tp.sum() / len(gold)) if len(gold) else float("nan"),
        "macro_f1": float(f1.mean()) if len(f1) else 0.0,
    }
    if per_class:
        out["per_class"] = torch.where(support > 0, tp / support.clamp(min=1), 0.0).tolist()
    return out


def evaluate(probe: Probe, data: TokenChunks, n_classes: int, per_class: bool = False) -> dict[str, Any]:
    """Accuracy and macro-F1 of `probe` on `data`; per-class accuracy on request."""
    preds, gold = predict(probe, data)
    return scores(preds, gold, n_classes, per_class)
