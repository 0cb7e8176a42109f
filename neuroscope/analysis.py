"""`analyze.py`'s one procedure: validate the config → run the experiment it names → write its
outputs. Experiments live in `neuroscope.experiments` (registry `EXPERIMENTS`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from neuroscope.errors import ConfigError, UnknownNameError
from neuroscope.experiments import DEFAULT, TRIGGERS
from neuroscope.experiments.base import Experiment, Outcome
from neuroscope.progress import configure
from neuroscope.registry import EXPERIMENTS, set_plugin_dirs
from neuroscope.reporting.results import write_config
from neuroscope.seeding import seed_everything
from neuroscope.validate import validate_analyze


def protocol(cfg: DictConfig) -> str:
    """The experiment a config names (`protocol`), else the one its first set trigger key picks
    (`report.input` → report), else the single study."""
    named = cfg.get("protocol")
    if named:
        return str(named)
    return next((name for key, name in TRIGGERS.items() if OmegaConf.select(cfg, key, default=None)), DEFAULT)


def experiment_of(cfg: DictConfig) -> Experiment:
    """The registered experiment the config runs, instantiated, its own settings checked."""
    name = protocol(cfg)
    try:
        experiment = EXPERIMENTS.get(name)()
    except UnknownNameError as exc:
        raise ConfigError(f"protocol: {exc}") from exc
    problems = experiment.check(cfg)
    if problems:
        raise ConfigError("\n".join(problems))
    return experiment


def run(cfg: DictConfig) -> Outcome:
    """Validate, run and write the experiment of `cfg` into `cfg.output_dir`; the outcome holds the
    results.json dict, the report's path and the figures."""
    validate_analyze(cfg)
    configure(cfg.get("progress", "auto"))  # progress lines of every long step (neuroscope.progress)
    t0 = time.perf_counter()
    seed_everything(int(cfg.seed))
    set_plugin_dirs(list(cfg.plugins.dirs))
    experiment = experiment_of(cfg)
    out_dir = Path(cfg.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_config(cfg, out_dir)
    outcome = experiment.run(cfg, out_dir)
    timings = outcome.results.get("timings")
    if experiment.timed and isinstance(timings, dict):
        timings["total_seconds"] = round(time.perf_counter() - t0, 3)
    return experiment.write(outcome, cfg, out_dir)


def analyze(cfg: DictConfig) -> dict[str, Any]:
    """Run the study or experiment described by `cfg`; results.json + config.yaml (and the report)
    in `cfg.output_dir`. Returns the results.json dict."""
    return run(cfg).results
