"""The method-agreement experiment's table (`agreement.csv`), figure (`agreement.png`) and report
section: each method's IoU with the Borda consensus against k, and the pairwise IoU matrix."""

from __future__ import annotations

from typing import Any

from neuroscope.reporting.html import esc, table

NAMES = {"lca": "LCA", "iou": "IoU (mask overlap)", "weight_norm": "weight norm", "probeless": "probeless",
         "random": "random", "mean_diff": "mean difference", "f_stat": "F statistic",
         "mutual_info": "mutual information", "l1_binary": "L1 one-vs-rest probe"}
COLUMNS = ["method", "in_consensus", "per_class_scores", "scope", "k", "iou_with_consensus", "chance"]


def method_name(name: str) -> str:
    """A ranker's name in words (`weight_norm` → 'weight norm'); unknown names as given."""
    return NAMES.get(name, name.replace("_", " "))


def agreement_table(block: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """A row per method, scope (overall / per_class: mean over classes) and k."""
    rows = []
    for m in block["methods"]:
        for scope in ("overall", "per_class"):
            for k in block["ks"]:
                rows.append([m, m in block["consensus_methods"], block["class_scores"][m], scope, k,
                             block["iou_with_consensus"][m][scope][str(k)], block["chance"][str(k)]])
    return COLUMNS, rows


def _ticks(ks: list[int]) -> list[int]:
    """Plain 1-2-5 ticks (10, 20, 50, 100) within the ks, and the smallest and largest k."""
    steps = [m * 10 ** e for e in range(0, 7) for m in (1, 2, 5)]
    return sorted({min(ks), max(ks), *(t for t in steps if min(ks) <= t <= max(ks))})


def plot_agreement(res: dict[str, Any], cut: Any = None) -> Any:
    """IoU with the consensus against k (per class, overall) per method, and the pairwise IoU
    heatmap at k_matrix; None when the run has no `agreement` block."""
    block = res.get("agreement")
    if not block or not block.get("ks"):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    ks = [int(k) for k in block["ks"]]
    methods = block["methods"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2), gridspec_kw={"width_ratios": [1, 1, 1.15]})
    colors = [c for i, c in enumerate(plt.get_cmap("tab10").colors) if i != 7]  # grey is random's
    for ax, scope, what in ((axes[0], "per_class", "per class (mean over classes)"),
                            (axes[1], "overall", "overall ranking")):
        for i, m in enumerate(methods):
            ys = [block["iou_with_consensus"][m][scope][str(k)] for k in ks]
            voter = m in block["consensus_methods"]
            ax.plot(ks, [float("nan") if y is None else y for y in ys], marker="o", ms=3,
                    ls="-" if voter else "--", color=colors[i % len(colors)] if m != "random" else "#7f8c8d",
                    label=method_name(m) + ("" if voter else " (not in the consensus)"))
        ax.plot(ks, [block["chance"][str(k)] for k in ks], ls=":", color="black", lw=1,
                label="chance: two random sets of k")
        ax.set_xscale("log")
        if len(ks) > 1:
            ax.set_xlim(min(ks) / 1.15, max(ks) * 1.15)
        ax.xaxis.set_major_locator(FixedLocator([float(t) for t in _ticks(ks)]))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_ylim(-0.02, 1.02)
        unit = "neurons per class" if scope == "per_class" else "neurons"
        ax.set_xlabel(f"k = top {unit} (log scale)")
        ax.set_ylabel("IoU of the top-k set with the consensus's")
        ax.set_title(f"Agreement with the consensus, {what}", fontsize=10)
    axes[0].legend(fontsize=7, loc="upper left")
    ax = axes[2]
    matrix = block["pairwise"]["iou"]
    im = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    labels = [method_name(m) for m in block["pairwise"]["methods"]]
    ax.set_xticks(range(len(labels)), labels, rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    for r, row in enumerate(matrix):
        for c, v in enumerate(row):
            ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if v < 0.6 else "black")
    ax.set_title(f"Pairwise IoU of the top {block['pairwise']['k']} neurons (overall)", fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="IoU")
    voters = ", ".join(method_name(m) for m in block["consensus_methods"])
    fig.suptitle(f"Do ranking methods agree? {res.get('model')} · {res.get('task')}, {block['n_neurons']} neurons; "
                 f"k is neurons per class (left) or overall (middle)\nconsensus: Borda count of {voters}", fontsize=10)
    fig.tight_layout()
    return fig


def agreement_section(block: dict[str, Any]) -> str:
    """results.json's `agreement` as HTML: IoU with the consensus per method at a few k, the
    pairwise matrix and where each method's top neurons sit."""
    def f(x: Any) -> str:
        return "-" if x is None else f"{x:.2f}"

    ks = [k for k in block["ks"] if k in _ticks(block["ks"])] or block["ks"]
    rows = [[method_name(m) + ("" if m in block["consensus_methods"] else " (not in the consensus)"),
             "yes" if block["class_scores"][m] else "no (overall order)"]
            + [f(block["iou_with_consensus"][m]["per_class"][str(k)]) for k in ks]
            + [f(block["iou_with_consensus"][m]["overall"][str(k)]) for k in ks] for m in block["methods"]]
    rows.append(["chance (two random sets)", "-"] + [f(block["chance"][str(k)]) for k in ks] * 2)
    cols = ["method", "per-class scores"] + [f"per class, k={k}" for k in ks] + [f"overall, k={k}" for k in ks]
    names = [method_name(m) for m in block["pairwise"]["methods"]]
    pair = table(["", *names], [[a, *(f(v) for v in row)] for a, row in zip(names, block["pairwise"]["iou"],
                                                                           strict=True)])
    km = block["k_matrix"]
    sites = list(block["layers"]["consensus"])
    layer_rows = [["consensus", *(f(block["layers"]["consensus"][s]["share"]) for s in sites)]]
    layer_rows += [[method_name(m), *(f"{f(v[s]['share'])} (IoU {f(v[s]['iou'])})" for s in sites)]
                   for m, v in ((m, block["layers"][m]) for m in block["methods"])]
    note = (f'<p class="muted">k = top neurons per class (per class: each class\'s own order, from the method\'s '
            f"per-class scores when it has them; mean over {block['n_classes_averaged']} classes) or overall. "
            f"Consensus: Borda count of {esc(', '.join(block['consensus_methods']))}; IoU 1 = the same top set, "
            "chance = two random sets of k.</p>")
    return (note + table(cols, rows) + f"<h3>Pairwise IoU of the top {km} neurons</h3>" + pair
            + f"<h3>Share of each method's top {km} neurons per site (IoU with the consensus within the site)</h3>"
            + table(["method", *sites], layer_rows))
