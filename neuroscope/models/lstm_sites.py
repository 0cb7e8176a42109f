"""Pieces shared by the LSTM models: per-layer LSTM stacks (each layer a neuron site), safe
checkpoint loading, and pooling of subword rows into word rows."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from neuroscope.data.vocab import Vocab
from neuroscope.errors import ConfigError
from neuroscope.hashing import cached_sha256
from neuroscope.models.base import read_checkpoint

CHECKPOINT_KEY = "neuroscope"  # our block in a Lightning checkpoint: arch, hparams, vocabularies
CHECKPOINT_FORMAT = 1
AGGREGATIONS = ("first", "last", "mean")

State = list[tuple[Tensor, Tensor]]  # per layer (h, c), each [directions, batch, hidden]


class StackedLSTM(nn.Module):
    """`layers` single-layer LSTMs with dropout between them, so every layer's output is visible."""

    def __init__(self, input_size: int, hidden: int, layers: int, dropout: float = 0.0,
                 bidirectional: bool = False) -> None:
        super().__init__()
        dirs = 2 if bidirectional else 1
        self.layers = nn.ModuleList(
            nn.LSTM(input_size if i == 0 else hidden * dirs, hidden, batch_first=True, bidirectional=bidirectional)
            for i in range(layers)
        )
        self.dropout = nn.Dropout(dropout)
        self.hidden, self.dirs = hidden, dirs

    def forward(self, x: Tensor, lengths: Tensor | None = None, state: State | None = None
                ) -> tuple[list[Tensor], State]:
        """Outputs of every layer, each [B, T, dirs * hidden], and the final (h, c) of every layer.

        With `lengths` the sequences are packed: a backward direction starts at each
        sentence's own last token, and padding never changes the states of real tokens.
        """
        outputs: list[Tensor] = []
        finals: State = []
        total = x.shape[1]
        for i, lstm in enumerate(self.layers):
            inp = self.dropout(x) if i > 0 else x
            if lengths is not None:
                packed = pack_padded_sequence(inp, lengths.cpu(), batch_first=True, enforce_sorted=False)
                out, hc = lstm(packed, None if state is None else state[i])
                out = pad_packed_sequence(out, batch_first=True, total_length=total)[0]  # [B, T, dirs * H]
            else:
                out, hc = lstm(inp, None if state is None else state[i])
            outputs.append(out)
            finals.append(hc)
            x = out
        return outputs, finals


def pool_words(rows: Tensor, word_of: Tensor, n_words: int, how: str) -> Tensor:
    """Rows of subword units [units, H] pooled into rows of words [n_words, H] (`first`/`last`/`mean`)."""
    if how == "mean":
        sums = torch.zeros(n_words, rows.shape[1], dtype=rows.dtype).index_add_(0, word_of, rows)
        return sums / torch.bincount(word_of, minlength=n_words).clamp_min(1).unsqueeze(1)
    pos = torch.arange(len(word_of))
    pick = torch.full((n_words,), len(word_of) if how == "first" else -1, dtype=torch.long)
    pick.scatter_reduce_(0, word_of, pos, reduce="amin" if how == "first" else "amax")
    return rows[pick]



def load_checkpoint(path: str | Path, arch: str, key: str = "model.checkpoint") -> dict[str, Any]:
    """A checkpoint written by `train.py model=<arch>`, loaded without unpickling code.

    Fails with a `ConfigError` naming `key` (default `model.checkpoint`) for a missing file, a file that is not
    a safe torch checkpoint, or a checkpoint of another architecture.
    """
    p = Path(path).expanduser()
    ckpt = read_checkpoint(p, arch, key)
    block = ckpt.get(CHECKPOINT_KEY) if isinstance(ckpt, dict) else None
    if not isinstance(block, dict) or "state_dict" not in ckpt:
        raise ConfigError(f"{key}: {p} is not a neuroscope model checkpoint (no '{CHECKPOINT_KEY}' "
                          f"entry); checkpoints come from `python train.py model={arch}`")
    if block.get("arch") != arch:
        raise ConfigError(f"{key}: {p} holds a '{block.get('arch')}' model, not '{arch}'; "
                          f"use model={block.get('arch')}")
    if block.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{key}: {p} has checkpoint format {block.get('format')}, "
                          f"this version reads {CHECKPOINT_FORMAT}")
    return ckpt


