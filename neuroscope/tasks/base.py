"""Turn a task config into labelled sentences split into train/dev/test.

A task is a plain function `(sentence, **params) -> one label (or None: skip) per word`,
registered with `@task("name", reader="conllu")`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuroscope.data.corpora import corpus_file
from neuroscope.data.root import locate, sha256sum
from neuroscope.data.sentence import Sentence
from neuroscope.errors import ConfigError, DataError
from neuroscope.registry import READERS, TASKS

SPLITS = ("train", "dev", "test")
UNK = "<unk>"
Labeler = Callable[..., list[str | None]]


def task(name: str, reader: str = "conllu") -> Callable[[Labeler], Labeler]:
    """Register a labelling function as task `name`, read by default with `reader`."""

    def decorator(fn: Labeler) -> Labeler:
        fn.reader = reader  # type: ignore[attr-defined]
        return TASKS.register(name)(fn)

    return decorator


@dataclass
class TaskCorpus:
    """Labelled sentences of one task, in store order, with per-token label ids and split ids."""

    name: str
    sentences: list[Sentence]
    labels: np.ndarray  # [tokens] int64 class id, -1 = token not labelled (skipped)
    split: np.ndarray  # [tokens] int8 index into SPLITS
    classes: list[str]  # class id -> label string
    sources: list[dict[str, str]]  # [{"path", "sha256"}] in store order
    info: dict[str, Any] = field(default_factory=dict)  # counts worth reporting

    @property
    def words(self) -> list[list[str]]:
        return [s.words for s in self.sentences]

    def mask(self, split: str) -> np.ndarray:
        """[tokens] bool: labelled tokens of `split`."""
        return (self.split == SPLITS.index(split)) & (self.labels >= 0)

    def counts(self) -> dict[str, int]:
        return {s: int(self.mask(s).sum()) for s in SPLITS}


def _read(fmt: str, spec: Any, root: str | None, key: str, download: bool) -> tuple[list[Sentence], list[dict[str, str]]]:
    reader = READERS.get(fmt)
    if isinstance(spec, Mapping):  # e.g. NeuroX: {sentences: ..., labels: ...}
        if "sentences" not in spec:
            raise ConfigError(f"{key}: expected a path or {{sentences: ..., labels: ...}}, got {dict(spec)}")
        paths = {k: locate(corpus_file(str(v)), root, download) for k, v in spec.items() if v is not None}
        files = list(paths.values())
        sentences = reader(paths.pop("sentences"), **paths)
    else:
        path = locate(corpus_file(str(spec)), root, download)
        sentences = reader(path)
        files = [path]
    return sentences, [{"path": str(p), "sha256": sha256sum(p)} for p in files]


def _split_indices(n: int, ratios: Mapping[str, float], seed: int) -> list[np.ndarray]:
    """Seeded shuffle of n sentences cut by ratios (train/dev/test)."""
    unknown = set(ratios) - set(SPLITS)
    if unknown:
        raise ConfigError(f"task.split: unknown split(s) {sorted(unknown)}; use {list(SPLITS)} and seed")
    r = np.array([float(ratios.get(s, 0.0)) for s in SPLITS])
    if (r < 0).any() or r.sum() <= 0:
        raise ConfigError(f"task.split: ratios must be non-negative and sum > 0, got {dict(ratios)}")
    order = np.random.default_rng(seed).permutation(n)
    cuts = np.round(np.cumsum(r / r.sum()) * n).astype(int)
    return np.split(order, cuts[:-1])


def load_task(cfg: Mapping[str, Any], root: str | None = None, download: bool = True) -> TaskCorpus:
    """Read the task's corpus files, label every word and assign sentences to splits.

    cfg keys: name, params, format, file | files, split (ratios + seed), control, control_seed,
    unknown_label (unk | skip | error).
    """
    name = cfg["name"]
    labeler = TASKS.get(name)
    fmt = cfg.get("format") or getattr(labeler, "reader", "conllu")
    params = dict(cfg.get("params") or {})
    files, single = cfg.get("files"), cfg.get("file")
    sentences: list[Sentence] = []
    sent_split: list[int] = []
    sources: list[dict[str, str]] = []
    if files:
        unknown = set(files) - set(SPLITS)
        if unknown:
            raise ConfigError(f"task.files: unknown split(s) {sorted(unknown)}; use {list(SPLITS)}")
        for s in SPLITS:
            if files.get(s):
                sents, src = _read(fmt, files[s], root, f"task.files.{s}", download)
                sentences += sents
                sent_split += [SPLITS.index(s)] * len(sents)
                sources += src
        if "train" not in files or not files["train"]:
            raise ConfigError("task.files: a 'train' file is required")
    elif single:
        sentences, sources = _read(fmt, single, root, "task.file", download)
        split_cfg = dict(cfg.get("split") or {"train": 0.8, "dev": 0.1, "test": 0.1})
        seed = int(split_cfg.pop("seed", 0))
        sent_split = [0] * len(sentences)
        for i, idx in enumerate(_split_indices(len(sentences), split_cfg, seed)):
            for j in idx:
                sent_split[j] = i
    else:
        raise ConfigError("task: set task.file (one file, split by sentence) or task.files.{train,dev,test}")

    raw: list[str | None] = []
    where: list[str] = []
    for sent in sentences:
        try:
            labels = labeler(sent, **params)
        except TypeError as exc:
            raise ConfigError(f"task.params: {exc} (task '{name}')") from exc
        if len(labels) != len(sent):
            raise DataError(f"{sent.where(0)}: task '{name}' gave {len(labels)} labels for {len(sent)} words")
        raw += labels
        where += [sent.where(i) for i in range(len(sent))]
    split = np.repeat(np.array(sent_split, dtype=np.int8), [len(s) for s in sentences])
    if cfg.get("control"):
        words = [w for s in sentences for w in s.words]
        raw = control_labels(words, raw, split == 0, int(cfg.get("control_seed", 0)))
    classes, ids, info = _encode(raw, split, where, cfg.get("unknown_label", "unk"))
    info["sentences"] = len(sentences)
    return TaskCorpus(name + ("_control" if cfg.get("control") else ""), sentences, ids, split, classes, sources, info)


def _encode(raw: list[str | None], split: np.ndarray, where: list[str], unknown: str) -> tuple[list[str], np.ndarray, dict[str, Any]]:
    """Class ids from train labels (sorted); unseen labels outside train → `<unk>`, skip or error."""
    if unknown not in ("unk", "skip", "error"):
        raise ConfigError(f"task.unknown_label: expected unk, skip or error, got '{unknown}'")
    train_labels = sorted({lab for lab, s in zip(raw, split, strict=True) if s == 0 and lab is not None})
    if not train_labels:
        raise DataError("task has no labelled training tokens (empty train split?)")
    index = {lab: i for i, lab in enumerate(train_labels)}
    ids = np.full(len(raw), -1, dtype=np.int64)
    unseen: Counter[str] = Counter()
    for t, lab in enumerate(raw):
        if lab is None:
            continue
        if lab in index:
            ids[t] = index[lab]
            continue
        unseen[lab] += 1
        if unknown == "error":
            raise DataError(f"{where[t]}: label '{lab}' does not occur in the training split (task.unknown_label=error)")
        if unknown == "unk":
            index.setdefault(UNK, len(index))
            ids[t] = index[UNK]
    classes = sorted(index, key=index.get)  # type: ignore[arg-type]
    info = {"unseen_labels": dict(unseen), "skipped_tokens": int((ids < 0).sum())}
    return classes, ids, info


def control_labels(words: list[str], labels: list[str | None], train: np.ndarray, seed: int) -> list[str | None]:
    """Hewitt & Liang (2019) control task: each word type gets one fixed random label.

    Labels are drawn from the task's training label distribution with a seeded generator;
    tokens the task skips stay skipped.
    """
    counts = Counter(lab for lab, t in zip(labels, train, strict=True) if t and lab is not None)
    names = sorted(counts)
    p = np.array([counts[n] for n in names], dtype=float)
    rng = np.random.default_rng(seed)
    assigned: dict[str, str] = {}
    for w, lab in zip(words, labels, strict=True):
        if lab is not None and w not in assigned:
            assigned[w] = names[rng.choice(len(names), p=p / p.sum())]
    return [None if lab is None else assigned[w] for w, lab in zip(words, labels, strict=True)]


def column(sentence: Sentence, name: str) -> list[Any]:
    """A column of the sentence, with a clear error when the reader did not provide it."""
    if name not in sentence.fields:
        raise DataError(
            f"{sentence.source}: has no '{name}' column (columns: {sorted(sentence.fields)}); "
            "is task.format right?"
        )
    return sentence.fields[name]


def required(sentence: Sentence, name: str, label: str) -> list[str]:
    """A column whose every value must be present (CoNLL-U '_' means missing)."""
    values = column(sentence, name)
    for i, v in enumerate(values):
        if v is None or v == "_":
            raise DataError(f"{sentence.where(i)}: word '{sentence.words[i]}' has no {label} (column is '_')")
    return list(values)

