"""Ray, shared by every `engine=ray` (store builds, correlation passes): started once per process,
and a task's own ConfigError or StoreError raised as itself, not as Ray's wrapped traceback."""

from __future__ import annotations

from typing import Any

from neuroscope.errors import ConfigError, StoreError


def start_ray(settings: dict[str, Any], key: str) -> Any:
    """The `ray` module, initialised once per process: `ray.init(address=...)` joins a cluster, else
    a local Ray with `num_cpus`; a Ray already running (e.g. under the Ray launcher) is used as is.
    `key` names the setting in errors (`store.engine`, `method.engine`)."""
    try:
        import ray
    except ImportError:
        raise ConfigError(f"{key}=ray: the ray package is not installed (pip install 'ray>=2')") from None
    if not ray.is_initialized():
        common = {"include_dashboard": False, "ignore_reinit_error": True, "log_to_driver": False}
        if settings.get("address"):
            ray.init(address=str(settings["address"]), **common)
        else:
            ray.init(num_cpus=settings.get("num_cpus"), **common)
    return ray


def ray_result(ray: Any, ref: Any) -> Any:
    """A task's result; a ConfigError or StoreError raised in the worker is raised here as itself."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, (ConfigError, StoreError)):
            raise cause from None
        raise
