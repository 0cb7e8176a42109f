"""Linear probe with an elastic-net penalty (Dalvi et al. 2019; Durrani et al. 2020).

loss = cross-entropy + λ1·‖W‖₁ + λ2·‖W‖₂²  (`penalty="elastic"`, the standard elastic net), or
NeuroX's λ1·Σ|W| + λ2·‖W‖_F (`penalty="neurox"`, L2 not squared) to reproduce NeuroX exactly.
The bias is never penalised. `fit_numpy` is the fast loop used by studies, in NumPy (closed-form
gradient, Adam): a study on a stored model never imports torch. By default the L1 term is applied
by a proximal step after each Adam step (soft-thresholding in Adam's per-weight metric), which
gives exact zeros and settles the sparse structure LCA ranks by in fewer epochs than the
subgradient NeuroX uses (`proximal=False`).
`neuroscope.probes.lightning.ProbeModule` is the same objective as a LightningModule, fed by the
same batches; `neuroscope.probes.fit_probe` chooses between them by `probe.backend`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from neuroscope.errors import ConfigError
from neuroscope.probes.data import (
    ArrayChunks,
    TokenChunks,
    moments,
    nonempty_chunks,
    read_buffer,
    read_chunk,
)

PENALTIES = ("elastic", "neurox")
BACKENDS = ("numpy", "lightning")


@dataclass(frozen=True)
class ProbeConfig:
    """Probe hyper-parameters; config group `probe`."""

    lambda1: float = 1e-3
    lambda2: float = 1e-3
    penalty: str = "elastic"
    standardize: bool = True  # z-score each neuron with train statistics (makes |W| comparable)
    epochs: int = 20
    batch_size: int = 512
    lr: float = 2e-2
    lr_decay: float = 0.5  # lr multiplied by this after an epoch without dev progress (no dev: every epoch)
    proximal: bool = True  # L1 by a proximal step (soft-thresholding: exact zeros); false = its subgradient (NeuroX)
    shuffle: bool = True  # false: fixed-size batches in data order, the same every epoch (NeuroX)
    patience: int = 2  # epochs without a dev-accuracy gain of > min_delta before stopping (0 = never stop early)
    min_delta: float = 0.001  # smallest dev-accuracy gain (0.1 point) that counts as progress, as in Lightning
    seed: int = 0
    backend: str = "numpy"  # numpy (the fast loop, CPU) | lightning (a pytorch_lightning.Trainer: GPUs, clusters)
    accelerator: str = "cpu"  # lightning backend: cpu | gpu | auto | ...
    devices: int = 1  # lightning backend
    precision: str = "32-true"  # lightning backend: 32-true | 16-mixed | bf16-mixed

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"probe.backend: expected one of {BACKENDS}, got '{self.backend}'")
        if self.penalty not in PENALTIES:
            raise ConfigError(f"probe.penalty: expected one of {PENALTIES}, got '{self.penalty}'")
        if self.lambda1 < 0 or self.lambda2 < 0:
            raise ConfigError("probe.lambda1/lambda2 must be >= 0")
        if self.min_delta < 0 or self.patience < 0:
            raise ConfigError("probe.min_delta and probe.patience must be >= 0")
        if self.batch_size < 1 or self.epochs < 1:
            raise ConfigError("probe.batch_size and probe.epochs must be >= 1")
        if self.lr <= 0 or not 0 < self.lr_decay <= 1:
            raise ConfigError("probe.lr must be > 0 and probe.lr_decay in (0, 1]")

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

    weight: np.ndarray  # [classes, neurons] float32
    bias: np.ndarray  # [classes]
    mean: np.ndarray | None = None  # [neurons]
    std: np.ndarray | None = None  # [neurons]

    def raw(self) -> tuple[np.ndarray, np.ndarray]:
        """(weight, bias) acting on raw activations: the standardization folded in, so data is
        never standardized (no copy in memory, no extra pass when streaming)."""
        if self.mean is None:
            return self.weight, self.bias
        w = self.weight / self.std  # [classes, neurons]
        return w, (self.bias - w.astype(np.float64) @ self.mean).astype(np.float32)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """[tokens, classes] scores for raw activations x: [tokens, neurons]."""
        w, b = self.raw()
        return x @ w.T + b

    def keep(self, cols: np.ndarray) -> Probe:
        """The same probe with every other neuron's (standardized) input zeroed."""
        mask = np.zeros(self.weight.shape[1], dtype=np.float32)
        mask[np.asarray(cols, dtype=np.int64)] = 1.0
        return replace(self, weight=self.weight * mask)

    def parameters(self) -> Iterator[np.ndarray]:
        """Weight first, like a torch module: NeuroX-style helpers accept a Probe too."""
        yield self.weight
        yield self.bias


def penalty(weight: Any, cfg: ProbeConfig) -> Any:
    """The regulariser on W (bias excluded); works on NumPy arrays and torch tensors alike."""
    l1 = abs(weight).sum()
    sq = (weight * weight).sum()
    return cfg.lambda1 * l1 + cfg.lambda2 * (sq ** 0.5 if cfg.penalty == "neurox" else sq)


