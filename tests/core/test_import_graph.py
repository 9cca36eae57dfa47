"""No import cycle in the core, the runtime or any plugin package; no plugin imports another; the layers hold.

Read with the standard library's ``ast``, never by importing: every ``import`` / ``from ... import``
statement counts, at module level and inside functions (a deferred import is still a dependency,
it only moves the failure to run time). Imports under ``if TYPE_CHECKING:`` never run: the cycle test
leaves them out, and a second test counts them too: they close no cycle either.
See docs/architecture.md.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "lexiedge"
RUNTIME = ROOT / "runtime" / "lexiedge_runtime"
PLUGINS = ROOT / "plugins"

# The one runtime module allowed to import torch (lazily): ExecuTorch's Python runtime takes torch tensors.
TORCH_RUNNER = "lexiedge_runtime.executorch_runner"

# The plugin machinery: the profile loader is handed a host and names none of these (issue 17).
PLUGIN_MACHINERY = {"lexiedge.api", "lexiedge.hookspecs", "lexiedge.plugin", "lexiedge.registry"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(package: Path) -> dict[str, Path]:
    return {module_name(path, package): path for path in sorted(package.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST, typing: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement under ``node``; the body of ``if TYPE_CHECKING:`` only with ``typing``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif isinstance(child, ast.If) and _is_type_checking(child.test) and not typing:
            for other in child.orelse:
                yield from _imports(ast.Module(body=[other], type_ignores=[]), typing)
        else:
            yield from _imports(child, typing)


def imports_of(name: str, path: Path, *, typing: bool = False) -> Iterator[tuple[str, str | None]]:
    """``(module, name)`` for each ``from module import name``; ``(module, None)`` for ``import module``."""
    is_package = path.name == "__init__.py"
    for node in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path)), typing):
        if isinstance(node, ast.Import):
            yield from ((alias.name, None) for alias in node.names)
            continue
        if node.level:  # relative: from the module's package, up level - 1 more
            base = name.split(".") if is_package else name.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            source = ".".join([*base, *([node.module] if node.module else [])])
        else:
            source = node.module or ""
        yield from ((source, alias.name) for alias in node.names)


def resolve(source: str, imported: str | None, known: Iterable[str]) -> str:
    """The module an import runs: ``source.imported`` when that is a module, else ``source``."""
    return f"{source}.{imported}" if imported and f"{source}.{imported}" in known else source


def core_graph(*, typing: bool = False) -> dict[str, set[str]]:
    """Module -> the lexiedge modules it imports (with ``typing``, also under ``if TYPE_CHECKING:``)."""
    return package_graph(CORE, typing=typing)


def package_graph(package: Path, *, typing: bool = False) -> dict[str, set[str]]:
    """Module -> the modules of its own package it imports (``typing``: also under ``if TYPE_CHECKING:``)."""
    known = modules(package)
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for source, imported in imports_of(name, path, typing=typing):
            target = resolve(source, imported, known)
            if target in known and target != name:
                graph[name].add(target)
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Tarjan's components of more than one module (or a module importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def cycle_path(graph: dict[str, set[str]], component: frozenset[str]) -> list[str]:
    """One cycle through the component, as the import chain a -> b -> ... -> a."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(graph[node] & component):
            if target == start:
                return [*paths[node], start]
            if target not in paths:
                paths[target] = [*paths[node], target]
                queue.append(target)
    raise AssertionError(f"no cycle through {sorted(component)}")


def _cycles_report(graph: dict[str, set[str]], known: list[frozenset[str]]) -> tuple[list[str], list[list[str]]]:
    cycles = strongly_connected(graph)
    new = [
        " -> ".join(cycle_path(graph, c)) + f"  (component: {', '.join(sorted(c))})" for c in cycles if c not in known
    ]
    gone = [sorted(c) for c in known if c not in cycles]
    return new, gone


def test_the_core_has_no_import_cycle() -> None:
    graph = core_graph()
    assert "lexiedge.cli" in graph and "lexiedge.train.engine" in graph  # the walk saw the package
    new, _ = _cycles_report(graph, [])
    assert not new, "import cycles in lexiedge/:\n" + "\n".join(new)


def test_annotation_imports_close_no_cycle_either() -> None:
    new, _ = _cycles_report(core_graph(typing=True), [])
    assert not new, "import cycles in lexiedge/ (counting TYPE_CHECKING imports):\n" + "\n".join(new)


def separate_packages() -> list[Path]:
    """The runtime distribution and every plugin package: each its own import graph."""
    return [RUNTIME, *plugin_packages()]


