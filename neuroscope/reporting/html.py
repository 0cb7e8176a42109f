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
.w{padding:1px 2px;border-radius:3px}.neuron{margin-bottom:1.2em}.muted{color:#777;font-size:12px}"""


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


def coloured(words: list[str], acts: list[float], scale: float) -> str:
    """Words with the neuron's activation as background: red positive, blue negative."""
    spans = []
    for w, a in zip(words, acts, strict=True):
        alpha = min(1.0, abs(a) / scale) if scale > 0 else 0.0
        rgb = "192,57,43" if a >= 0 else "44,127,184"
        spans.append(f'<span class="w" title="{a:.3f}" style="background:rgba({rgb},{alpha:.2f})">{esc(w)}</span>')
    return " ".join(spans)


def neuron_section(profiles: list[dict[str, Any]]) -> str:
    """Top words and coloured sentences of each profiled neuron."""
    parts = []
    for p in profiles:
        top = ", ".join(f"{esc(w['word'])} ({w['mean']:.2f}, n={w['count']})" for w in p["top_words"])
        low = ", ".join(f"{esc(w['word'])} ({w['mean']:.2f})" for w in p["bottom_words"][:5])
        sents = "".join(f"<p>{coloured(s['words'], s['activations'], p['max_abs'])}</p>" for s in p["sentences"])
        parts.append(f'<div class="neuron"><h3>{esc(p["neuron"])}</h3><p>top words: {top}</p>'
                     f'<p class="muted">lowest: {low}</p>{sents}</div>')
    return "".join(parts)


def page(title: str, sections: list[tuple[str, str]]) -> str:
    """A whole HTML document: a title and (heading, inner HTML) sections."""
    body = "".join(f"<h2>{esc(h)}</h2>{inner}" for h, inner in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1>{body}</body></html>")


def write_page(path: str | Path, title: str, sections: list[tuple[str, str]]) -> Path:
    path = Path(path)
    atomic_write(path, page(title, sections))
    return path
