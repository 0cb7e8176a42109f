"""Turn a task config into labelled sentences split into train/dev/test.

A task is a plain function `(sentence, **params) -> one label (or None: skip) per word`,
registered with `@task("name", reader="conllu")`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neuroscope.data.cache import read_cached
from neuroscope.data.corpora import corpus_file
from neuroscope.data.root import locate
from neuroscope.data.sentence import Sentence
from neuroscope.errors import ConfigError, DataError
from neuroscope.hashing import cached_sha256
from neuroscope.registry import READERS, TASKS

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
UNK = "<unk>"
DEV_FROM_TRAIN = 0.1  # share of the train sentences taken as dev when files give train and test only
RARE_CLASS_TOKENS = 5  # classes with fewer train tokens are listed in info["rare_classes"] (and warned about)
Labeler = Callable[..., list[str | None]]


def task(name: str, reader: str = "conllu", hint: Callable[..., str] | None = None,
         labelled: bool = True, numeric: bool = False) -> Callable[[Labeler], Labeler]:
    """Register a labelling function as task `name`, read by default with `reader`.

    `hint(sentences, **params)` adds advice to the error for a train split with a single class.
    `labelled=False`: a corpus of words only (every label None), for label-free methods.
    `numeric=True`: labels are numbers (None: unlabelled), probed by a linear regression.
    """

    def decorator(fn: Labeler) -> Labeler:
        fn.reader = reader  # type: ignore[attr-defined]
        fn.hint = hint  # type: ignore[attr-defined]
        fn.labelled = labelled  # type: ignore[attr-defined]
        fn.numeric = numeric  # type: ignore[attr-defined]
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
    values: np.ndarray | None = None  # [tokens] float64 of a numeric task (NaN: unlabelled); labels 0 / -1 then

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
        paths = {k: locate(corpus_file(str(v)), root, download, f"{key}.{k}") for k, v in spec.items()
                 if v is not None}
        files = list(paths.values())
        sentences = read_cached(fmt, reader, paths.pop("sentences"), **paths)
    else:
        path = locate(corpus_file(str(spec)), root, download, key)
        sentences = read_cached(fmt, reader, path)
        files = [path]
    return list(sentences), [{"path": str(p), "sha256": cached_sha256(p)} for p in files]  # the cache's list stays intact


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


def _given(files: Any) -> dict[str, Any]:
    """The set entries of `task.files` (a mapping whose values are all null is "not set")."""
    if not files:
        return {}
    if not isinstance(files, Mapping):
        raise ConfigError(f"task.files: expected {{train: ..., dev: ..., test: ...}}, got {files!r}")
    unknown = set(files) - set(SPLITS)
    if unknown:
        raise ConfigError(f"task.files: unknown split(s) {sorted(unknown)}; use {list(SPLITS)}")
    given = {s: files[s] for s in SPLITS if files.get(s)}
    if given and "train" not in given:
        raise ConfigError("task.files: a 'train' file is required")
    return given


def _dev_from_train(sent_split: list[int], sentences: list[Sentence], seed: int, quiet: bool = False
                    ) -> dict[str, Any]:
    """Move a seeded DEV_FROM_TRAIN share of the train sentences to dev; what was done, for `info`."""
    train = [i for i, s in enumerate(sent_split) if s == 0]
    if len(train) < 2:
        raise DataError(f"{sentences[0].source}: {len(train)} train sentence(s), too few to take a dev split "
                        "from; give task.files.dev=<file>")
    n = min(len(train) - 1, max(1, round(DEV_FROM_TRAIN * len(train))))
    for j in np.random.default_rng(seed).choice(len(train), size=n, replace=False):
        sent_split[train[j]] = SPLITS.index("dev")
    if not quiet:
        log.info("task.files has no dev file: %d of %d train sentences (task.split.seed %d) are the dev split",
                 n, len(train), seed)
    return {"sentences": n, "ratio": DEV_FROM_TRAIN, "seed": seed}


def load_task(cfg: Mapping[str, Any], root: str | None = None, download: bool = True) -> TaskCorpus:
    """Read the task's corpus files, label every word and assign sentences to splits.

    cfg keys: name, params, format, file | files, split (ratios + seed), control, control_seed,
    unknown_label (unk | skip | error). `files` wins over `file`; files for train and test but
    not dev give dev = a seeded 10 % of the train sentences (`info["dev_from_train"]`).
    """
    name = cfg["name"]
    labeler = TASKS.get(name)
    fmt = cfg.get("format") or getattr(labeler, "reader", "conllu")
    params = dict(cfg.get("params") or {})
    files, single = _given(cfg.get("files")), cfg.get("file")
    split_cfg = dict(cfg.get("split") or {"train": 0.8, "dev": 0.1, "test": 0.1})
    seed = int(split_cfg.pop("seed", 0))
    sentences: list[Sentence] = []
    sent_split: list[int] = []
    sources: list[dict[str, str]] = []
    info: dict[str, Any] = {}
    if files:
        if single and not cfg.get("control"):  # said once, for the task itself
            log.info("task.files is set: task.file (%s) is not used", single)
        for s, spec in files.items():
            sents, src = _read(fmt, spec, root, f"task.files.{s}", download)
            sentences += sents
            sent_split += [SPLITS.index(s)] * len(sents)
            sources += src
        if "test" in files and "dev" not in files:
            info["dev_from_train"] = _dev_from_train(sent_split, sentences, seed, quiet=bool(cfg.get("control")))
    elif single:
        sentences, sources = _read(fmt, single, root, "task.file", download)
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
    if not getattr(labeler, "labelled", True):  # words only: no classes, every token unlabelled
        info = {**info, "sentences": len(sentences), "labelled": False}
        return TaskCorpus(name, sentences, np.full(len(raw), -1, dtype=np.int64), split, [], sources, info)
    if getattr(labeler, "numeric", False):
        return _numeric(name, cfg, sentences, raw, where, split, sources, info)
    if cfg.get("control"):
        words = [w for s in sentences for w in s.words]
        raw = control_labels(words, raw, split == 0, int(cfg.get("control_seed", 0)))
    else:
        info["rare_classes"] = _check_classes(name, raw, split, labeler, sentences, params)
    unknown = cfg.get("unknown_label", "unk")
    classes, ids, counts = _encode(raw, split, where, unknown)
    if counts["unseen_labels"] and not cfg.get("control"):
        log.warning("task '%s': labels unseen in train, on %d dev/test token(s), are %s (task.unknown_label=%s): %s",
                    name, sum(counts["unseen_labels"].values()), "<unk>" if unknown == "unk" else "skipped",
                    unknown, _some(counts["unseen_labels"]))
    info = {**counts, **info, "sentences": len(sentences)}
    return TaskCorpus(name + ("_control" if cfg.get("control") else ""), sentences, ids, split, classes, sources, info)


def _some(counts: dict[str, int], shown: int = 10) -> str:
    """The first `shown` entries of a label count, and how many more (warnings stay one line)."""
    items = ", ".join(f"{k!r}: {v}" for k, v in list(counts.items())[:shown])
    return "{" + items + (f", ... {len(counts) - shown} more (all in results.json task_info)}}"
                          if len(counts) > shown else "}")


def _numeric(name: str, cfg: Mapping[str, Any], sentences: list[Sentence], raw: list[Any], where: list[str],
             split: np.ndarray, sources: list[dict[str, str]], info: dict[str, Any]) -> TaskCorpus:
    """A task whose labels are numbers: `values` (NaN = unlabelled), no classes."""
    if cfg.get("control"):
        raise ConfigError(f"task.control: control tasks assign classes; '{name}' is numeric (evaluation.control=false)")
    values = np.full(len(raw), np.nan)
    for i, v in enumerate(raw):
        if v is None:
            continue
        try:
            values[i] = float(v)
        except (TypeError, ValueError) as exc:
            raise DataError(f"{where[i]}: task '{name}' expects a number, got {v!r}") from exc
    labelled = ~np.isnan(values)
    if np.unique(values[labelled & (split == 0)]).size < 2:
        raise DataError(f"task '{name}': fewer than 2 distinct values on the train split; nothing to regress")
    info = {**info, "kind": "regression", "sentences": len(sentences), "skipped_tokens": int((~labelled).sum())}
    return TaskCorpus(name, sentences, np.where(labelled, 0, -1).astype(np.int64), split, [], sources, info, values)


def _check_classes(name: str, raw: list[str | None], split: np.ndarray, labeler: Labeler,
                   sentences: list[Sentence], params: dict[str, Any]) -> dict[str, int]:
    """Fail when train has a single class (nothing to probe); warn once about rare train classes."""
    counts = Counter(lab for lab, s in zip(raw, split, strict=True) if s == 0 and lab is not None)
    if len(counts) < 2:
        hint = getattr(labeler, "hint", None)
        found = (f"every labelled train token has the label {next(iter(counts))!r}" if counts
                 else "no labelled training tokens (an empty train split?)")
        raise DataError(f"task '{name}' (task.params={params}): {found}; a probe needs at least 2 classes."
                        + (f" {hint(sentences, **params)}" if hint else ""))
    rare = {lab: n for lab, n in sorted(counts.items()) if n < RARE_CLASS_TOKENS}
    if rare:
        log.warning("task '%s': %d class(es) have fewer than %d train tokens (probe results on them are "
                    "noisy): %s", name, len(rare), RARE_CLASS_TOKENS, _some(rare))
    return rare


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

