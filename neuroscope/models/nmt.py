"""Attention encoder–decoder LSTM for translation (Luong et al. 2015), trained on Multi30k en→de.

- `NMTModel`: a (bi)LSTM encoder, an LSTM decoder with global attention, greedy and beam search.
- `NMTModule`: the LightningModule `train.py` fits (teacher forcing, label smoothing, sacreBLEU).
- `NMTNeurons`: a trained checkpoint as a neuron source. Sites `encoder.l{i}.fwd|bwd` give one
  row per source word; `decoder.l{i}` (opt-in) give, per source word, the decoder states of the
  model's own greedy translation averaged with the attention that word receives.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neuroscope.config import check_params
from neuroscope.data.multi30k import Multi30kDataModule, collate
from neuroscope.data.vocab import BOS, EOS, PAD, UNK, Vocab, detokenize, tokenize
from neuroscope.devices import torch_device
from neuroscope.errors import ConfigError
from neuroscope.models.lstm_sites import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_KEY,
    CheckpointNeurons,
    StackedLSTM,
    State,
    check_same,
    choose_sites,
    pool_words,
    resume_block,
)
from neuroscope.models.sites import HookPoint
from neuroscope.registry import MODELS

log = logging.getLogger(__name__)
ARCH = "nmt_lstm"
ATTENTIONS = ("general", "dot")


class Memory(NamedTuple):
    """What the decoder attends to: encoder top-layer outputs, their attention keys, a padding mask."""

    values: Tensor  # [B, S, M]
    keys: Tensor  # [B, S, D]
    mask: Tensor  # [B, S] True at real source positions

    def repeat(self, k: int) -> Memory:
        """Each sentence repeated k times in a row (for beam search)."""
        return Memory(*(t.repeat_interleave(k, 0) for t in self))


class Decoded(NamedTuple):
    """Output of greedy or beam search; `states`/`attention` only when traced."""

    tokens: Tensor  # [B, T] ids; positions after <eos> hold <eos>
    scores: Tensor  # [B] log-probability of the sequence
    states: list[Tensor] | None = None  # per decoder layer [B, T, D]: state at the step emitting tokens[:, t]
    attention: Tensor | None = None  # [B, T, S]


class GlobalAttention(nn.Module):
    """Luong et al. (2015) global attention: score = h_t·W_a·h̄_s ('general') or h_t·h̄_s ('dot');
    output h̃_t = tanh(W_c [c_t; h_t])."""

    def __init__(self, query_dim: int, memory_dim: int, kind: str = "general") -> None:
        super().__init__()
        if kind not in ATTENTIONS:
            raise ConfigError(f"model.attention: expected one of {ATTENTIONS}, got '{kind}'")
        if kind == "dot" and query_dim != memory_dim:
            raise ConfigError(f"model.attention: 'dot' needs equal sizes (decoder {query_dim}, encoder "
                              f"output {memory_dim}); use 'general'")
        self.key = nn.Linear(memory_dim, query_dim, bias=False) if kind == "general" else nn.Identity()
        self.combine = nn.Linear(memory_dim + query_dim, query_dim, bias=False)

    def keys(self, values: Tensor) -> Tensor:
        return self.key(values)  # [B, S, D]

    def forward(self, query: Tensor, memory: Memory) -> tuple[Tensor, Tensor]:
        """query [B, T, D] → (attentional states h̃ [B, T, D], attention weights [B, T, S])."""
        scores = query @ memory.keys.transpose(1, 2)  # [B, T, S]
        scores = scores.masked_fill(~memory.mask.unsqueeze(1), float("-inf"))
        attn = scores.softmax(-1)  # [B, T, S]
        context = attn @ memory.values  # [B, T, M]
        return torch.tanh(self.combine(torch.cat([context, query], -1))), attn


class NMTModel(nn.Module):
    """Encoder–decoder with global attention; the decoder starts from a projection of the encoder's final state."""

    def __init__(self, src_vocab: int, tgt_vocab: int, emb_dim: int = 256, hidden: int = 256,
                 enc_layers: int = 2, dec_layers: int = 2, bidirectional: bool = True,
                 attention: str = "general", input_feed: bool = False, dropout: float = 0.3,
                 tie_embeddings: bool = False) -> None:
        super().__init__()
        if min(enc_layers, dec_layers) < 1:
            raise ConfigError(f"model.enc_layers/dec_layers: need at least 1 layer, got {enc_layers}/{dec_layers}")
        self.hidden, self.dec_layers, self.input_feed = hidden, dec_layers, input_feed
        self.src_embed = nn.Embedding(src_vocab, emb_dim, padding_idx=PAD)
        self.encoder = StackedLSTM(emb_dim, hidden, enc_layers, dropout, bidirectional)
        memory_dim = hidden * self.encoder.dirs
        self.bridge = nn.Linear(memory_dim, 2 * dec_layers * hidden)  # final encoder state → decoder (h, c)
        self.tgt_embed = nn.Embedding(tgt_vocab, emb_dim, padding_idx=PAD)
        self.decoder = StackedLSTM(emb_dim + (hidden if input_feed else 0), hidden, dec_layers, dropout)
        self.attention = GlobalAttention(hidden, memory_dim, attention)
        self.generator = nn.Linear(hidden, tgt_vocab)
        if tie_embeddings:
            if emb_dim != hidden:
                raise ConfigError(f"model.tie_embeddings: needs emb_dim == hidden, got {emb_dim} and {hidden}")
            self.generator.weight = self.tgt_embed.weight
        self.drop = nn.Dropout(dropout)

    def hook_points(self) -> dict[str, HookPoint]:
        """Sites `encoder.l{i}.fwd|bwd` (direction k: units k*H…(k+1)*H of layer i's output; the top
        layer's final h also feeds the bridge) and `decoder.l{i}`, as the store names them."""
        h, enc = self.hidden, self.encoder
        dirs = ["fwd", "bwd"][: enc.dirs]
        last = len(enc.layers) - 1
        points = {f"encoder.l{i}.{d}": HookPoint(m, k * h, (k + 1) * h, direction=k, state_read_elsewhere=i == last)
                  for i, m in enumerate(enc.layers) for k, d in enumerate(dirs)}
        points.update({f"decoder.l{i}": HookPoint(m, 0, h) for i, m in enumerate(self.decoder.layers)})
        return points

    def encode(self, src: Tensor, src_len: Tensor) -> tuple[Memory, State, list[Tensor]]:
        """src [B, S] → memory, the decoder's initial state, and every encoder layer's output [B, S, dirs * H]."""
        outputs, finals = self.encoder(self.drop(self.src_embed(src)), src_len)
        h_last = finals[-1][0]  # [dirs, B, H]: fwd after the last word, bwd after the first
        batch = src.shape[0]
        init = torch.tanh(self.bridge(h_last.transpose(0, 1).reshape(batch, -1)))  # [B, 2 * L * H]
        init = init.view(batch, 2, self.dec_layers, self.hidden)
        state = [(init[:, 0, i].unsqueeze(0).contiguous(), init[:, 1, i].unsqueeze(0).contiguous())
                 for i in range(self.dec_layers)]  # per layer (h, c) [1, B, H]
        mask = torch.arange(src.shape[1], device=src.device) < src_len.to(src.device).unsqueeze(1)  # [B, S]
        top = outputs[-1]
        return Memory(top, self.attention.keys(top), mask), state, outputs

    def decode(self, y_in: Tensor, state: State, memory: Memory, feed: Tensor | None = None
               ) -> tuple[Tensor, State, Tensor, list[Tensor], Tensor | None]:
        """Teacher-forced steps: y_in [B, T] → (logits [B, T, V], state, attention [B, T, S],
        per-layer decoder outputs [B, T, H], last attentional state for input feeding)."""
        emb = self.drop(self.tgt_embed(y_in))  # [B, T, E]
        if not self.input_feed:  # all steps in one LSTM call per layer
            outputs, state = self.decoder(emb, state=state)
            out, attn = self.attention(outputs[-1], memory)  # [B, T, H], [B, T, S]
        else:  # h̃_{t-1} is part of the input at step t (Luong et al. 2015, §3.3)
            if feed is None:
                feed = emb.new_zeros(emb.shape[0], self.hidden)
            steps = []
            for t in range(emb.shape[1]):
                x = torch.cat([emb[:, t : t + 1], feed.unsqueeze(1)], -1)  # [B, 1, E + H]
                outs, state = self.decoder(x, state=state)
                h_tilde, a = self.attention(outs[-1], memory)
                feed = h_tilde[:, 0]
                steps.append((outs, h_tilde, a))
            outputs = [torch.cat([s[0][i] for s in steps], 1) for i in range(self.dec_layers)]
            out, attn = torch.cat([s[1] for s in steps], 1), torch.cat([s[2] for s in steps], 1)
        logits = self.generator(self.drop(out))  # [B, T, V]
        return logits, state, attn, outputs, feed

    def forward(self, src: Tensor, src_len: Tensor, y_in: Tensor) -> Tensor:
        """Logits [B, T, V] of the next target word at every teacher-forced position."""
        memory, state, _ = self.encode(src, src_len)
        return self.decode(y_in, state, memory)[0]

    @staticmethod
    def max_steps(src_len: Tensor, a: float, b: int) -> int:
        return int(src_len.max().item() * a + b)

    def greedy(self, src: Tensor, src_len: Tensor, max_len_a: float = 1.5, max_len_b: int = 10,
               trace: bool = False) -> Decoded:
        """Most probable word at every step until `<eos>` (or a · source length + b steps)."""
        memory, state, _ = self.encode(src, src_len)
        batch = src.shape[0]
        y = torch.full((batch, 1), BOS, dtype=torch.long, device=src.device)
        feed, done = None, torch.zeros(batch, dtype=torch.bool, device=src.device)
        scores = torch.zeros(batch, device=src.device)
        tokens, states, attns = [], [], []
        for _ in range(self.max_steps(src_len, max_len_a, max_len_b)):
            logits, state, attn, outs, feed = self.decode(y, state, memory, feed)
            logp = logits[:, -1].log_softmax(-1)  # [B, V]
            best = logp.argmax(-1)  # [B]
            scores = scores + torch.where(done, 0.0, logp.gather(1, best.unsqueeze(1)).squeeze(1))
            best = best.masked_fill(done, EOS)
            tokens.append(best)
            if trace:
                states.append([o[:, -1] for o in outs])
                attns.append(attn[:, -1])
            done = done | (best == EOS)
            y = best.unsqueeze(1)
            if bool(done.all()):
                break
        out = torch.stack(tokens, 1)  # [B, T]
        if not trace:
            return Decoded(out, scores)
        per_layer = [torch.stack([s[i] for s in states], 1) for i in range(self.dec_layers)]  # [B, T, H]
        return Decoded(out, scores, per_layer, torch.stack(attns, 1))

    def beam_search(self, src: Tensor, src_len: Tensor, beam: int = 5, length_penalty: float = 0.6,
                    max_len_a: float = 1.5, max_len_b: int = 10) -> Decoded:
        """Best of `beam` hypotheses by log-probability / ((5 + length) / 6) ** length_penalty (Wu et al. 2016)."""
        if beam <= 1:
            return self.greedy(src, src_len, max_len_a, max_len_b)
        memory, state, _ = self.encode(src, src_len)
        batch, dev = src.shape[0], src.device
        memory = memory.repeat(beam)
        state = [(h.repeat_interleave(beam, 1), c.repeat_interleave(beam, 1)) for h, c in state]
        scores = torch.full((batch, beam), float("-inf"), device=dev)
        scores[:, 0] = 0.0  # one live hypothesis per sentence at the start
        seqs = torch.full((batch * beam, 1), BOS, dtype=torch.long, device=dev)  # [B*K, t]
        done = torch.zeros(batch * beam, dtype=torch.bool, device=dev)
        length = torch.zeros(batch * beam, device=dev)
        feed = None
        base = torch.arange(batch, device=dev).unsqueeze(1) * beam  # [B, 1]
        for _ in range(self.max_steps(src_len, max_len_a, max_len_b)):
            logits, state, _, _, feed = self.decode(seqs[:, -1:], state, memory, feed)
            logp = logits[:, -1].log_softmax(-1)  # [B*K, V]
            vocab = logp.shape[-1]
            logp[done] = float("-inf")  # a finished hypothesis only continues with <eos>, at no cost
            logp[done, EOS] = 0.0
            cand = (scores.view(-1, 1) + logp).view(batch, beam * vocab)  # [B, K*V]
            scores, flat = cand.topk(beam, dim=1)  # [B, K]
            origin = (base + flat // vocab).view(-1)  # [B*K] hypothesis each new one extends
            word = (flat % vocab).view(-1, 1)  # [B*K, 1]
            length = length[origin] + (~done[origin]).float()
            done = done[origin] | (word.squeeze(1) == EOS)
            seqs = torch.cat([seqs[origin], word], 1)
            state = [(h[:, origin], c[:, origin]) for h, c in state]
            feed = None if feed is None else feed[origin]
            if bool(done.all()):
                break
        penalty = ((5.0 + length.view(batch, beam)) / 6.0) ** length_penalty
        best = (scores / penalty).argmax(1)  # [B]
        pick = base.squeeze(1) + best
        return Decoded(seqs[pick, 1:], scores.gather(1, best.unsqueeze(1)).squeeze(1))


def corpus_bleu(hypotheses: list[str], references: list[str]) -> float:
    """sacreBLEU of detokenized hypotheses against raw references (13a, mixed case: the standard signature)."""
    import sacrebleu

    return float(sacrebleu.corpus_bleu(hypotheses, [references]).score)


def bleu_signature() -> str:
    from sacrebleu.metrics import BLEU

    return str(BLEU().get_signature())


def to_text(tokens: Tensor, vocab: Vocab) -> list[str]:
    """Raw lines of id rows [B, T] (`<unk>` dropped: it would count as three wrong 13a tokens)."""
    return [detokenize(w for w in vocab.decode(row) if w != "<unk>") for row in tokens.tolist()]


ARCH_KEYS = ("emb_dim", "hidden", "enc_layers", "dec_layers", "bidirectional", "attention", "input_feed",
             "dropout", "tie_embeddings")


class NMTModule(pl.LightningModule):
    """Trains `NMTModel` with teacher forcing; validates with greedy BLEU, tests with beam search."""

    monitor = ("val/bleu", "max")

    def __init__(self, emb_dim: int = 256, hidden: int = 256, enc_layers: int = 2, dec_layers: int = 2,
                 bidirectional: bool = True, attention: str = "general", input_feed: bool = False,
                 dropout: float = 0.3, tie_embeddings: bool = False, label_smoothing: float = 0.1,
                 lr: float = 1e-3, weight_decay: float = 0.0, lr_decay: float = 0.5, lr_patience: int = 0,
                 beam_size: int = 5, val_beam_size: int = 1, length_penalty: float = 0.6,
                 max_len_a: float = 1.5, max_len_b: int = 10,
                 src_vocab: Vocab | None = None, tgt_vocab: Vocab | None = None) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["src_vocab", "tgt_vocab"])
        self.arch = {k: self.hparams[k] for k in ARCH_KEYS}
        self.model: NMTModel | None = None
        self.src_vocab: Vocab | None = None
        self.tgt_vocab: Vocab | None = None
        self._decoded: dict[str, list[tuple[int, str, str]]] = {}
        self._nll: dict[str, list[float]] = {}
        if src_vocab is not None and tgt_vocab is not None:
            self.set_vocab(src_vocab, tgt_vocab)

    def set_vocab(self, src_vocab: Vocab, tgt_vocab: Vocab) -> None:
        """Fix the vocabularies and build the network sized to them."""
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.model = NMTModel(len(src_vocab), len(tgt_vocab), **self.arch)

    def make_datamodule(self, data_cfg: Mapping[str, Any] | None, keep_vocab: bool = False) -> Multi30kDataModule:
        """The Multi30k en→de datamodule of `data_cfg`; its training vocabularies size this model,
        or with `keep_vocab` (a trained model) the model's vocabularies encode the data."""
        dm = Multi30kDataModule.from_config(data_cfg)
        if keep_vocab and self.src_vocab is not None:
            dm.src_vocab, dm.tgt_vocab = self.src_vocab, self.tgt_vocab
            return dm
        src, tgt = dm.build_vocab()
        if tgt is None:
            raise ConfigError("data.tgt_lang: the NMT needs a target language (e.g. de)")
        self.set_vocab(src, tgt)
        return dm

    def fingerprint(self) -> dict[str, Any]:  # what analyze.py calls first on a model
        raise ConfigError("model.checkpoint: analysing nmt_lstm needs a trained checkpoint; train one with "
                          "`python train.py model=nmt_lstm`, then pass model.checkpoint=<path.ckpt>")

    def _net(self) -> NMTModel:
        if self.model is None:
            raise ConfigError("nmt_lstm has no vocabulary yet: build it with make_datamodule(data_cfg) "
                              "or pass src_vocab/tgt_vocab")
        return self.model

    def _loss(self, batch: dict[str, Any], smoothing: float) -> tuple[Tensor, Tensor]:
        """(mean loss over target tokens, summed plain NLL) of a teacher-forced batch."""
        logits = self._net()(batch["src"], batch["src_len"], batch["tgt_in"])  # [B, T, V]
        flat, gold = logits.reshape(-1, logits.shape[-1]), batch["tgt_out"].reshape(-1)
        loss = F.cross_entropy(flat, gold, ignore_index=PAD, label_smoothing=smoothing)
        nll = F.cross_entropy(flat.detach(), gold, ignore_index=PAD, reduction="sum")
        return loss, nll

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss, _ = self._loss(batch, self.hparams.label_smoothing)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["ref"]))
        return loss

    def _evaluate(self, batch: dict[str, Any], stage: str, beams: dict[str, int]) -> None:
        _, nll = self._loss(batch, 0.0)
        tokens = int((batch["tgt_out"] != PAD).sum())
        self._nll.setdefault(stage, [0.0, 0.0])
        self._nll[stage][0] += float(nll)
        self._nll[stage][1] += tokens
        for name, beam in beams.items():
            out = self.translate_ids(batch["src"], batch["src_len"], beam)
            hyps = to_text(out, self.tgt_vocab)  # type: ignore[arg-type]
            self._decoded.setdefault(f"{stage}/{name}", []).extend(
                zip(batch["index"].tolist(), hyps, batch["ref"], strict=True))

    def translate_ids(self, src: Tensor, src_len: Tensor, beam: int) -> Tensor:
        hp = self.hparams
        return self._net().beam_search(src, src_len, beam, hp.length_penalty, hp.max_len_a, hp.max_len_b).tokens

    def _finish(self, stage: str) -> None:
        total, count = self._nll.pop(stage, [0.0, 0.0])
        if count:
            self.log(f"{stage}/loss", total / count)
            self.log(f"{stage}/perplexity", float(torch.tensor(total / count).exp()))
        for key in [k for k in self._decoded if k.startswith(f"{stage}/")]:
            rows = sorted(self._decoded.pop(key))
            self.log(key, corpus_bleu([r[1] for r in rows], [r[2] for r in rows]))

    def on_validation_epoch_start(self) -> None:
        self._decoded.clear()
        self._nll.clear()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, "val", {"bleu": self.hparams.val_beam_size})

    def on_validation_epoch_end(self) -> None:
        self._finish("val")

    on_test_epoch_start = on_validation_epoch_start

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        beams = {"bleu": self.hparams.beam_size}
        if self.hparams.beam_size > 1:
            beams["bleu_greedy"] = 1
        self._evaluate(batch, "test", beams)

    def on_test_epoch_end(self) -> None:
        self._finish("test")

    ablation_metric_name, higher_is_better = "bleu", True

    @property
    def ablation_decoding(self) -> str:
        beam = int(self.hparams.beam_size)
        return "greedy" if beam <= 1 else f"beam {beam}, length penalty {self.hparams.length_penalty}"

    def ablation_metric(self, batches: list[dict[str, Any]]) -> float:
        """Corpus sacreBLEU of the test-time decoding (`beam_size`) over `batches` (what NeuronAblation re-measures)."""
        rows: list[tuple[int, str, str]] = []
        for batch in batches:
            hyps = to_text(self.translate_ids(batch["src"], batch["src_len"], int(self.hparams.beam_size)),
                           self.tgt_vocab)  # type: ignore[arg-type]
            rows.extend(zip(batch["index"].tolist(), hyps, batch["ref"], strict=True))
        rows.sort()
        return corpus_bleu([r[1] for r in rows], [r[2] for r in rows])

    def configure_optimizers(self) -> dict[str, Any]:
        opt = torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        # decay on the (smooth) validation loss: greedy BLEU sits near 2 for the first epochs and
        # its noise would halve the lr by chance; the best checkpoint is still chosen by val/bleu
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=self.hparams.lr_decay, patience=self.hparams.lr_patience)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val/loss", "interval": "epoch"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Architecture and vocabularies as plain lists: the checkpoint loads with weights_only=True."""
        checkpoint[CHECKPOINT_KEY] = {
            "arch": ARCH, "format": CHECKPOINT_FORMAT, "hparams": dict(self.arch),
            "decoding": {k: self.hparams[k] for k in ("beam_size", "length_penalty", "max_len_a", "max_len_b")},
            "src_vocab": self.src_vocab.state() if self.src_vocab else None,
            "tgt_vocab": self.tgt_vocab.state() if self.tgt_vocab else None,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resuming (`ckpt_path=`) needs the same architecture and vocabularies as the checkpoint."""
        block = resume_block(checkpoint, ARCH)
        if self.model is None:
            self.set_vocab(Vocab.from_state(block["src_vocab"]), Vocab.from_state(block["tgt_vocab"]))
        check_same(block, self.arch, {"src_vocab": self.src_vocab, "tgt_vocab": self.tgt_vocab})


class NMTNeurons(CheckpointNeurons):
    """A trained `nmt_lstm` checkpoint as a neuron source over source-language sentences."""

    arch_name = ARCH

    def __init__(self, checkpoint: str | Path, sites: str | list[str] = "encoder", aggregation: str = "last",
                 device: str = "cpu") -> None:
        torch_device(device)  # a missing GPU is a ConfigError before the checkpoint is read
        block, state_dict = self._open(checkpoint)
        self.src_vocab = Vocab.from_state(block["src_vocab"])
        self.tgt_vocab = Vocab.from_state(block["tgt_vocab"])
        self.decoding = dict(block.get("decoding", {}))
        self._ready(NMTModel(len(self.src_vocab), len(self.tgt_vocab), **self.arch), state_dict, aggregation, device)
        dirs = ["fwd", "bwd"] if self.arch["bidirectional"] else ["fwd"]
        encoder = [f"encoder.l{i}.{d}" for i in range(self.arch["enc_layers"]) for d in dirs]
        decoder = [f"decoder.l{i}" for i in range(self.arch["dec_layers"])]
        self.sites = choose_sites(sites, {"encoder": encoder, "decoder": decoder})
        self.units = {s: int(self.arch["hidden"]) for s in self.sites}

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(),
                "decoder_rows": "attention-weighted greedy decoder states per source word"}

    def lengths(self, sentences: list[list[str]]) -> list[int]:
        """Source positions each sentence occupies (units + `<eos>`)."""
        return [len(self.src_vocab.pieces(s)[0]) + 1 for s in sentences]

    def _batch(self, sentences: list[list[str]]) -> tuple[dict[str, Any], Tensor, int]:
        """Encoded batch, the global word index of each real source unit, and the number of words."""
        items, word_of, offset = [], [], 0
        for i, words in enumerate(sentences):
            ids, w_of = self.src_vocab.encode(words)
            self.unknown_words += len({w for t, w in zip(ids, w_of, strict=True) if t == UNK})
            items.append({"index": i, "src": ids})
            word_of.extend(w + offset for w in w_of)
            offset += len(words)
        batch = collate(items)
        return {k: v.to(self.device) if isinstance(v, Tensor) else v for k, v in batch.items()}, \
            torch.tensor(word_of), offset

    @torch.inference_mode()
    def extract(self, sentences: list[list[str]]) -> dict[str, Tensor]:
        """{site: [words, units]} for a batch of word-tokenized source sentences, words in order."""
        batch, word_of, n_words = self._batch(sentences)
        src, src_len = batch["src"], batch["src_len"]
        real = torch.arange(src.shape[1], device=src.device) < (src_len - 1).unsqueeze(1)  # [B, S] without <eos>
        _, _, enc = self.model.encode(src, src_len)
        h = self.arch["hidden"]
        rows: dict[str, Tensor] = {}
        for site in self.sites:
            if site.startswith("encoder."):
                _, layer, direction = site.split(".")
                out = enc[int(layer[1:])]  # [B, S, dirs * H]
                rows[site] = out[..., :h] if direction == "fwd" else out[..., h:]
        if any(s.startswith("decoder.") for s in self.sites):
            rows.update(self._decoder_rows(src, src_len))
        return {s: pool_words(rows[s][real].float().cpu(), word_of, n_words, self.aggregation)
                if self.src_vocab.subword else rows[s][real].float().cpu() for s in self.sites}

    def _decoder_rows(self, src: Tensor, src_len: Tensor) -> dict[str, Tensor]:
        """Per source position, the greedy decoder states weighted by the attention paid to it [B, S, H]."""
        d = self.decoding
        out = self.model.greedy(src, src_len, d.get("max_len_a", 1.5), d.get("max_len_b", 10), trace=True)
        emitted = torch.cat([torch.ones_like(out.tokens[:, :1], dtype=torch.bool),
                             out.tokens[:, :-1] != EOS], 1)  # [B, T] steps up to the one emitting <eos>
        weights = out.attention * emitted.unsqueeze(2)  # [B, T, S]
        norm = weights.sum(1).clamp_min(1e-9).unsqueeze(2)  # [B, S, 1]
        return {f"decoder.l{i}": (weights.transpose(1, 2) @ states) / norm  # [B, S, H]
                for i, states in enumerate(out.states or [])}

    @torch.inference_mode()
    def decoder_states(self, sources: list[list[str]], targets: list[list[str]] | None = None
                       ) -> list[dict[str, Tensor]]:
        """Per sentence {decoder.l{i}: [target words, H]}: the state after reading each target word,
        by forced decoding of `targets` (words), or of the model's greedy translation without them."""
        batch, _, _ = self._batch(sources)
        src, src_len = batch["src"], batch["src_len"]
        if targets is None:
            hyp = self.model.greedy(src, src_len, self.decoding.get("max_len_a", 1.5),
                                    self.decoding.get("max_len_b", 10)).tokens
            targets = [self.tgt_vocab.decode(row) for row in hyp.tolist()]
        encoded = [self.tgt_vocab.encode(t) for t in targets]
        tgt = collate([{"index": i, "tgt": ids} for i, (ids, _) in enumerate(encoded)])["tgt_in"].to(self.device)
        memory, state, _ = self.model.encode(src, src_len)
        _, _, _, outputs, _ = self.model.decode(tgt, state, memory)  # per layer [B, T, H]
        result = []
        for b, (ids, w_of) in enumerate(encoded):
            n = len(targets[b])
            per = {}
            for i, o in enumerate(outputs):
                units = o[b, 1 : len(ids) + 1].float().cpu()  # state after reading each target unit
                per[f"decoder.l{i}"] = pool_words(units, torch.tensor(w_of, dtype=torch.long), n, self.aggregation) \
                    if self.tgt_vocab.subword else units
            result.append(per)
        return result

    @torch.inference_mode()
    def translate(self, lines: list[str], beam_size: int | None = None) -> list[str]:
        """Raw English lines → raw German lines (beam search with the checkpoint's settings)."""
        d = self.decoding
        beam = int(beam_size if beam_size is not None else d.get("beam_size", 5))
        batch, _, _ = self._batch([tokenize(line) or ["<unk>"] for line in lines])
        out = self.model.beam_search(batch["src"], batch["src_len"], beam, d.get("length_penalty", 0.6),
                                     d.get("max_len_a", 1.5), d.get("max_len_b", 10))
        return to_text(out.tokens, self.tgt_vocab)


@MODELS.register(ARCH)
def nmt_lstm(checkpoint: str | None = None, sites: str | list[str] = "encoder", aggregation: str = "last",
             device: str = "cpu", **hparams: Any) -> NMTModule | NMTNeurons:
    """Without `checkpoint`: the trainable `NMTModule`; with one: its neurons (`NMTNeurons`)."""
    check_params(NMTModule.__init__, hparams, "model")
    if checkpoint:
        return NMTNeurons(checkpoint, sites=sites, aggregation=aggregation, device=device)
    return NMTModule(**hparams)
