"""Neuron sources: models whose hidden units are addressable as `site:unit` neurons."""

from neuroscope.models import transformer  # noqa: F401  (registration)