@pytest.mark.parametrize("typing", [False, True], ids=["imports", "with TYPE_CHECKING imports"])
def test_the_runtime_and_each_plugin_have_no_import_cycle(typing: bool) -> None:
    """Counting imports inside functions (a deferred import still depends), and with ``typing`` the
    annotation-only ones: a package whose modules need each other is one module split in two."""
    packages = separate_packages()
    assert RUNTIME in packages and PLUGINS / "lexiedge_onnx" in packages
    found = []
    for package in packages:
        graph = package_graph(package, typing=typing)
        assert graph, package
        new, _ = _cycles_report(graph, [])
        found += new
    assert not found, "import cycles:\n" + "\n".join(found)


def test_the_profile_loader_and_the_value_types_import_no_plugin_machinery() -> None:
    """profile.py is handed the plugin host; values.py (PluginSettings, DeviceSpec) is a leaf."""
    graph = core_graph(typing=True)
    assert not graph["lexiedge.profile"] & PLUGIN_MACHINERY, sorted(graph["lexiedge.profile"])
    assert graph["lexiedge.values"] == set(), sorted(graph["lexiedge.values"])
    imported = {source.split(".")[0] for source, _ in imports_of("lexiedge.values", CORE / "values.py", typing=True)}
    assert imported <= {"__future__", "typing", "pydantic"}, sorted(imported)


def test_the_cycle_finder_reports_the_path() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    cycles = strongly_connected(graph)
    assert sorted(map(sorted, cycles)) == [["a", "b", "c"], ["e"]]
    assert cycle_path(graph, frozenset("abc")) == ["a", "b", "c", "a"]


def test_function_level_and_relative_imports_count(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\n"
        "def f():\n    from . import b\n"
    )
    found = set(imports_of("pkg.a", package / "a.py"))
    assert ("pkg", "b") in found and ("pkg", "c") not in found
    assert ("pkg", "c") in set(imports_of("pkg.a", package / "a.py", typing=True))
    assert resolve("pkg", "b", {"pkg", "pkg.a", "pkg.b"}) == "pkg.b"


def plugin_packages() -> list[Path]:
    return sorted(path.parent for path in PLUGINS.glob("*/__init__.py"))


def test_no_plugin_imports_another_plugin() -> None:
    packages = {path.name: path for path in plugin_packages()}
    assert {"lexiedge_onnx", "lexiedge_emotion_av", "lexiedge_chat_jsonl"} <= packages.keys()
    crossings = []
    for name, package in packages.items():
        for path in sorted(package.rglob("*.py")):
            module = module_name(path, package)
            for source, _ in imports_of(module, path):
                top = source.split(".")[0]
                if top in packages and top != name:
                    crossings.append(f"{path.relative_to(ROOT)} imports {source}")
    assert not crossings, "plugins import each other:\n" + "\n".join(sorted(set(crossings)))


def test_layers_core_imports_no_plugin_and_runtime_imports_neither() -> None:
    plugins = {path.name for path in plugin_packages()}
    crossings = []
    for name, path in modules(CORE).items():
        crossings += [
            f"{name} imports {source}" for source, _ in imports_of(name, path) if source.split(".")[0] in plugins
        ]
    runtime = RUNTIME
    assert "lexiedge_runtime.classifier" in modules(runtime)
    forbidden = plugins | {"lexiedge", "torch", "pydantic"}
    for name, path in modules(runtime).items():
        refused = forbidden - {"torch"} if name == TORCH_RUNNER else forbidden
        crossings += [
            f"{name} imports {source}" for source, _ in imports_of(name, path) if source.split(".")[0] in refused
        ]
    assert not crossings, "\n".join(crossings)


def test_the_torch_runner_imports_torch_only_inside_functions() -> None:
    """The exception above is lazy: importing the runner module (the registry never does before an
    ExecuTorch artifact is opened) imports neither torch nor ExecuTorch."""
    path = RUNTIME / "executorch_runner.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    named = {alias.name for node in top_level if isinstance(node, ast.Import) for alias in node.names}
    named |= {node.module or "" for node in top_level if isinstance(node, ast.ImportFrom)}
    assert not {name for name in named if name.split(".")[0] in {"torch", "executorch"}}, sorted(named)
    others = {name for name in modules(RUNTIME) if name != TORCH_RUNNER}
    importers = [name for name in others for source, imported in imports_of(name, modules(RUNTIME)[name])
                 if resolve(source, imported, modules(RUNTIME)) == TORCH_RUNNER]
    assert importers == [], f"runtime modules import the torch runner: {importers}"
