"""Sentence classification in GLUE's TSV format (SST-2 by default) as a LightningDataModule.

A file is a header line naming the columns (`sentence<TAB>label` for SST-2), then one example a
line. Splits: `train` minus `val_size` held-out examples (checkpoint selection), `val` those,
`test` the labelled GLUE dev file — so the reported accuracy is on data that chose nothing.
Texts are tokenized once by the model's fast tokenizer; batches hold texts of similar length.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from neuroscope.config import build_known
from neuroscope.data.corpora import corpus_file
from neuroscope.data.multi30k import BucketBatchSampler
from neuroscope.data.readers import open_text
from neuroscope.data.root import locate
from neuroscope.errors import ConfigError, DataError


@dataclass
class Examples:
    """Texts and their string labels, with the file line of each (for error messages)."""

    texts: list[str]
    labels: list[str]
    path: Path
    lines: list[int]


def read_tsv(path: str | Path, text_column: str = "sentence", label_column: str | None = "label") -> Examples:
    """Examples of a GLUE-style TSV file; a malformed line is a DataError naming file and line."""
    path = Path(path)
    rows = open_text(path)
    header = next(rows, None)
    if header is None:
        raise DataError(f"{path}: empty file; expected a header line naming the columns")
    columns = header.rstrip("\n").split("\t")
    need = [c for c in (text_column, label_column) if c]
    missing = [c for c in need if c not in columns]
    if missing:
        raise DataError(f"{path}:1: no column {missing} in the header {columns} "
                        "(set data.text_column / data.label_column)")
    ti = columns.index(text_column)
    li = columns.index(label_column) if label_column else None
    out = Examples([], [], path, [])
    for n, line in enumerate(rows, start=2):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(columns):
            raise DataError(f"{path}:{n}: {len(fields)} tab-separated fields, the header has {len(columns)}")
        text = fields[ti].strip()
        if not text:
            raise DataError(f"{path}:{n}: empty text in column '{text_column}'")
        label = fields[li].strip() if li is not None else ""
        if li is not None and not label:
            raise DataError(f"{path}:{n}: empty label in column '{label_column}'")
        out.texts.append(text)
        out.labels.append(label)
        out.lines.append(n)
    if not out.texts:
        raise DataError(f"{path}: no examples after the header")
    return out


def encode_labels(examples: Examples, classes: list[str]) -> list[int]:
    """Class indices of `examples`; a label the training file never had is an error at its line."""
    index = {c: i for i, c in enumerate(classes)}
    for label, line in zip(examples.labels, examples.lines, strict=True):
        if label not in index:
            raise DataError(f"{examples.path}:{line}: label '{label}' is not among the training "
                            f"labels {classes}")
    return [index[label] for label in examples.labels]


def sort_labels(labels: set[str]) -> list[str]:
    """Class order: numerically when all labels are integers (GLUE's 0/1), else alphabetically."""
    if all(label.lstrip("-").isdigit() for label in labels):
        return sorted(labels, key=int)
    return sorted(labels)


class TextClassificationData(pl.LightningDataModule):
    """Train / held-out val / test (GLUE dev) of a TSV classification corpus, tokenized for one model."""

    def __init__(self, train: str = "glue_sst2:train", test: str | None = "glue_sst2:dev",
                 text_column: str = "sentence", label_column: str = "label", val_size: int = 872,
                 limit_train: int | None = None, batch_size: int = 32, eval_batch_size: int = 128,
                 max_length: int = 128, root: str | None = None, download: bool = True,
                 seed: int | None = None, tokenizer: Any = None) -> None:
        super().__init__()
        if batch_size < 1 or eval_batch_size < 1:
            raise ConfigError(f"data.batch_size/eval_batch_size: must be >= 1, got {batch_size}/{eval_batch_size}")
        if val_size < 1:
            raise ConfigError(f"data.val_size: need at least 1 held-out training example, got {val_size}")
        self.files = {"train": train, "test": test}
        self.columns = (text_column, label_column)
        self.val_size, self.limit_train = int(val_size), limit_train
        self.batch_size, self.eval_batch_size, self.max_length = batch_size, eval_batch_size, max_length
        self.root, self.download = root, download
        self.seed = torch.initial_seed() if seed is None else seed
        self.tokenizer = tokenizer
        self.classes: list[str] = []
        self._train: Examples | None = None  # the training file, read once by read_classes
        self.encoded: dict[str, dict[str, list[Any]]] = {}  # stage -> {"ids": [...], "label": [...]}

    @classmethod
    def from_config(cls, data_cfg: Mapping[str, Any] | None, **overrides: Any) -> TextClassificationData:
        """Build from the `data` config group; keys this module does not know are ignored."""
        return build_known(cls, data_cfg, **overrides)

    def _read(self, split: str) -> Examples:
        spec = self.files[split]
        return read_tsv(locate(corpus_file(str(spec)), self.root, self.download), *self.columns)

    def read_classes(self) -> list[str]:
        """Read the training file and return its label set (sizes the classifier head)."""
        train = self._read("train")
        self.classes = sort_labels(set(train.labels))
        if len(self.classes) < 2:
            raise DataError(f"{train.path}: a classifier needs at least 2 labels, found {self.classes}")
        self._train = train
        return self.classes

    def setup(self, stage: str | None = None) -> None:
        if self.encoded:
            return
        if self.tokenizer is None:
            raise ConfigError("data: the text classification data needs the model's tokenizer")
        if self._train is None:
            self.read_classes()
        train = self._train
        labels = encode_labels(train, self.classes)
        g = torch.Generator().manual_seed(int(self.seed))
        order = torch.randperm(len(train.texts), generator=g).tolist()
        if self.val_size >= len(order):
            raise ConfigError(f"data.val_size: {self.val_size} held out of {len(order)} training examples "
                              "leaves nothing to train on")
        val, rest = order[: self.val_size], order[self.val_size:]
        if self.limit_train:
            rest = rest[: int(self.limit_train)]
        parts = {"train": sorted(rest), "val": sorted(val)}
        self.encoded = {s: self._encode([train.texts[i] for i in idx], [labels[i] for i in idx])
                        for s, idx in parts.items()}
        if self.files["test"]:
            test = self._read("test")
            self.encoded["test"] = self._encode(test.texts, encode_labels(test, self.classes))

    def _encode(self, texts: list[str], labels: list[int]) -> dict[str, list[Any]]:
        ids = self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]
        return {"ids": ids, "label": labels}

    def sizes(self) -> dict[str, int]:
        """Examples per split (after setup)."""
        return {s: len(v["label"]) for s, v in self.encoded.items()}

    def _loader(self, stage: str, train: bool) -> DataLoader:
        data = self.encoded[stage]
        items = [{"ids": i, "label": y} for i, y in zip(data["ids"], data["label"], strict=True)]
        sampler = BucketBatchSampler([len(i) for i in data["ids"]], self.batch_size if train else self.eval_batch_size,
                                     shuffle=train, seed=int(self.seed))
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        left = getattr(self.tokenizer, "padding_side", "right") == "left"  # e.g. XLNet reads its last position
        return DataLoader(items, batch_sampler=sampler, collate_fn=lambda b: collate(b, pad_id, left))

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False)

    def test_dataloader(self) -> DataLoader:
        if "test" not in self.encoded:
            raise ConfigError("data.test: no test file is set")
        return self._loader("test", False)


def collate(items: list[dict[str, Any]], pad_id: int, left: bool = False) -> dict[str, Tensor]:
    """`input_ids` and `attention_mask` [B, longest] (padded right, or left), `labels` [B]."""
    longest = max(len(it["ids"]) for it in items)
    ids = torch.full((len(items), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), longest), dtype=torch.long)
    for b, it in enumerate(items):
        n = len(it["ids"])
        at = slice(longest - n, longest) if left else slice(0, n)
        ids[b, at] = torch.tensor(it["ids"])
        mask[b, at] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([it["label"] for it in items])}
