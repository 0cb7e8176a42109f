"""Held-out quality of an SAE, accumulated batch by batch: FVU = Σ‖x − x̂‖² / Σ‖x − mean‖² (mean
over the same held-out tokens), mean L0, dead latents (never active on the pass) and dense latents
(active on more than `dense_share` of its tokens)."""

from __future__ import annotations

import torch
from torch import Tensor


class HeldOut:
    """Running sums over held-out batches (float64); `result()` gives the metrics."""

    def __init__(self, d_in: int, d_sae: int, dense_share: float = 0.1) -> None:
        """Empty sums for an SAE of `d_in` inputs and `d_sae` latents."""
        self.dense_share = dense_share
        self.n = 0
        self.err = 0.0
        self.sum_x = torch.zeros(d_in, dtype=torch.float64)
        self.sum_sq = 0.0
        self.l0 = 0.0
        self.fires = torch.zeros(d_sae, dtype=torch.float64)

    def add(self, x: Tensor, x_hat: Tensor, z: Tensor) -> None:
        """One batch: inputs x and reconstructions x̂ [tokens, d_in], latents z [tokens, d_sae]."""
        x64 = x.detach().double().cpu()
        self.n += len(x64)
        self.err += float(((x64 - x_hat.detach().double().cpu()) ** 2).sum())
        self.sum_x += x64.sum(0)
        self.sum_sq += float((x64 ** 2).sum())
        active = (z.detach() != 0).cpu()
        self.l0 += float(active.sum())
        self.fires += active.double().sum(0)

    def result(self) -> dict[str, float]:
        """{fvu, mean_l0, dead, dense, tokens}; empty when no token was seen."""
        if self.n == 0:
            return {}
        total_var = self.sum_sq - float((self.sum_x ** 2).sum()) / self.n  # Σ‖x − mean‖²
        return {
            "fvu": self.err / total_var if total_var > 0 else float("nan"),
            "mean_l0": self.l0 / self.n,
            "dead": float((self.fires == 0).sum()),
            "dense": float((self.fires > self.dense_share * self.n).sum()),
            "tokens": float(self.n),
        }
