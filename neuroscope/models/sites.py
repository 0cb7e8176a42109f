"""Where each neuron site of a model lives as a module: the hook points that ablation and
patching act on, named as extraction names the store's sites.

A site `s` of a model is a slice of the last dimension of one module's output. LSTM sites are
single-layer `nn.LSTM` modules (direction `d` of a bidirectional layer is units `d*H … (d+1)*H`
of its output and row `d` of its final state); transformer sites `embeddings` / `layerN` are the
modules whose outputs are the hidden states a store records (`hidden_modules`: GPT-2's last layer
is its final norm `ln_f`, its embeddings `drop(wte + wpe)`) and, for the architectures of
`neuroscope.models.transformer.ARCHITECTURES`, `layerN.mlp` and `layerN.attn` on the very modules
extraction hooks (silencing slices the last dimension, so XLNet's [positions, batch, units]
outputs work as well).
Every network names its own sites with a `hook_points()` method (the LM, the NMT, the fine-tuned
classifier, plugins); a Hugging Face model without one gets `transformer_points`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from neuroscope.errors import ConfigError


@dataclass(frozen=True)
class HookPoint:
    """One site: `module`'s output columns `start:stop`; `kind` says how to read that output."""

    module: nn.Module
    start: int
    stop: int
    kind: str = "lstm"  # lstm: (out [B,T,dirs*H] or PackedSequence, (h, c)) | tensor: [..., units] or (that, ...)
    direction: int = 0  # lstm: row of the final (h, c) this site is
    state_read_elsewhere: bool = False  # lstm: the final h feeds another module (the NMT bridge): silence it too

    @property
    def width(self) -> int:
        return self.stop - self.start


def network(model: Any) -> nn.Module:
    """The `nn.Module` behind a LightningModule (`.model`), a neuron source (`.model`) or itself."""
    inner = getattr(model, "model", None)
    if isinstance(inner, nn.Module):
        return inner
    if isinstance(model, nn.Module):
        return model
    raise ConfigError(f"ablation: {type(model).__name__} is not a torch model and has no `.model`")


def hook_points(model: Any) -> dict[str, HookPoint]:
    """{site: HookPoint} of a network: its own `hook_points()` (the LM, the NMT, plugins), else a
    Hugging Face transformer's."""
    net = network(model)
    own = getattr(net, "hook_points", None)
    if callable(own):
        return dict(own())
    if hasattr(net, "config") and hasattr(net.config, "hidden_size"):
        return transformer_points(net)
    raise ConfigError(f"ablation: no neuron sites known for {type(net).__name__}; give it a "
                      "`hook_points()` method returning {site: neuroscope.models.sites.HookPoint}")


def transformer_points(net: Any) -> dict[str, HookPoint]:
    """`embeddings` and `layer{i}` on the modules whose outputs are hidden states 0 and i (what the
    store records; GPT-2's last layer is after its final norm `ln_f`), and `layer{i}.mlp` /
    `layer{i}.attn`, for the architectures of `neuroscope.models.transformer.ARCHITECTURES`; for
    others, the layer list's blocks and `embeddings` when the model has one."""
    from neuroscope.models.transformer import ARCHITECTURES, hidden_modules

    width = int(net.config.hidden_size)
    base = getattr(net, "base_model", net)
    if getattr(base.config, "model_type", None) in ARCHITECTURES:
        points = {site: HookPoint(m, 0, width, kind="tensor") for site, m in hidden_modules(base).items()}
        return {**points, **_module_points(base)}
    layers = next((m for m in net.modules() if isinstance(m, nn.ModuleList)
                   and len(m) == int(getattr(net.config, "num_hidden_layers", -1))), None)
    if layers is None:
        raise ConfigError(f"ablation: cannot find the layer list of {type(net).__name__}")
    points = {f"layer{i + 1}": HookPoint(m, 0, width, kind="tensor") for i, m in enumerate(layers)}
    emb = getattr(base, "embeddings", None)
    if isinstance(emb, nn.Module):
        points["embeddings"] = HookPoint(emb, 0, width, kind="tensor")
    return points


def _module_points(net: Any) -> dict[str, HookPoint]:
    """`layer{i}.mlp` / `layer{i}.attn` on the modules extraction reads (a registered architecture)."""
    from neuroscope.models.transformer import site_modules

    return {site: HookPoint(module, 0, width, kind="tensor")
            for site, (module, width) in site_modules(net).items()}
