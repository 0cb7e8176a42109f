"""Errors a user can cause. The CLI prints their message (no traceback) and exits non-zero."""

from __future__ import annotations


class NeuroscopeError(Exception):
    """Base of every user-facing error; the message says where the problem is and what to do."""


class ConfigError(NeuroscopeError):
    """A config key has a bad value (the message names the key)."""


class UnknownNameError(NeuroscopeError, KeyError):
    """A registry has no entry of that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class RegistryError(NeuroscopeError):
    """Two plugins claim the same name, or a plugin fails to import."""


class DataError(NeuroscopeError):
    """A corpus file is missing, malformed or inconsistent (the message names file and line)."""


class StoreError(NeuroscopeError):
    """An activation store is corrupt or does not match what was asked for."""


class WriteError(NeuroscopeError):
    """A file could not be written (disk full, no permission, read-only file system); the message
    names the path, the config key that chose it and what to do."""
