"""The one check of a torch device setting (`model.device`, `method.device`)."""

from __future__ import annotations

from typing import Any

from neuroscope.errors import ConfigError

DEVICE_TYPES = ("cpu", "cuda", "mps")


def torch_device(device: str, key: str = "model.device") -> Any:
    """The checked `torch.device` of a device setting: a bad name, or a GPU this torch cannot see, is a
    `ConfigError` naming `key`. Used by extraction (`model.device`) and the correlation products
    (`method.device`); torch is imported only here."""
    import torch

    try:
        dev = torch.device(str(device))
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ConfigError(f"{key}: '{device}' is not a device; use cpu, cuda, cuda:<index> or mps") from exc
    if dev.type not in DEVICE_TYPES:
        raise ConfigError(f"{key}: '{device}' is not supported; use cpu, cuda, cuda:<index> or mps")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{key}: '{device}' asked for, but this torch ({torch.__version__}) sees no CUDA GPU "
                              f"(torch.cuda.is_available() is False); use {key}=cpu or a CUDA build of torch")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"{key}: '{device}' does not exist; this machine has "
                              f"{torch.cuda.device_count()} CUDA device(s), cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"{key}: '{device}' asked for, but torch.backends.mps.is_available() is False; "
                          f"use {key}=cpu")
    return dev
