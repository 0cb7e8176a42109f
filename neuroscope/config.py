"""Build registered objects from config nodes, with config-key errors instead of TypeErrors."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from neuroscope.errors import ConfigError
from neuroscope.registry import Registry


def to_dict(node: Any) -> dict[str, Any]:
    """A plain, resolved dict of a config node (empty for None)."""
    if node is None:
        return {}
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=True)  # type: ignore[return-value]
    return dict(node)


def build(registry: Registry[Any], node: Mapping[str, Any] | DictConfig, group: str, **extra: Any) -> Any:
    """Call the registry entry named by `node.name` with the node's other keys as arguments."""
    params = to_dict(node)
    if "name" not in params:
        raise ConfigError(f"{group}.name: missing (which registered {registry.kind} to use?)")
    factory = registry.get(params.pop("name"))
    params.update(extra)
    check_params(factory, params, group)
    try:
        return factory(**params)
    except TypeError as exc:  # a **kwargs factory passes keys on; name the key when one is wrong
        if "unexpected keyword argument" in str(exc):
            raise ConfigError(f"{group}: {exc}") from exc
        raise


def build_known(cls: Any, node: Mapping[str, Any] | None, **overrides: Any) -> Any:
    """`cls(**node)` keeping only the keys its constructor takes (a shared config group, e.g. `data`,
    holds keys for several modules), with `overrides` on top."""
    known = set(inspect.signature(cls.__init__).parameters) - {"self"}
    args = {k: v for k, v in dict(node or {}).items() if k in known}
    args.update(overrides)
    return cls(**args)


def check_params(fn: Any, params: Mapping[str, Any], group: str) -> None:
    """Fail with the offending config key when `params` do not fit `fn`'s signature."""
    sig = inspect.signature(fn)
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    accepted = {n for n, p in sig.parameters.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    for key in params:
        if key not in accepted:
            raise ConfigError(f"{group}.{key}: not a setting of this {group}; known: {sorted(accepted)}")
