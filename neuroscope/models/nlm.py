"""A word-level LSTM language model over one side of Multi30k (English by default).

- `LanguageModel`: embeddings, a stack of LSTM layers (each a neuron site `lm.l{i}`), a softmax
  layer optionally tied to the embeddings (Press & Wolf 2017; Inan et al. 2017).
- `NLMModule`: the LightningModule `train.py` fits; perplexity = exp(summed token NLL / number
  of predicted tokens) over the whole split, the tokens being the words and `<eos>`.
- `NLMNeurons`: a trained checkpoint as a neuron source; the row of word w_t is the state after
  reading w_1 … w_t (the sentence starts with `<bos>`; no context crosses sentences).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.text import Perplexity

from neuroscope.config import check_params
from neuroscope.data.multi30k import Multi30kDataModule, collate
from neuroscope.data.vocab import PAD, UNK, Vocab
from neuroscope.devices import torch_device
from neuroscope.errors import ConfigError
from neuroscope.models.lstm_sites import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_KEY,
    CheckpointNeurons,
    StackedLSTM,
    check_same,
    choose_sites,
    pool_words,
    resume_block,
)
from neuroscope.models.sites import HookPoint
from neuroscope.registry import MODELS

ARCH = "nlm_lstm"
ARCH_KEYS = ("emb_dim", "hidden", "layers", "dropout", "tie_embeddings")


class LanguageModel(nn.Module):
    """Next-word prediction with a stack of LSTM layers."""

    def __init__(self, vocab: int, emb_dim: int = 256, hidden: int = 512, layers: int = 2,
                 dropout: float = 0.3, tie_embeddings: bool = True) -> None:
        super().__init__()
        if layers < 1:
            raise ConfigError(f"model.layers: need at least 1 layer, got {layers}")
        self.embed = nn.Embedding(vocab, emb_dim, padding_idx=PAD)
        self.lstm = StackedLSTM(emb_dim, hidden, layers, dropout)
        # a tied softmax reads embedding-sized vectors: project the top state when sizes differ
        self.project = nn.Linear(hidden, emb_dim) if tie_embeddings and hidden != emb_dim else nn.Identity()
        self.generator = nn.Linear(emb_dim if tie_embeddings else hidden, vocab)
        if tie_embeddings:
            self.generator.weight = self.embed.weight
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        """x [B, T] (starting with `<bos>`) → (next-word logits [B, T, V], every layer's output [B, T, H])."""
        outputs, _ = self.lstm(self.drop(self.embed(x)))  # unidirectional: padding at the end changes nothing
        return self.generator(self.drop(self.project(outputs[-1]))), outputs

    def hook_points(self) -> dict[str, HookPoint]:
        """Site `lm.l{i}`: layer i's LSTM output (the store's site of the same name)."""
        return {f"lm.l{i}": HookPoint(m, 0, self.lstm.hidden) for i, m in enumerate(self.lstm.layers)}


class NLMModule(pl.LightningModule):
    """Trains `LanguageModel` on `data.src_lang`; logs loss and perplexity per split."""

    monitor = ("val/perplexity", "min")

    def __init__(self, emb_dim: int = 256, hidden: int = 512, layers: int = 2, dropout: float = 0.3,
                 tie_embeddings: bool = True, lr: float = 2e-3, weight_decay: float = 0.0,
                 lr_decay: float = 0.5, lr_patience: int = 0, vocab: Vocab | None = None) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["vocab"])
        self.arch = {k: self.hparams[k] for k in ARCH_KEYS}
        self.model: LanguageModel | None = None
        self.vocab: Vocab | None = None
        self._nll: dict[str, list[float]] = {}
        self.perplexity = nn.ModuleDict({s: Perplexity(ignore_index=PAD) for s in ("val", "test")})  # torchmetrics
        if vocab is not None:
            self.set_vocab(vocab)

    def set_vocab(self, vocab: Vocab) -> None:
        self.vocab = vocab
        self.model = LanguageModel(len(vocab), **self.arch)

    def make_datamodule(self, data_cfg: Mapping[str, Any] | None, keep_vocab: bool = False) -> Multi30kDataModule:
        """Monolingual Multi30k (`data.src_lang`, English by default); its training vocabulary sizes
        the model, or with `keep_vocab` (a trained model) the model's vocabulary encodes the data."""
        dm = Multi30kDataModule.from_config(data_cfg, tgt_lang=None)
        if keep_vocab and self.vocab is not None:
            dm.src_vocab = self.vocab
        else:
            self.set_vocab(dm.build_vocab()[0])
        return dm

    def fingerprint(self) -> dict[str, Any]:  # what analyze.py calls first on a model
        raise ConfigError("model.checkpoint: analysing nlm_lstm needs a trained checkpoint; train one with "
                          "`python train.py model=nlm_lstm`, then pass model.checkpoint=<path.ckpt>")

    def _nll_sum(self, batch: dict[str, Any]) -> tuple[Tensor, int, Tensor]:
        """Summed token NLL, number of target tokens and the logits [B, T, V] of a batch."""
        if self.model is None:
            raise ConfigError("nlm_lstm has no vocabulary yet: build it with make_datamodule(data_cfg) or pass vocab")
        logits, _ = self.model(batch["tgt_in"])  # [B, T, V]
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch["tgt_out"].reshape(-1),
                              ignore_index=PAD, reduction="sum")
        return nll, int((batch["tgt_out"] != PAD).sum()), logits

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        nll, tokens, _ = self._nll_sum(batch)
        loss = nll / tokens
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["tgt_in"].shape[0])
        return loss

    def _evaluate(self, batch: dict[str, Any], stage: str) -> None:
        nll, tokens, logits = self._nll_sum(batch)
        acc = self._nll.setdefault(stage, [0.0, 0.0])
        acc[0] += float(nll)
        acc[1] += tokens
        self.perplexity[stage].update(logits, batch["tgt_out"])  # exp(mean NLL) over non-pad tokens

    def _finish(self, stage: str) -> None:
        total, count = self._nll.pop(stage, [0.0, 0.0])
        if count:
            self.log(f"{stage}/loss", total / count)
            self.log(f"{stage}/perplexity", float(self.perplexity[stage].compute()))
        self.perplexity[stage].reset()

    def on_validation_epoch_start(self) -> None:
        self._nll.clear()

    on_test_epoch_start = on_validation_epoch_start

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._finish("val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._finish("test")

    def configure_optimizers(self) -> dict[str, Any]:
        opt = torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=self.hparams.lr_decay, patience=self.hparams.lr_patience)
        return {"optimizer": opt,
                "lr_scheduler": {"scheduler": sched, "monitor": "val/perplexity", "interval": "epoch"}}

    ablation_metric_name, higher_is_better, ablation_decoding = "perplexity", False, ""

    def ablation_metric(self, batches: list[dict[str, Any]]) -> float:
        """Perplexity over `batches` (what NeuronAblation re-measures): exp(summed NLL / tokens)."""
        total, count = 0.0, 0
        for batch in batches:
            nll, tokens, _ = self._nll_sum(batch)
            total, count = total + float(nll), count + tokens
        return float(np.exp(total / max(count, 1)))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Architecture and vocabulary as plain lists: the checkpoint loads with weights_only=True."""
        checkpoint[CHECKPOINT_KEY] = {"arch": ARCH, "format": CHECKPOINT_FORMAT, "hparams": dict(self.arch),
                                      "vocab": self.vocab.state() if self.vocab else None}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resuming (`ckpt_path=`) needs the same architecture and vocabulary as the checkpoint."""
        block = resume_block(checkpoint, ARCH)
        if self.model is None:
            self.set_vocab(Vocab.from_state(block["vocab"]))
        check_same(block, self.arch, {"vocab": self.vocab})


