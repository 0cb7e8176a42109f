"""Per-layer view: a probe per site, and where a ranking's top neurons sit."""

from __future__ import annotations

from typing import Any

import numpy as np

from neuroscope.probes import ProbeConfig
from neuroscope.probes.splits import Splits
from neuroscope.progress import stage
from neuroscope.store import ActivationStore


def layer_report(store: ActivationStore, splits: Splits, order: np.ndarray, top_percent: float,
                 cfg: ProbeConfig, train_probes: bool = True) -> dict[str, dict[str, Any]]:
    """{site: {accuracy (probe on that site alone), top_share (share of the top k % in it)}}."""
    n_top = max(1, int(round(top_percent / 100 * len(order))))
    top = order[:n_top]
    out = {}
    with stage("layer probes", total=len(store.sites) if train_probes else 0) as step:
        for site in store.sites:
            cols = store.neuron_index([site])
            row: dict[str, Any] = {"n_neurons": len(cols), "top_share": float(np.isin(top, cols).mean())}
            if train_probes:
                row["accuracy"] = splits.columns(cols).fit_score(cfg)
                step(note=site)
            out[site] = row
    return out
