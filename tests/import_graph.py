"""The import graph of ``src/edgestore``, read from the source with ``ast``.

Used by ``tests/test_architecture.py``; run it to print the graph and its problems:
``python tests/import_graph.py [src/edgestore]``.

Every import counts, wherever it is written: at module level, inside a function (a lazy
import still couples the two modules) and under ``if TYPE_CHECKING:`` (an annotation names the
other module's types; such imports must obey the same direction and close no cycle).
``importlib.import_module(...)`` and ``__import__(...)`` are reported as dynamic imports:
the graph cannot see where they lead, so each one is a problem unless its module is in
``DYNAMIC_ALLOWED`` with the reason it needs one.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = "edgestore"

# Layers, lowest first: a module may import modules of its own layer or of lower ones.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"errors", "config", "_version"}),
    frozenset({"storage"}),
    frozenset({"cache", "tables", "memory", "auth"}),
    frozenset({"hrana"}),
    frozenset({"replication", "migrate", "sqlalchemy"}),
    # edgestore.open composes the store with its cache and its replication role.
    frozenset({"opening"}),
    frozenset({"web"}),
    frozenset({"cli"}),
)
# The package itself (``edgestore/__init__.py``) re-exports the library: it sits with the
# factory that composes the store with its cache and replication role, above both.
ROOT_LAYER = "opening"

# Modules allowed to import dynamically, and why.
DYNAMIC_ALLOWED = {
    # `edgestore --help` must not import every command's dependencies (migrate pulls in
    # psycopg and pyarrow): commands are imported by name, from this package, on first use.
    "edgestore.cli.main": "lazy CLI commands (cli/main.py COMMANDS, all in edgestore.cli)",
}


@dataclass
class Graph:
    modules: dict[str, Path]
    edges: dict[str, set[str]] = field(default_factory=dict)
    dynamic: dict[str, list[int]] = field(default_factory=dict)


def module_name(src: Path, path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(src).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module an imported name lives in (``a.b.C`` -> ``a.b``), or None if not ours."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _package_of(name: str, path: Path) -> list[str]:
    parts = name.split(".")
    return parts if path.name == "__init__.py" else parts[:-1]


def _imported_names(node: ast.AST, package: list[str]) -> Iterable[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        if node.level:
            base = package[: len(package) - node.level + 1]
            module = ".".join([*base, node.module] if node.module else base)
        else:
            module = node.module or ""
        yield module
        yield from (f"{module}.{alias.name}" for alias in node.names)


def _is_dynamic(node: ast.AST) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    if isinstance(func, ast.Name):
        return func.id in ("__import__", "import_module")
    return isinstance(func, ast.Attribute) and func.attr in ("import_module", "__import__")


def build(src: Path) -> Graph:
    paths = sorted(p for p in src.rglob("*.py") if "__pycache__" not in p.parts)
    graph = Graph({module_name(src, p): p for p in paths})
    for name, path in graph.modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = _package_of(name, path)
        targets: set[str] = set()
        for node in ast.walk(tree):
            for imported in _imported_names(node, package):
                target = _resolve(imported, graph.modules)
                if target is not None and target != name:
                    targets.add(target)
            if _is_dynamic(node):
                graph.dynamic.setdefault(name, []).append(getattr(node, "lineno", 0))
        graph.edges[name] = targets
    return graph


def layer_of(module: str) -> int:
    parts = module.split(".")
    part = parts[1] if len(parts) > 1 else ROOT_LAYER
    for index, members in enumerate(LAYERS):
        if part in members:
            return index
    raise KeyError(f"{module}: {part!r} is in no layer (add it to LAYERS)")


def cycles(graph: Graph) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    # The walk recurses once per module on a path; the process-wide limit is put back after,
    # because the server's JSON depth check relies on the default limit (see hrana/framing.py).
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for v in sorted(graph.modules):
            if v not in index:
                visit(v)
    finally:
        sys.setrecursionlimit(limit)
    return found


def problems(src: Path) -> list[str]:
    """What is wrong with the imports under ``src``: cycles, upward imports, dynamic ones."""
    graph = build(src)
    out: list[str] = []
    for component in cycles(graph):
        out.append("cycle: " + " <-> ".join(component))
    for module, targets in sorted(graph.edges.items()):
        for target in sorted(targets):
            if layer_of(target) > layer_of(module):
                out.append(f"upward import: {module} -> {target}")
    for module, lines in sorted(graph.dynamic.items()):
        if module not in DYNAMIC_ALLOWED:
            where = ", ".join(str(line) for line in lines)
            out.append(f"dynamic import: {module} (line {where})")
    return out


def main(argv: list[str]) -> int:
    src = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "src" / PACKAGE
    graph = build(src)
    for module in sorted(graph.modules):
        inside = sorted(t for t in graph.edges[module] if t.startswith(PACKAGE))
        print(f"{module} -> {', '.join(inside) if inside else '(nothing of ours)'}")
    found = problems(src)
    for line in found:
        print("PROBLEM", line)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
