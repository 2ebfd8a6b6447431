"""The README's SQLAlchemy examples run as written."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _blocks() -> list[str]:
    start = README.index("## SQLAlchemy\n")
    section = README[start : README.index("\n## ", start + 1)]
    return [part.split("```", 1)[0] for part in section.split("```python\n")[1:]]


@pytest.fixture
def module() -> Any:
    """A real module to run the examples in (declarative classes resolve names through it)."""
    mod = types.ModuleType("readme_sqlalchemy")
    sys.modules[mod.__name__] = mod
    try:
        yield mod.__dict__
    finally:
        del sys.modules[mod.__name__]


@pytest.fixture
def in_tmp(tmp_path: Path) -> Any:
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(cwd)


def test_sync_orm_and_async_examples(
    in_tmp: Path, module: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    sync_block, async_block, _ = _blocks()
    namespace = module
    exec(compile(sync_block, "README sync", "exec"), namespace)
    exec(compile(async_block, "README async", "exec"), namespace)
    assert capsys.readouterr().out.splitlines() == ["['hello']", "hello"]


def test_advanced_alchemy_example_serves_edgestore_api(
    in_tmp: Path, module: dict[str, Any]
) -> None:
    namespace = module
    exec(compile(_blocks()[2], "README advanced-alchemy", "exec"), namespace)
    # A loopback Host, as a real local client sends: other hosts get 421 (DNS rebinding).
    with TestClient(namespace["app"], base_url="http://127.0.0.1") as client:
        response = client.post("/edgestore/api/v1/query", json={"sql": "SELECT 40 + 2"})
        assert response.status_code == 200, response.text
        assert response.json()["rows"] == [[42]]
