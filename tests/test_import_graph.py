"""The package's imports go one way: no cycles, and the two programs kept apart.

Two programs share garm_provider_lxd: the GARM commands (cli -> provider -> lxd, on the Rust
transport) and the operator commands run by hand (the `admin` subpackage, on pylxd). What both
need lives in shared modules (instances, config, specs, bootstrap, ...). The rules:

- nothing outside `admin` imports it, except the command line's dispatch (`cli`);
- nothing outside `admin` imports pylxd or requests;
- nothing in `admin` reaches `provider` (the GARM command class), however indirectly;
- no module imports itself back, however indirectly.

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
ADMIN = f"{PACKAGE}.admin"
# The one module outside `admin` that may import it: the command line hands it every invocation
# that has arguments.
ADMIN_DISPATCH = f"{PACKAGE}.cli"
OPERATOR_ONLY_LIBRARIES = {"pylxd", "requests"}
GARM_COMMAND_CLASS = f"{PACKAGE}.provider"


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


def external_imports(root: Path, package: str) -> dict[str, set[str]]:
    """Return {module: the top-level names of the other distributions it imports}.

    Every import counts here, type-only ones too: a module outside `admin` has no business
    naming pylxd even for the type checker.
    """
    names: dict[str, set[str]] = {}
    for module, path in _module_names(root, package).items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                found.add(node.module.split(".")[0])
        names[module] = found - {package}
    return names


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module start imports, directly or through others."""
    seen: set[str] = set()
    pending = [start]
    while pending:
        for target in graph[pending.pop()]:
            if target not in seen:
                seen.add(target)
                pending.append(target)
    return seen


def _in_admin(module: str) -> bool:
    return module == ADMIN or module.startswith(ADMIN + ".")


def admin_imported_from_outside(graph: dict[str, set[str]]) -> list[str]:
    """'importer -> imported' for each import of `admin` from outside it, but the dispatch's."""
    return [
        f"{module} -> {target}"
        for module, targets in sorted(graph.items())
        if not _in_admin(module) and module != ADMIN_DISPATCH
        for target in sorted(targets)
        if _in_admin(target)
    ]


def operator_libraries_outside_admin(external: dict[str, set[str]]) -> list[str]:
    """'module -> library' for each pylxd or requests import outside `admin`."""
    return [
        f"{module} -> {library}"
        for module, libraries in sorted(external.items())
        if not _in_admin(module)
        for library in sorted(libraries & OPERATOR_ONLY_LIBRARIES)
    ]


def admin_modules_reaching_the_provider(graph: dict[str, set[str]]) -> list[str]:
    """The modules of `admin` that load provider.py, directly or through shared modules."""
    return [
        module
        for module in sorted(graph)
        if _in_admin(module) and GARM_COMMAND_CLASS in reachable(graph, module)
    ]


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


def test_only_the_command_line_dispatch_imports_the_operator_commands() -> None:
    graph = import_graph(REPO_ROOT / "python", PACKAGE)
    assert ADMIN in graph and ADMIN_DISPATCH in graph
    assert f"{ADMIN}.cli" in graph[ADMIN_DISPATCH]
    assert admin_imported_from_outside(graph) == []


def test_pylxd_and_requests_are_imported_only_by_the_operator_commands() -> None:
    external = external_imports(REPO_ROOT / "python", PACKAGE)
    assert "pylxd" in external[f"{ADMIN}.pylxd_client"]
    assert operator_libraries_outside_admin(external) == []


def test_the_operator_commands_never_load_the_garm_command_class() -> None:
    graph = import_graph(REPO_ROOT / "python", PACKAGE)
    assert GARM_COMMAND_CLASS in reachable(graph, ADMIN_DISPATCH)
    assert admin_modules_reaching_the_provider(graph) == []


def test_the_direction_rules_catch_each_wrong_import(tmp_path: Path) -> None:
    package = tmp_path / PACKAGE
    (package / "admin").mkdir(parents=True)
    for name in ("__init__", "cli", "provider", "shared", "images"):
        (package / f"{name}.py").write_text("")
    (package / "cli.py").write_text("def main():\n    from .admin import cli\n")
    (package / "shared.py").write_text("from . import provider\n")
    (package / "images.py").write_text(
        "TYPE_CHECKING = False\nif TYPE_CHECKING:\n    import requests.adapters\n"
        "from .admin.status import x\n"
    )
    (package / "admin" / "__init__.py").write_text("")
    (package / "admin" / "cli.py").write_text("import pylxd\n")
    (package / "admin" / "status.py").write_text("def f():\n    from ..shared import y\n")
    graph = import_graph(tmp_path, PACKAGE)
    assert admin_imported_from_outside(graph) == [f"{PACKAGE}.images -> {ADMIN}.status"]
    external = external_imports(tmp_path, PACKAGE)
    assert operator_libraries_outside_admin(external) == [f"{PACKAGE}.images -> requests"]
    assert admin_modules_reaching_the_provider(graph) == [f"{ADMIN}.status"]


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
