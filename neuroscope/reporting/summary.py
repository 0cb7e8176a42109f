"""The few lines a researcher reads at the end of a run: what was found, in a terminal table."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from neuroscope.reporting.results import mode_views, score
from neuroscope.reporting.tables import comparison_tables


def _f(x: Any, sd: Any = None) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.3f}" + (f" ± {sd:.3f}" if isinstance(sd, float) else "")
    return str(x)


def lambda_text(row: dict[str, Any], both: bool = False) -> str:
    """A probe's penalty as recorded in results.json (a `probe` block or a `lambda_search` row):
    `1e-05` when λ1 = λ2 (or only λ1 / a scalar `lambda` is recorded), else (or with `both`) `1e-05, 0.001`."""
    l1 = row.get("lambda1", row.get("lambda"))
    l2 = row.get("lambda2", l1)
    if l1 is None:
        return "-"
    return f"{l1:g}" if l2 is None or (l1 == l2 and not both) else f"{l1:g}, {l2:g}"


def floor_rows(corr: dict[str, Any]) -> list[list[str]]:
    """Summary rows of a correlation run's noise floors: each score beside its floor (mean ± sd)."""
    floors = corr.get("similarity_baseline") or {}
    held = corr.get("similarity_heldout") or {}
    rows = []
    if "mean_maxcorr" in floors:
        f = floors["mean_maxcorr"]
        share = corr.get("universal_share", {}).get("all")
        rows.append(["maxcorr vs rotation baseline", f"{_f(corr['similarity']['mean_maxcorr'])} vs floor "
                     f"{_f(f['mean'], f['sd'])}" + (f"; {100 * share:.1f} % of neurons above its 99th percentile"
                                                     if share is not None else "")])
    names = {"mean_cca": "SVCCA", "mean_regcorr": "regcorr R", "linear_cka": "CKA", "debiased_cka": "debiased CKA"}
    shown = [f"{label} {_f(held[k])} (floor {_f(floors[k]['mean'], floors[k]['sd'])})"
             for k, label in names.items() if k in held and k in floors]
    if shown:
        rows.append(["held-out similarity vs pairing floor", ", ".join(shown)])
    return rows


