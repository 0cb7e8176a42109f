"""Trained probes kept on disk: `<name>.safetensors` (weight, bias, standardization) + `<name>.json`
(kind, classes, the neuron ids it reads, λ, seed, the store it was trained on and the fingerprint
of its model), and evaluated on any store of the same model that has those neurons, e.g. another
corpus, without retraining. A classifier (`Probe`) or a regression probe (`Regressor`, numeric tasks).

    save_probe(probe, "run/probe", classes=..., neurons=..., **store_meta(store), settings=...)
    saved = load_probe("run/probe.safetensors")
    saved.evaluate(store, labels, classes)   # labels of the store's tokens in the corpus's classes
    saved.evaluate_values(store, values)     # a regression probe: numeric targets (NaN: unlabelled)
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuroscope.errors import ConfigError
from neuroscope.files import atomic_path
from neuroscope.probes.data import StoreChunks
from neuroscope.probes.probe import Probe, evaluate
from neuroscope.probes.regression import Regressor, regression_scores
from neuroscope.reporting.results import atomic_write, jsonable

log = logging.getLogger(__name__)
FORMAT = 1
KINDS = ("classifier", "regression")
LAYOUT_KEYS = ("sites", "units", "site_modules")  # which sites a store kept: not which model
LOCATION_KEYS = ("path", "checkpoint")  # where the model's files were: not which model, when their content is hashed


def _paths(path: str | Path) -> tuple[Path, Path]:
    """(`x.safetensors`, `x.json`) for `x`, `x.safetensors` or `x.json`."""
    p = Path(path).expanduser()
    stem = p.with_suffix("") if p.suffix in (".safetensors", ".json") else p
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def model_identity(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """The model part of a store's fingerprint (its manifest's `model`): without which sites were
    stored, and without the files' location when their content is hashed (a copied model is the same)."""
    hashed = bool(fingerprint.get("files") or fingerprint.get("sha256"))
    drop = set(LAYOUT_KEYS) | (set(LOCATION_KEYS) if hashed else set())
    return {k: v for k, v in fingerprint.items() if k not in drop}


