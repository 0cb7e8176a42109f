"""Registration from built-ins, plugin folders and entry points; clear errors for bad names."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from neuroscope import registry
from neuroscope.errors import RegistryError, UnknownNameError
from neuroscope.registry import MODELS, TASKS, Registry


def test_builtins_are_registered() -> None:
    assert {"upos", "xpos", "deprel", "morph", "suffix", "chunk", "neurox"} <= set(TASKS.names())
    assert {"minilm", "transformer"} <= set(MODELS.names())
    assert {"conllu", "conll2000", "neurox"} <= set(registry.READERS.names())


def test_decorator_registers_and_returns_the_object() -> None:
    reg: Registry = Registry("method")

    @reg.register("lca")
    def lca() -> str:
        return "ok"

    assert reg.get("lca") is lca and lca() == "ok"
    assert "lca" in reg and reg.origin("lca") == __file__


def test_unknown_name_suggests_close_match_and_lists_known() -> None:
    reg: Registry = Registry("method")
    reg.register("lca")(lambda: None)
    reg.register("probeless")(lambda: None)
    with pytest.raises(UnknownNameError) as err:
        reg.get("lcaa")
    msg = str(err.value)
    assert "unknown method 'lcaa'" in msg and "did you mean 'lca'" in msg
    assert "known: lca, probeless" in msg


def test_duplicate_name_from_another_file_fails_naming_both(tmp_path: Path) -> None:
    reg: Registry = Registry("task")
    reg.register("upos")(lambda s: s)
    other = tmp_path / "other.py"
    other.write_text("def f(s):\n    return s\n")
    namespace: dict = {}
    exec(compile(other.read_text(), str(other), "exec"), namespace)
    with pytest.raises(RegistryError, match=r"registered twice: first in .*test_registry.py, again in .*other.py"):
        reg.register("upos")(namespace["f"])


def _plugin(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return path


def test_plugin_folder_files_are_imported(tmp_path: Path) -> None:
    _plugin(tmp_path / "plugins", "mylab_rank", """
        from neuroscope.registry import METHODS

        @METHODS.register("mylab.ones")
        def ones(acts, labels):
            return acts.sum(0) * 0 + 1
    """)
    registry.set_plugin_dirs([tmp_path / "plugins"])
    try:
        assert "mylab.ones" in registry.METHODS
        assert registry.METHODS.origin("mylab.ones").endswith("mylab_rank.py")
    finally:
        registry.METHODS.unregister("mylab.ones")
        registry.set_plugin_dirs(["plugins"])


def test_broken_plugin_file_names_the_file(tmp_path: Path) -> None:
    _plugin(tmp_path / "bad", "broken", "raise RuntimeError('boom')\n")
    registry.set_plugin_dirs([tmp_path / "bad"])
    try:
        with pytest.raises(RegistryError, match=r"broken.py failed to import: boom"):
            registry.load_plugins()
    finally:
        registry.set_plugin_dirs(["plugins"])


def test_entry_point_plugins_are_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed package declaring the `neuroscope.plugins` group registers on discovery."""
    pkg = tmp_path / "site" / "nsx_extra"
    _plugin(pkg, "__init__", """
        from neuroscope.registry import TASKS

        @TASKS.register("nsx_extra.length")
        def length(sentence):
            return [str(len(w)) for w in sentence.words]
    """)
    dist = tmp_path / "site" / "nsx_extra-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: nsx-extra\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[neuroscope.plugins]\nextra = nsx_extra\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    try:
        assert "nsx_extra.length" in TASKS
        assert TASKS.origin("nsx_extra.length").endswith("__init__.py")
    finally:
        TASKS.unregister("nsx_extra.length")
        sys.modules.pop("nsx_extra", None)
