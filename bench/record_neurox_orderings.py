"""Record NeuroX 1.0.9's own LCA outputs on seeded weight matrices, for tests/test_methods.py.

Run inside the NeuroX venv (``bash bench/neurox_env.sh`` prints its python)::

    $(bash bench/neurox_env.sh | tail -1) bench/record_neurox_orderings.py tests/data/neurox_1.0.9_orderings.json

Each case is a recipe (shape, seed, share of zero entries, all-zero columns) that
`weights()` turns into a float32 [classes, neurons] matrix; the test rebuilds the same matrix
from the recipe (and checks its sha256), so the JSON holds NeuroX's outputs, not the weights.
Recorded: `get_neuron_ordering` (ordering, cutoffs) and `get_top_neurons` /
`get_bottom_neurons` at percentage 0.3 (union and per-class sets).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

# name -> recipe; "minilm_upos" has the shape of the MiniLM/UPOS probe the README cites
CASES: dict[str, dict[str, Any]] = {
    "minilm_upos": {"classes": 17, "neurons": 2688, "seed": 17, "zero_share": 0.6, "zero_columns": 400},
    "small": {"classes": 5, "neurons": 300, "seed": 5, "zero_share": 0.0, "zero_columns": 0},
    "tiny_zero_columns": {"classes": 3, "neurons": 50, "seed": 3, "zero_share": 0.2, "zero_columns": 5},
}
PERCENTAGE = 0.3


def weights(recipe: dict[str, Any]) -> np.ndarray:
    """The case's [classes, neurons] float32 matrix: seeded normal entries, a share of them
    zero (a sparse probe), and some all-zero columns (neurons the probe never uses)."""
    rng = np.random.default_rng(recipe["seed"])
    w = rng.normal(size=(recipe["classes"], recipe["neurons"])).astype(np.float32)
    w[rng.random(w.shape) < recipe["zero_share"]] = 0.0
    w[:, rng.permutation(recipe["neurons"])[: recipe["zero_columns"]]] = 0.0
    return w


def sha256(w: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(w, dtype=np.float32).tobytes()).hexdigest()


def record(recipe: dict[str, Any]) -> dict[str, Any]:
    """NeuroX's outputs on the recipe's matrix (imports torch and NeuroX: venv only)."""
    import torch
    from neurox.interpretation import linear_probe as lp

    w = weights(recipe)
    probe = torch.nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        probe.weight.copy_(torch.from_numpy(w))
    c2i = {f"c{i}": i for i in range(w.shape[0])}
    ordering, cutoffs = lp.get_neuron_ordering(probe, c2i)
    top, per = lp.get_top_neurons(probe, PERCENTAGE, c2i)
    bot, bper = lp.get_bottom_neurons(probe, PERCENTAGE, c2i)
    return {"recipe": recipe, "weight_sha256": sha256(w), "percentage": PERCENTAGE,
            "ordering": [int(i) for i in ordering], "cutoffs": [int(c) for c in cutoffs],
            "top": sorted(int(i) for i in top), "per": {k: [int(i) for i in v] for k, v in per.items()},
            "bot": sorted(int(i) for i in bot), "bper": {k: [int(i) for i in v] for k, v in bper.items()}}


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/neurox_1.0.9_orderings.json")
    cases = {name: record(recipe) for name, recipe in CASES.items()}
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(cases, separators=(",", ":")))
    tmp.replace(out)
    print(f"recorded {len(cases)} cases into {out} ({out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
