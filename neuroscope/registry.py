"""Plugin registries, one per kind, and discovery of plugins from three sources.

Sources: built-in modules of `neuroscope`, every `*.py` in a plugins folder, and installed
packages that declare the entry-point group ``neuroscope.plugins``.

Built-ins are lazy where importing them is costly: a package may list `BUILTINS = {name: module}`
(e.g. `neuroscope.models`), and asking for one of those names imports only its module. So a study
on a built store never imports torch, Lightning or transformers. Listing names loads everything;
a name that is not a built-in loads the plugins, and an unknown name lists the lazy built-ins
without importing them.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import logging
import sys
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Generic, TypeVar

from neuroscope.errors import RegistryError, UnknownNameError

log = logging.getLogger(__name__)

T = TypeVar("T")
ENTRY_POINT_GROUP = "neuroscope.plugins"


class Registry(Generic[T]):
    """A name → object table filled by the `register` decorator."""

    def __init__(self, kind: str, package: str | None = None) -> None:
        self.kind = kind
        self.package = package  # built-ins: a package that registers them, or lists BUILTINS
        self._entries: dict[str, T] = {}
        self._origins: dict[str, str] = {}

    def register(self, name: str | None = None) -> Callable[[T], T]:
        """Decorator: `@METHODS.register("lca")`; without a name the object's `__name__` is used."""

        def decorator(obj: T) -> T:
            key = name or getattr(obj, "__name__", None)
            if not key:
                raise RegistryError(f"cannot register an unnamed {self.kind}: pass a name")
            origin = _origin(obj)
            if key in self._entries and self._entries[key] is not obj:
                if self._origins[key] == origin:  # the same file imported twice (e.g. re-run)
                    self._entries[key] = obj
                    return obj
                raise RegistryError(
                    f"{self.kind} '{key}' is registered twice: first in {self._origins[key]}, "
                    f"again in {origin}; rename one of them"
                )
            self._entries[key] = obj
            self._origins[key] = origin
            return obj

        return decorator

    def get(self, name: str) -> T:
        """The entry called `name`; an unknown name fails with close matches and the known names."""
        if name in self._entries:
            return self._entries[name]
        self._load_builtin(name)
        if name not in self._entries:
            load_plugins(lazy_builtins=False)  # plugin folders and entry points
        if name in self._entries:
            return self._entries[name]
        names = sorted(set(self._entries) | set(self.builtins()))  # lazy built-ins listed, not imported
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        known = ", ".join(names) or "(none)"
        raise UnknownNameError(f"unknown {self.kind} '{name}'{hint} known: {known}")

    def builtins(self) -> dict[str, str]:
        """{name: module} of the lazy built-ins (importing the package registers the others)."""
        if self.package is None:
            return {}
        return dict(getattr(_import_once(self.package), "BUILTINS", {}))

    def _load_builtin(self, name: str) -> None:
        """Import the built-ins package (registering its eager entries) and, when `name` is a
        lazy built-in, only that entry's module."""
        module = self.builtins().get(name)
        if module is not None:
            _import_once(module)

    def origin(self, name: str) -> str:
        """Where the entry was defined (file path)."""
        self.get(name)
        return self._origins[name]

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def unregister(self, name: str) -> None:
        """Remove an entry (for tests and interactive sessions)."""
        self._entries.pop(name, None)
        self._origins.pop(name, None)


def _origin(obj: Any) -> str:
    try:
        return inspect.getsourcefile(obj) or getattr(obj, "__module__", "?")
    except TypeError:
        return getattr(obj, "__module__", "?")


MODELS: Registry[Any] = Registry("model", "neuroscope.models")
TASKS: Registry[Any] = Registry("task", "neuroscope.tasks")
METHODS: Registry[Any] = Registry("method", "neuroscope.methods")
EXPERIMENTS: Registry[Any] = Registry("experiment", "neuroscope.experiments")
READERS: Registry[Any] = Registry("reader", "neuroscope.data.readers")
BUILTIN_MODULES = tuple(r.package for r in (READERS, TASKS, MODELS, METHODS, EXPERIMENTS) if r.package)
PROJECT_ROOT = Path(__file__).resolve().parents[1]  # conf/, plugins/ of a source checkout

_loaded: set[str] = set()
_plugin_dirs: list[Path] = [Path("plugins")]


def set_plugin_dirs(dirs: list[str | Path]) -> None:
    """Folders whose `*.py` files are imported as plugins (config key `plugins.dirs`); a relative
    folder is looked up in the working directory, else in the project (a notebook elsewhere
    still finds the project's `plugins/`)."""
    _plugin_dirs[:] = [plugin_dir(d) for d in dirs]


def plugin_dirs() -> list[Path]:
    """The plugin folders in use (`plugins.dirs`, as resolved), e.g. for worker processes."""
    return [d.resolve() for d in _plugin_dirs]


def plugin_dir(folder: str | Path) -> Path:
    """`folder` as given when absolute or present under the working directory, else under the project."""
    path = Path(folder).expanduser()
    if path.is_absolute() or path.is_dir() or not (PROJECT_ROOT / path).is_dir():
        return path
    return PROJECT_ROOT / path


def _import_once(module: str) -> Any:
    """Import a built-in module (a no-op after the first time)."""
    _loaded.add(module)
    return importlib.import_module(module)


def load_plugins(lazy_builtins: bool = True) -> None:
    """Import built-ins (the lazy ones too unless `lazy_builtins` is false), plugin folders and
    entry points, each at most once per process."""
    for module in BUILTIN_MODULES:
        package = _import_once(module)
        for lazy in getattr(package, "BUILTINS", {}).values() if lazy_builtins else ():
            _import_once(lazy)
    for folder in _plugin_dirs:
        for path in sorted(folder.glob("*.py")) if folder.is_dir() else []:
            key = str(path.resolve())
            if key not in _loaded:
                _loaded.add(key)
                _import_file(path)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        key = f"entry-point:{ep.name}={ep.value}"
        if key not in _loaded:
            _loaded.add(key)
            try:
                ep.load()
            except Exception as exc:  # a broken third-party plugin must say who it is
                raise RegistryError(
                    f"plugin entry point '{ep.name}' ({ep.value}) of group "
                    f"'{ENTRY_POINT_GROUP}' failed to load: {exc}"
                ) from exc


def _import_file(path: Path) -> None:
    name = f"neuroscope_plugins.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RegistryError(f"cannot import plugin file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise RegistryError(f"plugin file {path} failed to import: {exc}") from exc
    log.debug("loaded plugin file %s", path)
