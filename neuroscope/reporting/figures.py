"""PNG figures of one run's results.json (matplotlib, no display): the papers' plots.

Each `plot_*` returns a matplotlib Figure or None when the run has no such part; `write_figures`
saves every available one as `<out_dir>/<name>.png` (atomically) and returns {name: path}.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from neuroscope.files import atomic_path
from neuroscope.reporting.results import mode_views, score
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
    seeds = (res.get("seed_spread") or {}).get("top")
    if seeds and "top" in subsets:  # the top curve's spread over evaluation.seeds (probe and ranking seeds)
        ks = sorted(seeds, key=float)
        _band(ax, [float(k) for k in ks], [seeds[k]["mean"] for k in ks], [seeds[k]["sd"] for k in ks],
              KIND_COLORS["top"])
    if "oracle" in res:
        ax.axhline(score(res["oracle"]), ls="--", color="black", lw=1, label="all neurons")
    if "control" in res:
        ax.axhline(res["control"]["accuracy"], ls=":", color="#8e44ad", lw=1, label="control task")
    m = res.get("minimal_subset")
    if m and m.get("share"):
        ax.plot([100 * m["share"]], [m["accuracy"]], marker="*", ms=12, color="#27ae60", ls="none",
                label=f"minimal subset ({m['n_neurons']} neurons"
                      + (f", share sd {100 * m['share_sd']:.1f} %" if m.get("share_sd") is not None else "") + ")")
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


MODE_STYLES = {"zero": "-", "mean": "--"}


def plot_ablation(res: dict[str, Any]) -> Any:
    """The model's metric with the top (left) and bottom (right) k % of each ranking silenced: a
    colour per ranking, a line style per mode (zero solid, mean dashed), random as mean ± sd in both."""
    block = res.get("ablation")
    if not block:
        return None
    plt = _plt()
    views = mode_views(block)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    xs = [float(k) for k in block["shares"]]
    names = [arm[: -len("_top")] for arm in next(iter(views.values()))["curves"] if arm.endswith("_top")]
    colors = {n: plt.get_cmap("tab10")(i % 10) for i, n in enumerate(names)}
    for mode, view in views.items():
        ls = MODE_STYLES.get(mode, ":")
        for ax, kind in zip(axes, ("top", "bottom"), strict=True):
            for name in names:
                curve = view["curves"].get(f"{name}_{kind}")
                if curve:
                    ax.plot(xs, [curve[k] for k in block["shares"]], ls=ls, marker=".", color=colors[name],
                            label=f"{name} ({mode})")
            if "random" in view["curves"]:
                rnd = [view["curves"]["random"][k] for k in block["shares"]]
                ax.plot(xs, rnd, ls=ls, color="black", lw=1.5, label=f"random ± sd ({mode})")
                if view.get("random_sd"):
                    _band(ax, xs, rnd, [view["random_sd"][k] for k in block["shares"]], "grey")
    for ax, kind in zip(axes, ("top", "bottom"), strict=True):
        ax.set_xlabel(f"% of neurons silenced ({kind} of each ranking)")
        ax.set_xscale("symlog", linthresh=1)
        ticks = [x for x in xs if x in (0, 1, 2, 5, 10, 20, 50, 100)] or xs
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_title(f"{kind} k % silenced", fontsize=9)
        ax.set_xlim(0, max(xs))
        if block["metric"] == "perplexity":
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(plt.matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(plt.matplotlib.ticker.ScalarFormatter())
            ax.yaxis.set_minor_formatter(plt.matplotlib.ticker.NullFormatter())
    axes[0].set_ylabel(block["metric"] + (" (log scale)" if block["metric"] == "perplexity" else ""))
    axes[1].legend(fontsize=6, ncol=2)
    fig.suptitle(f"{block['metric']} with ranked neurons silenced (modes: {', '.join(views)}; line style = mode; "
                 f"{block['where']})\n{res.get('model')}", fontsize=9)
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


SIMILARITY_NAMES = {"mean_maxcorr": "mean maxcorr\n(in-sample)", "mean_cca": "mean SVCCA ρ\n(held-out)",
                    "mean_regcorr": "mean regcorr R\n(held-out)", "linear_cka": "linear CKA\n(held-out)",
                    "debiased_cka": "debiased CKA\n(held-out)"}


def plot_similarity(res: dict[str, Any]) -> Any:
    """A correlation run's scores against their noise floors: the neurons' scores beside the same
    score under random rotations of the other models (maxcorr / mincorr), and each similarity as a bar
    with its floor (mean ± sd) marked."""
    corr = res.get("correlation") or {}
    floors = corr.get("similarity_baseline")
    if not floors:
        return None
    plt = _plt()
    rotated = corr.get("baseline_scores")
    fig, axes = plt.subplots(1, 2 if rotated else 1, figsize=(11 if rotated else 6, 4), squeeze=False)
    if rotated:
        ax = axes[0][0]
        bins = np.linspace(0, 1, 41)
        ax.hist(rotated, bins=bins, color=KIND_COLORS["random"], alpha=0.6, label="rotated other models (floor)")
        ax.hist(res["ranking_scores"], bins=bins, histtype="step", lw=2, color=KIND_COLORS["top"],
                label=f"{corr.get('method')} score")
        share = corr.get("universal_share", {}).get("all")
        ax.set_xlabel("best |ρ| with another model's neuron")
        ax.set_ylabel("neurons")
        ax.set_title(f"{corr.get('method')} vs its rotation baseline"
                     + (f" ({100 * share:.1f} % above its 99th percentile)" if share is not None else ""), fontsize=9)
        ax.legend(fontsize=7)
    ax = axes[0][-1]
    held = corr.get("similarity_heldout", {})
    names = [n for n in SIMILARITY_NAMES if n in floors]
    values = [corr["similarity"][n] if n == "mean_maxcorr" else held.get(n, np.nan) for n in names]
    xs = np.arange(len(names))
    ax.bar(xs, values, color="#4a6fa5", width=0.6, label="score")
    for x, n in zip(xs, names, strict=True):
        f = floors[n]
        ax.errorbar(x, f["mean"], yerr=f.get("sd", 0.0), fmt="_", ms=28, mew=2, color="black", capsize=6,
                    label="noise floor (mean ± sd)" if x == 0 else None)
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xticks(xs, [SIMILARITY_NAMES[n] for n in names], fontsize=7)
    ax.set_ylabel("similarity")
    ax.set_title(f"similarity to the other models vs noise floors\n{_label(res)}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


FIGURES: dict[str, Callable[[dict[str, Any]], Any]] = {
    "subsets": plot_subsets, "layers": plot_layers, "classes": plot_classes,
    "ablation": plot_ablation, "lambda_search": plot_lambda, "comparison": plot_comparison,
    "similarity": plot_similarity,
}


def save_figure(fig: Any, path: Path) -> Path:
    """Write a figure as PNG through a temporary file (never a half-written image)."""
    plt = _plt()
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
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