def gradients(w: np.ndarray, b: np.ndarray, x: np.ndarray, y: np.ndarray, cfg: ProbeConfig,
              mean: np.ndarray | None = None, scale: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gradient of mean cross-entropy + penalty w.r.t. (w, b), closed form (the L1 term only with
    `cfg.proximal` off). `w` acts on standardized inputs (x - mean) * scale; x stays raw: the
    standardization is folded into the weights and the gradient, [classes, neurons] work instead
    of [batch, neurons]."""
    wr, br = w, b
    if scale is not None:  # the raw-input weights, as Probe.raw() gives them (with 1/std precomputed)
        wr = w * scale
        br = b - wr @ mean
    p = x @ wr.T  # [batch, classes]
    p += br
    p -= p.max(1, keepdims=True)
    np.maximum(p, -80.0, out=p)  # exp stays a normal float32: subnormals make the next matmul ~10x slower
    np.exp(p, out=p)
    p /= p.sum(1, keepdims=True)  # softmax
    p[np.arange(len(y)), y] -= 1.0
    p /= len(y)  # d(mean cross-entropy)/d(logits)
    gw = p.T @ x  # [classes, neurons]
    gb = p.sum(0)
    if scale is not None:
        gw -= np.outer(gb, mean)
        gw *= scale
    if not cfg.proximal:
        gw += cfg.lambda1 * np.sign(w)
    if cfg.penalty == "neurox":
        norm = math.sqrt(float((w * w).sum()))
        if norm > 0:
            gw += (cfg.lambda2 / norm) * w
    else:
        gw += (2 * cfg.lambda2) * w
    return gw, gb


class Adam:
    """Adam (Kingma & Ba 2015) with torch.optim.Adam's defaults and update order, in place;
    `l1` > 0 adds a proximal L1 step on the first parameter (the weight)."""

    def __init__(self, params: list[np.ndarray], betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params, self.betas, self.eps, self.t = params, betas, eps, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads: list[np.ndarray], lr: float, l1: float = 0.0) -> None:
        b1, b2 = self.betas
        self.t += 1
        step = lr / (1 - b1 ** self.t)
        c2 = math.sqrt(1 - b2 ** self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m += (1 - b1) * (g - m)
            v *= b2
            v += (1 - b2) * (g * g)
            denom = np.sqrt(v)
            denom /= c2
            denom += self.eps
            p -= step * (m / denom)
            if l1 and p is self.params[0]:  # prox of step*l1*|p| in the metric diag(denom / step)
                shrunk = np.abs(p)
                shrunk -= (step * l1) / denom
                np.maximum(shrunk, 0.0, out=shrunk)
                np.copysign(shrunk, p, out=p)


def init_params(n_neurons: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Initial (weight [classes, neurons], bias [classes]): uniform ±1/√neurons, as torch's nn.Linear."""
    g = np.random.default_rng(seed)
    bound = 1 / math.sqrt(max(n_neurons, 1))
    w = g.uniform(-bound, bound, (n_classes, n_neurons)).astype(np.float32)
    return w, g.uniform(-bound, bound, n_classes).astype(np.float32)


def batches(data: TokenChunks, batch_size: int, seed: int, epoch: int,
            buffer: np.ndarray | None = None, shuffle: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Balanced batches as contiguous row slices of one chunk at a time (views, no copy: BLAS reads them
    at full speed, which strided or gathered rows are not). Each epoch visits chunks, and batches
    within a chunk, in an order drawn from (seed, epoch); the same chunk boundaries give the same
    batches, streamed or in memory. `buffer`: streamed chunks are read into it (a batch is valid
    only until the next one is drawn). `shuffle=False`: chunks in order, each cut into batches of
    exactly `batch_size` rows (the last one shorter), in order: NeuroX's batches."""
    g = np.random.default_rng([seed, epoch])
    for c in (g.permutation(data.n_chunks).tolist() if shuffle else range(data.n_chunks)):
        x, y = read_chunk(data, c, buffer)  # one chunk in memory at a time
        n = -(-len(y) // batch_size)
        if shuffle:
            cuts = [len(y) * b // n for b in range(n + 1)]  # n balanced batches of <= batch_size rows
        else:
            cuts = [min(b * batch_size, len(y)) for b in range(n + 1)]
        for b in (g.permutation(n).tolist() if shuffle else range(n)):
            yield x[cuts[b]:cuts[b + 1]], y[cuts[b]:cuts[b + 1]]
        del x, y  # before the next chunk is read


def mixed_rows(data: TokenChunks, seed: int) -> TokenChunks:
    """`data`, or for in-memory rows in corpus order (not `mixed`) a copy shuffled once within
    each chunk: batches are contiguous slices, and consecutive tokens make poor batches."""
    if not isinstance(data, ArrayChunks) or data.mixed:
        return data
    g = np.random.default_rng(seed)
    b = data.boundaries
    rows = np.concatenate([lo + g.permutation(hi - lo) for lo, hi in zip(b[:-1], b[1:], strict=True)])
    return ArrayChunks(data.x[rows], data.y[rows], b, mixed=True)  # the one copy of the rows


def train_rows(train: TokenChunks, cfg: ProbeConfig) -> TokenChunks:
    """The training rows every backend cuts into `batches(..., cfg.batch_size, cfg.seed, epoch,
    shuffle=cfg.shuffle)`: mixed once (`mixed_rows`) when shuffling, else as they come (NeuroX)."""
    return mixed_rows(train, cfg.seed) if cfg.shuffle else train


def fit_numpy(train: TokenChunks, n_classes: int, cfg: ProbeConfig, dev: TokenChunks | None = None) -> tuple[Probe, dict[str, Any]]:
    """Train with Adam on batches in random order; keep the epoch with the best dev accuracy,
    stopping early after `patience` epochs without progress. Data is used as it comes (in-memory
    arrays in corpus order: shuffled once; streamed chunks: read into one reused buffer).
    `neuroscope.probes.fit_probe` calls this for `cfg.backend="numpy"`."""
    t0 = time.perf_counter()
    mean, std = moments(train) if cfg.standardize else (None, None)
    scale = None if std is None else (1.0 / std).astype(np.float32)
    buffer, data = read_buffer(train), train_rows(train, cfg)
    w, b = init_params(train.n_neurons, n_classes, cfg.seed)
    opt = Adam([w, b])
    best: tuple[float, int, Probe] | None = None
    progress: tuple[float, int] | None = None
    history: list[float] = []
    lr = cfg.lr
    for epoch in range(cfg.epochs):
        for x, y in batches(data, cfg.batch_size, cfg.seed, epoch, buffer, cfg.shuffle):
            opt.step(list(gradients(w, b, x, y, cfg, mean, scale)), lr, cfg.lambda1 if cfg.proximal else 0.0)
        if dev is None:
            lr *= cfg.lr_decay
            continue
        acc = evaluate(Probe(w, b, mean, std), dev, n_classes)["accuracy"]
        history.append(acc)
        if best is None or acc > best[0]:  # the weights kept: best dev accuracy
            best = (acc, epoch, Probe(w.copy(), b.copy(), mean, std))
        if progress is None or acc > progress[0] + cfg.min_delta:  # what resets the patience
            progress = (acc, epoch)
        elif cfg.patience and epoch - progress[1] >= cfg.patience:
            break
        else:
            lr *= cfg.lr_decay  # a plateau: smaller steps
    info = {"epochs": len(history) or cfg.epochs, "best_epoch": best[1] if best else cfg.epochs - 1,
            "dev_accuracy": history, "seconds": time.perf_counter() - t0}
    return (best[2] if best else Probe(w, b, mean, std)), info


def predict(probe: Probe, data: TokenChunks) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and gold class ids over all tokens of `data`."""
    w, b = probe.raw()
    preds, gold = [], []
    for x, y in nonempty_chunks(data, read_buffer(data)):
        logits = x @ w.T  # [rows, classes]
        logits += b
        preds.append(logits.argmax(1))
        gold.append(y)
        del x, y  # before the next chunk is read
    if not preds:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(preds), np.concatenate(gold)


def scores(preds: Any, gold: Any, n_classes: int, per_class: bool = False) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-class accuracy (recall) from one confusion matrix: the numbers of
    torchmetrics' multiclass_accuracy / multiclass_f1_score (tested equal) without importing it,
    which costs seconds and ~130 MB of RSS (it pulls in scipy and transformers)."""
    preds, gold = np.asarray(preds, dtype=np.int64), np.asarray(gold, dtype=np.int64)
    cm = np.bincount(gold * n_classes + preds, minlength=n_classes * n_classes).reshape(n_classes, n_classes)
    tp, support, predicted = cm.diagonal().astype(np.float64), cm.sum(1).astype(np.float64), cm.sum(0).astype(np.float64)
    seen = support + predicted > 0  # macro-F1 skips classes neither present nor predicted, as torchmetrics does
    f1 = 2 * tp[seen] / (support + predicted)[seen]
    out: dict[str, Any] = {
        "accuracy": float(tp.sum() / len(gold)) if len(gold) else float("nan"),
        "macro_f1": float(f1.mean()) if len(f1) else 0.0,
    }
    if per_class:
        out["per_class"] = np.where(support > 0, tp / np.maximum(support, 1), 0.0).tolist()
    return out


def evaluate(probe: Probe, data: TokenChunks, n_classes: int, per_class: bool = False) -> dict[str, Any]:
    """Accuracy and macro-F1 of `probe` on `data`; per-class accuracy on request."""
    preds, gold = predict(probe, data)
    return scores(preds, gold, n_classes, per_class)
