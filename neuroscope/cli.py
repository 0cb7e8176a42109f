"""Run an entry point so that user mistakes print one clear message instead of a traceback."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from neuroscope.errors import NeuroscopeError


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


def run(fn: Callable[[Any], Any], cfg: Any) -> Any:
    """Call `fn(cfg)`; a `NeuroscopeError` is printed as `error: ...` and exits with status 2."""
    quiet_libraries()
    try:
        return fn(cfg)
    except NeuroscopeError as exc:
        logging.getLogger("neuroscope").debug("user error", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        if os.environ.get("NEUROSCOPE_TRACEBACK"):
            raise
        sys.exit(2)
