"""No import circle anywhere in operator/ or e2e/: a module graph with a cycle has no reading order.

The graph is grimp's (the library import-linter runs on); TYPE_CHECKING imports count, since a
circle drawn only for the type checker is still a circle a reader must untangle.
"""

from __future__ import annotations

from collections.abc import Iterable

import grimp
import pytest

from tests.conftest import REPO_ROOT

_ROOTS = {
    "operator": ("gridshift", "gridshift_dev"),
    "e2e": ("e2e", "gscluster"),
}


def import_cycles(graph: grimp.ImportGraph, roots: Iterable[str]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), sorted."""
    prefixes = tuple(roots)
    modules = sorted(m for m in graph.modules if m.split(".")[0] in prefixes)
    inside = set(modules)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module) & inside):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return sorted(cycles)


@pytest.mark.parametrize("tree", sorted(_ROOTS))
def test_no_import_cycles(tree: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for path in (REPO_ROOT, REPO_ROOT / "operator", REPO_ROOT / "e2e" / "cluster"):
        monkeypatch.syspath_prepend(str(path))
    graph = grimp.build_graph(*_ROOTS[tree], cache_dir=None)
    assert import_cycles(graph, _ROOTS[tree]) == [], f"import circles in {tree}/"


def test_a_cycle_is_found() -> None:
    """The detector itself: a two-module circle in a graph built by hand."""
    graph = grimp.ImportGraph()
    for module in ("pkg", "pkg.a", "pkg.b", "pkg.c"):
        graph.add_module(module)
    graph.add_import(importer="pkg.a", imported="pkg.b")
    graph.add_import(importer="pkg.b", imported="pkg.a")
    graph.add_import(importer="pkg.c", imported="pkg.a")
    assert import_cycles(graph, ["pkg"]) == [["pkg.a", "pkg.b"]]