def resume_block(checkpoint: dict[str, Any], arch: str) -> dict[str, Any]:
    """Our block of a checkpoint given to `ckpt_path=` (resuming), checked to be an `arch` model."""
    block = checkpoint.get(CHECKPOINT_KEY)
    if not isinstance(block, dict) or block.get("arch") != arch:
        found = block.get("arch") if isinstance(block, dict) else "no neuroscope model"
        raise ConfigError(f"ckpt_path: the checkpoint holds {found!r}, not an {arch} model")
    return block


def load_weights(module: nn.Module, state_dict: dict[str, Tensor], prefix: str, path: str | Path) -> None:
    """Load `prefix.*` weights into `module`; a shape or key mismatch is a `ConfigError`."""
    own = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    try:
        module.load_state_dict(own, strict=True)
    except RuntimeError as exc:
        raise ConfigError(f"model.checkpoint: the weights in {path} do not fit the model its settings "
                          f"describe (another vocabulary or size?): {str(exc).splitlines()[0]}") from exc


def check_aggregation(how: str) -> str:
    if how not in AGGREGATIONS:
        raise ConfigError(f"model.aggregation: expected one of {AGGREGATIONS}, got '{how}'")
    return how


def choose_sites(sites: str | list[str], groups: dict[str, list[str]]) -> list[str]:
    """`"all"`, a group name (`"encoder"`, `"decoder"`, `"lm"`) or a list of site names, in model order."""
    everything = [s for g in groups.values() for s in g]
    if isinstance(sites, str):
        if sites == "all":
            return everything
        if sites in groups:
            return list(groups[sites])
        sites = [sites]
    unknown = [s for s in sites if s not in everything]
    if unknown or not sites:
        raise ConfigError(f"model.sites: unknown site(s) {unknown}; choose 'all', one of {list(groups)} "
                          f"or a list of {everything}")
    return [s for s in everything if s in set(sites)]


def check_same(block: dict[str, Any], arch: Mapping[str, Any], vocabs: Mapping[str, Vocab | None]) -> None:
    """Fail clearly when a checkpoint's architecture or vocabularies differ from the run's."""
    diff = {k: (block["hparams"].get(k), v) for k, v in arch.items() if block["hparams"].get(k) != v}
    if diff:
        raise ConfigError(f"ckpt_path: the checkpoint's model settings differ from this run's "
                          f"(checkpoint, run): {diff}; resume with the settings it was trained with")
    for side, vocab in vocabs.items():
        saved = Vocab.from_state(block[side])
        if vocab is not None and saved != vocab:
            raise ConfigError(f"ckpt_path: the checkpoint's {side} ({saved.describe()}) differs from the one "
                              f"built from the data ({vocab.describe()}); use the data settings "
                              "(min_freq, max_vocab, lowercase, subword) it was trained with")


class CheckpointNeurons:
    """What the NMT's and the LM's neuron sources share: a checkpoint written by `train.py`,
    loaded safely, its model in eval mode on `device`, a fingerprint keyed by the file's
    sha256, and a count of words fed as `<unk>`."""

    arch_name = ""

    def _open(self, checkpoint: str | Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
        """Our block and the state dict of the checkpoint; sets `path` and `arch` (its hparams)."""
        self.path = Path(checkpoint).expanduser()
        ckpt = load_checkpoint(self.path, self.arch_name)
        block = ckpt[CHECKPOINT_KEY]
        self.arch: dict[str, Any] = dict(block["hparams"])
        return block, ckpt["state_dict"]

    def _ready(self, model: nn.Module, state_dict: dict[str, Tensor], aggregation: str, device: str) -> None:
        """Load the weights into `model` and make it the source's model."""
        load_weights(model, state_dict, "model.", self.path)
        self.model, self.device = model.to(device).eval(), device
        self.aggregation = check_aggregation(aggregation)
        self.unknown_words = 0  # words fed as <unk> (or with an <unk> piece) so far
        self._sha256: str | None = None

    def input_files(self) -> dict[str, str]:
        """The checkpoint by content: a later run finds its store without loading the model."""
        return {str(self.path.resolve()): cached_sha256(self.path)}

    def fingerprint(self) -> dict[str, Any]:
        if self._sha256 is None:
            self._sha256 = cached_sha256(self.path)
        return {"arch": self.arch_name, "checkpoint": str(self.path.resolve()), "sha256": self._sha256,
                "sites": self.sites, "aggregation": self.aggregation}

    def stats(self) -> dict[str, int]:
        """Counts worth a warning: words not in the (source) vocabulary, fed as `<unk>`."""
        return {"unknown_words": self.unknown_words}
