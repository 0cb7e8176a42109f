"""The shape of an experiment: check its settings, run, write its outputs (results.json, tables,
figures, report.html, logger, summary). `analyze()` calls these and nothing else."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from neuroscope.config import to_dict
from neuroscope.reporting.loggers import experiment_logger, log_results
from neuroscope.reporting.results import write_results
from neuroscope.reporting.tables import log_tables, write_tables

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What an experiment returns: the results.json dict and, for the report's neuron profiles,
    the studied store and its corpus."""

    results: dict[str, Any]
    store: Any = None
    corpus: Any = None
    report_path: Path | None = None
    figures: dict[str, Path] = field(default_factory=dict)


class Experiment:
    """An experiment (registered in `EXPERIMENTS`): override `run`, and `check` for settings of its
    own; `write` puts results.json, CSV tables, figures and report.html in the run folder."""

    name = "experiment"
    timed = True  # analyze() sets timings.total_seconds of its results

    def check(self, cfg: DictConfig) -> list[str]:
        """Problems of this experiment's own settings, each naming its key (nothing run yet)."""
        return []

    def run(self, cfg: DictConfig, out_dir: Path) -> Outcome:
        raise NotImplementedError(f"experiment '{self.name}' has no run()")

    def write(self, outcome: Outcome, cfg: DictConfig, out_dir: Path) -> Outcome:
        """results.json and the CSV tables, then (report.enabled) figures and report.html, the
        logger, and (report.summary) the terminal summary."""
        results = outcome.results
        write_results(results, out_dir)
        tables = write_tables(results, out_dir)
        rep = to_dict(cfg.get("report")) or {}
        if rep.get("enabled"):
            from neuroscope.reporting.report import run_report  # matplotlib only when reporting

            words = outcome.corpus.words if outcome.corpus is not None else None
            outcome.report_path, outcome.figures = run_report(results, out_dir, outcome.store, words, rep)
        with experiment_logger(cfg.get("logger"), cfg, light=True) as logger:
            log_results(logger, results)
            log_tables(logger, tables, results)
            if outcome.figures:
                from neuroscope.reporting.report import log_figures

                log_figures(logger, outcome.figures)
        log.info("results written to %s", out_dir / "results.json")
        if rep.get("summary"):
            from neuroscope.reporting.summary import print_summary

            print_summary(results, str(outcome.report_path) if outcome.report_path else None)
        return outcome
