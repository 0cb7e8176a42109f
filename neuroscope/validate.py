"""Check a study's config before any work and report every problem at once, each naming its key."""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf

from neuroscope.errors import ConfigError, UnknownNameError
from neuroscope.registry import METHODS, MODELS, READERS, TASKS, Registry, set_plugin_dirs

Check = Callable[[Any], "str | None"]  # a value -> what is wrong with it (None: fine)
ABSENT = object()
SPLIT_KEYS = ("train", "dev", "test")
LAYER_MODELS = ("transformer", "minilm")  # models whose `layers` selects hidden states


def _as_number(value: Any) -> float | None:
    """The value as a finite float, or None when it is not a number (booleans are not)."""
    if isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def number(lo: float | None = None, hi: float | None = None, lo_open: bool = False) -> Check:
    """A number in [lo, hi] ((lo, hi] with `lo_open`); a bound of None is unbounded."""
    span = f"{'(' if lo_open else '['}{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}]"

    def check(value: Any) -> str | None:
        x = _as_number(value)
        if x is None:
            return f"expected a number, got {value!r}"
        if (lo is not None and (x < lo or (lo_open and x == lo))) or (hi is not None and x > hi):
            return f"{value} is not in {span}"
        return None

    return check


def integer(lo: int | None = None) -> Check:
    """An integer, at least `lo` when given."""

    def check(value: Any) -> str | None:
        x = _as_number(value)
        if x is None or isinstance(value, str) or x != int(x):
            return f"expected an integer, got {value!r}"
        if lo is not None and x < lo:
            return f"{value} is below the minimum {lo}"
        return None

    return check


def choice(*options: str) -> Check:
    """One of `options`."""
    return lambda value: None if value in options else f"expected one of {', '.join(options)}, got {value!r}"


def boolean(value: Any) -> str | None:
    """true or false (a word such as 'yes' is a string to Hydra, and any string would count as true)."""
    return None if isinstance(value, bool) else f"expected true or false, got {value!r}"


def optional(check: Check) -> Check:
    """null, or a value passing `check`."""
    return lambda value: None if value is None else check(value)


def percent_list(value: Any) -> str | None:
    """A non-empty list of distinct k % in (0, 100]."""
    problem = each(number(0, 100, lo_open=True))(value)
    if problem:
        return problem
    numbers = [float(v) for v in value]
    repeated = sorted({v for v in value if numbers.count(float(v)) > 1}, key=float)
    return f"{', '.join(map(str, repeated))} given more than once; list each k % once" if repeated else None


def k_list(value: Any) -> str | None:
    """A non-empty list of distinct neuron counts >= 1 (the store's size is checked when it is known)."""
    problem = each(integer(1))(value)
    if problem:
        return problem
    repeated = sorted({int(float(v)) for v in value if [float(x) for x in value].count(float(v)) > 1})
    return f"{', '.join(map(str, repeated))} given more than once; list each k once" if repeated else None


def each(item: Check, non_empty: bool = True) -> Check:
    """A list whose every entry passes `item` (problems of all entries are joined)."""

    def check(value: Any) -> str | None:
        if not isinstance(value, list | tuple | ListConfig):
            return f"expected a list, got {value!r}"
        if non_empty and not len(value):
            return "expected at least one entry, got []"
        problems = [p for p in (item(v) for v in value) if p]
        return "; ".join(problems) or None

    return check


def grid_entry(value: Any) -> str | None:
    """A λ grid entry: x >= 0 (λ1 = λ2 = x) or a pair [λ1, λ2] of numbers >= 0."""
    if isinstance(value, list | tuple | ListConfig):
        if len(value) != 2:
            return f"expected x or a pair [lambda1, lambda2], got {list(value)}"
        return "; ".join(p for p in (number(0)(v) for v in value) if p) or None
    return number(0)(value)


