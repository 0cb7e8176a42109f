"""Trained probes kept on disk: `<name>.safetensors` (weight, bias, standardization) + `<name>.json`
(classes, the neuron ids it reads, λ, seed, the store it was trained on), and evaluated on any
store that has those neurons, e.g. another corpus, without retraining.

    save_probe(probe, "run/probe", classes=..., neurons=..., settings=...)
    saved = load_probe("run/probe.safetensors")
    saved.evaluate(store, labels, classes)   # labels of the store's tokens in the corpus's classes
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuroscope.errors import ConfigError
from neuroscope.probes.data import StoreChunks
from neuroscope.probes.probe import Probe, evaluate
from neuroscope.reporting.results import atomic_write, jsonable

FORMAT = 1


def _paths(path: str | Path) -> tuple[Path, Path]:
    """(`x.safetensors`, `x.json`) for `x`, `x.safetensors` or `x.json`."""
    p = Path(path).expanduser()
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def save_probe(probe: Probe, path: str | Path, classes: list[str], neurons: list[str],
               **meta: Any) -> Path:
    """Write the probe (tensors through a temporary file, then the JSON); returns the .safetensors path."""
    from safetensors.numpy import save_file

    if probe.weight.shape != (len(classes), len(neurons)):
        raise ValueError(f"probe weight {probe.weight.shape} does not match {len(classes)} classes x {len(neurons)} neurons")
    tensors_path, json_path = _paths(path)
    tensors = {"weight": np.ascontiguousarray(probe.weight), "bias": np.ascontiguousarray(probe.bias)}
    if probe.mean is not None and probe.std is not None:
        tensors["mean"] = np.ascontiguousarray(probe.mean)  # their own dtype: predictions stay identical
        tensors["std"] = np.ascontiguousarray(probe.std)
    tensors_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tensors_path.with_name(f".{tensors_path.name}.{os.getpid()}.tmp")
    save_file(tensors, str(tmp), metadata={"format": str(FORMAT), "kind": "neuroscope-probe"})
    os.replace(tmp, tensors_path)
    atomic_write(json_path, json.dumps(jsonable({"format": FORMAT, "classes": list(classes),
                                                 "neurons": list(neurons), **meta}), indent=1))
    return tensors_path


@dataclass
class SavedProbe:
    probe: Probe
    classes: list[str]
    neurons: list[str]
    meta: dict[str, Any]
    path: Path

    def columns(self, store: Any) -> np.ndarray:
        """The store's columns of the probe's neurons; a clear error naming those it lacks."""
        have = set(store.neurons)
        missing = [n for n in self.neurons if n not in have]
        if missing:
            raise ConfigError(f"probe.load: {self.path} reads {len(missing)} neuron(s) the store {store.path} does "
                              f"not have, e.g. {missing[:5]}; sites there: {store.sites}")
        return store.neuron_index(self.neurons)

    def class_map(self, classes: list[str]) -> np.ndarray:
        """[corpus classes] -> probe class ids; a clear error for classes the probe never saw."""
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = [c for c in classes if c not in index]
        if unknown:
            raise ConfigError(f"probe.load: the task has class(es) {unknown[:10]} the probe in {self.path} was not "
                              f"trained on (its classes: {self.classes[:20]}{' ...' if len(self.classes) > 20 else ''})")
        return np.array([index[c] for c in classes], dtype=np.int64)

    def predict(self, store: Any, tokens: np.ndarray | None = None) -> np.ndarray:
        """Predicted probe class ids of the store's tokens (or a bool mask of them), shard by shard."""
        cols = self.columns(store)
        w, b = self.probe.raw()
        out = []
        for rows, block in store.iter_shards(cols):  # [shard tokens, probe neurons]
            if tokens is not None:
                block = block[np.asarray(tokens)[rows]]
            out.append((block @ w.T + b).argmax(1))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)

    def evaluate(self, store: Any, labels: np.ndarray, classes: list[str], split: np.ndarray | None = None
                 ) -> dict[str, Any]:
        """Accuracy, macro-F1 and per-class accuracy on labelled tokens (all, and the test split
        when `split` is given), streamed from the store; `labels` are ids into `classes` (-1: unlabelled)."""
        cols = self.columns(store)
        mapped = np.where(labels >= 0, self.class_map(classes)[np.maximum(labels, 0)], -1)  # ids of the probe's classes
        labelled = mapped >= 0
        result = {"path": str(self.path), "trained_on": self.meta, **self._scores(store, labelled, mapped, cols)}
        if split is not None:
            result["test"] = self._scores(store, labelled & (split == 2), mapped, cols)
        return result

    def _scores(self, store: Any, mask: np.ndarray, labels: np.ndarray, cols: np.ndarray) -> dict[str, Any]:
        """`probes.evaluate` on the masked tokens, per-class accuracy named for the classes present."""
        n = int(mask.sum())
        if n == 0:
            return {"n_tokens": 0, "accuracy": None, "macro_f1": None, "per_class": {}}
        out = evaluate(self.probe, StoreChunks(store, mask, labels, cols), len(self.classes), per_class=True)
        present = set(np.unique(labels[mask]).tolist())
        out["per_class"] = {self.classes[c]: acc for c, acc in enumerate(out["per_class"]) if c in present}
        return {"n_tokens": n, **out}


def load_probe(path: str | Path) -> SavedProbe:
    """A probe written by `save_probe` (or a study's `probe.safetensors`); clear errors for
    missing or foreign files."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    tensors_path, json_path = _paths(path)
    for p in (tensors_path, json_path):
        if not p.is_file():
            raise ConfigError(f"probe.load: {p} does not exist (a saved probe is a .safetensors and a .json "
                              "side by side, e.g. <run>/probe.safetensors from a study)")
    try:
        meta = json.loads(json_path.read_text())
        tensors = load_file(str(tensors_path))
    except (ValueError, OSError, SafetensorError) as exc:
        raise ConfigError(f"probe.load: {tensors_path} is not a saved probe ({exc})") from exc
    if meta.get("format") != FORMAT or "weight" not in tensors:
        raise ConfigError(f"probe.load: {json_path} is not a neuroscope probe of format {FORMAT}")
    classes, neurons = list(meta.pop("classes")), list(meta.pop("neurons"))
    probe = Probe(tensors["weight"], tensors["bias"], tensors.get("mean"), tensors.get("std"))
    if probe.weight.shape != (len(classes), len(neurons)):
        raise ConfigError(f"probe.load: {tensors_path} holds weights {probe.weight.shape}, its JSON "
                          f"{len(classes)} classes x {len(neurons)} neurons")
    return SavedProbe(probe, classes, neurons, meta, tensors_path)
