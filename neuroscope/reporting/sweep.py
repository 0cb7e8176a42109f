"""One report over many runs (a multirun folder, several run folders): a table of every run, the
papers' comparisons, overlaid curves; failed runs are listed, never dropped.

    python analyze.py 'report.input=[multirun/analyze/<time>]'
"""

from __future__ import annotations

import json
import logging
import statistics
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

from neuroscope.errors import ConfigError
from neuroscope.reporting.figures import save_figure
from neuroscope.reporting.html import image, table, write_page
from neuroscope.reporting.models_compare import COLUMNS as MODEL_COLUMNS
from neuroscope.reporting.models_compare import model_rows, plot_models
from neuroscope.reporting.results import atomic_write, score
from neuroscope.reporting.tables import csv_text

log = logging.getLogger(__name__)
TOP_PERCENT = 5  # the "top neurons" a comparison of neuron sets uses: the first 5 % of a ranking


def find_runs(inputs: list[str] | str) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Every results.json under the inputs (an experiment's `studies/` are part of their run), and
    the job folders that have none or an unreadable one."""
    roots = [inputs] if isinstance(inputs, str) else list(inputs)
    runs, failed = [], []
    for root in roots:
        base = Path(root).expanduser()
        if not base.exists():
            raise ConfigError(f"report.input: {base} does not exist")
        marks = [*base.rglob("config.yaml"), *base.rglob("results.json")]  # our config.yaml marks a run, even a failed one
        folders = sorted({p.parent for p in marks if p.parent.name != ".hydra"
                          and "studies" not in p.parent.relative_to(base).parts})
        for folder in folders:
            path = folder / "results.json"
            if not path.exists():
                failed.append({"run": str(folder), "problem": "no results.json (the run failed or is still running)"})
                continue
            try:
                res = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                failed.append({"run": str(folder), "problem": f"results.json unreadable ({exc})"})
                continue
            if res.get("method") == "report":
                continue
            res["_run"] = str(folder)
            runs.append(res)
    return runs, failed


def _get(res: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if not isinstance(res, dict) or k not in res:
            return None
        res = res[k]
    return res


def _k(res: dict[str, Any]) -> str | None:
    """The subset percent shown in the table: 5 if present, else the smallest."""
    top = _get(res, "subsets", "top") or {}
    return "5" if "5" in top else (min(top, key=float) if top else None)


def _top_site(res: dict[str, Any]) -> str | None:
    layers = res.get("layers") or {}
    return max(layers, key=lambda s: layers[s].get("top_share") or 0) if layers else None


def _best_site(res: dict[str, Any]) -> str | None:
    layers = {s: v for s, v in (res.get("layers") or {}).items() if score(v) is not None}
    return max(layers, key=lambda s: score(layers[s])) if layers else None


def _r(x: Any, nd: int = 3) -> Any:
    return round(x, nd) if isinstance(x, float) else x


COLUMNS = ["run", "model", "task", "method", "seed", "oracle", "control", "selectivity", "k %", "top", "random",
           "bottom", "minimal n", "minimal share", "top site", "best single site", "missing"]
NEEDED = ("oracle", "subsets", "minimal_subset", "layers", "ranking")


def run_row(res: dict[str, Any], base: str) -> list[Any]:
    k = _k(res)
    sub = res.get("subsets") or {}
    missing = [key for key in NEEDED if key not in res] if res.get("method") not in (None, "ablation") else []
    return [Path(res["_run"]).name if base else res["_run"], res.get("model"), res.get("task"), res.get("method"),
            res.get("seed"), _r(score(res.get("oracle"))), _r(_get(res, "control", "accuracy")),
            _r(res.get("selectivity")), k,
            *[_r(score(_get(sub, kind, k))) if k else None for kind in ("top", "random", "bottom")],
            _get(res, "minimal_subset", "n_neurons"), _r(_get(res, "minimal_subset", "share")),
            _top_site(res), _best_site(res), ", ".join(missing)]


def top_set(res: dict[str, Any], percent: float = TOP_PERCENT) -> set[str]:
    ranking = res.get("ranking") or []
    return set(ranking[: max(1, round(len(ranking) * percent / 100))]) if ranking else set()


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def _label(res: dict[str, Any], *keys: str) -> str:
    return " · ".join(str(res.get(k)) for k in keys)


TIE_SDS = 2.0  # two minimal-subset shares differ only beyond TIE_SDS · √(sd_a² + sd_b²) (sd over evaluation.seeds)


def ties(a: tuple[float, float | None], b: tuple[float, float | None]) -> bool:
    """Whether two (share, sd) minimal subsets are within each other's seed spread; a run without
    spread (one seed) counts sd 0, so it ties only with an equal share or through the other's spread."""
    return abs(a[0] - b[0]) <= TIE_SDS * ((a[1] or 0.0) ** 2 + (b[1] or 0.0) ** 2) ** 0.5


def localization_ranks(shares: list[tuple[float, float | None]]) -> list[str]:
    """Rank labels of (share, sd) sorted ascending: a run within the spread of its group's first run
    shares that rank, marked `=` ("2=", "2="); otherwise it starts a new rank at its position."""
    labels: list[str] = []
    lead = 0
    for i, item in enumerate(shares):
        if i and ties(shares[lead], item):
            labels.append(labels[lead].rstrip("=") + "=")
            labels[lead] = labels[lead].rstrip("=") + "="
        else:
            lead = i
            labels.append(str(i + 1))
    return labels


def comparisons(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The papers' questions over the runs: localization, layers, overlap between tasks, agreement
    between methods, seeds."""
    studied = [r for r in runs if r.get("ranking") and r.get("method") not in (None, "ablation")]
    localized = sorted(([r.get("model"), r.get("task"), r.get("method"), _get(r, "minimal_subset", "n_neurons"),
                         _r(_get(r, "minimal_subset", "share")), _top_site(r), _best_site(r),
                         _r(_get(r, "minimal_subset", "share_sd"))]
                        for r in studied if "minimal_subset" in r), key=lambda row: row[4])
    for row, rank in zip(localized, localization_ranks([(row[4], row[7]) for row in localized]), strict=True):
        row.append(rank)
    overlap: dict[str, Any] = {}
    by_model_method: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in studied:
        by_model_method[(str(r.get("model")), str(r.get("method")))].append(r)
    for (model, method), group in by_model_method.items():
        tasks = {}
        for r in group:
            tasks.setdefault(str(r.get("task")), r)  # first seed of each task
        if len(tasks) < 2:
            continue
        sets = {t: top_set(r) for t, r in tasks.items()}
        names = sorted(sets)
        matrix = [[_r(jaccard(sets[a], sets[b])) for b in names] for a in names]
        exclusive = {t: len(sets[t] - set().union(*(sets[u] for u in names if u != t))) for t in names}
        overlap[f"{model} · {method}"] = {"tasks": names, "jaccard": matrix, "exclusive": exclusive,
                                          "top_size": {t: len(sets[t]) for t in names}}
    agreement = []
    by_model_task: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in studied:
        by_model_task[(str(r.get("model")), str(r.get("task")))].setdefault(str(r.get("method")), r)
    for (model, task), methods in by_model_task.items():
        for a, b in combinations(sorted(methods), 2):
            agreement.append([model, task, a, b, _r(jaccard(top_set(methods[a]), top_set(methods[b])))])
    seeds = []
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in studied:
        groups[(str(r.get("model")), str(r.get("task")), str(r.get("method")))].append(r)
    for (model, task, method), group in groups.items():
        if len({r.get("seed") for r in group}) < 2:
            continue
        row = [model, task, method, len(group)]
        for pick in (lambda r: score(r.get("oracle")), lambda r: _get(r, "minimal_subset", "n_neurons")):
            vals = [float(v) for r in group if (v := pick(r)) is not None]
            row.append(f"{statistics.fmean(vals):.3f} ± {statistics.stdev(vals):.3f}" if len(vals) > 1 else None)
        seeds.append(row)
    return {"localized": localized, "overlap": overlap, "agreement": agreement, "seeds": seeds}


def _run_names(runs: list[dict[str, Any]]) -> list[str]:
    """'model · task · method' per run, with ', seed N' where runs differ only in their seed."""
    triples = [_label(r, "model", "task", "method") for r in runs]
    return [t + (f", seed {r.get('seed')}" if triples.count(t) > 1 else "") for t, r in zip(triples, runs, strict=True)]


def _curves_figure(curves: list[dict[str, Any]]) -> Any:
    """Top k % of each run's ranking (solid) with its random k % (dashed) and oracle (dotted): as
    accuracy when the runs share one task, else as a fraction of each run's own oracle."""
    from neuroscope.reporting.figures import _plt, plain_ticks

    plt = _plt()
    relative = len({(r.get("task"), r.get("metric")) for r in curves}) > 1
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    colors = plt.get_cmap("tab10")
    ticks: set[float] = set()
    for i, (r, name) in enumerate(zip(curves, _run_names(curves), strict=True)):
        oracle = score(r.get("oracle"))
        scale = oracle if relative and oracle else 1.0
        for kind, ls in (("top", "-"), ("random", "--")):
            curve = _get(r, "subsets", kind) or {}
            ks = [k for k in sorted(curve, key=float) if score(curve[k]) is not None]
            ticks |= {float(k) for k in ks}
            ax.plot([float(k) for k in ks], [score(curve[k]) / scale for k in ks], ls=ls, marker="." if kind == "top"
                    else None, color=colors(i % 10), label=f"{name}: top k %" if kind == "top" else f"{name}: random k %")
        if oracle is not None and not relative:
            ax.axhline(oracle, ls=":", lw=1, color=colors(i % 10), label=f"{name}: oracle (all neurons)")
    if relative:
        ax.axhline(1.0, ls=":", lw=1, color="black", label="oracle: each run's probe on all neurons")
    ax.set_xscale("log")
    plain_ticks(ax, sorted(ticks))
    ax.set_xlabel("% of neurons kept (log scale)")
    metric = "R²" if any(r.get("metric") == "r2" for r in curves) else "accuracy"
    ax.set_ylabel(f"test {metric} / the run's oracle" if relative else f"test {metric}")
    ax.set_title("Probe on the top k % of each run's ranking (solid) vs random k % (dashed)"
                 + ("\nrelative to each run's oracle (several tasks share the axis)" if relative
                    else ", oracle dotted"), fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def _figures(runs: list[dict[str, Any]], comp: dict[str, Any], out: Path) -> dict[str, Path]:
    from neuroscope.reporting.figures import _plt, cutoffs, save_figure, top_text

    plt = _plt()
    figs: dict[str, Path] = {}
    curves = [r for r in runs if _get(r, "subsets", "top")]
    if curves:
        figs["Accuracy on the top k % of each run's ranking, with random k % and the oracle"] = save_figure(
            _curves_figure(curves), out / "sweep_curves.png")
    layered = [r for r in runs if r.get("layers") and r.get("ranking")]
    if layered:
        sites = list(dict.fromkeys(s for r in layered for s in r["layers"]))
        rows = [[(r["layers"].get(s) or {}).get("top_share") or 0.0 for s in sites] for r in layered]
        fig, ax = plt.subplots(figsize=(max(6.5, 0.6 * len(sites) + 4), max(2.8, 0.35 * len(rows) + 1.8)))
        im = ax.imshow(rows, cmap="Oranges", aspect="auto", vmin=0)
        ax.set_xticks(range(len(sites)), sites, rotation=45, ha="right", fontsize=7)
        tops = [cutoffs(r)["layer_top_percent"] for r in layered]
        same = len(set(tops)) == 1
        names = [n + ("" if same else f" ({top_text(t)})") for n, t in zip(_run_names(layered), tops, strict=True)]
        ax.set_yticks(range(len(rows)), names, fontsize=7)
        for i, row in enumerate(rows):
            for j, v in enumerate(row):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6)
        what = f"each run's {top_text(tops[0])} neurons" if same else "each run's top k % neurons"
        fig.colorbar(im, ax=ax, label="share of the run's top neurons")
        ax.set_title(f"Where {what} live\n(share per site; a row sums to 1)", fontsize=9)
        fig.tight_layout()
        figs["Where each run's top neurons live (share of its top k % per site)"] = save_figure(fig, out / "sweep_layers.png")
    for name, block in comp["overlap"].items():
        n = len(block["tasks"])
        fig, ax = plt.subplots(figsize=(1.0 * n + 2.5, 0.9 * n + 1.5))
        im = ax.imshow(block["jaccard"], cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(n), block["tasks"], rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(n), block["tasks"], fontsize=8)
        for i in range(n):
            for j in range(n):
                ax.text(j, i, f"{block['jaccard'][i][j]:.2f}", ha="center", va="center", fontsize=7)
        fig.colorbar(im, ax=ax)
        ax.set_title(f"Jaccard overlap of the top {TOP_PERCENT} % neurons\n{name}", fontsize=9)
        fig.tight_layout()
        safe = "".join(c if c.isalnum() else "_" for c in name)
        figs[f"Jaccard overlap of the top {TOP_PERCENT} % between tasks ({name})"] = save_figure(
            fig, out / f"sweep_overlap_{safe}.png")
    return figs


def sweep_report(inputs: list[str] | str, out_dir: str | Path) -> dict[str, Any]:
    """report.html, sweep.csv and figures in `out_dir` over every run under `inputs`; returns the
    run's results.json (method `report`)."""
    runs, failed = find_runs(inputs)
    if not runs and not failed:
        raise ConfigError(f"report.input: no analyze runs (config.yaml + results.json) under {inputs}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = [run_row(r, "") for r in runs]
    atomic_write(out / "sweep.csv", csv_text(COLUMNS, rows))
    comp = comparisons(runs)
    figs = _figures(runs, comp, out) if runs else {}
    sections = []
    if comp["localized"]:
        sections.append(("At a glance: most localized first (smallest minimal subset: the fewest top neurons "
                         "whose probe is within evaluation.minimal_delta of the oracle on dev), and where each "
                         f"lives. Rank '2=': tied, the shares differ by at most {TIE_SDS:g} · √(sd₁² + sd₂²), sd over "
                         "evaluation.seeds seeds (runs with one seed have no spread: '-')",
                         table(["model", "task", "method", "minimal subset", "share of neurons",
                                "site with most top neurons", "best single site", "share sd (seeds)", "rank"],
                               comp["localized"])))
    models = model_rows(runs)  # ablation experiments side by side (e.g. NMT vs NLM)
    if models:
        comp["models"] = {"columns": MODEL_COLUMNS, "rows": models}
        sections.append(("Models compared (ablation experiments): top vs bottom 10 %, minimal subset, where the "
                         "top neurons live, and the metric's relative damage (> 0 = worse) with the top k % "
                         "silenced, random in parentheses", table(MODEL_COLUMNS, models)))
        atomic_write(out / "models.csv", csv_text(MODEL_COLUMNS, models))
        figs["Models compared"] = save_figure(plot_models(runs, models), out / "models.png")
    sections.append((f"All runs ({len(runs)})", table(COLUMNS, rows)))
    if failed:
        sections.append((f"Runs without results ({len(failed)})",
                         table(["run", "problem"], [[f["run"], f["problem"]] for f in failed])))
    for name, path in figs.items():
        sections.append((name, image(path, name)))
    for name, block in comp["overlap"].items():
        sections.append((f"Neurons exclusive to one property (top {TOP_PERCENT} %, {name})",
                         table(["task", "top neurons", "exclusive"],
                               [[t, block["top_size"][t], block["exclusive"][t]] for t in block["tasks"]])))
    if comp["agreement"]:
        sections.append((f"Agreement between methods (Jaccard of the top {TOP_PERCENT} %)",
                         table(["model", "task", "method a", "method b", "jaccard"], comp["agreement"])))
    if comp["seeds"]:
        sections.append(("Seeds (runs differing only in seed): mean ± sd",
                         table(["model", "task", "method", "runs", "oracle accuracy", "minimal subset"], comp["seeds"])))
    report = write_page(out / "report.html", f"neuroscope report over {len(runs)} runs", sections)
    summary = {"method": "report", "inputs": [inputs] if isinstance(inputs, str) else list(inputs),
               "runs": [r["_run"] for r in runs], "failed": failed, "report": str(report),
               "comparisons": comp, "timings": {}}
    atomic_write(out / "results.json", json.dumps(summary, indent=1, default=str))
    print(f"{len(runs)} runs, {len(failed)} without results; most localized first:")
    for row in comp["localized"][:10]:
        print(f"  {row[8]:>3} {row[0]} · {row[1]} · {row[2]}: {row[3]} neurons ({100 * (row[4] or 0):.1f} %"
              + (f" ± {100 * row[7]:.1f}" if row[7] is not None else "") + "), "
              f"most top neurons in {row[5]}, best single site {row[6]}")
    print(f"report: {report}")
    return summary
