"""Neuron rankers, one module each, registered in `METHODS` (built-ins arrive with the LCA work)."""
