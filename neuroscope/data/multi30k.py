"""Multi30k task 1 (Elliott et al. 2016) as a LightningDataModule: en→de pairs, or one side for an LM.

Files `multi30k/{train,val,test_2016_flickr}.{en,de}.gz` are found under the data root (or
downloaded, checksum-verified). Vocabularies are built on train; batches hold sentences of
similar source length (shuffled buckets), so little compute goes to padding.
"""

from __future__ import annotations

import gzip
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Sampler

from neuroscope.config import build_known
from neuroscope.data.corpora import CORPORA
from neuroscope.data.root import locate
from neuroscope.data.vocab import BOS, EOS, PAD, Vocab, tokenize
from neuroscope.errors import ConfigError, DataError

SPLITS = {"train": "train", "val": "val", "test": "test_2016_flickr"}  # stage -> Multi30k file stem
warnings.filterwarnings("ignore", ".*does not have many workers.*")  # data are in-memory tensors


def read_lines(path: Path) -> list[str]:
    """Lines of a (gzipped) text file, without line ends."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def load_split(split: str, lang: str, root: str | None = None, download: bool = True) -> list[str]:
    """Raw lines of Multi30k `split` (`train`, `val`, `test_2016_flickr`) in language `lang`."""
    name = f"{split}.{lang}"
    if name not in CORPORA["multi30k"]:
        known = sorted(CORPORA["multi30k"])
        raise ConfigError(f"data: Multi30k has no file '{name}'; known: {known}")
    return read_lines(locate(CORPORA["multi30k"][name], root, download))


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of sentences of similar length: shuffle, sort by length, cut, shuffle the batches.

    `lengths` are sort keys: a length, or e.g. `source length * 1024 + target length`.
    """

    def __init__(self, lengths: list[int], batch_size: int, shuffle: bool = True, seed: int = 0) -> None:
        self.lengths = torch.tensor(lengths)
        self.batch_size, self.shuffle, self.seed, self.epoch = batch_size, shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        """Lightning calls this every epoch: a new, reproducible order."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed((self.seed * 100_003 + self.epoch) % 2**63)
        order = torch.randperm(len(self.lengths), generator=g) if self.shuffle else torch.arange(len(self.lengths))
        order = order[torch.sort(self.lengths[order], stable=True).indices]  # by length, random among equals
        batches = list(torch.split(order, self.batch_size))
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=g)]
        return iter([b.tolist() for b in batches])

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)


def pad(seqs: list[list[int]]) -> Tensor:
    """[batch, longest] ids, right-padded with `<pad>`."""
    out = torch.full((len(seqs), max(map(len, seqs))), PAD, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.tensor(s, dtype=torch.long)
    return out


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pad examples into a batch: `src` [B, S] (words + `<eos>`; `src_len` [B]), `tgt_in`/`tgt_out` [B, T]."""
    batch: dict[str, Any] = {"index": torch.tensor([it["index"] for it in items])}
    if "src" in items[0]:
        batch["src"] = pad([[*it["src"], EOS] for it in items])  # [B, S]
        batch["src_len"] = torch.tensor([len(it["src"]) + 1 for it in items])  # [B]
    if "tgt" in items[0]:
        batch["tgt_in"] = pad([[BOS, *it["tgt"]] for it in items])  # [B, T]
        batch["tgt_out"] = pad([[*it["tgt"], EOS] for it in items])  # [B, T]
    if "ref" in items[0]:
        batch["ref"] = [it["ref"] for it in items]
    return batch


