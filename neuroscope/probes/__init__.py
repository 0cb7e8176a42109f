"""Linear probes over neuron activations: elastic-net objective, fast and Lightning training."""

from neuroscope.probes.data import ArrayChunks, StoreChunks, TokenChunks
from neuroscope.probes.probe import Probe, ProbeConfig, ProbeModule, evaluate, fit_probe, probe_loss

__all__ = ["ArrayChunks", "Probe", "ProbeConfig", "ProbeModule", "StoreChunks", "TokenChunks",
           "evaluate", "fit_probe", "probe_loss"]
