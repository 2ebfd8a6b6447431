"""The direction of imports is the architecture (DESIGN.md, "Layout").

errors/config -> storage, cache, tables, memory -> hrana, migrate -> web -> cli. The core never
imports a web or CLI framework, and HTTP status codes live in one module of web.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "edgestore"
FRAMEWORKS = {"litestar", "click", "granian", "uvicorn", "starlette", "fastapi"}
LAYER = {
    "errors": 0,
    "config": 0,
    "_version": 0,
    "storage": 1,
    "cache": 1,
    "memory": 1,
    "tables": 1,
    "auth": 1,
    "hrana": 2,
    "migrate": 2,
    "sqlalchemy": 2,
    "web": 3,
    "cli": 4,
}


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def _part(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


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
def test_imports_point_one_way(path: Path) -> None:
    part = _part(path)
    if part == "__init__":
        return  # the public API re-exports from every layer below cli
    layer = LAYER[part]
    for name in _imports(path):
        top = name.split(".")[0]
        if layer < LAYER["web"]:
            assert top not in FRAMEWORKS, f"{path.name} imports the framework {name}"
        if top == "edgestore" and name.count("."):
            target = name.split(".")[1].removesuffix(".py")
            if target in LAYER:
                assert LAYER[target] <= layer, f"{part} must not import {name}"


def test_only_the_dialects_import_sqlalchemy() -> None:
    # SQLAlchemy is an optional extra: nothing else may need it (import edgestore stays light).
    offenders = [
        str(p.relative_to(SRC))
        for p in _modules()
        if _part(p) != "sqlalchemy" and any(n.split(".")[0] == "sqlalchemy" for n in _imports(p))
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