class NLMNeurons(CheckpointNeurons):
    """A trained `nlm_lstm` checkpoint as a neuron source: sites `lm.l0`, `lm.l1`, …"""

    arch_name = ARCH

    def __init__(self, checkpoint: str | Path, sites: str | list[str] = "all", aggregation: str = "last",
                 device: str = "cpu") -> None:
        torch_device(device)  # a missing GPU is a ConfigError before the checkpoint is read
        block, state_dict = self._open(checkpoint)
        self.vocab = Vocab.from_state(block["vocab"])
        self._ready(LanguageModel(len(self.vocab), **self.arch), state_dict, aggregation, device)
        self.sites = choose_sites(sites, {"lm": [f"lm.l{i}" for i in range(self.arch["layers"])]})
        self.units = {s: int(self.arch["hidden"]) for s in self.sites}

    def lengths(self, sentences: list[list[str]]) -> list[int]:
        return [len(self.vocab.pieces(s)[0]) + 1 for s in sentences]

    @torch.inference_mode()
    def extract(self, sentences: list[list[str]]) -> dict[str, Tensor]:
        """{site: [words, units]}: for each word, the states after reading it (and the words before)."""
        items, word_of, offset = [], [], 0
        for i, words in enumerate(sentences):
            ids, w_of = self.vocab.encode(words)
            self.unknown_words += len({w for t, w in zip(ids, w_of, strict=True) if t == UNK})
            items.append({"index": i, "tgt": ids})
            word_of.extend(w + offset for w in w_of)
            offset += len(words)
        batch = collate(items)
        x = batch["tgt_in"].to(self.device)  # [B, T]: <bos> + units
        _, outputs = self.model(x)
        real = (batch["tgt_in"] != PAD).clone()  # [B, T]
        real[:, 0] = False  # the <bos> position reads no word
        out = {}
        for i, site in enumerate(f"lm.l{k}" for k in range(self.arch["layers"])):
            if site in self.sites:
                rows = outputs[i][real.to(self.device)].float().cpu()  # [units, H]
                out[site] = pool_words(rows, torch.tensor(word_of, dtype=torch.long), offset, self.aggregation) \
                    if self.vocab.subword else rows
        return out

    @torch.inference_mode()
    def perplexity(self, sentences: list[list[str]]) -> float:
        """exp(mean NLL) of the words and `<eos>` of word-tokenized sentences."""
        batch = collate([{"index": i, "tgt": self.vocab.encode(s)[0]} for i, s in enumerate(sentences)])
        logits, _ = self.model(batch["tgt_in"].to(self.device))
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).cpu(), batch["tgt_out"].reshape(-1),
                              ignore_index=PAD)
        return float(nll.exp())


@MODELS.register(ARCH)
def nlm_lstm(checkpoint: str | None = None, sites: str | list[str] = "all", aggregation: str = "last",
             device: str = "cpu", **hparams: Any) -> NLMModule | NLMNeurons:
    """Without `checkpoint`: the trainable `NLMModule`; with one: its neurons (`NLMNeurons`)."""
    check_params(NLMModule.__init__, hparams, "model")
    if checkpoint:
        return NLMNeurons(checkpoint, sites=sites, aggregation=aggregation, device=device)
    return NLMModule(**hparams)
