"""Silence SAE latents (`layer2.sae:17`) inside a model. At the SAE's site the output x is encoded
(z = encode(x)), the chosen latents are set to 0 or to their mean (z'), and x + decode(z') − decode(z)
is passed on: the SAE's reconstruction error stays in, so only those latents change.

    with silence_latents(model, {"layer2": sae}, ["layer2.sae:17"], mode="zero"):
        metric = ...

`spliced(model, saes)` instead replaces each site by the SAE's reconstruction decode(encode(x))
(error dropped): the model's metric then says how much of what the model needs the SAE keeps.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from neuroscope.ablation.outputs import split_output as _split
from neuroscope.errors import ConfigError
from neuroscope.models.sites import hook_points

SUFFIX = ".sae"  # a latent site is `<site>.sae` (neuroscope.sae.site.latent_site)


def is_latent(neuron: str) -> bool:
    """Whether `site:unit` names an SAE latent (`<site>.sae:<i>`)."""
    return str(neuron).rpartition(":")[0].endswith(SUFFIX)


def parse_latents(latents: Iterable[str], saes: Mapping[str, Any]) -> dict[str, list[int]]:
    """Latent ids grouped by the base site; a site without an SAE or a latent out of range is a
    `ConfigError`."""
    out: dict[str, list[int]] = defaultdict(list)
    for nid in latents:
        name, _, unit = str(nid).rpartition(":")
        site = name[: -len(SUFFIX)]
        if site not in saes:
            raise ConfigError(f"ablation: latent '{nid}' needs an SAE on site '{site}' (model.sae.{site}); "
                              f"SAEs given for {sorted(saes)}")
        width = int(saes[site].W_enc.shape[1])  # [d_in, d_sae]
        if not unit.isdigit() or int(unit) >= width:
            raise ConfigError(f"ablation: latent '{nid}': unit out of range (the SAE has {width} latents)")
        out[site].append(int(unit))
    return dict(out)


def latent_hook(sae: Any, kind: str, start: int, width: int, units: Tensor, values: Tensor | None) -> Any:
    """A forward hook replacing columns start:start+width of the output by x + decode(z') − decode(z)
    (on an LSTM, the output sequence; its final state is left as it was)."""

    def hook(module: nn.Module, args: Any, output: Any) -> Any:
        data, rebuild = _split(output, kind)
        x = data[..., start:start + width]  # [..., d_in]
        flat = x.reshape(-1, width).to(sae.W_enc.dtype)  # [tokens, d_in]
        z = sae.encode(flat)  # [tokens, d_sae]
        z2 = z.clone()
        z2[:, units] = 0 if values is None else values.to(z.dtype)
        delta = (sae.decode(z2) - sae.decode(z)).reshape(x.shape).to(data.dtype)  # [..., d_in]
        data = data.clone()
        data[..., start:start + width] = x + delta
        return rebuild(data, output[1] if kind == "lstm" else None)

    return hook


@contextmanager
def silence_latents(model: Any, saes: Mapping[str, Any], latents: Iterable[str], mode: str = "zero",
                    values: Mapping[str, float] | None = None) -> Iterator[None]:
    """Clamp SAE `latents` of `model` while the block runs (see the module doc); `saes`: {site: SAE
    module}; `values`: {latent id: mean} for mode=mean."""
    if mode not in ("zero", "mean"):
        raise ConfigError(f"ablation.mode: latents are silenced with zero or mean, not '{mode}'")
    points = hook_points(model)
    handles = []
    try:
        for site, units in parse_latents(latents, saes).items():
            if site not in points:
                raise ConfigError(f"ablation: model.sae.{site}: the model has no site '{site}'; sites: {sorted(points)}")
            uniq = sorted(set(units))
            vals = None
            if mode == "mean":
                ids = [f"{site}{SUFFIX}:{u}" for u in uniq]
                missing = [i for i in ids if values is None or i not in values]
                if missing:
                    raise ConfigError(f"ablation: mode=mean needs a value for every latent; none for {missing[:5]}")
                vals = torch.tensor([float(values[i]) for i in ids])  # type: ignore[index]
            point = points[site]
            hook = latent_hook(saes[site], point.kind, point.start, point.width, torch.tensor(uniq, dtype=torch.long), vals)
            handles.append(point.module.register_forward_hook(hook, prepend=True))
        yield
    finally:
        for handle in handles:
            handle.remove()


def reconstruction_hook(sae: Any, kind: str, start: int, width: int) -> Any:
    """A forward hook replacing columns start:start+width of the output by decode(encode(x))."""

    def hook(module: nn.Module, args: Any, output: Any) -> Any:
        data, rebuild = _split(output, kind)
        x = data[..., start:start + width]  # [..., d_in]
        x_hat = sae.decode(sae.encode(x.reshape(-1, width).to(sae.W_enc.dtype)))  # [tokens, d_in]
        data = data.clone()
        data[..., start:start + width] = x_hat.reshape(x.shape).to(data.dtype)
        return rebuild(data, output[1] if kind == "lstm" else None)

    return hook


@contextmanager
def spliced(model: Any, saes: Mapping[str, Any]) -> Iterator[None]:
    """Each SAE's site of `model` replaced by the SAE's reconstruction while the block runs."""
    points = hook_points(model)
    handles = []
    try:
        for site, sae in saes.items():
            if site not in points:
                raise ConfigError(f"ablation: model.sae.{site}: the model has no site '{site}'; sites: {sorted(points)}")
            point = points[site]
            handles.append(point.module.register_forward_hook(
                reconstruction_hook(sae, point.kind, point.start, point.width), prepend=True))
        yield
    finally:
        for handle in handles:
            handle.remove()
