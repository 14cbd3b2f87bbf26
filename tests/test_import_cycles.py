"""No import cycles: among the modules of sdelang and of the backends, no module imports (at
module level or inside a function) a module that imports it back, directly or transitively."""
from __future__ import annotations

import ast
import os
from typing import Dict, List, Optional, Set

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = {  # top-level package -> its directory
    "sdelang": os.path.join(ROOT, "sdelang"),
    "sdelang_torch": os.path.join(ROOT, "backends", "sdelang_torch"),
    "sdelang_jax": os.path.join(ROOT, "backends", "sdelang_jax"),
}

def module_files() -> Dict[str, str]:
    """Dotted module name -> file, for every module in the graph."""
    modules = {}
    for package, directory in PACKAGES.items():
        for folder, dirs, files in os.walk(directory):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for filename in sorted(files):
                if not filename.endswith(".py"):
                    continue
                parts = [package] + os.path.relpath(folder, directory).split(os.sep)
                parts = [p for p in parts if p != "."]
                if filename != "__init__.py":
                    parts.append(filename[:-3])
                modules[".".join(parts)] = os.path.join(folder, filename)
    return modules


def _resolve(module: str, is_package: bool, level: int, name: Optional[str]) -> str:
    """The absolute name of ``from <level dots><name> import ...`` written in ``module``."""
    if level == 0:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def imports_of(module: str, path: str, known: Set[str]) -> Set[str]:
    """The modules of ``known`` that ``module`` imports anywhere in its file (functions included).

    ``from a import b`` counts as importing ``a.b`` when that is a module, else ``a``; importing
    ``a.b.c`` also runs the package ``__init__`` of ``a`` and ``a.b``, which count too.
    """
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), filename=path)
    is_package = path.endswith("__init__.py")
    targets: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node.level, node.module)
            for alias in node.names:
                submodule = f"{base}.{alias.name}" if base else alias.name
                targets.add(submodule if submodule in known else base)
    found = set()
    for target in targets:
        parts = target.split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            if name in known and name != module:
                found.add(name)
    return found


def import_graph() -> Dict[str, Set[str]]:
    files = module_files()
    known = set(files)
    return {module: imports_of(module, path, known) for module, path in files.items()}


def _without_package_inits(graph: Dict[str, Set[str]]) -> Dict[str, Set[str]]:
    """The graph without the edges from a module to the ``__init__`` of a package it lies in:
    ``sdelang.model.build`` importing ``sdelang.model.symbols`` runs ``sdelang.model`` first, but that
    is the import system entering the package, not a dependency of ``build`` on its package."""
    return {
        module: {t for t in targets if not module.startswith(t + ".")}
        for module, targets in graph.items()
    }


def find_cycle(graph: Dict[str, Set[str]]) -> Optional[List[str]]:
    """A cycle ``[a, b, ..., a]`` of the graph, or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = {node: WHITE for node in graph}
    stack: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        colour[node] = GREY
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if colour.get(target, BLACK) == GREY:
                return stack[stack.index(target):] + [target]
            if colour.get(target) == WHITE:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        colour[node] = BLACK
        return None

    for node in sorted(graph):
        if colour[node] == WHITE:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def all_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """One cycle per strongly connected component that has one (for the failure message)."""
    cycles = []
    remaining = {node: set(targets) for node, targets in graph.items()}
    while True:
        cycle = find_cycle(remaining)
        if cycle is None:
            return cycles
        cycles.append(cycle)
        remaining[cycle[-2]].discard(cycle[-1])  # break it, look for the next one


def test_the_graph_covers_the_front_end_and_the_backends():
    graph = import_graph()
    assert "sdelang.model.model" in graph and "sdelang.derive.reverse" in graph
    assert "sdelang_torch.backend" in graph and "sdelang_jax.codegen" in graph
    assert "sdelang.model.model" in graph["sdelang.derive.reverse"] or any(
        "sdelang.model" in t for t in graph["sdelang.derive.reverse"])


def test_the_cycle_finder_finds_a_function_level_cycle(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text("def f():\n    from .a import g\n")
    known = {"pkg", "pkg.a", "pkg.b"}
    graph = {m: imports_of(m, str(tmp_path / (m.replace('.', '/') + ('/__init__.py' if m == 'pkg' else '.py'))), known)
             for m in known}
    assert find_cycle(_without_package_inits(graph)) == ["pkg.a", "pkg.b", "pkg.a"]


def test_no_import_cycles():
    graph = _without_package_inits(import_graph())
    cycles = all_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join("  " + " -> ".join(c) for c in cycles)