def digest(identity: dict[str, Any]) -> str:
    """16 hex digits of sha256 over a model identity (JSON, sorted keys)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def store_meta(store: Any) -> dict[str, Any]:
    """What a saved probe records of the store it was trained on: its path and key, and its model's
    identity and fingerprint (`probe.load` refuses the stores of other models)."""
    identity = model_identity(dict(store.manifest.get("model") or {}))
    return {"store": str(store.path), "store_key": store.manifest.get("key"),
            "model_fingerprint": digest(identity), "model_identity": identity}


def _tensors(probe: Probe | Regressor, classes: list[str], neurons: list[str]) -> tuple[str, dict[str, np.ndarray]]:
    """(kind, tensors to write) of a classifier ([classes, neurons] weight) or a regression probe
    ([neurons] weight, `classes` empty; the target's mean and std as `target`)."""
    if isinstance(probe, Regressor):
        if classes or probe.weight.shape != (len(neurons),):
            raise ValueError(f"regression weight {probe.weight.shape} does not match {len(neurons)} neurons (and no classes)")
        return "regression", {"weight": probe.weight, "bias": np.array([probe.bias], dtype=np.float64),
                              "mean": probe.mean, "std": probe.std,
                              "target": np.array([probe.y_mean, probe.y_std], dtype=np.float64)}
    if probe.weight.shape != (len(classes), len(neurons)):
        raise ValueError(f"probe weight {probe.weight.shape} does not match {len(classes)} classes x {len(neurons)} neurons")
    tensors = {"weight": probe.weight, "bias": probe.bias}
    if probe.mean is not None and probe.std is not None:
        tensors.update(mean=probe.mean, std=probe.std)  # their own dtype: predictions stay identical
    return "classifier", tensors


def save_probe(probe: Probe | Regressor, path: str | Path, classes: list[str], neurons: list[str],
               **meta: Any) -> Path:
    """Write the probe (tensors through a temporary file, then the JSON); returns the .safetensors
    path. `meta`: what to keep beside it, e.g. `**store_meta(store)`, the task and λ."""
    from safetensors.numpy import save_file

    kind, arrays = _tensors(probe, classes, neurons)
    tensors = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
    tensors_path, json_path = _paths(path)
    with atomic_path(tensors_path) as tmp:
        save_file(tensors, str(tmp), metadata={"format": str(FORMAT), "kind": "neuroscope-probe"})
    atomic_write(json_path, json.dumps(jsonable({"format": FORMAT, "kind": kind, "classes": list(classes),
                                                 "neurons": list(neurons), **meta}), indent=1))
    return tensors_path


@dataclass
class SavedProbe:
    """A probe read by `load_probe`: `probe` is a `Probe` (kind classifier) or a `Regressor`."""

    probe: Probe | Regressor
    classes: list[str]  # empty for a regression probe
    neurons: list[str]
    meta: dict[str, Any]
    path: Path

    @property
    def kind(self) -> str:
        return "regression" if isinstance(self.probe, Regressor) else "classifier"

    def require(self, kind: str, task: str) -> None:
        """A clear error when a classifier is loaded for a numeric task, or a regression probe for classes."""
        if kind == self.kind:
            return
        want = "numeric (a regression probe)" if kind == "regression" else "classified (a classifier probe)"
        raise ConfigError(f"probe.load: {self.path} is a {self.kind} probe (trained on task "
                          f"'{self.meta.get('task', '?')}'), but task '{task}' is {want}; load a probe saved by a "
                          f"study of a task like '{task}' (probe.save=true), or run without probe.load to train one")

    def check_model(self, store: Any) -> None:
        """Refuse a store of another model than the probe's (by model fingerprint); probes saved
        before fingerprints were recorded are accepted with a warning."""
        saved = self.meta.get("model_fingerprint")
        if saved is None:
            log.warning("probe.load: %s records no model fingerprint (saved by an older neuroscope): cannot check "
                        "that the store %s holds the model it was trained on ('%s')", self.path, store.path,
                        self.meta.get("model", "?"))
            return
        here = store_meta(store)
        if here["model_fingerprint"] == saved:
            return
        theirs = self.meta.get("model_identity") or {}
        ours = here["model_identity"]
        differ = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k)) if theirs else []
        model_here = store.path.name.rsplit("-", 1)[0]  # a store's folder is <model name>-<key>
        raise ConfigError(
            f"probe.load: {self.path} was trained on model '{self.meta.get('model', '?')}' (model fingerprint {saved}), "
            f"but the store {store.path} holds model '{model_here}' (model fingerprint {here['model_fingerprint']})"
            f"{'; they differ in ' + ', '.join(differ) if differ else ''}. A probe reads the neurons of the model it "
            f"was trained on: run with that model (model=... as when it was saved, trained_on.model), or train a "
            f"probe on this model (leave probe.load unset; probe.save=true keeps it)")

    def columns(self, store: Any) -> np.ndarray:
        """The store's columns of the probe's neurons, after `check_model`; a clear error naming those it lacks."""
        self.check_model(store)
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
        """Predictions for the store's tokens (or a bool mask of them), shard by shard: probe class
        ids ([tokens] int64), or the regression probe's values ([tokens] float64)."""
        cols = self.columns(store)
        if isinstance(self.probe, Regressor):
            fn = self.probe.predict
        else:
            w, b = self.probe.raw()
            fn = lambda block: (block @ w.T + b).argmax(1)  # noqa: E731
        out = []
        for rows, block in store.iter_shards(cols):  # [shard tokens, probe neurons]
            if tokens is not None:
                block = block[np.asarray(tokens)[rows]]
            out.append(fn(block))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float64 if self.kind == "regression" else np.int64)

    def evaluate(self, store: Any, labels: np.ndarray, classes: list[str], split: np.ndarray | None = None,
                 task: str = "this task") -> dict[str, Any]:
        """Accuracy, macro-F1 and per-class accuracy on labelled tokens (all, and the test split
        when `split` is given), streamed from the store; `labels` are ids into `classes` (-1: unlabelled)."""
        self.require("classifier", task)
        cols = self.columns(store)
        mapped = np.where(labels >= 0, self.class_map(classes)[np.maximum(labels, 0)], -1)  # ids of the probe's classes
        labelled = mapped >= 0
        result = {"path": str(self.path), "trained_on": self.meta, **self._scores(store, labelled, mapped, cols)}
        if split is not None:
            result["test"] = self._scores(store, labelled & (split == 2), mapped, cols)
        return result

    def evaluate_values(self, store: Any, values: np.ndarray, split: np.ndarray | None = None,
                        task: str = "this task") -> dict[str, Any]:
        """R², Pearson's r and MSE of a regression probe on the store's tokens with a value (NaN:
        none), and on the test split when `split` is given."""
        self.require("regression", task)
        values = np.asarray(values, dtype=np.float64)  # [tokens]
        labelled = ~np.isnan(values)
        pred = np.full(len(values), np.nan)
        pred[labelled] = self.predict(store, labelled)

        def scores(mask: np.ndarray) -> dict[str, Any]:
            n = int(mask.sum())
            return {"n_tokens": n, **(regression_scores(pred[mask], values[mask]) if n else
                                      {"r2": None, "pearson": None, "mse": None})}

        result = {"path": str(self.path), "trained_on": self.meta, **scores(labelled)}
        if split is not None:
            result["test"] = scores(labelled & (split == 2))
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


