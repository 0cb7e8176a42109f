"""Self-contained HTML reports (figures embedded as base64 PNG; opens offline in any browser)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from neuroscope.reporting.results import atomic_write

STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#f3f3f3}h2{border-bottom:1px solid #ddd;padding-bottom:3px}img{max-width:100%}
.w,.tok{display:inline-block;max-width:14em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;
vertical-align:bottom}.w{padding:1px 2px;border-radius:3px}.neuron{margin-bottom:1.2em;overflow-wrap:anywhere}
.muted{color:#777;font-size:12px}.classes{font-weight:600}"""
MAX_TOKEN = 24  # longer tokens are cut with an ellipsis (the full token in the title attribute)


def esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def table(cols: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in cols) if any(cols) else ""
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def image(path: str | Path, alt: str) -> str:
    """An <img> holding the PNG's bytes (no external file)."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def short(word: str, limit: int = MAX_TOKEN) -> str:
    """A token cut to `limit` characters with an ellipsis (unchanged when it fits)."""
    return word if len(word) <= limit else word[: limit - 1] + "…"


def token(word: str, extra: str = "", cls: str = "tok", style: str = "") -> str:
    """A token as a span: cut when long, the full token (and `extra`) in its title."""
    title = word + (f" ({extra})" if extra else "")
    return (f'<span class="{cls}" title="{esc(title)}"' + (f' style="{style}"' if style else "")
            + f">{esc(short(word))}</span>")


def coloured(words: list[str], acts: list[float], scale: float) -> str:
    """Words with the neuron's activation as background: red positive, blue negative."""
    spans = []
    for w, a in zip(words, acts, strict=True):
        alpha = min(1.0, abs(a) / scale) if scale > 0 else 0.0
        rgb = "192,57,43" if a >= 0 else "44,127,184"
        spans.append(token(w, f"{a:.3f}", "w", f"background:rgba({rgb},{alpha:.2f})"))
    return " ".join(spans)


def _word_list(words: list[dict[str, Any]], counts: bool = True) -> str:
    return ", ".join(token(w["word"], f"mean {w['mean']:.3f}, seen {w['count']} times")
                     + f" ({w['mean']:.2f}" + (f", n={w['count']})" if counts else ")") for w in words)


def class_line(neuron: str, classes: dict[str, list[str]] | None, rule: str) -> str:
    """Which classes a neuron serves: the classes whose per-class top set (`rule`) holds it."""
    if classes is None:
        return ""
    mine = classes.get(neuron) or []
    text = (f'serves <span class="classes">{esc(", ".join(mine))}</span>' if mine
            else "in no class's top set")
    return f'<p>{text} <span class="muted">({esc(rule)})</span></p>'


def neuron_section(profiles: list[dict[str, Any]], classes: dict[str, list[str]] | None = None,
                   class_rule: str = "", min_count: int | None = None) -> str:
    """Each profiled neuron: its classes (when the method ranks per class), top and lowest words
    (types seen at least `min_count` times) and its strongest sentences in colour."""
    seen = f"words seen at least {min_count} times" if min_count and min_count > 1 else "every word"
    parts = [f'<p class="muted">Mean activation per word type over {esc(seen)} (report.min_count); long '
             "tokens are cut, hover for the full token and the value.</p>"]
    for p in profiles:
        top = _word_list(p["top_words"]) or f"(no word seen at least {min_count} times)"
        low = _word_list(p["bottom_words"][:5], counts=False) or "-"
        sents = "".join(f"<p>{coloured(s['words'], s['activations'], p['max_abs'])}</p>" for s in p["sentences"])
        parts.append(f'<div class="neuron"><h3>{esc(p["neuron"])}</h3>{class_line(p["neuron"], classes, class_rule)}'
                     f'<p>top words: {top}</p><p class="muted">lowest: {low}</p>{sents}</div>')
    return "".join(parts)


def k_sparse_section(block: dict[str, Any]) -> str:
    """results.json's `k_sparse` as a table per k: mean F1 and balanced accuracy of the per-class
    probes, and the probe on the union of the classes' top-k sets."""
    def f(x: Any) -> str:
        return "-" if x is None else f"{x:.3f}"

    rows = [[k, f(block["mean_f1"].get(str(k))), f(block.get("mean_balanced_accuracy", {}).get(str(k))),
             block["union"][str(k)]["n_neurons"], f(block["union"][str(k)]["accuracy"]),
             f(block["union"][str(k)]["macro_f1"])] for k in block["ks"]]
    oracle = block.get("oracle") or {}
    rows.append(["all neurons", f(oracle.get("mean_f1")), "-", "-", f(oracle.get("accuracy")), f(oracle.get("macro_f1"))])
    source = ("each class's own ranking" if block.get("per_class_ranking")
              else "the overall ranking for every class (the method has no per-class scores)")
    note = (f'<p class="muted">A probe per class (class vs rest) on its top k neurons by {esc(source)}; '
            "the union row trains one probe on all classes. Test split; see k_sparse_saebench.json.</p>")
    return note + table(["k", "mean F1", "mean balanced accuracy", "union: neurons", "union: accuracy",
                         "union: macro-F1"], rows)


def page(title: str, sections: list[tuple[str, str]]) -> str:
    """A whole HTML document: a title and (heading, inner HTML) sections."""
    body = "".join(f"<h2>{esc(h)}</h2>{inner}" for h, inner in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1>{body}</body></html>")


def write_page(path: str | Path, title: str, sections: list[tuple[str, str]]) -> Path:
    path = Path(path)
    atomic_write(path, page(title, sections))
    return path
