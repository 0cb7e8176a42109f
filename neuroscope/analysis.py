"""One interpretation study: task corpus → model activations in the store → ranking → results.json."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from neuroscope.config import build, to_dict
from neuroscope.methods.base import rank
from neuroscope.registry import MODELS, set_plugin_dirs
from neuroscope.reporting.loggers import experiment_logger, log_results
from neuroscope.reporting.results import write_config, write_results
from neuroscope.seeding import seed_everything
from neuroscope.store import extract
from neuroscope.tasks import load_task

log = logging.getLogger(__name__)


def task_key(task_cfg: dict[str, Any]) -> str:
    """Short hash naming one task's labels inside a store."""
    blob = json.dumps(task_cfg, sort_keys=True, default=str)
    return f"{task_cfg['name']}-{hashlib.sha256(blob.encode()).hexdigest()[:12]}"


def analyze(cfg: DictConfig) -> dict[str, Any]:
    """Run the study described by `cfg` and write results.json + config.yaml into `cfg.output_dir`."""
    t0 = time.perf_counter()
    seed_everything(int(cfg.seed))
    set_plugin_dirs(list(cfg.plugins.dirs))
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_config(cfg, out_dir)

    task_cfg = to_dict(cfg.task)
    corpus = load_task(task_cfg, cfg.data.root, download=bool(cfg.data.download))
    source = build(MODELS, cfg.model, "model")
    store, reused = extract(
        source, corpus.words, Path(cfg.store.root).expanduser(), dtype=cfg.store.dtype,
        shard_tokens=int(cfg.store.shard_tokens), batch_tokens=int(cfg.store.batch_tokens),
        sources=corpus.sources, name=str(cfg.model.name), progress=bool(cfg.store.progress),
    )
    store.save_labels(task_key(task_cfg), corpus.labels, corpus.split, corpus.classes)
    method = to_dict(cfg.get("method")) or None
    results: dict[str, Any] = {
        "model": cfg.model.name,
        "task": corpus.name,
        "method": method["name"] if method else None,
        "seed": int(cfg.seed),
        "store": {
            "n_tokens": store.n_tokens, "n_neurons": store.n_neurons, "sites": store.sites,
            "reused": reused, "extract_seconds": store.manifest["extract_seconds"],
            "dtype": store.manifest["dtype"], "path": str(store.path),
        },
        "split": corpus.counts(),
        "classes": corpus.classes,
        "task_info": corpus.info,
        "timings": {},
    }
    if method:
        t1 = time.perf_counter()
        train = corpus.mask("train")
        ranking = rank(method.pop("name"), method, store.read(tokens=train), corpus.labels[train])
        results["ranking"] = ranking.ids(store.neurons)
        results["timings"]["method_seconds"] = round(time.perf_counter() - t1, 3)
    results["timings"]["total_seconds"] = round(time.perf_counter() - t0, 3)
    write_results(results, out_dir)
    with experiment_logger(cfg.get("logger"), cfg) as logger:
        log_results(logger, results)
    log.info("results written to %s", out_dir / "results.json")
    return results
