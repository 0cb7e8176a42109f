"""PNG figures of one run's results.json (matplotlib, no display): the papers' plots.

Each `plot_*` returns a matplotlib Figure or None when the run has no such part; `write_figures`
saves every available one as `<out_dir>/<name>.png` (atomically) and returns {name: path}.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from neuroscope.reporting.results import score
from neuroscope.reporting.summary import lambda_text

KIND_COLORS = {"top": "#c0392b", "random": "#7f8c8d", "bottom": "#2c7fb8"}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _band(ax: Any, xs: list[float], mean: list[float], sd: list[float], color: str) -> None:
    """A mean ± sd band (random draws) behind a curve."""
    ax.fill_between(xs, [m - d for m, d in zip(mean, sd, strict=True)],
                    [m + d for m, d in zip(mean, sd, strict=True)], color=color, alpha=0.2)


def _label(res: dict[str, Any]) -> str:
    return f"{res.get('model')} · {res.get('task')} · {res.get('method')}"


def plot_subsets(res: dict[str, Any]) -> Any:
    """Accuracy of a probe retrained on the top / random (mean ± sd) / bottom k % of neurons."""
    subsets = res.get("subsets")
    if not subsets:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for kind, curve in subsets.items():
        ks = sorted(curve, key=float)
        xs, ys = [float(k) for k in ks], [score(curve[k]) for k in ks]
        ax.plot(xs, ys, marker="o", label=kind, color=KIND_COLORS.get(kind))
        sd = [score(curve[k], sd=True) for k in ks]
        if all(s is not None for s in sd):
            _band(ax, xs, ys, sd, KIND_COLORS.get(kind) or "grey")
    if "oracle" in res:
        ax.axhline(score(res["oracle"]), ls="--", color="black", lw=1, label="all neurons")
    if "control" in res:
        ax.axhline(res["control"]["accuracy"], ls=":", color="#8e44ad", lw=1, label="control task")
    ax.set_xscale("log")
    ticks = sorted({float(k) for curve in subsets.values() for k in curve})
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlabel("% of neurons kept")
    ax.set_ylabel("test R²" if res.get("metric") == "r2" else "test accuracy")
    ax.set_title(f"Probe on k % of neurons\n{_label(res)}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_layers(res: dict[str, Any]) -> Any:
    """Per site: share of the top neurons (bars) and accuracy of a probe on that site alone (line)."""
    layers = res.get("layers")
    if not layers:
        return None
    plt = _plt()
    sites = list(layers)
    fig, ax = plt.subplots(figsize=(max(5, 0.7 * len(sites) + 2), 4))
    shares = [layers[s].get("top_share", 0.0) or 0.0 for s in sites]
    ax.bar(range(len(sites)), shares, color="#e67e22", label="share of top neurons")
    ax.set_xticks(range(len(sites)), sites, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("share of the top neurons")
    accs = [score(layers[s]) for s in sites]
    if any(a is not None for a in accs):
        ax2 = ax.twinx()
        ax2.plot(range(len(sites)), [a if a is not None else float("nan") for a in accs], marker="o",
                 color="#2c3e50", label="probe on the site")
        ax2.set_ylabel("accuracy of a probe on the site")
    ax.set_title(f"Where the top neurons live\n{_label(res)}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_comparison(res: dict[str, Any]) -> Any:
    """Per property (one panel each): share of the top neurons per site before and after (bars) and
    a probe on each site alone before and after (lines) — a comparison run's `comparison.tasks`."""
    tasks = (res.get("comparison") or {}).get("tasks")
    if not tasks:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.8), squeeze=False)
    colors = {"before": "#7f8c8d", "after": "#c0392b"}
    for ax, (task, c) in zip(axes[0], tasks.items(), strict=True):
        sites = list(c.get("layers", {}))
        xs = np.arange(len(sites))
        ax2 = ax.twinx()
        for i, side in enumerate(("before", "after")):
            shares = [c["layers"][s].get(side, {}).get("top_share") or 0.0 for s in sites]
            ax.bar(xs + (i - 0.5) * 0.4, shares, width=0.4, color=colors[side], alpha=0.6, label=f"top share {side}")
            accs = [c["layers"][s].get(side, {}).get("accuracy") for s in sites]
            ax2.plot(xs, [a if a is not None else float("nan") for a in accs], marker="o", color=colors[side],
                     label=f"site probe {side}")
        depth = c.get("mean_depth", {})
        ax.set_title(f"{task}: mean depth {depth.get('before', float('nan')):.2f} → "
                     f"{depth.get('after', float('nan')):.2f}", fontsize=9)
        ax.set_xticks(xs, sites, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("share of the top neurons", fontsize=8)
        ax2.set_ylabel("accuracy of a probe on the site", fontsize=8)
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Top {res['comparison'].get('top_percent'):g} % neurons before / after · {res.get('model')}",
                 fontsize=9)
    fig.tight_layout()
    return fig


