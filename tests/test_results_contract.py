"""A real study's results.json holds every key docs/results.md promises (rows marked ✓)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from neuroscope.analysis import analyze
from tests.conftest import REPO
from tests.test_entrypoints import compose_analyze, overrides, study  # noqa: F401  (fixture)


def documented_keys(section: str = "## Analysis run") -> list[str]:
    """Key paths of the ✓ rows of one section of docs/results.md; `.x` continues the first key."""
    text = (REPO / "docs" / "results.md").read_text()
    body = text.split(section, 1)[1].split("\n## ", 1)[0]
    keys = []
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 4 or cells[-1] != "✓":
            continue
        names = re.findall(r"`([^`]+)`", cells[0])
        if not names:  # the header row
            continue
        first = names[0]
        keys.append(first)
        keys += [first.rsplit(".", 1)[0] + n if n.startswith(".") else n for n in names[1:]]
    return keys


def resolve(results: dict[str, Any], path: str) -> list[Any]:
    """Every value at a key path; `<k>` / `<site>` expand to every key at that level, `*` must be
    a non-empty mapping's keys."""
    nodes = [results]
    for part in path.split("."):
        nxt = []
        for node in nodes:
            assert isinstance(node, dict), (path, part)
            if part.startswith("<") or part == "*":
                assert node, (path, part)
                nxt += list(node.values())
            else:
                assert part in node, f"results.json lacks documented key '{path}' (at '{part}')"
                nxt.append(node[part])
        nodes = nxt
    return nodes


def test_real_run_has_every_documented_key(study: dict[str, Path]) -> None:  # noqa: F811
    out = study["root"] / "contract"
    cfg = compose_analyze(overrides(study, out) + [
        "method=lca", "evaluation.percents=[10,50]", "probe.epochs=3", "probe.selection.grid=[1e-4,1e-3]",
        "evaluation.random_draws=2", "evaluation.control_draws=2"])
    analyze(cfg)
    saved = json.loads((out / "results.json").read_text())
    keys = documented_keys()
    assert len(keys) > 60 and "subsets.random.<k>.accuracy_sd" in keys
    for key in keys:
        resolve(saved, key)
    assert len(saved["ranking_scores"]) == len(saved["ranking"])
    assert all(a >= b for a, b in zip(saved["ranking_scores"], saved["ranking_scores"][1:], strict=False))
