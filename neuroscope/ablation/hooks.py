"""Silence chosen neurons of a model inside a `with` block; hooks and patched forwards are always
removed on exit, also on error. Model code is not edited.

    with silence(model, ["lm.l1:17", "lm.l0:3"], mode="zero"):
        ppl = ...                      # every forward pass in here sees the units clamped

Modes: `zero` (the papers), `mean` (`values[neuron]`, e.g. from `store_means`), `patch` (the
activations a `record()` block saw on another input of the same shape, call by call).
Where (`where`):
- `output` (default): the site's output as every later computation sees it: the next layer, the
  attention memory, the LM head, and for the NMT encoder's top layer the final state the
  decoder starts from. The LSTM's own recurrence still sees the unclamped state.
- `recurrent` (LSTM sites): the units are clamped inside the recurrence at every time step too,
  so the clamped state is what the next step reads (the layer is run step by step).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from neuroscope.ablation.latents import is_latent, silence_latents
from neuroscope.ablation.outputs import split_output as _split
from neuroscope.ablation.sites import HookPoint, hook_points, network
from neuroscope.errors import ConfigError

MODES = ("zero", "mean", "patch")
WHERE = ("output", "recurrent")


@dataclass
class Recording:
    """Outputs of hooked modules, one entry per call, in call order (for `patch` mode)."""

    calls: dict[int, list[tuple[Tensor, Tensor | None]]] = field(default_factory=lambda: defaultdict(list))


@dataclass
class _Clamp:
    """The units of one site to clamp and the values (None: zero; [k] for mean)."""

    point: HookPoint
    units: Tensor  # [k] unit indices within the site
    values: Tensor | None = None  # [k]

    @property
    def columns(self) -> Tensor:
        return self.units + self.point.start  # columns of the module's output


def parse_neurons(neurons: Iterable[str], points: Mapping[str, HookPoint]) -> dict[str, list[int]]:
    """`site:unit` ids grouped by site; unknown sites or units out of range are a `ConfigError`."""
    by_site: dict[str, list[int]] = defaultdict(list)
    for nid in neurons:
        site, _, unit = str(nid).rpartition(":")
        if site not in points:
            raise ConfigError(f"ablation: neuron '{nid}' names no site of this model; sites: {sorted(points)}")
        if not unit.isdigit() or int(unit) >= points[site].width:
            raise ConfigError(f"ablation: neuron '{nid}': unit out of range (site {site} has "
                              f"{points[site].width} units)")
        by_site[site].append(int(unit))
    return dict(by_site)


def _clamps(points: Mapping[str, HookPoint], by_site: Mapping[str, list[int]], mode: str,
            values: Mapping[str, float] | None) -> dict[int, list[_Clamp]]:
    """Clamps grouped by module (one hook per module even when both directions are clamped)."""
    out: dict[int, list[_Clamp]] = defaultdict(list)
    for site, units in by_site.items():
        uniq = sorted(set(units))
        vals = None
        if mode == "mean":
            missing = [f"{site}:{u}" for u in uniq if values is None or f"{site}:{u}" not in values]
            if missing:
                raise ConfigError(f"ablation: mode=mean needs a value for every neuron; none for {missing[:5]}")
            vals = torch.tensor([float(values[f"{site}:{u}"]) for u in uniq])  # type: ignore[index]
        out[id(points[site].module)].append(_Clamp(points[site], torch.tensor(uniq, dtype=torch.long), vals))
    return out


def _fill(x: Tensor, columns: Tensor, values: Tensor | None, source: Tensor | None) -> Tensor:
    """x [..., C] with `columns` set to zero, to `values` [k], or copied from `source` [..., C]."""
    x = x.clone()
    if source is not None:
        x[..., columns] = source[..., columns].to(x.dtype)
    elif values is not None:
        x[..., columns] = values.to(x.dtype).to(x.device)
    else:
        x[..., columns] = 0
    return x


def _output_hook(clamps: list[_Clamp], mode: str, recording: Recording | None, key: int) -> Any:
    """A forward hook clamping the units of `clamps` in one module's output (and final h when
    another module reads it)."""
    counter = [0]

    def hook(module: nn.Module, args: Any, output: Any) -> Any:
        kind = clamps[0].point.kind
        data, rebuild = _split(output, kind)
        source_data = source_h = None
        if mode == "patch":
            calls = recording.calls.get(key, []) if recording is not None else []
            if counter[0] >= len(calls):
                raise ConfigError("ablation: mode=patch: the patched run calls a site more often than the "
                                  "recorded run did; record on an input of the same shape")
            source_data, source_h = calls[counter[0]]
            if source_data.shape != data.shape:
                raise ConfigError(f"ablation: mode=patch: recorded activations {tuple(source_data.shape)} do not "
                                  f"match this input's {tuple(data.shape)}; record on an input of the same shape")
        counter[0] += 1
        for c in clamps:
            data = _fill(data, c.columns, c.values, source_data)
        state = output[1] if kind == "lstm" else None
        if kind == "lstm" and any(c.point.state_read_elsewhere for c in clamps):
            h, cell = state
            h = h.clone()
            for c in clamps:
                if c.point.state_read_elsewhere:
                    src = None if source_h is None else source_h[c.point.direction]
                    h[c.point.direction] = _fill(h[c.point.direction], c.units, c.values, src)
            state = (h, cell)
        return rebuild(data, state)

    return hook


def lstm_steps(lstm: nn.LSTM, x: Any, hx: tuple[Tensor, Tensor] | None = None,
               clamps: dict[int, tuple[Tensor, Tensor | None]] | None = None) -> tuple[Any, tuple[Tensor, Tensor]]:
    """A single-layer `nn.LSTM` run one time step at a time, clamping `clamps[direction] = (units,
    values or None)` of h at every step; without clamps it equals `lstm(x, hx)`. Takes and returns
    padded batches or PackedSequences like the module."""
    if lstm.num_layers != 1 or lstm.proj_size:
        raise ConfigError("ablation: where=recurrent needs single-layer LSTMs without projections")
    packed = isinstance(x, PackedSequence)
    if packed:
        x, lengths = pad_packed_sequence(x, batch_first=True)
    else:
        if not lstm.batch_first:
            x = x.transpose(0, 1)
        lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long)
    batch, steps, _ = x.shape  # [B, T, I]
    dirs = 2 if lstm.bidirectional else 1
    hidden = lstm.hidden_size
    lengths = lengths.to(x.device)
    time = torch.arange(steps, device=x.device)
    # backward direction: each sentence reversed within its own length
    rev = (lengths.unsqueeze(1) - 1 - time).clamp_min(0)  # [B, T]
    rev = torch.where(time < lengths.unsqueeze(1), rev, time)
    outs, hs, cs = [], [], []
    for d in range(dirs):
        sfx = "_reverse" if d else ""
        w_ih, w_hh = getattr(lstm, f"weight_ih_l0{sfx}"), getattr(lstm, f"weight_hh_l0{sfx}")
        b = getattr(lstm, f"bias_ih_l0{sfx}", None)
        bias = (b + getattr(lstm, f"bias_hh_l0{sfx}")) if b is not None else 0.0
        xd = x if d == 0 else x.gather(1, rev.unsqueeze(2).expand_as(x))
        h = hx[0][d] if hx is not None else x.new_zeros(batch, hidden)
        c = hx[1][d] if hx is not None else x.new_zeros(batch, hidden)
        pre = xd @ w_ih.T + bias  # [B, T, 4H]
        units, values = (clamps or {}).get(d, (None, None))
        rows = []
        for t in range(steps):
            i, f, g, o = (pre[:, t] + h @ w_hh.T).chunk(4, 1)
            c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h_new = torch.sigmoid(o) * torch.tanh(c_new)
            if units is not None:
                h_new = _fill(h_new, units, values, None)
            live = (t < lengths).unsqueeze(1)  # [B, 1] padding keeps the last real state
            h, c = torch.where(live, h_new, h), torch.where(live, c_new, c)
            rows.append(torch.where(live, h_new, torch.zeros_like(h_new)))
        out = torch.stack(rows, 1)  # [B, T, H]
        if d == 1:
            out = out.gather(1, rev.unsqueeze(2).expand_as(out))
            out = torch.where((time < lengths.unsqueeze(1)).unsqueeze(2), out, torch.zeros_like(out))
        outs.append(out)
        hs.append(h)
        cs.append(c)
    output = torch.cat(outs, -1)  # [B, T, dirs * H]
    state = (torch.stack(hs), torch.stack(cs))  # [dirs, B, H]
    if packed:
        return pack_padded_sequence(output, lengths.cpu(), batch_first=True, enforce_sorted=False), state
    return (output if lstm.batch_first else output.transpose(0, 1)), state


@contextmanager
def silence(model: Any, neurons: Iterable[str], mode: str = "zero", values: Any = None,
            where: str = "output", saes: Mapping[str, Any] | None = None) -> Iterator[None]:
    """Clamp `neurons` (`site:unit` ids) of `model` while the block runs (see the module doc).
    `values`: {neuron: value} for mode=mean, a `Recording` for mode=patch. SAE latents
    (`layer2.sae:17`) among `neurons` are silenced through their SAE, `saes={site: SAE}`
    (neuroscope.ablation.latents)."""
    neurons = list(neurons)
    latents = [n for n in neurons if is_latent(n)]
    if latents:
        if mode == "patch":
            raise ConfigError("ablation: mode=patch copies a site's output; SAE latents use zero or mean")
        with silence_latents(model, saes or {}, latents, mode, values), \
                silence(model, [n for n in neurons if not is_latent(n)], mode, values, where):
            yield
        return
    if mode not in MODES:
        raise ConfigError(f"ablation.mode: expected one of {MODES}, got '{mode}'")
    if where not in WHERE:
        raise ConfigError(f"ablation.where: expected one of {WHERE}, got '{where}'")
    if mode == "patch" and not isinstance(values, Recording):
        raise ConfigError("ablation: mode=patch needs the Recording of a `record()` block on another input")
    if mode == "patch" and where == "recurrent":
        raise ConfigError("ablation: mode=patch copies a site's output; use where=output")
    points = hook_points(model)
    by_module = _clamps(points, parse_neurons(neurons, points), mode, values if mode == "mean" else None)
    handles, patched = [], []
    try:
        for key, clamps in by_module.items():
            module = clamps[0].point.module
            if where == "recurrent" and clamps[0].point.kind == "lstm":
                plan = {c.point.direction: (c.units, c.values) for c in clamps}
                module.forward = (lambda m, p: lambda x, hx=None: lstm_steps(m, x, hx, p))(module, plan)
                patched.append(module)
            else:
                handles.append(module.register_forward_hook(  # first: every other hook sees the clamp
                    _output_hook(clamps, mode, values if mode == "patch" else None, key), prepend=True))
        yield
    finally:
        for handle in handles:
            handle.remove()
        for module in patched:
            del module.forward  # the class's own forward again


@contextmanager
def record(model: Any, sites: Iterable[str] | None = None) -> Iterator[Recording]:
    """Keep the outputs of `sites` (default all) on every call, for a later `silence(mode="patch")`."""
    points = hook_points(model)
    chosen = list(points) if sites is None else list(sites)
    unknown = [s for s in chosen if s not in points]
    if unknown:
        raise ConfigError(f"ablation: unknown site(s) {unknown}; sites: {sorted(points)}")
    rec = Recording()
    modules = {id(points[s].module): points[s] for s in chosen}
    handles = []

    def keeper(key: int, kind: str) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            data, _ = _split(output, kind)
            h = output[1][0].detach().clone() if kind == "lstm" else None
            rec.calls[key].append((data.detach().clone(), h))
        return hook

    try:
        for key, point in modules.items():
            handles.append(point.module.register_forward_hook(keeper(key, point.kind)))
        yield rec
    finally:
        for handle in handles:
            handle.remove()


def store_moments(store: Any, tokens: Any = None) -> dict[str, tuple[float, float, float]]:
    """Every neuron's (mean, sd, mean square) over the store's tokens (or the `tokens` bool mask),
    streamed shard by shard: what a silenced set is made of (NeuronAblation's `stats`)."""
    total, squares = np.zeros(store.n_neurons), np.zeros(store.n_neurons)
    count = 0
    mask = None if tokens is None else np.asarray(tokens, dtype=bool)
    for rows, block in store.iter_shards(dtype=np.float64):  # [shard tokens, neurons]
        if mask is not None:
            block = block[mask[rows]]
        total += block.sum(0)
        squares += (block ** 2).sum(0)
        count += block.shape[0]
    if count == 0:
        raise ConfigError(f"ablation: no tokens to take neuron statistics over in {store.path}")
    mean, square = total / count, squares / count
    sd = np.sqrt(np.clip(square - mean ** 2, 0.0, None))
    return {nid: (float(m), float(d), float(q)) for nid, m, d, q in zip(store.neurons, mean, sd, square, strict=True)}


def store_means(store: Any, tokens: Any = None) -> dict[str, float]:
    """Every neuron's mean activation over the store's tokens (or the `tokens` bool mask), for mode=mean."""
    return {nid: m for nid, (m, _, _) in store_moments(store, tokens).items()}


__all__ = ["Recording", "lstm_steps", "network", "parse_neurons", "record", "silence", "store_means", "store_moments"]
