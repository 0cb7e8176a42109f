"""A sparse autoencoder in SAELens' parametrisation: z = act((x − b_dec) W_enc + b_enc),
x̂ = z W_dec + b_dec, with act a ReLU ("relu", SAELens' "standard") or the top k of the
pre-activations, then a ReLU ("topk", as SAELens' TopK: the k largest, negatives zeroed).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

ARCHITECTURES = ("topk", "relu")


def topk_relu(pre: Tensor, k: int) -> Tensor:
    """The k largest entries of each row (ReLU'd), the others zero, as SAELens' `TopK`."""
    values, idx = torch.topk(pre, k=k, dim=-1, sorted=False)
    return torch.zeros_like(pre).scatter_(-1, idx, values.relu())


class SparseAutoencoder(nn.Module):
    """W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in]; `encode`, `decode`,
    forward = decode(encode(x)). Initialised with unit-norm decoder rows and W_enc = W_decᵀ."""

    def __init__(self, d_in: int, d_sae: int, architecture: str = "topk", k: int = 32,
                 apply_b_dec_to_input: bool = True, rescale_acts_by_decoder_norm: bool = False,
                 seed: int = 0) -> None:
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, not {architecture!r}")
        if architecture == "topk" and not 0 < k <= d_sae:
            raise ValueError(f"k must be in 1..d_sae ({d_sae}), not {k}")
        self.d_in, self.d_sae, self.architecture, self.k = int(d_in), int(d_sae), architecture, int(k)
        self.apply_b_dec_to_input = bool(apply_b_dec_to_input)
        self.rescale_acts_by_decoder_norm = bool(rescale_acts_by_decoder_norm)
        g = torch.Generator().manual_seed(int(seed))
        w_dec = torch.randn(self.d_sae, self.d_in, generator=g)
        w_dec /= w_dec.norm(dim=1, keepdim=True)
        self.W_dec = nn.Parameter(w_dec)  # [d_sae, d_in]
        self.W_enc = nn.Parameter(w_dec.T.clone().contiguous())  # [d_in, d_sae]
        self.b_enc = nn.Parameter(torch.zeros(self.d_sae))
        self.b_dec = nn.Parameter(torch.zeros(self.d_in))

    def pre_activations(self, x: Tensor) -> Tensor:
        """[..., d_in] → [..., d_sae] before the activation function."""
        x = x.to(self.W_enc.dtype)
        if self.apply_b_dec_to_input:
            x = x - self.b_dec
        pre = x @ self.W_enc + self.b_enc
        if self.rescale_acts_by_decoder_norm:
            pre = pre * self.W_dec.norm(dim=-1)
        return pre

    def activate(self, pre: Tensor) -> Tensor:
        """The latents of pre-activations: top-k (ReLU'd) or ReLU."""
        return topk_relu(pre, self.k) if self.architecture == "topk" else torch.relu(pre)

    def encode(self, x: Tensor) -> Tensor:
        """Latents z [..., d_sae] of activations x [..., d_in]."""
        return self.activate(self.pre_activations(x))

    def decode(self, z: Tensor) -> Tensor:
        """Reconstruction x̂ [..., d_in] of latents z [..., d_sae]."""
        if self.rescale_acts_by_decoder_norm:
            z = z / self.W_dec.norm(dim=-1)
        return z @ self.W_dec + self.b_dec

    def forward(self, x: Tensor) -> Tensor:
        """The reconstruction decode(encode(x))."""
        return self.decode(self.encode(x))

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Scale every decoder row to unit norm (after each optimiser step)."""
        self.W_dec /= self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8)

    @torch.no_grad()
    def project_decoder_grad(self) -> None:
        """Remove from W_dec's gradient its component along each (unit) row, so a step moves the
        rows tangentially to the unit sphere (SAELens' `remove_gradient_parallel_to_decoder_directions`)."""
        if self.W_dec.grad is None:
            return
        unit = self.W_dec / self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-8)
        self.W_dec.grad -= (self.W_dec.grad * unit).sum(dim=1, keepdim=True) * unit

    @torch.no_grad()
    def fold_input_scale(self, scale: float) -> None:
        """Make an SAE trained on `scale`·x read and reconstruct raw x with the same latents:
        W_enc·scale, W_dec/scale, b_dec/scale (SAELens' `fold_activation_norm_scaling_factor`)."""
        if self.rescale_acts_by_decoder_norm:
            raise ValueError("folding a scale into an SAE that rescales by its decoder norms changes its latents")
        self.W_enc *= scale
        self.W_dec /= scale
        self.b_dec /= scale
