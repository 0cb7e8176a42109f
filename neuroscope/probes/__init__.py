"""Linear probes over neuron activations: elastic-net objective, fast NumPy training loop.

The LightningModule version lives in `neuroscope.probes.lightning` (imports torch and Lightning);
`fit_probe` picks the backend, so that neither training module imports the other.
"""

from __future__ import annotations

from typing import Any

from neuroscope.probes.data import ArrayChunks, StoreChunks, TokenChunks
from neuroscope.probes.probe import Probe, ProbeConfig, evaluate, fit_numpy, penalty

__all__ = ["ArrayChunks", "Probe", "ProbeConfig", "StoreChunks", "TokenChunks",
           "evaluate", "fit_probe", "penalty"]


def fit_probe(train: TokenChunks, n_classes: int, cfg: ProbeConfig, dev: TokenChunks | None = None
              ) -> tuple[Probe, dict[str, Any]]:
    """Train a probe with `cfg.backend`: the NumPy loop (`fit_numpy`), or the same batches and
    objective with a Lightning Trainer (`fit_probe_lightning`; torch is imported only then)."""
    if cfg.backend == "lightning":
        from neuroscope.probes.lightning import fit_probe_lightning

        return fit_probe_lightning(train, n_classes, cfg, dev)
    return fit_numpy(train, n_classes, cfg, dev)
