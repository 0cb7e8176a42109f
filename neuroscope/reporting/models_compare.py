"""Models compared over ablation experiments (Dalvi et al. 2019, question iii: does the NMT spread
linguistic information over more neurons than the LM?): one table and one figure over the
`experiment=dalvi2019_*` runs of a report.

Per run and property: the top-10 % minus bottom-10 % accuracy of retrained probes, the minimal subset
(count, share, spread over seeds), where the top neurons live, and the model's own metric damage with
the top 10 / 20 / 50 % silenced, per mode, beside random's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from neuroscope.reporting.results import mode_views, score

SHARES = ("10", "20", "50")
COLUMNS = ["model", "run", "property", "top10 - bottom10", "minimal n", "minimal share", "share sd",
           "top-5 % by site", *[f"damage {m} @{k} % (random)" for m in ("zero", "mean") for k in SHARES]]


def damage(block: dict[str, Any], value: float) -> float:
    """Relative damage of the model's metric: > 0 = worse than with nothing silenced."""
    base = block["baseline"]
    worse = base - value if block.get("higher_is_better", True) else value - base
    return worse / abs(base) if base else 0.0


def _study(run: str, name: str) -> dict[str, Any]:
    path = Path(run) / "studies" / name / "results.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def model_rows(runs: list[dict[str, Any]]) -> list[list[Any]]:
    """A row per ablation run and LCA property study (see the module doc), then per run the mean
    over its properties of the top-10 % minus bottom-10 % gap."""
    rows: list[list[Any]] = []
    for res in runs:
        block = res.get("ablation")
        if not block or "studies" not in res or "_run" not in res:
            continue
        views = mode_views(block)
        gaps = []
        for name in res["studies"]:
            study = _study(res["_run"], name)
            subsets = study.get("subsets") or {}
            if "top" not in subsets or "10" not in subsets["top"] or "10" not in subsets.get("bottom", {}):
                continue  # correlation rankings are judged by the same probes: only the LCA properties here
            if study.get("method") != "lca":
                continue
            gap = score(subsets["top"]["10"]) - score(subsets["bottom"]["10"])
            gaps.append(gap)
            m = study.get("minimal_subset") or {}
            sites = sorted(((s, v.get("top_share") or 0.0) for s, v in (study.get("layers") or {}).items()),
                           key=lambda kv: -kv[1])
            row = [res.get("model"), Path(res["_run"]).name, name, round(gap, 4), m.get("n_neurons"),
                   m.get("share"), m.get("share_sd"), ", ".join(f"{s} {v:.2f}" for s, v in sites[:3])]
            for mode in ("zero", "mean"):
                view = views.get(mode)
                for k in SHARES:
                    if view is None or k not in view["curves"].get(f"{name}_top", {}):
                        row.append(None)
                        continue
                    top = damage(view, view["curves"][f"{name}_top"][k])
                    rnd = damage(view, view["curves"]["random"][k]) if "random" in view["curves"] else None
                    row.append(f"{top:+.3f}" + (f" ({rnd:+.3f})" if rnd is not None else ""))
            rows.append(row)
        if gaps:
            rows.append([res.get("model"), Path(res["_run"]).name, "mean over properties",
                         round(sum(gaps) / len(gaps), 4), *[None] * (len(COLUMNS) - 4)])
    return rows


def plot_models(runs: list[dict[str, Any]], rows: list[list[Any]]) -> Any:
    """Left: top-10 % minus bottom-10 % per property, a bar per model; right: the metric's relative
    damage vs % silenced, mean over the properties' top arms (solid) and random (dashed), per mode."""
    from neuroscope.reporting.figures import MODE_NAMES, _plt, arm_name, plain_ticks

    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    runs = [r for r in runs if r.get("ablation") and "_run" in r]
    props = list(dict.fromkeys(r[2] for r in rows if r[2] != "mean over properties"))
    width = 0.8 / max(len(runs), 1)
    for i, res in enumerate(runs):
        label = f"{res.get('model')} ({Path(res['_run']).name})"
        gaps = {r[2]: r[3] for r in rows if r[1] == Path(res["_run"]).name}
        left.bar([j + i * width for j in range(len(props))], [gaps.get(p, 0.0) for p in props], width, label=label)
        for mode, view in mode_views(res["ablation"]).items():
            shares = view["shares"]
            tops = [c for arm, c in view["curves"].items() if arm.startswith("lca_") and arm.endswith("_top")]
            xs = [float(k) for k in shares]
            if tops:
                right.plot(xs, [sum(damage(view, c[k]) for c in tops) / len(tops) for k in shares], marker=".",
                           label=f"{label} LCA top, {MODE_NAMES.get(mode, mode)}", ls="-" if mode == "zero" else "-.")
            if "random" in view["curves"]:
                right.plot(xs, [damage(view, view["curves"]["random"][k]) for k in shares], ls="--",
                           label=f"{label} random, {MODE_NAMES.get(mode, mode)}")
    left.set_xticks([j + width * (len(runs) - 1) / 2 for j in range(len(props))],
                    [arm_name(p) for p in props], rotation=30, fontsize=7)
    left.set_ylabel("accuracy: top 10 % minus bottom 10 %")
    left.set_title("How much the top neurons beat the bottom ones (probes retrained)", fontsize=9)
    left.legend(fontsize=7)
    right.set_xscale("symlog", linthresh=1)
    ticks = sorted({float(k) for r in runs for k in r["ablation"]["shares"]})
    plain_ticks(right, ticks)
    right.set_xlim(0, max(ticks))
    right.axhline(0, color="#27ae60", lw=1, ls=":", label="nothing silenced (no damage)")
    right.set_xlabel("% of neurons silenced")
    right.set_ylabel("relative damage of the model's metric")
    right.set_title("Damage, mean over properties' top arms, vs random", fontsize=9)
    right.legend(fontsize=6)
    fig.tight_layout()
    return fig
