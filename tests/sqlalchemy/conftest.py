"""Fixtures for the dialect tests: engines on a real SQLite file under tmp_path."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, LargeBinary, String, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from edgestore.sqlalchemy import registry


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    big: Mapped[int | None]
    data: Mapped[bytes | None] = mapped_column(LargeBinary)
    day: Mapped[datetime.date | None]
    at: Mapped[datetime.datetime | None]
    clock: Mapped[datetime.time | None]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "app.db"


@pytest.fixture
def engine(db_path: Path) -> Iterator[Engine]:
    eng = create_engine(f"sqlite+edgestore:///{db_path}?idle_timeout=0")
    Base.metadata.create_all(eng)
    try:
        yield eng
    finally:
        eng.dispose()
        assert registry.open_stores() == [] or all(
            s.path != db_path for s in registry.open_stores()
        )


@pytest.fixture
async def aengine(db_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(f"sqlite+edgestore_async:///{db_path}?idle_timeout=0")
    async with eng.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    try:
        yield eng
    finally:
        await eng.dispose()
