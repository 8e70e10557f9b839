"""No module of garm_provider_lxd imports itself back, however indirectly.

Two modules that import each other are one job split in two (STYLE.md), and a cycle makes
the order modules load in matter. The graph is read from the source with `ast`, not by
importing it: an edge is any import that can run, at module level or inside a function
(a lazy import still runs, and still couples the two modules). Imports under
`if TYPE_CHECKING:` are left out: they never run, and type checkers handle cycles among
them. A submodule's implicit import of its own package is left out too (Python runs the
package first whatever the submodule says), so a package may import its submodules.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO_ROOT

PACKAGE = "garm_provider_lxd"


def _module_names(root: Path, package: str) -> dict[str, Path]:
    """Map each module's dotted name to its file, for every .py file of the package."""
    names: dict[str, Path] = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that can run: all of them except under `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))
    return found


def _targets(
    module: str, is_package: bool, node: ast.Import | ast.ImportFrom, modules: set[str]
) -> set[str]:
    """The package's modules one import statement loads (ignoring implied parent packages)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    if node.level:
        base = module.split(".")
        if not is_package:
            base.pop()
        base = base[: len(base) - (node.level - 1)]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    targets = set()
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        if submodule in modules:
            targets.add(submodule)
        elif source in modules:
            targets.add(source)
    return targets


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Return {module: the modules of the package it imports} for every module of package."""
    files = _module_names(root, package)
    modules = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), str(path))
        is_package = path.name == "__init__.py"
        edges: set[str] = set()
        for node in _imports(tree):
            edges |= _targets(module, is_package, node, modules)
        graph[module] = edges - {module}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return one cycle (a path that ends where it starts) for each back edge a DFS meets."""
    cycles: list[list[str]] = []
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(module: str) -> None:
        path.append(module)
        on_path.add(module)
        for target in sorted(graph[module]):
            if target in on_path:
                cycles.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target)
        on_path.discard(path.pop())
        done.add(module)

    for module in sorted(graph):
        if module not in done:
            visit(module)
    return cycles


def test_no_module_of_the_package_imports_itself_back() -> None:
    graph = import_graph(REPO_ROOT / "python", PACKAGE)
    cycles = find_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_graph_sees_lazy_and_relative_imports() -> None:
    graph = import_graph(REPO_ROOT / "python", PACKAGE)
    # Module level, `from .errors import ...`.
    assert "garm_provider_lxd.errors" in graph["garm_provider_lxd.cli"]
    # Inside a function (userdata imports the template package when a pool has a template).
    assert "garm_provider_lxd.gotemplate" in graph["garm_provider_lxd.userdata"]
    # `from ..errors import ...` in a subpackage; `from . import tokens as lx`.
    assert "garm_provider_lxd.errors" in graph["garm_provider_lxd.gotemplate.parser"]
    assert "garm_provider_lxd.gotemplate.tokens" in graph["garm_provider_lxd.gotemplate.parser"]


def test_a_cycle_through_a_lazy_import_is_found(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .sub import b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("def f():\n    from ..a import x\n")
    (package / "c.py").write_text(
        "TYPE_CHECKING = False\nif TYPE_CHECKING:\n    from . import a\nelse:\n    import pkg.d\n"
    )
    (package / "d.py").write_text("from pkg import c\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.c"] == {"pkg.d"}
    assert find_cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.a"], ["pkg.c", "pkg.d", "pkg.c"]]
