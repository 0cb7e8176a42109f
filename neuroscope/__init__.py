"""neuroscope: neuron-level interpretation of neural NLP models."""

__version__ = "0.1.0"
