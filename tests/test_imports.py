"""Imports inside `webapp/` point one way: no cycle, and no module imports another module's `_private` names.

Read from the source with `ast` (every import, also those inside functions: an import deferred into a function
to dodge a cycle is still the cycle). A package's own `__init__` is the package's module; importing a submodule
does not count as importing its parent package (Python does that implicitly, it is no dependency).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "webapp"


def module_names(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, for its __init__.py)."""
    names = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imports_of(name: str, path: Path, modules: dict[str, Path],
               package: str = PACKAGE) -> list[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for each import of the package's modules in `path`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names if alias.name in modules]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base != package and not base.startswith(package + "."):
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                if submodule in modules:  # `from webapp.services import validation`: the module itself
                    found.append((submodule, None, node.lineno))
                elif base in modules:
                    found.append((base, alias.name, node.lineno))
    return found


def graph(root: Path = ROOT, package: str = PACKAGE) -> tuple[dict[str, set[str]], list[str]]:
    """The import graph between the package's modules, and every cross-module import of a `_private` name."""
    modules = module_names(root, package)
    edges: dict[str, set[str]] = {name: set() for name in modules}
    private = []
    for name, path in modules.items():
        for target, imported, line in imports_of(name, path, modules, package):
            if target != name:
                edges[name].add(target)
            if imported and imported.startswith("_") and not imported.startswith("__") and target != name:
                private.append(f"{path.relative_to(root)}:{line} imports {target}.{imported}")
    return edges, private


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_webapp_has_no_import_cycle():
    edges, _ = graph()
    assert len(edges) > 40  # the walk found the package
    assert cycles(edges) == []


def test_no_module_imports_another_modules_private_names():
    _, private = graph()
    assert private == []


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize("files, expected", [
    ({"pkg/__init__.py": "", "pkg/a.py": "from pkg import b\n", "pkg/b.py": "from pkg.a import thing\n"},
     [["pkg.a", "pkg.b"]]),
    ({"pkg/__init__.py": "", "pkg/a.py": "def later():\n    from pkg import b\n", "pkg/b.py": "import pkg.a\n"},
     [["pkg.a", "pkg.b"]]),  # deferred into a function: still a cycle
    ({"pkg/__init__.py": "from pkg import views\n", "pkg/views/__init__.py": "from .pages import bp\n",
      "pkg/views/pages.py": "from pkg.views import helper\n"}, [["pkg.views", "pkg.views.pages"]]),
    ({"pkg/__init__.py": "", "pkg/a.py": "from pkg import b\n", "pkg/b.py": "x = 1\n"}, []),
])
def test_the_cycle_check_finds_planted_cycles(tmp_path, files, expected):
    _write(tmp_path, files)
    edges, _ = graph(tmp_path, "pkg")
    assert cycles(edges) == expected


def test_the_private_check_finds_a_planted_private_import(tmp_path):
    _write(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "_hidden = 1\nfrom pkg.a import _hidden as again\n",
                      "pkg/b.py": "from pkg.a import _hidden, __all__, public\n"})
    _, private = graph(tmp_path, "pkg")
    assert private == ["pkg/b.py:1 imports pkg.a._hidden"]
