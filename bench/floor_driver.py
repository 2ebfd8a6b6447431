"""The floor of the SQLAlchemy benchmark (bench_sqlalchemy.py): a DB-API driver that does nothing.

The edgestore_async dialect unchanged, with a connection that answers every SELECT with one
canned row and every INSERT with a new rowid, without touching a database. Whatever a real
driver costs comes on top of this, so (a baseline's time per op) / (this time per op) is the
best ratio any asyncio driver could reach against that baseline in the same process.
Registered as ``sqlite+edgestore_floor://`` when imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.util import concurrency

from edgestore.sqlalchemy.dialect import EdgestoreAsyncDialect

FIRST_ROWID = 10_000

_ROW = (1, "user1", "user1@example.com", 1)
_COLUMNS = tuple(
    (name, None, None, None, None, None, None) for name in ("id", "name", "email", "score")
)


async def _nothing() -> None:
    return None


class FloorCursor:
    arraysize = 1

    def __init__(self, connection: FloorConnection) -> None:
        self.connection = connection
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._rows: list[tuple[Any, ...]] = []

    def execute(self, sql: str, parameters: Any = None) -> FloorCursor:
        # One await per statement, as any asyncio driver has (AsyncConnection.execute checks
        # that the driver awaited); it finishes at once, so no loop turn.
        await_(_nothing())
        if sql.lstrip()[:6].upper() == "INSERT":
            self.connection.rowid += 1
            self.lastrowid, self.rowcount = self.connection.rowid, 1
            returning = "RETURNING" in sql.upper()
            self.description = _COLUMNS[:1] if returning else None
            self._rows = [(self.lastrowid,)] if returning else []
        else:
            self.description, self.rowcount, self._rows = _COLUMNS, -1, [_ROW]
        return self

    def executemany(self, sql: str, seq: Any) -> FloorCursor:
        for parameters in seq:
            self.execute(sql, parameters)
        return self

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows.pop(0) if self._rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows, self._rows = self._rows, []
        return rows

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        return self.fetchall()

    def close(self) -> None:
        self._rows = []

    async def _async_soft_close(self) -> None:
        """Called by SQLAlchemy's asyncio layer (rows are in memory already)."""


class FloorConnection:
    # What the dialect asks of its connections (edgestore.sqlalchemy.connection.Connection).
    autocommit = False
    serializable = False

    def __init__(self) -> None:
        self.rowid = FIRST_ROWID

    def cursor(self) -> FloorCursor:
        return FloorCursor(self)

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass


class FloorAsyncDialect(EdgestoreAsyncDialect):
    """``sqlite+edgestore_floor://``: the edgestore_async dialect over :class:`FloorConnection`."""

    driver = "edgestore_floor"
    supports_statement_cache = True

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        return FloorConnection()

    def on_connect(self) -> None:  # type: ignore[override]
        return None


# SQLAlchemy 2.1 names it await_, 2.0 await_only.
await_: Callable[[Any], Any] = getattr(concurrency, "await_", None) or concurrency.await_only
registry.register("sqlite.edgestore_floor", __name__, "FloorAsyncDialect")
