"""Write a run's machine-readable outputs: results.json and the resolved config (atomically)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from neuroscope.files import atomic_write

# atomic_write is the one atomic writer (neuroscope.files); reporting modules import it from here
__all__ = ["atomic_write", "flatten", "jsonable", "score", "write_config", "write_results"]


def jsonable(obj: Any) -> Any:
    """Plain JSON types from numpy scalars/arrays, tuples, paths; NaN/inf become None."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def write_results(results: dict[str, Any], out_dir: str | Path) -> Path:
    """`<out_dir>/results.json`, keys as in the results contract (DESIGN.md)."""
    path = Path(out_dir) / "results.json"
    atomic_write(path, json.dumps(jsonable(results), indent=2))
    return path


def write_config(cfg: DictConfig, out_dir: str | Path) -> Path:
    """`<out_dir>/config.yaml`: the fully resolved config that reproduces the run with its seed."""
    path = Path(out_dir) / "config.yaml"
    atomic_write(path, OmegaConf.to_yaml(cfg, resolve=True))
    return path


def flatten(results: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numeric leaves as `a/b/c` keys (for experiment loggers)."""
    out: dict[str, float] = {}
    for key, value in results.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}/"))
        elif isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def score(entry: dict[str, Any] | None, sd: bool = False) -> Any:
    """A subset's / probe's score: accuracy, or R² for numeric tasks (with `sd`: its spread)."""
    if not entry:
        return None
    return entry.get("accuracy_sd", entry.get("r2_sd")) if sd else entry.get("accuracy", entry.get("r2"))


def mode_views(block: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """An ablation block as one view per mode, each in the single-mode layout (`curves.<arm>`,
    `random_sd`, `random_draws`, `random_by_length`, `mode`): several modes are stored by mode
    (`curves.<mode>.<arm>`), one mode (and runs before modes existed) flat."""
    modes = block.get("modes") or [block.get("mode", "zero")]
    if len(modes) == 1:
        return {modes[0]: {**block, "mode": modes[0]}}
    return {m: {**block, "mode": m, "curves": block["curves"][m], "random_sd": block.get("random_sd", {}).get(m, {}),
                "random_draws": block.get("random_draws", {}).get(m, []),
                **({"random_by_length": block["random_by_length"].get(m, {})} if "random_by_length" in block else {})}
            for m in modes}