def summary_sections(res: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, columns, rows) blocks of a run's results.json, for any renderer."""
    st = res.get("store", {})
    head = [["model / task / method", f"{res.get('model')} / {res.get('task')} / {res.get('method')} (seed {res.get('seed')})"]]
    if st:
        head.append(["store", f"{st.get('n_tokens')} words x {st.get('n_neurons')} neurons"
                     + (" (reused)" if st.get("reused") else f" (built in {_f(st.get('extract_seconds'))} s)")])
    if "oracle" in res:
        metric = "R²" if res.get("metric") == "r2" else "accuracy"
        head.append([f"oracle {metric} (all neurons)", _f(score(res["oracle"]))])
    if "lambda1" in res.get("probe", {}):
        probe = res["probe"]
        rule = probe.get("selection_rule")
        pair = "λ1, λ2" if probe.get("lambda1") != probe.get("lambda2", probe.get("lambda1")) else "λ1 = λ2"
        head.append([f"probe penalty ({pair})", lambda_text(probe)
                     + (f" (chosen on dev, rule {rule})" if rule not in (None, "fixed") else "")])
    if "control" in res:
        head.append(["control task accuracy", _f(res["control"]["accuracy"], res["control"].get("accuracy_sd"))])
        head.append(["selectivity", _f(res.get("selectivity"), res.get("selectivity_sd"))])
    if "minimal_subset" in res:
        m = res["minimal_subset"]
        spread = (f"; over {m['seeds']} seeds {100 * res['seed_spread']['minimal_subset']['share_mean']:.1f} "
                  f"± {100 * m['share_sd']:.1f} %" if m.get("seeds", 1) > 1 and "seed_spread" in res else "")
        head.append(["minimal subset", f"{m['n_neurons']} neurons ({100 * m['share']:.1f} %), accuracy "
                     f"{_f(m['accuracy'])}{spread}"])
    if "correlation" in res:
        sim = res["correlation"]["similarity"]
        head.append(["similarity to the other models", f"maxcorr {_f(sim['mean_maxcorr'])}, SVCCA {_f(sim['mean_cca'])}, "
                     f"CKA {_f(sim['linear_cka'])}"])
        head += floor_rows(res["correlation"])
    if res.get("ranking"):
        head.append(["first neurons", ", ".join(res["ranking"][:5])])
    tim = res.get("timings", {})
    if "total_seconds" in tim:
        head.append(["wall time", f"{tim['total_seconds']:.1f} s"])
    sections = [("run", ["", ""], head)]
    subsets = res.get("subsets")
    if subsets:
        ks = sorted(next(iter(subsets.values())), key=float)
        kinds = list(subsets)
        rows = [[f"{k} %"] + [_f(score(subsets[kind][k]), score(subsets[kind][k], sd=True)) for kind in kinds]
                for k in ks]
        sections.append((f"probe on k % of the neurons (test {'R²' if res.get('metric') == 'r2' else 'accuracy'})",
                         ["k", *kinds], rows))
    layers = res.get("layers")
    if layers:
        rows = [[s, _f(v.get("top_share")), _f(score(v))] for s, v in layers.items()]
        sections.append(("layers", ["site", "share of top neurons", "probe on the site"], rows))
    for mode, block in (mode_views(res["ablation"]) if res.get("ablation") else {}).items():
        shares = block["shares"]
        rows = [[arm] + [_f(c[k]) for k in shares] for arm, c in block["curves"].items()]
        sections.append((f"{block['metric']} with the top k % silenced ({mode}, {block['where']})",
                         ["arm", *[f"{k} %" for k in shares]], rows))
    sections += comparison_sections(res.get("comparison"))
    for name, s in (res.get("studies") or {}).items():
        sections[0][2].append([f"study {name}", ", ".join(f"{k} {_f(v)}" for k, v in s.items()
                                                       if k in ("oracle_accuracy", "minimal_subset", "top_accuracy",
                                                                "random_accuracy", "bottom_accuracy", "oracle_r2",
                                                                "top_r2", "random_r2", "bottom_r2"))])
    return sections


def comparison_sections(block: dict[str, Any] | None) -> list[tuple[str, list[str], list[list[str]]]]:
    """A comparison run's tables (`comparison_tables`) as text: per property before → after, and per
    site how far neurons moved."""
    if not block:
        return []
    tables = comparison_tables(block)
    cols, rows = tables["comparison"]
    text = []
    for values in rows:
        r = dict(zip(cols, values, strict=True))
        text.append([r["task"], f"{_f(r['oracle_before'])} → {_f(r['oracle_after'])}",
                     f"{r['minimal_before']} → {r['minimal_after']}",
                     f"{_f(r['mean_depth_before'])} → {_f(r['mean_depth_after'])}",
                     f"{r['same_top_neurons']} of {r['n_top']} (chance {_f(r['chance'])})"])
    out = [(f"before → after (top {block['top_percent']:g} %)", ["property", "oracle accuracy", "minimal subset",
                                                                 "mean depth of the top neurons", "same top neurons"], text)]
    if "comparison_sites" in tables:
        cols, rows = tables["comparison_sites"]
        shown = [cols.index(c) for c in ("site", "self_r", "self_is_partner", "linear_cka")]
        out.append(("how far each site's neurons moved", ["site", "ρ with itself", "own best partner", "CKA"],
                    [[_f(row[i]) for i in shown] for row in rows]))
    return out


def print_summary(res: dict[str, Any], report: str | None = None, file: TextIO | None = None) -> None:
    """Print the summary tables (rich when installed, plain text otherwise) and the report's path."""
    out = file or sys.stdout
    sections = summary_sections(res)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain text
        for title, cols, rows in sections:
            print(f"\n{title}", file=out)
            for row in ([cols] if any(cols) else []) + rows:
                print("  " + " | ".join(row), file=out)
    else:
        console = Console(file=out, width=120)
        for title, cols, rows in sections:
            table = Table(title=title, show_header=any(cols), title_justify="left")
            for c in cols:
                table.add_column(c)
            for row in rows:
                table.add_row(*row)
            console.print(table)
    if report:
        print(f"report: {report}", file=out)