def plot_classes(res: dict[str, Any]) -> Any:
    """Top neurons per class (LCA's per-class ranking): few = localized, many = distributed."""
    per_class = (res.get("ranking_detail") or {}).get("per_class")
    if not per_class:
        return None
    plt = _plt()
    items = sorted(per_class.items(), key=lambda kv: len(kv[1]))
    fig, ax = plt.subplots(figsize=(6, max(3, 0.18 * len(items) + 1)))
    ax.barh(range(len(items)), [len(v) for _, v in items], color="#16a085")
    ax.set_yticks(range(len(items)), [k for k, _ in items], fontsize=7)
    ax.set_xlabel("top neurons of the class")
    ax.set_title(f"Neurons per class\n{_label(res)}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_ablation(res: dict[str, Any]) -> Any:
    """The model's metric with the top k % of each arm silenced."""
    block = res.get("ablation")
    if not block:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs = [float(k) for k in block["shares"]]
    for arm, curve in block["curves"].items():
        if arm == "bottom":  # the same curve as the first ranking's `_bottom`
            continue
        style = {"color": "black", "lw": 2} if arm == "random" else {"ls": "--"} if arm.endswith("_bottom") else {}
        ax.plot(xs, [curve[k] for k in block["shares"]], marker=".", label=arm, **style)
    if block.get("random_sd"):
        _band(ax, xs, [block["curves"]["random"][k] for k in block["shares"]],
              [block["random_sd"][k] for k in block["shares"]], "grey")
    ax.set_xlabel("% of neurons silenced")
    ax.set_ylabel(block["metric"])
    ax.set_title(f"{block['metric']} with ranked neurons silenced ({block['mode']}, {block['where']})\n"
                 f"{res.get('model')}", fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def plot_lambda(res: dict[str, Any]) -> Any:
    """The λ search: dev accuracy of the oracle (and of the top / random k %) per grid point."""
    rows = res.get("lambda_search")
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = list(range(len(rows)))
    for key, color in (("oracle_dev", "black"), ("top_dev", KIND_COLORS["top"]), ("random_dev", KIND_COLORS["random"])):
        if key in rows[0]:
            ax.plot(xs, [r[key] for r in rows], marker="o", label=key, color=color)
    chosen = [i for i, r in enumerate(rows) if r.get("chosen")]
    for i in chosen:
        ax.axvline(i, color="#27ae60", lw=1)
    pairs = any(r.get("lambda2", r.get("lambda1")) != r.get("lambda1") for r in rows)
    ax.set_xticks(xs, [lambda_text(r, both=pairs) for r in rows], rotation=45, fontsize=7)
    ax.set_xlabel(f"{'λ1, λ2' if pairs else 'λ1 = λ2'} (chosen: green line)")
    ax.set_ylabel("dev accuracy")
    ax.set_title(f"λ search\n{_label(res)}", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


FIGURES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "subsets": plot_subsets, "layers": plot_layers, "classes": plot_classes,
    "ablation": plot_ablation, "lambda_search": plot_lambda, "comparison": plot_comparison,
}


def save_figure(fig: Any, path: Path) -> Path:
    """Write a figure as PNG through a temporary file (never a half-written image)."""
    plt = _plt()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.png")
    try:
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path


def write_figures(res: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Every figure the run has, as `<out_dir>/<name>.png`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, plot in FIGURES.items():
        fig = plot(res)
        if fig is not None:
            written[name] = save_figure(fig, out / f"{name}.png")
    return written
