"""The direction of imports is the architecture (README, "Development" / "Layout").

Layers, lowest first (tests/import_graph.py, ``LAYERS``): errors/config -> storage -> cache,
tables, memory, auth -> hrana -> replication, migrate, sqlalchemy -> opening (the
``edgestore.open`` factory) -> web -> cli. Imports only point down; within a layer and across,
no import cycle. ``if TYPE_CHECKING:`` imports count like any other (an annotation couples the two
modules all the same), so they too point down and close no cycle. Dynamic imports
(``importlib.import_module``, ``__import__``) hide an edge from the graph: each one fails unless
its module is in ``DYNAMIC_ALLOWED`` with its reason.

The core never imports a web or CLI framework, HTTP status codes live in one module of web, and
no module reads another module's private (underscore) names.
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

from tests import import_graph

SRC = Path(__file__).resolve().parent.parent / "src" / "edgestore"
FRAMEWORKS = {"litestar", "click", "granian", "uvicorn", "starlette", "fastapi"}
FRAMEWORK_FREE = {"errors", "config", "_version", "storage", "cache", "tables", "memory"}
FRAMEWORK_FREE |= {"auth", "opening", "hrana", "migrate", "replication"}

# Private names of other libraries read on purpose, and why (the comment at the use says more).
FOREIGN_PRIVATE_ALLOWED = {
    # A lookup through cachetools' Python-level __getitem__ costs more than the whole hit.
    ("cache/lru_space.py", "_Cache__data"),
    ("cache/lru_space.py", "_LRUCache__order"),
    # Preparing a statement for the authorizer without binding values (analysis.py).
    ("storage/analysis.py", "_null_bindings"),
}


def _modules(src: Path = SRC) -> list[Path]:
    return sorted(p for p in src.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_import_graph_has_no_cycle_upward_or_dynamic_import() -> None:
    assert import_graph.problems(SRC) == []


def test_every_module_is_in_a_layer() -> None:
    graph = import_graph.build(SRC)
    for module in graph.modules:
        import_graph.layer_of(module)  # raises KeyError for a part in no layer


def _plant(tmp_path: Path) -> Path:
    src = tmp_path / "edgestore"
    shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("__pycache__"))
    return src


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def test_the_checker_finds_a_dynamic_upward_import(tmp_path: Path) -> None:
    src = _plant(tmp_path)
    assert import_graph.problems(src) == []
    _append(
        src / "cache" / "kv.py",
        "\n\ndef _planted() -> object:\n"
        "    import importlib\n\n"
        '    return importlib.import_module("edgestore.web.app")\n',
    )
    found = import_graph.problems(src)
    assert any(p.startswith("dynamic import: edgestore.cache.kv") for p in found), found


def test_the_checker_finds_a_cycle_and_an_upward_import(tmp_path: Path) -> None:
    src = _plant(tmp_path)
    _append(src / "storage" / "results.py", "\nfrom . import store as _planted_store\n")
    _append(
        src / "cache" / "lru.py",
        "\nfrom typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from ..web import app\n",
    )
    found = import_graph.problems(src)
    cycles = [p for p in found if p.startswith("cycle:")]
    assert cycles, found
    assert "edgestore.storage.results" in cycles[0]
    assert "edgestore.storage.store" in cycles[0]
    assert "upward import: edgestore.cache.lru -> edgestore.web.app" in found


def test_the_checker_finds_a_cycle_within_a_layer(tmp_path: Path) -> None:
    src = _plant(tmp_path)
    _append(
        src / "cache" / "codec.py", "\n\ndef _planted() -> None:\n    from . import kv  # noqa\n"
    )
    _append(src / "cache" / "kv.py", "\nfrom . import codec as _planted_codec\n")
    found = import_graph.problems(src)
    assert any(
        p.startswith("cycle:") and "edgestore.cache.codec" in p and "edgestore.cache.kv" in p
        for p in found
    ), found


def _imports(path: Path) -> set[str]:
    """Absolute names of what ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = ["edgestore", *path.relative_to(SRC).parent.parts]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.add(name)
            found.update(f"{name}.{alias.name}" for alias in node.names)
    return found


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_the_core_imports_no_framework(path: Path) -> None:
    if path.relative_to(SRC).parts[0].removesuffix(".py") not in FRAMEWORK_FREE:
        return
    for name in _imports(path):
        assert name.split(".")[0] not in FRAMEWORKS, f"{path.name} imports the framework {name}"