def _read_json(json_path: Path) -> dict[str, Any]:
    """The probe's JSON as a dict with its required keys checked; `probe.load: <file>: ...` errors."""
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise ConfigError(f"probe.load: {json_path}: not readable JSON ({exc}); a saved probe's .json is written "
                          "beside its .safetensors by a study (probe.save=true): save the probe again") from exc
    if not isinstance(meta, dict):
        raise ConfigError(f"probe.load: {json_path}: expected a JSON object with format, classes and neurons, got "
                          f"a {type(meta).__name__}; save the probe again (probe.save=true)")
    if meta.get("format") != FORMAT:
        raise ConfigError(f"probe.load: {json_path}: not a neuroscope probe of format {FORMAT} "
                          f"(format {meta.get('format')!r})")
    kind = meta.get("kind", "classifier")  # probes saved before regression probes were saved
    if kind not in KINDS:
        raise ConfigError(f"probe.load: {json_path}: 'kind' is {kind!r}, expected one of {KINDS}")
    for key in ("classes", "neurons"):
        value = meta.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"probe.load: {json_path}: {'lacks' if key not in meta else 'has a bad'} '{key}' "
                              f"(a list of {'class names' if key == 'classes' else 'neuron ids'}); save the probe "
                              "again (probe.save=true) or restore the file")
    if kind == "classifier" and not meta["classes"]:
        raise ConfigError(f"probe.load: {json_path}: a classifier probe with no 'classes'; save the probe again")
    return meta


def _probe(kind: str, tensors: dict[str, np.ndarray], tensors_path: Path, n_classes: int, n_neurons: int
           ) -> Probe | Regressor:
    """The probe held by `tensors`, with its required tensors and shapes checked."""
    need = ("weight", "bias") + (("mean", "std", "target") if kind == "regression" else ())
    missing = [name for name in need if name not in tensors]
    shape = (n_neurons,) if kind == "regression" else (n_classes, n_neurons)
    if missing or tensors["weight"].shape != shape:
        what = f"lacks tensor(s) {missing}" if missing else f"holds weights {tensors['weight'].shape}"
        of = f"{n_neurons} neurons" if kind == "regression" else f"{n_classes} classes x {n_neurons} neurons"
        raise ConfigError(f"probe.load: {tensors_path}: {what}, its JSON a {kind} probe of {of}; the two files do "
                          "not belong together: save the probe again")
    if kind == "regression":
        y_mean, y_std = (float(v) for v in tensors["target"])
        return Regressor(tensors["weight"], float(tensors["bias"][0]), tensors["mean"], tensors["std"], y_mean, y_std)
    return Probe(tensors["weight"], tensors["bias"], tensors.get("mean"), tensors.get("std"))


def load_probe(path: str | Path) -> SavedProbe:
    """A probe written by `save_probe` (or a study's `probe.safetensors`); clear errors for
    missing, foreign or damaged files."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    tensors_path, json_path = _paths(path)
    for p in (tensors_path, json_path):
        if not p.is_file():
            raise ConfigError(f"probe.load: {p} does not exist (a saved probe is a .safetensors and a .json "
                              "side by side, e.g. <run>/probe.safetensors from a study)")
    meta = _read_json(json_path)
    try:
        tensors = load_file(str(tensors_path))
    except (ValueError, OSError, SafetensorError) as exc:
        raise ConfigError(f"probe.load: {tensors_path} is not a saved probe ({exc})") from exc
    kind = meta.pop("kind", "classifier")
    classes, neurons = list(meta.pop("classes")), list(meta.pop("neurons"))
    probe = _probe(kind, tensors, tensors_path, len(classes), len(neurons))
    return SavedProbe(probe, classes, neurons, meta, tensors_path)
