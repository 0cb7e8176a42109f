"""Evaluations of a neuron ranking: subsets, minimal subset, selectivity, per layer."""