def split_ratios(value: Any) -> str | None:
    """{train, dev, test: ratio >= 0 summing to 1, seed: int}."""
    if not isinstance(value, Mapping | DictConfig):
        return f"expected {{train: ..., dev: ..., test: ..., seed: ...}}, got {value!r}"
    unknown = sorted(set(value) - {*SPLIT_KEYS, "seed"})
    if unknown:
        return f"unknown key(s) {unknown}; use {list(SPLIT_KEYS)} and seed"
    ratios = {k: _as_number(value[k]) for k in SPLIT_KEYS if k in value and value[k] is not None}
    bad = [f"{k}={value[k]!r}" for k, x in ratios.items() if x is None or x < 0]
    if bad:
        return f"ratios must be numbers >= 0, got {', '.join(bad)}"
    total = sum(ratios.values())  # type: ignore[arg-type]
    if abs(total - 1) > 1e-6:
        return f"ratios sum to {total:g}, expected 1"
    seed = integer()(value.get("seed", 0))
    return f"seed: {seed}" if seed else None


def writable_dir(value: Any) -> str | None:
    """A folder that exists and is writable, or can be created (its nearest existing parent is)."""
    path = Path(str(value)).expanduser().absolute()
    if path.exists() and not path.is_dir():
        return f"{path} is a file, not a folder"
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot create {path}: {parent} is a file, not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"cannot write into {parent} (permission denied); choose another folder"
    return None


# key -> check of its value; a key absent from the config (e.g. another probe) is skipped.
VALUE_RULES: tuple[tuple[str, Check], ...] = (
    ("seed", integer()),
    ("task.split", split_ratios),
    ("evaluation.percents", percent_list),
    ("evaluation.minimal_delta", number(0, 1)),
    ("evaluation.layer_top_percent", number(0, 100, lo_open=True)),
    ("evaluation.memory_gb", number(0)),
    ("evaluation.random_draws", integer(1)),
    ("evaluation.seeds", integer(1)),
    ("evaluation.control_draws", integer(1)),
    ("evaluation.control", boolean),
    ("evaluation.control_subsets", boolean),
    ("evaluation.layer_probes", boolean),
    ("evaluation.k_sparse", optional(k_list)),
    ("task.control", boolean),
    ("task.control_seed", integer()),
    ("task.unknown_label", choice("unk", "skip", "error")),
    ("model.aggregation", choice("first", "last", "mean")),
    ("model.max_length", optional(integer(1))),
    ("probe.lambda1", number(0)),
    ("probe.lambda2", number(0)),
    ("probe.epochs", integer(1)),
    ("probe.batch_size", integer(1)),
    ("probe.lr", number(0, lo_open=True)),
    ("probe.lr_decay", number(0, 1, lo_open=True)),
    ("probe.patience", integer(0)),
    ("probe.min_delta", number(0)),
    ("probe.selection.grid", each(grid_entry, non_empty=False)),
    ("probe.selection.percent", number(0, 100, lo_open=True)),
    ("probe.selection.tolerance", number(0, 1)),
    ("probe.selection.rule", choice("auto", "gap", "oracle")),
    ("store.dtype", choice("float32", "float16")),
    ("store.shard_tokens", integer(1)),
    ("store.batch_tokens", integer(1)),
    ("store.root", writable_dir),
    ("store.engine", choice("local", "ray", "submitit")),
    ("store.workers", integer(1)),
    ("store.threads", optional(integer(1))),
    ("model.dtype", choice("float32", "bfloat16", "float16")),
    ("output_dir", writable_dir),
    ("ablation.shares", each(number(0, 100))),
    ("ablation.mode", lambda v: None if v in (None, "zero", "mean") else  # patch: silence() in Python, not a run
     f"expected zero or mean, got {v!r} (patch copies recorded activations: use "
     "neuroscope.ablation.hooks.silence(mode='patch') with record() in Python)"),
    ("ablation.modes", each(choice("zero", "mean"))),
    ("ablation.where", choice("output", "recurrent")),
    ("ablation.random_draws", integer(0)),
    ("ablation.stage", choice("test", "validate")),
    ("comparison.top_percent", lambda v: None if v is None else number(0, 100, lo_open=True)(v)),
    ("report.top_neurons", integer(0)),
    ("report.top_words", integer(0)),
    ("report.min_count", integer(0)),
    ("report.sentences", integer(0)),
)

