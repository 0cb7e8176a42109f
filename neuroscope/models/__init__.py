"""Neuron sources: models whose hidden units are addressable as `site:unit` neurons."""

from neuroscope.models import nlm, nmt, transformer  # noqa: F401  (registration)
