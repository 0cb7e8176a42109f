"""Silencing SAE latents inside a model: only the chosen latents change (the reconstruction error is
kept), zero and mean give the closed forms, hooks go away, and bad ids are named."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuroscope.ablation.hooks import silence
from neuroscope.errors import ConfigError
from tests.test_ablation import H, lm_batch, no_hooks_left, site_output, tiny_lm

D = 10  # latents


class TinySAE(nn.Module):
    """relu((x − b_dec) W_enc + b_enc) → z W_dec + b_dec, the SAELens 'standard' form."""

    def __init__(self, d_in: int = H, d_sae: int = D) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.W_enc = nn.Parameter(torch.randn(d_in, d_sae, generator=g))
        self.b_enc = nn.Parameter(torch.zeros(d_sae))
        self.W_dec = nn.Parameter(torch.randn(d_sae, d_in, generator=g) / 3)
        self.b_dec = nn.Parameter(torch.randn(d_in, generator=g) / 10)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu((x - self.b_dec) @ self.W_enc + self.b_enc)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z @ self.W_dec + self.b_dec


def _run(lm: nn.Module):
    return lambda: lm(lm_batch())


@torch.no_grad()
def test_zero_and_mean_give_the_closed_form_and_keep_the_error() -> None:
    lm, sae = tiny_lm(), TinySAE()
    x = site_output(lm, "lm.l1", _run(lm))  # [B, T, H] clean
    z = sae.encode(x.reshape(-1, H)).reshape(*x.shape[:2], D)  # [B, T, D]
    j = int(z.reshape(-1, D).abs().sum(0).argmax())  # a latent that fires
    assert z[..., j].abs().sum() > 0
    with silence(lm, [f"lm.l1.sae:{j}"], saes={"lm.l1": sae}):
        zeroed = site_output(lm, "lm.l1", _run(lm))
    torch.testing.assert_close(zeroed, x - z[..., j:j + 1] * sae.W_dec[j])
    with silence(lm, [f"lm.l1.sae:{j}"], mode="mean", values={f"lm.l1.sae:{j}": 0.7}, saes={"lm.l1": sae}):
        meaned = site_output(lm, "lm.l1", _run(lm))
    torch.testing.assert_close(meaned, x + (0.7 - z[..., j:j + 1]) * sae.W_dec[j])
    assert no_hooks_left(lm)


@torch.no_grad()
def test_a_silent_latent_changes_nothing_and_the_logits_follow_a_live_one() -> None:
    lm, sae = tiny_lm(), TinySAE()
    sae.b_enc[D - 1] = -1e4  # latent D-1 never fires
    logits = lambda: lm(lm_batch())[0]  # noqa: E731
    clean = logits()
    x = site_output(lm, "lm.l0", _run(lm))
    z = sae.encode(x.reshape(-1, H))  # [tokens, D]
    assert z[:, D - 1].abs().max() == 0
    live = int(z.abs().sum(0).argmax())
    # the SAE's error is added back: a latent that never fires leaves every output as it was
    with silence(lm, [f"lm.l0.sae:{D - 1}"], saes={"lm.l0": sae}):
        torch.testing.assert_close(logits(), clean)
    with silence(lm, [f"lm.l0.sae:{live}", "lm.l1:0"], saes={"lm.l0": sae}):  # latents and units together
        assert not torch.allclose(logits(), clean)
    torch.testing.assert_close(logits(), clean)
    assert no_hooks_left(lm)


def test_bad_latent_ids_are_config_errors() -> None:
    lm, sae = tiny_lm(), TinySAE()
    with pytest.raises(ConfigError, match=r"latent 'lm.l1.sae:3' needs an SAE on site 'lm.l1'"):
        with silence(lm, ["lm.l1.sae:3"], saes={"lm.l0": sae}):
            pass
    with pytest.raises(ConfigError, match="unit out of range"):
        with silence(lm, [f"lm.l1.sae:{D}"], saes={"lm.l1": sae}):
            pass
    with pytest.raises(ConfigError, match="mode=mean needs a value for every latent"):
        with silence(lm, ["lm.l1.sae:1"], mode="mean", values={}, saes={"lm.l1": sae}):
            pass
    with pytest.raises(ConfigError, match="model has no site 'lm.l7'"):
        with silence(lm, ["lm.l7.sae:1"], saes={"lm.l7": sae}):
            pass
    assert no_hooks_left(lm)


@torch.no_grad()
def test_spliced_replaces_the_site_by_the_reconstruction_and_leaves_no_hook() -> None:
    from neuroscope.ablation.latents import spliced

    lm, sae = tiny_lm(), TinySAE()
    x = site_output(lm, "lm.l1", _run(lm))  # [B, T, H]
    with spliced(lm, {"lm.l1": sae}):
        got = site_output(lm, "lm.l1", _run(lm))
    torch.testing.assert_close(got, sae.decode(sae.encode(x.reshape(-1, H))).reshape(x.shape))
    assert no_hooks_left(lm)
    with pytest.raises(ConfigError, match="model.sae.lm.l9"):
        with spliced(lm, {"lm.l9": sae}):
            pass