# method name -> (key, check) of its settings (the correlation rankers' shared keys)
CORRELATION_RULES: tuple[tuple[str, Check], ...] = (
    ("method.tokens", choice("train", "all")),
    ("method.products", choice("float64", "float32")),
    ("method.aggregate_over", choice("max", "min", "mean")),
    ("method.pairing_draws", integer(0)),
)
BASELINE_RULES: tuple[tuple[str, Check], ...] = (  # the rotation baseline of maxcorr / mincorr
    ("method.baseline", boolean),
    ("method.baseline_draws", integer(0)),
)
METHOD_RULES: dict[str, tuple[tuple[str, Check], ...]] = {
    "regcorr": (*CORRELATION_RULES, ("method.ridge", number(0))),
    "cca": (*CORRELATION_RULES, ("method.ridge", number(0))),
    "svcca": (*CORRELATION_RULES, ("method.keep", number(0, 1, lo_open=True))),
    "maxcorr": (*CORRELATION_RULES, *BASELINE_RULES),
    "mincorr": (*CORRELATION_RULES, *BASELINE_RULES),
}

# key -> registry its value must name (None: not set, skipped)
NAME_RULES: tuple[tuple[str, Registry[Any]], ...] = (
    ("task.name", TASKS), ("task.format", READERS), ("method.name", METHODS), ("model.name", MODELS),
)


def _select(cfg: DictConfig, key: str) -> Any:
    """The resolved value at `key`; ABSENT when the key does not exist or does not resolve."""
    try:
        return OmegaConf.select(cfg, key, default=ABSENT, throw_on_missing=False)
    except Exception:  # an interpolation that does not resolve: reported once by _unresolved
        return ABSENT


def _unresolved(cfg: DictConfig) -> list[str]:
    """The first interpolation that does not resolve (e.g. an unset environment variable)."""
    try:
        OmegaConf.to_container(cfg, resolve=True, throw_on_missing=False)
    except Exception as exc:
        return [f"{getattr(exc, 'full_key', None) or 'config'}: cannot resolve its value "
                f"({str(exc).splitlines()[0]})"]
    return []


def _values(cfg: DictConfig) -> list[str]:
    problems = []
    method = _select(cfg, "method.name") if _has_method(cfg) else None
    for key, check in (*VALUE_RULES, *METHOD_RULES.get(str(method), ())):
        value = _select(cfg, key)
        if value is not ABSENT and (problem := check(value)):
            problems.append(f"{key}: {problem}")
    return problems


def _known(registry: Registry[Any], name: str) -> str | None:
    """None when `name` is registered, else the registry's message with close matches."""
    builtins = getattr(registry, "builtins", dict)  # lazy built-ins are known without importing them
    if name in builtins():
        return None
    try:
        registry.get(name)
    except UnknownNameError as exc:
        return str(exc)
    return None


def _has_method(cfg: DictConfig) -> bool:
    """A ranking method is configured (method=none / null is extract only)."""
    return bool(_select(cfg, "method") not in (None, ABSENT) and len(cfg.method))


def _names(cfg: DictConfig) -> list[str]:
    problems = []
    if _has_method(cfg) and _select(cfg, "method.name") in (None, ABSENT):
        problems.append("method.name: missing (which registered method ranks the neurons?)")
    if _select(cfg, "model.name") in (None, ABSENT):
        problems.append("model.name: missing (which registered model gives the neurons?)")
    for key, registry in NAME_RULES:
        name = _select(cfg, key)
        if name not in (None, ABSENT) and (problem := _known(registry, str(name))):
            problems.append(f"{key}: {problem}")
    return problems


def _missing(node: Any, prefix: str = "") -> list[str]:
    """Keys still `???` (mandatory values nobody set)."""
    if isinstance(node, Mapping):
        return [k for key, v in node.items() for k in _missing(v, f"{prefix}{key}.")]
    return [prefix[:-1]] if node == "???" else []


