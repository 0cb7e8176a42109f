"""PNG figures of one run's results.json (matplotlib, no display): the papers' plots.

Each `plot_*` returns a matplotlib Figure or None when the run has no such part; `write_figures`
saves every available one as `<out_dir>/<name>.png` (atomically) and returns {name: path}.
Every cutoff a figure uses is in its title (the top k % from the run's config.yaml), legends are
words, log axes carry plain 1 / 2 / 5 / 10 ticks and accuracy curves carry their oracle and random.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from neuroscope.files import atomic_path
from neuroscope.reporting.agreement import plot_agreement
from neuroscope.reporting.results import mode_views, score

KIND_COLORS = {"top": "#c0392b", "random": "#7f8c8d", "bottom": "#2c7fb8"}
METHOD_NAMES = {"lca": "LCA", "iou": "IoU", "svcca": "SVCCA", "cca": "CCA", "weight_norm": "weight norm",
                "maxcorr": "maxcorr", "mincorr": "mincorr", "regcorr": "regcorr", "probeless": "probeless"}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def run_config(folder: str | Path | None) -> dict[str, Any]:
    """The run's resolved `config.yaml` (written beside results.json), {} when absent or unreadable."""
    if not folder:
        return {}
    import yaml

    try:
        cfg = yaml.safe_load((Path(folder) / "config.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return cfg if isinstance(cfg, dict) else {}


def cutoffs(res: dict[str, Any], folder: str | Path | None = None) -> dict[str, float | None]:
    """The cutoffs the figures name: `layer_top_percent` (top k % of the layer figures),
    `class_percentage` (LCA's per-class weight mass, 0..1) and `selection_percent` (the λ search's
    k %), from the run's config.yaml (`folder`, else the run folder `_run` a report adds); None when unknown."""
    cfg = run_config(folder or res.get("_run"))
    evaluation, method = cfg.get("evaluation") or {}, cfg.get("method") or {}
    selection = (cfg.get("probe") or {}).get("selection") or {}
    top = (res.get("comparison") or {}).get("top_percent") or evaluation.get("layer_top_percent")
    return {"layer_top_percent": _num(top), "class_percentage": _num(method.get("class_percentage")),
            "selection_percent": _num(selection.get("percent"))}


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def top_text(percent: float | None) -> str:
    """'top 5 %', or 'top k %' (k = evaluation.layer_top_percent) when the run's config is not at hand."""
    return f"top {percent:g} %" if percent is not None else "top k % (evaluation.layer_top_percent)"


def plain(x: float) -> str:
    """A tick number as people write it: 1, 2.5, 10, 0.5 (never 10⁰ or 1e+01)."""
    return f"{x:g}" if abs(x) >= 1e-3 or x == 0 else lam(x)


def lam(x: float | None) -> str:
    """A penalty in one format for every size: 1e-5, 3e-4, 1e-2, 0."""
    if x is None:
        return "-"
    if x == 0:
        return "0"
    exp = math.floor(math.log10(abs(x)))
    return f"{x / 10 ** exp:.2g}e{exp}"


def plain_ticks(ax: Any, values: list[float], axis: str = "x") -> None:
    """Major ticks at exactly `values` labelled plainly, no minor ticks (log and symlog axes too)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    a = ax.xaxis if axis == "x" else ax.yaxis
    a.set_major_locator(FixedLocator(list(values)))
    a.set_major_formatter(FuncFormatter(lambda v, _pos: plain(v)))
    a.set_minor_locator(NullLocator())


def log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 steps covering [lo, hi] (for a log axis without given ticks)."""
    for steps in ((1, 2, 5), (1, 1.5, 2, 3, 5, 7), tuple(range(1, 10))):  # the coarsest with 3 ticks or more
        out = [m * 10.0 ** e for e in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
               for m in steps if lo <= m * 10.0 ** e <= hi]
        if len(out) >= 3:
            return out
    return out or [lo, hi]


def arm_name(name: str) -> str:
    """A study / arm key in words: `lca_morph_Number` → 'LCA · morph Number', `random` → 'random'."""
    if name in METHOD_NAMES:
        return METHOD_NAMES[name]
    head, _, rest = name.partition("_")
    if head in METHOD_NAMES and rest:
        return f"{METHOD_NAMES[head]} · {rest.replace('_', ' ')}"
    return name.replace("_", " ")


def _band(ax: Any, xs: list[float], mean: list[float], sd: list[float], color: str, label: str | None = None) -> None:
    """A mean ± sd band (random draws) behind a curve."""
    ax.fill_between(xs, [m - d for m, d in zip(mean, sd, strict=True)],
                    [m + d for m, d in zip(mean, sd, strict=True)], color=color, alpha=0.2, lw=0, label=label)


def _label(res: dict[str, Any]) -> str:
    return f"{res.get('model')} · {res.get('task')} · {res.get('method')}"


def _metric(res: dict[str, Any], split: str = "test") -> str:
    return f"{split} R²" if res.get("metric") == "r2" else f"{split} accuracy"


def _references(ax: Any, res: dict[str, Any], chance: bool = False) -> None:
    """The oracle (all neurons), the control task and, with `chance`, a uniform guess as lines."""
    if score(res.get("oracle")) is not None:
        ax.axhline(score(res["oracle"]), ls="--", color="black", lw=1, label="oracle: probe on all neurons")
    if "control" in res:
        ax.axhline(res["control"]["accuracy"], ls=":", color="#8e44ad", lw=1,
                   label="control task (random labels per word type), all neurons")
    classes = res.get("classes") or []
    if chance and classes and res.get("metric") != "r2":
        ax.axhline(1 / len(classes), ls="-.", color=KIND_COLORS["random"], lw=1,
                   label=f"random guess (1 / {len(classes)} classes)")


Cut = dict[str, float | None]


def plot_subsets(res: dict[str, Any], cut: Cut | None = None) -> Any:
    """Accuracy of a probe retrained on the top / random (mean ± sd) / bottom k % of neurons, with
    the oracle, the control task and the minimal subset marked."""
    subsets = res.get("subsets")
    if not subsets:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.6))
    for kind, curve in subsets.items():
        ks = sorted(curve, key=float)
        xs, ys = [float(k) for k in ks], [score(curve[k]) for k in ks]
        draws = max((int(curve[k].get("draws") or 0) for k in ks), default=0)
        label = {"top": "top k % of the ranking", "bottom": "bottom k % of the ranking",
                 "random": "random k % (mean ± sd" + (f" of {draws} draws)" if draws else ")")}.get(kind, kind)
        ax.plot(xs, ys, marker="o", label=label, color=KIND_COLORS.get(kind))
        sd = [score(curve[k], sd=True) for k in ks]
        if all(s is not None for s in sd):
            _band(ax, xs, ys, sd, KIND_COLORS.get(kind) or "grey")
    seeds = (res.get("seed_spread") or {}).get("top")
    if seeds and "top" in subsets:  # the top curve's spread over evaluation.seeds (probe and ranking seeds)
        ks = sorted(seeds, key=float)
        n = len((res.get("seed_spread") or {}).get("seeds") or [])
        _band(ax, [float(k) for k in ks], [seeds[k]["mean"] for k in ks], [seeds[k]["sd"] for k in ks],
              KIND_COLORS["top"], label="top k %: ± sd over " + (f"{n} seeds" if n else "seeds"))
    _references(ax, res)
    m = res.get("minimal_subset")
    if m and m.get("share"):
        tol = m.get("tolerance")
        ax.plot([100 * m["share"]], [m["accuracy"]], marker="*", ms=14, color="#27ae60", ls="none", gid="minimal",
                label=f"minimal subset: {m['n_neurons']} neurons ({100 * m['share']:.1f} %"
                      + (f", sd {100 * m['share_sd']:.1f} %" if m.get("share_sd") is not None else "") + ")"
                      + (f"\nwithin {tol:g} of the oracle on dev" if tol is not None else ""))
    ax.set_xscale("log")
    ticks = {float(k) for curve in subsets.values() for k in curve}
    if m and m.get("share") and 100 * m["share"] > max(ticks):
        ax.set_xlim(right=100.0 * 1.15)  # the minimal subset beyond the last percent: the axis runs to 100 %
    lo, hi = ax.get_xlim()  # the percents measured, and 1-2-5 steps out to a minimal subset beyond them
    plain_ticks(ax, sorted(ticks | {t for t in log_ticks(lo, hi) if t < min(ticks) or t > max(ticks)}))
    ax.set_xlabel("% of neurons kept (log scale)")
    ax.set_ylabel(_metric(res))
    ax.set_title(f"Probe retrained on the top / random / bottom k % of neurons\n{_label(res)}", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def _score_axis(ax: Any, values: list[float | None], res: dict[str, Any]) -> None:
    """An honest score axis: from 0 (or the lowest R²) to 1, each point's value written beside it."""
    finite = [v for v in values if v is not None]
    ax.set_ylim(min([0.0, *finite]) - 0.02, 1.02)
    for x, v in enumerate(values):
        if v is not None:
            ax.annotate(f"{v:.2f}", (x, v), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=6)


def plot_layers(res: dict[str, Any], cut: Cut | None = None) -> Any:
    """Per site, two panels: the share of the top k % neurons it holds, and the accuracy of a probe
    on that site alone against the oracle and a random guess (each on its own full axis)."""
    layers = res.get("layers")
    if not layers:
        return None
    top = top_text((cut or cutoffs(res))["layer_top_percent"])
    plt = _plt()
    sites = list(layers)
    accs = [score(layers[s]) for s in sites]
    probes = any(a is not None for a in accs)
    fig, axes = plt.subplots(1, 2 if probes else 1, figsize=(max(5, 0.55 * len(sites) + 2) * (2 if probes else 1), 4.2),
                             squeeze=False)
    ax = axes[0][0]
    shares = [layers[s].get("top_share", 0.0) or 0.0 for s in sites]
    ax.bar(range(len(sites)), shares, color="#e67e22")
    ax.set_xticks(range(len(sites)), sites, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(f"share of the {top} neurons")
    ax.set_ylim(0, max(shares + [0.0]) * 1.15 or 1.0)
    ax.set_title(f"Where the {top} neurons live (shares sum to 1)", fontsize=9)
    if probes:
        ax = axes[0][1]
        ax.plot(range(len(sites)), [a if a is not None else float("nan") for a in accs], marker="o",
                color="#2c3e50", label="probe on the site alone")
        _references(ax, res, chance=True)
        _score_axis(ax, accs, res)
        ax.set_xticks(range(len(sites)), sites, rotation=45, ha="right", fontsize=8)
        ax.set_xlim(-0.5, len(sites) - 0.5)
        ax.set_ylabel(_metric(res))
        ax.set_title("A probe on each site alone", fontsize=9)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle(_label(res), fontsize=9)
    fig.tight_layout()
    return fig


def plot_comparison(res: dict[str, Any], cut: Cut | None = None) -> Any:
    """Per property (a column each): share of the top k % neurons per site before and after (bars,
    top row) and a probe on each site alone before and after with both oracles (bottom row) — a
    comparison run's `comparison.tasks`."""
    tasks = (res.get("comparison") or {}).get("tasks")
    if not tasks:
        return None
    top = top_text(res["comparison"].get("top_percent"))
    plt = _plt()
    fig, axes = plt.subplots(2, len(tasks), figsize=(4.4 * len(tasks), 7), squeeze=False)
    colors = {"before": "#7f8c8d", "after": "#c0392b"}
    for col, (task, c) in enumerate(tasks.items()):
        bars, lines = axes[0][col], axes[1][col]
        sites = list(c.get("layers", {}))
        xs = np.arange(len(sites))
        metric = "R²" if c.get("metric") == "r2" else "accuracy"
        values: list[float | None] = []
        for i, side in enumerate(("before", "after")):
            shares = [c["layers"][s].get(side, {}).get("top_share") or 0.0 for s in sites]
            bars.bar(xs + (i - 0.5) * 0.4, shares, width=0.4, color=colors[side], alpha=0.7, label=side)
            accs = [c["layers"][s].get(side, {}).get("accuracy", c["layers"][s].get(side, {}).get("r2"))
                    for s in sites]
            values += accs
            lines.plot(xs, [a if a is not None else float("nan") for a in accs], marker="o", color=colors[side],
                       label=f"site probe, {side}")
            oracle = (c.get("oracle") or {}).get(side)
            if oracle is not None:
                lines.axhline(oracle, ls="--", lw=1, color=colors[side], label=f"oracle (all neurons), {side}")
        finite = [v for v in values if v is not None]
        lines.set_ylim(min([0.0, *finite]) - 0.02, 1.02)
        depth = c.get("mean_depth", {})
        bars.set_title(f"{task}: mean depth of the {top} {depth.get('before', float('nan')):.2f} → "
                       f"{depth.get('after', float('nan')):.2f}", fontsize=9)
        for ax in (bars, lines):
            ax.set_xticks(xs, sites, rotation=45, ha="right", fontsize=7)
        bars.set_ylabel(f"share of the {top} neurons", fontsize=8)
        lines.set_ylabel(f"{metric} of a probe on the site alone", fontsize=8)
        lines.set_title(f"{task}: a probe per site vs the oracle", fontsize=9)
    axes[0][0].legend(fontsize=7, loc="upper left")
    axes[1][0].legend(fontsize=6, loc="lower right")
    fig.suptitle(f"{top[0].upper() + top[1:]} neurons before / after · {res.get('model')}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_classes(res: dict[str, Any], cut: Cut | None = None) -> Any:
    """Top neurons per class (LCA's per-class sets at `class_percentage` of each class's weight
    mass): few = localized, many = distributed."""
    per_class = (res.get("ranking_detail") or {}).get("per_class")
    if not per_class:
        return None
    pct = (cut or cutoffs(res))["class_percentage"]
    mass = f"{100 * pct:g} %" if pct is not None else "method.class_percentage"
    plt = _plt()
    items = sorted(per_class.items(), key=lambda kv: len(kv[1]))
    fig, ax = plt.subplots(figsize=(6.5, max(3, 0.18 * len(items) + 1.2)))
    ax.barh(range(len(items)), [len(v) for _, v in items], color="#16a085")
    ax.set_yticks(range(len(items)), [k for k, _ in items], fontsize=7)
    ax.xaxis.set_major_locator(plt.matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel(f"neurons holding the class's top {mass} of |weight| mass")
    ax.set_title(f"Neurons per class (fewest neurons with {mass} of the class's weight mass)\n{_label(res)}",
                 fontsize=9)
    fig.tight_layout()
    return fig


MODE_STYLES = {"zero": "-", "mean": "--"}
MODE_NAMES = {"zero": "set to 0", "mean": "set to their mean"}


def plot_ablation(res: dict[str, Any], cut: Cut | None = None) -> Any:
    """The model's metric with the top (left) and bottom (right) k % of each ranking silenced: a
    colour per ranking, a line style per mode (zero solid, mean dashed), random as mean ± sd in both,
    the metric with nothing silenced as a line."""
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
        how = MODE_NAMES.get(mode, mode)
        for ax, kind in zip(axes, ("top", "bottom"), strict=True):
            for name in names:
                curve = view["curves"].get(f"{name}_{kind}")
                if curve:
                    ax.plot(xs, [curve[k] for k in block["shares"]], ls=ls, marker=".", color=colors[name],
                            label=f"{arm_name(name)} {kind} k % ({how})")
            if "random" in view["curves"]:
                rnd = [view["curves"]["random"][k] for k in block["shares"]]
                ax.plot(xs, rnd, ls=ls, color="black", lw=1.5, label=f"random k % ± sd ({how})")
                if view.get("random_sd"):
                    _band(ax, xs, rnd, [view["random_sd"].get(k, 0.0) for k in block["shares"]], "grey")
    for ax, kind in zip(axes, ("top", "bottom"), strict=True):
        if block.get("baseline") is not None:
            ax.axhline(block["baseline"], color="#27ae60", lw=1, ls=":", label="nothing silenced")
        ax.set_xlabel(f"% of neurons silenced: the {kind} k % of each ranking")
        ax.set_xscale("symlog", linthresh=1)
        plain_ticks(ax, [x for x in xs if x in (0, 1, 2, 5, 10, 20, 50, 100)] or xs)
        ax.set_title(f"{kind} k % of each ranking silenced", fontsize=9)
        ax.set_xlim(0, max(xs))
        if block["metric"] == "perplexity":
            ax.set_yscale("log")
            lo, hi = ax.get_ylim()
            plain_ticks(ax, log_ticks(lo, hi), axis="y")
    axes[0].set_ylabel(block["metric"] + (" (log scale)" if block["metric"] == "perplexity" else ""))
    seen: dict[str, Any] = {}
    for ax in axes:  # one legend for both panels: each ranking, random and the baseline once
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    axes[1].legend(list(seen.values()), list(seen), fontsize=6, ncol=2)
    better = "higher" if block.get("higher_is_better", block["metric"] != "perplexity") else "lower"
    fig.suptitle(f"{block['metric']} ({better} is better) with ranked neurons silenced at the {block['where']} "
                 f"(line style = mode: {', '.join(MODE_NAMES.get(m, m) for m in views)})\n{res.get('model')}",
                 fontsize=9)
    fig.tight_layout()
    return fig


def plot_lambda(res: dict[str, Any], cut: Cut | None = None) -> Any:
    """The λ search: dev accuracy of the oracle (and of the top / random k %) per grid point."""
    rows = res.get("lambda_search")
    if not rows:
        return None
    k = (cut or cutoffs(res))["selection_percent"]
    kk = f"{k:g} %" if k is not None else "k % (probe.selection.percent)"
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    xs = list(range(len(rows)))
    for key, label, color in (("oracle_dev", "oracle: all neurons (dev)", "black"),
                              ("top_dev", f"top {kk} of the ranking (dev)", KIND_COLORS["top"]),
                              ("random_dev", f"random {kk} (dev)", KIND_COLORS["random"])):
        if key in rows[0]:
            ax.plot(xs, [r[key] for r in rows], marker="o", label=label, color=color)
    chosen = [i for i, r in enumerate(rows) if r.get("chosen")]
    for i in chosen:
        ax.axvline(i, color="#27ae60", lw=1, label="chosen" if i == chosen[0] else None)
    pairs = any(r.get("lambda2", r.get("lambda1")) != r.get("lambda1") for r in rows)
    ax.set_xticks(xs, [lambda_tick(r, both=pairs) for r in rows], rotation=45 if pairs else 0, fontsize=7)
    ax.set_xlabel("λ1, λ2" if pairs else "λ1 = λ2")
    ax.set_ylabel(_metric(res, "dev"))
    rule = (res.get("probe") or {}).get("selection_rule")
    ax.set_title("λ search on dev" + (f" (rule: {rule})" if rule else "") + f"\n{_label(res)}", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def lambda_tick(row: dict[str, Any], both: bool = False) -> str:
    """A grid point's penalty as a tick: `1e-5`, or `1e-5, 1e-3` for a pair."""
    l1 = row.get("lambda1", row.get("lambda"))
    l2 = row.get("lambda2", l1)
    return lam(l1) if not both else f"{lam(l1)}, {lam(l2)}"


SIMILARITY_NAMES = {"mean_maxcorr": "mean maxcorr\n(in-sample)", "mean_cca": "mean SVCCA ρ\n(held-out)",
                    "mean_regcorr": "mean regcorr R\n(held-out)", "linear_cka": "linear CKA\n(held-out)",
                    "debiased_cka": "debiased CKA\n(held-out)"}


def plot_similarity(res: dict[str, Any], cut: Cut | None = None) -> Any:
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


def plot_k_sparse(res: dict[str, Any], cut: Cut | None = None) -> Any:
    """k-sparse probing: mean F1 of the one-vs-rest probes on each class's top k neurons, and the
    accuracy of a probe on the union of those sets, against the all-neuron probe's (dashed)."""
    block = res.get("k_sparse")
    if not block or not block.get("ks"):
        return None
    plt = _plt()
    ks = [int(k) for k in block["ks"]]
    fig, ax = plt.subplots(figsize=(7, 4.6))
    nan = float("nan")
    f1 = [block["mean_f1"].get(str(k)) for k in ks]
    union = [block["union"][str(k)] for k in ks]
    own = "its own ranking" if block.get("per_class_ranking") else "the overall ranking (no per-class scores)"
    ax.plot(ks, [nan if v is None else v for v in f1], marker="o", color=KIND_COLORS["top"],
            label=f"mean F1 over classes: class vs rest, its top k by {own}")
    ax.plot(ks, [u["accuracy"] for u in union], marker="s", color="#2c3e50",
            label="accuracy: all classes, union of the classes' top-k sets")
    for k, u in zip(ks, union, strict=True):
        ax.annotate(f"{u['n_neurons']}", (k, u["accuracy"]), textcoords="offset points", xytext=(0, -12),
                    ha="center", fontsize=6, color="#2c3e50")
    oracle = block.get("oracle") or {}
    if oracle.get("mean_f1") is not None:
        ax.axhline(oracle["mean_f1"], ls="--", color=KIND_COLORS["top"], lw=1,
                   label="all neurons: mean per-class F1 of the multi-class probe")
    if oracle.get("accuracy") is not None:
        ax.axhline(oracle["accuracy"], ls="--", color="black", lw=1, label="oracle: probe on all neurons, accuracy")
    ax.set_xscale("log")
    if len(ks) > 1:
        ax.set_xlim(min(ks) / 1.3, max(ks) * 1.3)
    plain_ticks(ax, [float(k) for k in ks])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("k = neurons per class (log scale; numbers under the squares: neurons in the union)")
    ax.set_ylabel("test F1 / accuracy")
    ax.set_title(f"k-sparse probing: a probe on each class's top k neurons\n{_label(res)}", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


FIGURES: dict[str, Callable[..., Any]] = {
    "subsets": plot_subsets, "layers": plot_layers, "classes": plot_classes,
    "ablation": plot_ablation, "lambda_search": plot_lambda, "comparison": plot_comparison,
    "similarity": plot_similarity, "k_sparse": plot_k_sparse, "agreement": plot_agreement,
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
    """Every figure the run has, as `<out_dir>/<name>.png` (cutoffs from `<out_dir>/config.yaml`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cut = cutoffs(res, out)
    written = {}
    for name, plot in FIGURES.items():
        fig = plot(res, cut)
        if fig is not None:
            written[name] = save_figure(fig, out / f"{name}.png")
    return written
