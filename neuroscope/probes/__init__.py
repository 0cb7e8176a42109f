"""Linear probes over neuron activations: elastic-net objective, fast NumPy training loop.

The LightningModule version lives in `neuroscope.probes.lightning` (imports torch and Lightning).
"""

from neuroscope.probes.data import ArrayChunks, StoreChunks, TokenChunks
from neuroscope.probes.probe import Probe, ProbeConfig, evaluate, fit_probe, penalty

__all__ = ["ArrayChunks", "Probe", "ProbeConfig", "StoreChunks", "TokenChunks",
           "evaluate", "fit_probe", "penalty"]
