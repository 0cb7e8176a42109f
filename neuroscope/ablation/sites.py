"""The hook points ablation acts on: defined with the models (`neuroscope.models.sites`), where
extraction names the same sites; kept here under the name plugins and older code import."""

from neuroscope.models.sites import HookPoint, hook_points, network, transformer_points

__all__ = ["HookPoint", "hook_points", "network", "transformer_points"]
