"""The features-vs-neurons experiment's table (`features.csv`) and figure (`features.png`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLUMNS = ["property", "side", "n_units", "oracle", "minimal_n", "minimal_n_sd", "minimal_share",
           "minimal_share_sd", "selectivity", "monosemantic_share"]
LABELS = {"oracle": "probe accuracy, all units", "minimal_share": "minimal subset (share of units)",
          "monosemantic_share": "classes served by one unit (k=1 F1 ≥ {t:g})", "selectivity": "selectivity"}


def features_table(block: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """A row per property and side (neurons, sae0, sae1, ...), k-sparse F1 per k as extra columns."""
    ks = sorted({k for p in block["properties"].values() for s in p["sides"].values()
                 for k in (s.get("k_sparse_f1") or {})}, key=float)
    rows = []
    for prop, p in block["properties"].items():
        for side, s in p["sides"].items():
            rows.append([prop, side, *(s.get(c) for c in COLUMNS[2:]),
                         *((s.get("k_sparse_f1") or {}).get(k) for k in ks)])
    return COLUMNS + [f"k_sparse_f1_{k}" for k in ks], rows


def features_figure(block: dict[str, Any], path: Path) -> Path:
    """Per metric, neurons vs the SAEs' mean (± sd over SAE seeds) for each property; and mean
    k-sparse F1 against k."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from neuroscope.files import atomic_path

    props = list(block["properties"])
    metrics = ["oracle", "minimal_share", "monosemantic_share"]
    fig, axes = plt.subplots(1, len(metrics) + 1, figsize=(4.2 * (len(metrics) + 1), 3.8))
    x = np.arange(len(props))
    for ax, m in zip(axes, metrics, strict=False):
        cmp = [block["properties"][p]["comparison"][m] for p in props]
        neur = [c["neurons"] if c["neurons"] is not None else np.nan for c in cmp]
        lat = [c["latents"] if c["latents"] is not None else np.nan for c in cmp]
        sd = [c["latents_sd"] or 0 for c in cmp]
        ax.bar(x - 0.2, neur, 0.4, label=f"neurons ({block['site']})", color="#4477aa")
        ax.bar(x + 0.2, lat, 0.4, yerr=sd, capsize=3, label=f"SAE latents (mean of {len(block['saes'])})",
               color="#ee6677")
        ax.set_xticks(x, props, rotation=30, ha="right")
        ax.set_title(LABELS[m].format(t=block["monosemantic_f1"]), fontsize=10)
        ax.set_ylim(0, 1)
    ax = axes[-1]
    for prop in props:
        ks_cmp = block["properties"][prop]["comparison"].get("k_sparse_f1") or {}
        ks = [int(k) for k in ks_cmp]
        if not ks:
            continue
        line = ax.plot(ks, [ks_cmp[str(k)]["neurons"] for k in ks], "o-", label=f"{prop} neurons")[0]
        ax.plot(ks, [ks_cmp[str(k)]["latents_mean"] for k in ks], "s--", color=line.get_color(), label=f"{prop} latents")
        ax.set_xscale("log")
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.minorticks_off()
    ax.set_xlabel("k (units per class)")
    ax.set_title("mean k-sparse F1 per class", fontsize=10)
    ax.set_ylim(0, 1)
    axes[0].legend(fontsize=8, loc="lower left")
    if ax.lines:
        ax.legend(fontsize=7, ncol=2, loc="lower right")
    fig.suptitle(f"Neurons vs SAE latents at {block['site']} (solid: neurons, dashed: latents)", fontsize=11)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path