class Multi30kDataModule(pl.LightningDataModule):
    """English→German pairs (`tgt_lang` set) or monolingual `src_lang` text for a language model."""

    def __init__(self, root: str | None = None, download: bool = True, src_lang: str = "en",
                 tgt_lang: str | None = "de", lowercase: bool = False, min_freq: int = 2,
                 max_vocab: int | None = None, subword: str | None = None, subword_vocab: int = 8000,
                 batch_size: int = 64, eval_batch_size: int = 128, max_len: int = 100,
                 num_workers: int = 0, seed: int | None = None) -> None:
        super().__init__()
        if batch_size < 1 or eval_batch_size < 1:
            raise ConfigError(f"data.batch_size/eval_batch_size: must be >= 1, got {batch_size}/{eval_batch_size}")
        self.root, self.download = root, download
        self.src_lang, self.tgt_lang = src_lang, tgt_lang
        self.vocab_args = {"min_freq": min_freq, "max_size": max_vocab, "lowercase": lowercase,
                           "subword": subword, "subword_vocab": subword_vocab}
        self.batch_size, self.eval_batch_size, self.max_len = batch_size, eval_batch_size, max_len
        self.num_workers = num_workers
        self.seed = torch.initial_seed() if seed is None else seed  # the run's seed (seed_everything)
        self.src_vocab: Vocab | None = None
        self.tgt_vocab: Vocab | None = None
        self.raw: dict[str, dict[str, list[str]]] = {}  # stage -> lang -> lines
        self.examples: dict[str, list[dict[str, Any]]] = {}

    @classmethod
    def from_config(cls, data_cfg: Mapping[str, Any] | None, **overrides: Any) -> Multi30kDataModule:
        """Build from the `data` config group; keys this module does not know are ignored."""
        return build_known(cls, data_cfg, **overrides)

    @property
    def langs(self) -> list[str]:
        return [self.src_lang] + ([self.tgt_lang] if self.tgt_lang else [])

    def _lines(self, stage: str) -> dict[str, list[str]]:
        if stage not in self.raw:
            lines = {lang: load_split(SPLITS[stage], lang, self.root, self.download) for lang in self.langs}
            sizes = {lang: len(v) for lang, v in lines.items()}
            if len(set(sizes.values())) != 1:
                raise DataError(f"Multi30k {SPLITS[stage]}: sides differ in length {sizes}")
            self.raw[stage] = lines
        return self.raw[stage]

    def build_vocab(self) -> tuple[Vocab, Vocab | None]:
        """Vocabularies of the training split (source, target or None); built once."""
        if self.src_vocab is None:
            train = self._lines("train")
            try:
                self.src_vocab = Vocab.build([tokenize(s) for s in train[self.src_lang]], **self.vocab_args)
                if self.tgt_lang:
                    self.tgt_vocab = Vocab.build([tokenize(s) for s in train[self.tgt_lang]], **self.vocab_args)
            except ValueError as exc:
                raise ConfigError(f"data: {exc}") from exc
        return self.src_vocab, self.tgt_vocab

    def setup(self, stage: str | None = None) -> None:
        src_vocab, tgt_vocab = self.build_vocab()
        for split in SPLITS:
            if split in self.examples:
                continue
            lines = self._lines(split)
            examples = []
            for i, src_line in enumerate(lines[self.src_lang]):
                ids = src_vocab.encode(tokenize(src_line))[0]
                if tgt_vocab is None:  # language model: the sentence is the target
                    ex: dict[str, Any] = {"index": i, "tgt": ids}
                else:
                    tgt_line = lines[self.tgt_lang][i]
                    ex = {"index": i, "src": ids, "tgt": tgt_vocab.encode(tokenize(tgt_line))[0], "ref": tgt_line}
                if split == "train" and not (0 < len(ids) <= self.max_len and 0 < len(ex["tgt"]) <= self.max_len):
                    continue
                examples.append(ex)
            self.examples[split] = examples

    def _loader(self, split: str, batch_size: int, shuffle: bool) -> DataLoader:
        examples = self.examples[split]
        lengths = [len(ex.get("src", [])) * 1024 + len(ex["tgt"]) for ex in examples]  # by source, then target
        sampler = BucketBatchSampler(lengths, batch_size, shuffle=shuffle, seed=self.seed)
        return DataLoader(examples, batch_sampler=sampler, collate_fn=collate, num_workers=self.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.eval_batch_size, shuffle=False)
