"""Linear regression probe for real-valued properties (NeuroX: `train_linear_regression_probe`):
loss = mean squared error (on the z-scored target) + the elastic net of `ProbeConfig`, trained by
the same NumPy Adam loop (proximal L1, lr halved on dev plateaus, early stopping on dev R²)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from neuroscope.probes.probe import Adam, ProbeConfig, init_params


@dataclass
class Regressor:
    """ŷ = ((x - mean) / std) · weight + bias, in units of the z-scored target (y_mean, y_std)."""

    weight: np.ndarray  # [neurons] float32, on standardized inputs
    bias: float
    mean: np.ndarray  # [neurons]
    std: np.ndarray  # [neurons]
    y_mean: float
    y_std: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        """[tokens] predictions for raw activations x [tokens, neurons]."""
        w = (self.weight / self.std).astype(np.float32)  # the standardization folded in
        z = x @ w + np.float32(self.bias - float(w.astype(np.float64) @ self.mean))
        return z.astype(np.float64) * self.y_std + self.y_mean


def regression_scores(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """R² (1 - SSE / SST), Pearson's r and the mean squared error."""
    pred, y = np.asarray(pred, dtype=np.float64), np.asarray(y, dtype=np.float64)
    sst = float(((y - y.mean()) ** 2).sum())
    sse = float(((y - pred) ** 2).sum())
    r = float(np.corrcoef(pred, y)[0, 1]) if len(y) > 1 and pred.std() > 0 and y.std() > 0 else 0.0
    return {"r2": 1.0 - sse / sst if sst > 0 else 0.0, "pearson": r, "mse": sse / max(len(y), 1)}


def fit_regression(x: np.ndarray, y: np.ndarray, cfg: ProbeConfig, dev: tuple[np.ndarray, np.ndarray] | None = None
                   ) -> tuple[Regressor, dict[str, Any]]:
    """Train on x [tokens, neurons], y [tokens]; keep the epoch with the best dev R²."""
    t0 = time.perf_counter()
    mean = x.mean(0, dtype=np.float64)
    std = x.std(0, dtype=np.float64)
    std[std == 0] = 1.0
    y_mean, y_std = float(y.mean()), float(y.std()) or 1.0
    xs = ((x - mean) / std).astype(np.float32)  # [tokens, neurons]
    ys = ((y - y_mean) / y_std).astype(np.float32)
    w2, b1 = init_params(x.shape[1], 1, cfg.seed)
    w, b = w2[0].copy(), b1.copy()  # [neurons], [1]
    opt = Adam([w, b])
    g = np.random.default_rng(cfg.seed)
    best: tuple[float, int, Regressor] | None = None
    progress: tuple[float, int] | None = None
    history: list[float] = []
    lr = cfg.lr
    for epoch in range(cfg.epochs):
        order = g.permutation(len(ys)) if cfg.shuffle else np.arange(len(ys))
        for lo in range(0, len(ys), cfg.batch_size):
            rows = order[lo:lo + cfg.batch_size]
            xb, err = xs[rows], xs[rows] @ w + b[0] - ys[rows]  # [batch, neurons], [batch]
            gw = (2.0 / len(rows)) * (err @ xb)
            gb = np.array([2.0 * err.mean()], dtype=np.float32)
            if not cfg.proximal:
                gw += cfg.lambda1 * np.sign(w)
            gw += (2 * cfg.lambda2) * w if cfg.penalty == "elastic" else (
                cfg.lambda2 / max(float(np.linalg.norm(w)), 1e-12)) * w
            opt.step([gw.astype(np.float32), gb], lr, cfg.lambda1 if cfg.proximal else 0.0)
        model = Regressor(w.copy(), float(b[0]), mean, std, y_mean, y_std)
        if dev is None:
            lr *= cfg.lr_decay
            best = (0.0, epoch, model)
            continue
        r2 = regression_scores(model.predict(dev[0]), dev[1])["r2"]
        history.append(r2)
        if best is None or r2 > best[0]:
            best = (r2, epoch, model)
        if progress is None or r2 > progress[0] + cfg.min_delta:
            progress = (r2, epoch)
        elif cfg.patience and epoch - progress[1] >= cfg.patience:
            break
        else:
            lr *= cfg.lr_decay
    assert best is not None
    return best[2], {"epochs": len(history) or cfg.epochs, "best_epoch": best[1], "dev_r2": history,
                     "seconds": time.perf_counter() - t0}