def _private_reads(path: Path, src: Path = SRC) -> list[str]:
    """``x._name`` where ``x`` is not self/cls and nothing in this module defines ``_name``,
    and ``from m import _name`` of a module of ours."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    # getattr(x, "_name") reads a private name too: its string does not define the name.
    by_name = {
        id(node.args[1]): node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in ("getattr", "hasattr", "setattr", "delattr")
        and len(node.args) >= 2
        and isinstance(node.args[1], ast.Constant)
        and isinstance(node.args[1].value, str)
    }
    defined: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            defined.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in by_name
        ):
            defined.add(node.value)  # __slots__ entries
    rel = str(path.relative_to(src))
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            name = node.attr
            if not name.startswith("_") or name.startswith("__") or name in defined:
                continue
            if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                continue
            if (rel, name) not in FOREIGN_PRIVATE_ALLOWED:
                found.append(f"{rel}:{node.lineno} {ast.unparse(node)}")
        elif isinstance(node, ast.Constant) and id(node) in by_name:
            name = node.value
            if not name.startswith("_") or name.startswith("__") or name in defined:
                continue
            target = by_name[id(node)].args[0]
            if isinstance(target, ast.Name) and target.id in ("self", "cls"):
                continue
            if (rel, name) not in FOREIGN_PRIVATE_ALLOWED:
                found.append(f"{rel}:{node.lineno} {ast.unparse(by_name[id(node)])}")
        elif isinstance(node, ast.ImportFrom) and (node.level or node.module == "edgestore"):
            for alias in node.names:
                if alias.name.startswith("_") and alias.name != "__version__":
                    found.append(f"{rel}:{node.lineno} imports {alias.name}")
    return found


def test_no_module_reads_another_modules_private_names() -> None:
    offenders = [line for path in _modules() for line in _private_reads(path)]
    assert offenders == []


def test_the_checker_finds_private_reads_spelled_with_getattr(tmp_path: Path) -> None:
    planted = tmp_path / "memory" / "probe.py"
    planted.parent.mkdir()
    planted.write_text(
        "def measure(pool, store):\n"
        "    conns = getattr(pool, '_idle', ())\n"
        "    cached = hasattr(store, '_analyses')\n"
        "    return conns, cached, pool._idle\n"
        "class Own:\n"
        "    def size(self):\n"
        "        return getattr(self, '_size', 0)\n",
        encoding="utf-8",
    )
    found = _private_reads(planted, tmp_path)
    assert [line.split(" ", 1)[0] for line in found] == [
        "memory/probe.py:2",
        "memory/probe.py:3",
        "memory/probe.py:4",
    ]


def test_only_the_dialects_import_sqlalchemy() -> None:
    # SQLAlchemy is an optional extra: nothing else may need it (import edgestore stays light).
    offenders = [
        str(p.relative_to(SRC))
        for p in _modules()
        if p.relative_to(SRC).parts[0] != "sqlalchemy"
        and any(n.split(".")[0] == "sqlalchemy" for n in _imports(p))
    ]
    assert offenders == []


def test_http_status_codes_live_in_the_error_mapper() -> None:
    pattern = re.compile(r"\bstatus_code\s*=\s*\d{3}\b|\bHTTP_\d{3}_[A-Z_]+\b")
    offenders = [
        str(p.relative_to(SRC))
        for p in _modules()
        if p != SRC / "web" / "errors.py" and pattern.search(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
