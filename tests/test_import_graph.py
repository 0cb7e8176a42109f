"""The package's import graph has no cycles, between modules or between its folders.

Every import counts, function-level ones included (they hide cycles rather than remove them);
only imports under `if TYPE_CHECKING:` are left out, since they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "neuroscope"


def module_name(path: Path) -> str:
    """`neuroscope/a/b.py` → `neuroscope.a.b`; a package's `__init__.py` → the package."""
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """All nodes of `tree` except those inside an `if TYPE_CHECKING:` block."""
    out, todo = [], [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        for child in ast.iter_child_nodes(node):
            test = getattr(child, "test", None)
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(test):
                todo.extend(child.orelse)
                continue
            todo.append(child)
    return out


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module → the package's modules it imports at run time."""
    files = {module_name(p): p for p in package.rglob("*.py")}

    def known(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        here = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        targets = set()
        for node in runtime_nodes(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets |= {known(a.name) for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(up + ([base] if base else []))
                for a in node.names:  # `from pkg import module` imports the module itself
                    full = f"{base}.{a.name}"
                    targets.add(full if full in files else known(base))
        graph[mod] = {t for t in targets if t and t != mod and t.startswith(package.name)}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def folder_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The same graph between the package's first-level folders and modules.

    The root package is left out: it is the facade (`ns.study` imports the API lazily), and
    modules read only `__version__` from it."""
    top = lambda m: ".".join(m.split(".")[:2])  # noqa: E731
    root = PACKAGE.name
    out: dict[str, set[str]] = {}
    for mod, targets in graph.items():
        if mod != root:
            out.setdefault(top(mod), set()).update(top(t) for t in targets if top(t) not in (top(mod), root))
    return out


def test_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_graph_reads_relative_function_level_and_type_checking_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "neuroscope"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "low.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from neuroscope.sub import x\n")
    (pkg / "sub" / "x.py").write_text("def f():\n    from .. import low\n    from . import y\n")
    (pkg / "sub" / "y.py").write_text("import neuroscope.low\n")
    import tests.test_import_graph as me

    old = me.REPO
    me.REPO = tmp_path
    try:
        graph = import_graph(pkg)
    finally:
        me.REPO = old
    assert graph["neuroscope.low"] == set()
    assert graph["neuroscope.sub.x"] == {"neuroscope.low", "neuroscope.sub.y"}
    assert graph["neuroscope.sub.y"] == {"neuroscope.low"}


def test_no_import_cycles_between_modules() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" ↔ ".join(c) for c in found)


def test_no_import_cycles_between_folders() -> None:
    graph = import_graph()
    found = cycles(folder_graph(graph))
    detail = [f"{a} → {b}" for c in found for a in c for b in sorted(graph.get(a, ())) if b in c]
    assert not found, "folder cycles: " + "; ".join(" ↔ ".join(c) for c in found) + " " + "; ".join(detail)