def _task_files(cfg: DictConfig) -> list[str]:
    files, single = _select(cfg, "task.files"), _select(cfg, "task.file")
    given: dict[str, Any] = {}
    if isinstance(files, Mapping):
        unknown = sorted(set(files) - set(SPLIT_KEYS))
        if unknown:
            return [f"task.files: unknown split(s) {unknown}; use {list(SPLIT_KEYS)}"]
        given = {k: v for k, v in files.items() if v is not None}
    elif files not in (None, ABSENT):
        return [f"task.files: expected {{train: ..., dev: ..., test: ...}}, got {files!r}"]
    if given and "train" not in given:
        return [f"task.files: a train file is required (got only {sorted(given)}); set task.files.train=..."]
    if not given and single in (None, ABSENT):
        return ["task.file: no corpus; set task.file=<file> (split by sentence) or task.files.train=... "
                "task.files.test=..."]
    if given and "test" not in given and _has_method(cfg):
        return ["task.files.test: a study (method is set) is scored on a test file; set task.files.test=..., "
                "or task.file=<file> to split one file"]
    return []


def _layer_count(path: Path) -> int | None:
    """Number of layers in a local Hugging Face folder's config.json, when it says."""
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return None
    n = config.get("num_hidden_layers", config.get("n_layer"))
    return n if isinstance(n, int) else None


def _model_path(path: str) -> str | None:
    """A local model folder must hold a config.json; a hub name (`org/name`) is left to the hub."""
    local = Path(path).expanduser()
    if local.exists():
        if not local.is_dir() or not (local / "config.json").is_file():
            return (f"{local} is not a model folder (no config.json); point model.path at a folder "
                    "saved by save_pretrained, or at a hub name such as bert-base-cased")
        return None
    if path.startswith(("/", ".", "~")) or path.count("/") > 1 or path.endswith("/"):
        return f"{local} does not exist; point model.path at a model folder or a hub name"
    return None


def _layers(value: Any, n_layers: int | None) -> str | None:
    """`all` or a list of layer indices (0 = embeddings), within the model's depth when known."""
    if value in (None, "all"):
        return None
    if not isinstance(value, list | tuple | ListConfig) or not value:
        return f"expected 'all' or a list of layer indices (0 = embeddings), got {value!r}"
    bad = [v for v in value if integer(0)(v)]
    if bad:
        return f"layer indices must be integers >= 0, got {bad}"
    over = [v for v in value if n_layers is not None and v > n_layers]
    if over:
        return f"layer(s) {over} out of range; this model has layers 0 (embeddings) to {n_layers}"
    return None


def _model(cfg: DictConfig) -> list[str]:
    name, path = _select(cfg, "model.name"), _select(cfg, "model.path")
    problems = []
    n_layers = None
    if name == "transformer" and isinstance(path, str):
        if problem := _model_path(path):
            problems.append(f"model.path: {problem}")
        elif Path(path).expanduser().is_dir():
            n_layers = _layer_count(Path(path).expanduser())
    layers = _select(cfg, "model.layers")
    if name in LAYER_MODELS and layers is not ABSENT and (problem := _layers(layers, n_layers)):
        problems.append(f"model.layers: {problem}")
    checkpoint = _select(cfg, "model.checkpoint")
    if checkpoint not in (None, ABSENT) and not Path(str(checkpoint)).expanduser().is_file():
        problems.append(f"model.checkpoint: {checkpoint} does not exist (or is not a file); "
                        f"train one with `python train.py model={name}`")
    return problems


def _entries(cfg: DictConfig, key: str) -> list[Any]:
    """The list at `key` as plain Python ([] when absent or null)."""
    value = _select(cfg, key)
    if value in (None, ABSENT):
        return []
    plain = OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig | ListConfig) else value
    return plain if isinstance(plain, list) else [plain]


