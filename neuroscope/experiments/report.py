"""The report over finished runs (`analyze.py 'report.input=[<run or multirun folders>]'`)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from neuroscope.config import to_dict
from neuroscope.errors import ConfigError
from neuroscope.experiments.base import Experiment, Outcome
from neuroscope.registry import EXPERIMENTS
from neuroscope.reporting.sweep import sweep_report


@EXPERIMENTS.register("report")
class RunsReport(Experiment):
    """Reads each run's results.json; writes sweep.csv, comparisons, figures and report.html itself."""

    name = "report"
    timed = False  # a report over runs has no run time of its own in results.json

    def check(self, cfg: DictConfig) -> list[str]:
        rep = to_dict(cfg.get("report")) or {}
        return [] if rep.get("input") else ["report.input: the run or multirun folders to report on, "
                                            "e.g. 'report.input=[multirun/analyze/<time>]'"]

    def run(self, cfg: DictConfig, out_dir: Path) -> Outcome:
        inputs = (to_dict(cfg.get("report")) or {}).get("input")
        if not inputs:
            raise ConfigError(self.check(cfg)[0])
        return Outcome(sweep_report(inputs, out_dir))

    def write(self, outcome: Outcome, cfg: DictConfig, out_dir: Path) -> Outcome:
        return outcome  # sweep_report wrote its results.json, tables, figures and page
