"""Fixtures for the storage tests: a fresh store on a real SQLite file under tmp_path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import edgestore
from edgestore.storage import Store

ITEMS = "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, price INT)"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "test.db"


@pytest.fixture
async def store(db_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """The store with the test module's ``SCHEMA`` statements run in order (when the module has
    none: the ``items`` table)."""
    st = await edgestore.open(db_path, schemas_dir=None, idle_timeout=0)
    try:
        for sql in getattr(request.module, "SCHEMA", [ITEMS]):
            await st.execute(sql)
        yield st
    finally:
        await st.close()