def _model_node(node: Any, key: str) -> list[str]:
    """A model node of a list (`method.others[<i>]`): a registered name, an existing path / checkpoint."""
    if not isinstance(node, Mapping) or not node.get("name"):
        return [f"{key}: expected a model node with a name, e.g. {{name: transformer, path: <folder>}}, got {node!r}"]
    if problem := _known(MODELS, str(node["name"])):
        return [f"{key}.name: {problem}"]
    if isinstance(node.get("path"), str) and (problem := _model_path(node["path"])):
        return [f"{key}.path: {problem.replace('model.path', f'{key}.path')}"]
    checkpoint = node.get("checkpoint")
    if checkpoint and not Path(str(checkpoint)).expanduser().is_file():
        return [f"{key}.checkpoint: {checkpoint} does not exist (or is not a file)"]
    return []


def _experiment(cfg: DictConfig) -> list[str]:
    """An experiment's lists, entry by entry: checkpoints, given rankings (file and JSON shape; the
    sites are checked once the model is loaded), other models, property and ranker names."""
    from neuroscope.ablation.rankings import read_rankings

    checkpoints = _select(cfg, "checkpoints")
    if checkpoints not in (None, ABSENT, "???") and not isinstance(checkpoints, ListConfig):
        return [f"checkpoints: expected a list, the studied model first, e.g. 'checkpoints=[A.ckpt,B.ckpt]'; "
                f"got {checkpoints!r}"]
    problems = [f"checkpoints[{i}]: {c} does not exist (or is not a file); train one with train.py"
                for i, c in enumerate(_entries(cfg, "checkpoints") if checkpoints != "???" else [])
                if not Path(str(c)).expanduser().is_file()]
    rankings = _select(cfg, "ablation.rankings")
    try:
        read_rankings(OmegaConf.to_container(rankings, resolve=True) if isinstance(rankings, DictConfig | ListConfig)
                      else None if rankings is ABSENT else rankings)
    except ConfigError as exc:
        problems.append(str(exc))
    for i, node in enumerate(_entries(cfg, "method.others") if _has_method(cfg) else []):
        problems += _model_node(node, f"method.others[{i}]")
    for key in ("ablation.properties", "comparison.tasks"):
        for i, prop in enumerate(_entries(cfg, key)):
            name = prop.get("name") if isinstance(prop, Mapping) else None
            if name is None:
                problems.append(f"{key}[{i}]: expected {{name: <task>, params: {{...}}}}, got {prop!r}")
            elif problem := _known(TASKS, str(name)):
                problems.append(f"{key}[{i}].name: {problem}")
    for i, name in enumerate(_entries(cfg, "ablation.correlation")):
        if problem := _known(METHODS, str(name)):
            problems.append(f"ablation.correlation[{i}]: {problem}")
    return problems


def validate_analyze(cfg: DictConfig) -> None:
    """Raise one `ConfigError` listing every problem of an analyze config (nothing is run or written)."""
    dirs = _select(cfg, "plugins.dirs")
    if dirs not in (None, ABSENT):
        set_plugin_dirs(list(dirs))  # plugin names must be known before names are checked
    plain = OmegaConf.to_container(cfg, resolve=False, throw_on_missing=False)
    problems = [f"{key}: required, but not set (it is ??? in the config)" for key in _missing(plain)]
    for part in (_unresolved, _values, _names, _task_files, _model, _experiment):
        problems += part(cfg)
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        raise ConfigError(f"{len(problems)} problems in the config:\n" + "\n".join(f"  {p}" for p in problems))


class RunDirCheck(Callback):
    """Hydra callback: stop with `error: hydra.run.dir: ...` before Hydra creates an unusable run folder."""

    def _check(self, config: DictConfig, key: str) -> None:
        from neuroscope.cli import note_new_run_dir

        try:
            folder = OmegaConf.select(config, key)
            problem = writable_dir(folder)
        except Exception:  # e.g. `${hydra:...}` not resolvable yet: Hydra will say so itself
            return
        if problem:
            print(f"error: {key}: {problem}", file=sys.stderr)
            sys.exit(2)
        note_new_run_dir(folder)  # a run that fails on bad input removes the folder if it stays empty

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.sweep.dir")
