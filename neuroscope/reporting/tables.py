"""CSV tables of a study in the run dir (subsets, layers, ranking, λ search) and W&B tables."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from neuroscope.reporting.results import atomic_write, mode_views, score


def study_tables(results: dict[str, Any]) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """name -> (columns, rows) for the parts of results.json that are tables."""
    tables: dict[str, tuple[list[str], list[list[Any]]]] = {}
    if "subsets" in results:
        cols = ["kind", "percent", "n_neurons", "accuracy", "accuracy_sd", "draws", "accuracy_zeroed",
                "control_accuracy", "selectivity", "selectivity_sd"]
        if results.get("metric") == "r2":  # a numeric task's subsets
            cols = ["kind", "percent", "n_neurons", "r2", "r2_sd", "draws"]
        rows = [[kind, pct] + [v.get(c) for c in cols[2:]]
                for kind, curve in results["subsets"].items() for pct, v in curve.items()]
        tables["subsets"] = (cols, rows)
    if "layers" in results:
        cols = ["site", "n_neurons", "r2" if results.get("metric") == "r2" else "accuracy", "top_share"]
        tables["layers"] = (cols, [[site] + [v.get(c) for c in cols[1:]] for site, v in results["layers"].items()])
    if "ranking" in results:
        rows = [[i + 1, n, *n.split(":")] for i, n in enumerate(results["ranking"])]
        tables["ranking"] = (["rank", "neuron", "site", "unit"], rows)
    if "ablation" in results:
        tables["ablation"] = ablation_table(results["ablation"])
    if "comparison" in results:
        tables.update(comparison_tables(results["comparison"]))
    if "lambda_search" in results:
        cols = list(results["lambda_search"][0])
        tables["lambda_search"] = (cols, [[r[c] for c in cols] for r in results["lambda_search"]])
    return tables


def ablation_table(block: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """Rows (arm, % ablated, neurons silenced, metric, sd of the random draws, mode, silenced units'
    mean |μ|/σ and mean square) of an ablation block, every mode."""
    metric = block["metric"]
    counts = block.get("silenced") or {}  # per arm (rankings may differ in length); older runs: one count
    stats = block.get("silenced_stats") or {}
    rows = [[arm, k, counts.get(arm, block["neurons_silenced"]).get(k), v,
             view.get("random_sd", {}).get(k) if arm == "random" else None, mode,
             stats.get(arm, {}).get(k, {}).get("offset"), stats.get(arm, {}).get(k, {}).get("mean_square")]
            for mode, view in mode_views(block).items() for arm, curve in view["curves"].items() for k, v in curve.items()]
    return ["arm", "percent_ablated", "n_silenced", metric, f"{metric}_sd", "mode", "offset_over_sd", "mean_square"], rows


def comparison_tables(block: dict[str, Any]) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """`comparison` (a row per property: before/after oracle, minimal subset, mean depth of the top
    k %, shared top neurons) and `comparison_layers` (a row per property and site)."""
    rows, layer_rows = [], []
    for task, c in block["tasks"].items():
        o, m, d, sh = c.get("oracle", {}), c.get("minimal_subset", {}), c.get("mean_depth", {}), c.get("shared_top", {})
        rows.append([task, o.get("before"), o.get("after"),
                     m.get("before", {}).get("n_neurons"), m.get("after", {}).get("n_neurons"),
                     d.get("before"), d.get("after"), d.get("shift"),
                     sh.get("n_top", {}).get("before"), sh.get("same_neurons"), sh.get("chance"), sh.get("partner_in_top")])
        for site, v in c.get("layers", {}).items():
            layer_rows.append([task, site] + [v.get(s, {}).get(k) for k in ("accuracy", "top_share")
                                              for s in ("before", "after")])
    cols = ["task", "oracle_before", "oracle_after", "minimal_before", "minimal_after", "mean_depth_before",
            "mean_depth_after", "depth_shift", "n_top", "same_top_neurons", "chance", "partner_in_top"]
    layer_cols = ["task", "site", "accuracy_before", "accuracy_after", "top_share_before", "top_share_after"]
    out = {"comparison": (cols, rows), "comparison_layers": (layer_cols, layer_rows)}
    moved = block.get("correlation", {}).get("sites")
    if moved:
        keys = ["self_r", "self_is_partner", "best_r", "linear_cka"]
        out["comparison_sites"] = (["site", *keys], [[site] + [v[k] for k in keys] for site, v in moved.items()])
    return out


def csv_text(cols: list[str], rows: list[list[Any]]) -> str:
    """A table as CSV text (header first)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(cols)
    writer.writerows(rows)
    return buf.getvalue()


def write_tables(results: dict[str, Any], out_dir: str | Path) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """Write each table as `<out_dir>/<name>.csv` (atomically); returns the tables."""
    tables = study_tables(results)
    for name, (cols, rows) in tables.items():
        atomic_write(Path(out_dir) / f"{name}.csv", csv_text(cols, rows))
    return tables


def log_tables(logger: Any, tables: dict[str, tuple[list[str], list[list[Any]]]],
               results: dict[str, Any] | None = None) -> None:
    """Tables to loggers that take them (W&B: `log_table`; the ranking is capped at 1,000 rows),
    plus a W&B line chart of accuracy against the share of neurons kept."""
    if logger is None or not hasattr(logger, "log_table"):
        return
    for name, (cols, rows) in tables.items():
        logger.log_table(key=f"tables/{name}", columns=cols, data=rows[:1000] if name == "ranking" else rows)
    results = results or {}
    if not hasattr(logger, "experiment") or not ({"subsets", "ablation"} & set(results)):
        return
    import wandb

    def chart(key: str, xs: list[str], series: dict[str, list[float]], title: str, xname: str) -> None:
        logger.experiment.log({key: wandb.plot.line_series(
            xs=[float(x) for x in xs], ys=list(series.values()), keys=list(series), title=title, xname=xname)})

    if "subsets" in results:
        subsets = results["subsets"]
        percents = list(next(iter(subsets.values())))
        chart("charts/subsets", percents, {k: [score(c[p]) for p in percents] for k, c in subsets.items()},
              "accuracy of a probe retrained on k % of the neurons", "% neurons")
    if "ablation" in results:
        views = mode_views(results["ablation"])
        for mode, block in views.items():
            chart(f"charts/ablation_{block['metric']}" + (f"_{mode}" if len(views) > 1 else ""), block["shares"],
                  {arm: [c[k] for k in block["shares"]] for arm, c in block["curves"].items()},
                  f"{block['metric']} with the top k % of each arm silenced ({mode}, {block['where']})",
                  "% neurons silenced")
