"""The end of every run: PNG figures, `report.html` and a terminal summary (conf/report/)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from neuroscope.reporting.agreement import agreement_section
from neuroscope.reporting.figures import write_figures
from neuroscope.reporting.html import image, k_sparse_section, neuron_section, table, write_page
from neuroscope.reporting.neurons import MIN_COUNT, neuron_context, neuron_profiles
from neuroscope.reporting.results import atomic_write, jsonable
from neuroscope.reporting.summary import summary_sections

log = logging.getLogger(__name__)
CAPTIONS = {
    "subsets": "Accuracy of a probe retrained on the top / random / bottom k % of the ranking",
    "layers": "Share of the top neurons per site, and a probe on each site alone",
    "classes": "Top neurons per class",
    "ablation": "The model's metric with each ranking's top (and bottom) k % silenced",
    "lambda_search": "λ search on dev",
    "comparison": "Where each property's top neurons sit, and a probe per site, before and after",
    "k_sparse": "k-sparse probing: a probe on each class's top k neurons",
    "agreement": "Do ranking methods agree? IoU of each method's top k with the consensus, and pairwise",
}


def per_class_rows(res: dict[str, Any], shown: int = 8) -> list[list[Any]]:
    per_class = (res.get("ranking_detail") or {}).get("per_class") or {}
    return [[c, len(v), ", ".join(v[:shown]) + (" ..." if len(v) > shown else "")] for c, v in per_class.items()]


def run_report(res: dict[str, Any], out_dir: str | Path, store: Any = None, sentences: list[list[str]] | None = None,
               settings: dict[str, Any] | None = None) -> tuple[Path, dict[str, Path]]:
    """Figures, neuron profiles (`neurons.json`, when the store and its sentences are given) and
    `report.html` of a finished run; returns the report's path and the figures."""
    opts = {"top_neurons": 10, "top_words": 10, "sentences": 2, "min_count": MIN_COUNT, **(settings or {})}
    out = Path(out_dir)
    figures = write_figures(res, out)
    sections = [(title, table(cols, rows)) for title, cols, rows in summary_sections(res)]
    sections += [(CAPTIONS.get(name, name), image(path, name)) for name, path in figures.items()]
    if res.get("k_sparse"):
        sections.append(("k-sparse probing (test)", k_sparse_section(res["k_sparse"])))
    if res.get("agreement"):
        sections.append(("Method agreement", agreement_section(res["agreement"])))
    rows = per_class_rows(res)
    if rows:
        sections.append(("Top neurons per class", table(["class", "neurons", "first of them"], rows)))
    k = int(opts["top_neurons"])
    if store is not None and sentences is not None and res.get("ranking") and k > 0:
        profiles = neuron_profiles(store, sentences, res["ranking"][:k], int(opts["top_words"]), int(opts["sentences"]),
                                   int(opts["min_count"]))
        atomic_write(out / "neurons.json", json.dumps(jsonable(profiles), indent=1))
        sections.append((f"What the top {len(profiles)} neurons respond to (red +, blue -; hover for the value)",
                         neuron_section(profiles, **neuron_context(res, out, opts))))
    title = f"neuroscope: {res.get('model')} · {res.get('task')} · {res.get('method')}"
    return write_page(out / "report.html", title, sections), figures


def log_figures(logger: Any, figures: dict[str, Path]) -> None:
    """The figures as W&B images (loggers with `log_image`)."""
    if logger is not None and hasattr(logger, "log_image"):
        for name, path in figures.items():
            try:
                logger.log_image(key=f"figures/{name}", images=[str(path)])
            except Exception as exc:  # a logger problem must not end a finished run
                log.warning("could not log figure %s (%s)", name, exc)
