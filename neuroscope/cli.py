"""Run an entry point so that user mistakes print one clear message instead of a traceback."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from neuroscope.errors import NeuroscopeError

# run folders Hydra is about to create -> the topmost folder that creation adds (it and all below are new)
_NEW_RUN_DIRS: dict[Path, Path] = {}
HYDRA_LEFTOVERS = (".hydra", "config.yaml")  # with `*.log`: what a run writes before any result


def note_new_run_dir(path: str | os.PathLike) -> None:
    """Remember that Hydra's run (or sweep) folder `path` does not exist yet, so this run creates it
    and the missing folders above it; called before Hydra creates it (a folder that exists is never noted)."""
    path = Path(path).expanduser().absolute()
    if path.exists():
        return
    top = path
    while not top.parent.exists():
        top = top.parent
    _NEW_RUN_DIRS[path] = top


def _created_by_this_run(path: Path) -> Path | None:
    """The topmost folder this run created that holds `path` (None: `path` may hold a user's files)."""
    for new, top in _NEW_RUN_DIRS.items():
        if path == new or new in path.parents:
            return top
    return None


def _only_leftovers(folder: Path) -> bool:
    """`folder` holds nothing but Hydra's `.hydra/`, job logs and the resolved config.yaml."""
    return all(p.name in HYDRA_LEFTOVERS or (p.is_file() and p.suffix == ".log") for p in folder.iterdir())


def discard_run_dir(path: str | os.PathLike | None) -> bool:
    """Remove the run folder of a failed run when this run created it and it holds only Hydra's
    leftovers, then its parents this run created while they are empty. True when removed."""
    if path is None:
        return False
    folder = Path(path).expanduser().absolute()
    top = _created_by_this_run(folder)
    if top is None or not folder.is_dir() or not _only_leftovers(folder):
        return False
    shutil.rmtree(folder, ignore_errors=True)
    parent = folder.parent
    while parent != top.parent and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent
    return not folder.exists()


def _hydra_run_dir() -> str | None:
    """This Hydra job's output folder (None outside a Hydra app)."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return str(HydraConfig.get().runtime.output_dir)
    except Exception:  # not running under Hydra (a test, the Python API)
        return None


def quiet_libraries() -> None:
    """Silence progress bars and chatter of third-party libraries (our own bars stay), by
    environment variables read when those libraries load (importing them here would cost ~1 s
    in runs that never need them)."""
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:  # already loaded: tell it directly
        transformers = sys.modules["transformers"]
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()


def tolerant_output() -> None:
    """A terminal whose encoding cannot show a character (e.g. `λ` under LC_ALL=C) prints an escape
    such as `\\u03bb` instead of ending the run in a UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) in ("strict", "surrogateescape") and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def run(fn: Callable[[Any], Any], cfg: Any) -> Any:
    """Call `fn(cfg)`; a `NeuroscopeError` is printed as `error: ...` and exits with status 2."""
    quiet_libraries()
    tolerant_output()
    try:
        return fn(cfg)
    except NeuroscopeError as exc:
        logging.getLogger("neuroscope").debug("user error", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        discard_run_dir(_hydra_run_dir())  # a failed validation leaves no empty run folder behind
        if os.environ.get("NEUROSCOPE_TRACEBACK"):
            raise
        sys.exit(2)
