"""A stop-gap Store for the Hrana tests while edgestore.storage is being built.

Real SQLite (apsw) files, one connection per session, statements on a worker thread. Used only
when ``src/edgestore/storage/READY`` does not exist; the suite switches to the real Store then.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apsw

from edgestore.config import Settings
from edgestore.storage.analysis import analyze
from edgestore.storage.results import Column, Description, Result, TableDeps
from edgestore.storage.sqlerrors import translate

_READONLY_BEGIN = re.compile(r"\s*BEGIN\s+TRANSACTION\s+READONLY\s*;?\s*$", re.I)


@dataclass
class PoolStats:
    writer_open: int
    readers_open: int
    connections_open: int


class _Pool:
    def __init__(self) -> None:
        self.open = 0

    def stats(self) -> PoolStats:
        return PoolStats(0, 0, self.open)


def _run(db: apsw.Connection, sql: str, params: Any) -> Result:
    try:
        cur = db.cursor()
        before = db.total_changes()
        cur.execute(sql, params if params is not None else ())
        try:
            cols = tuple(Column(n, d) for n, d in cur.getdescription())
        except apsw.ExecutionCompleteError:
            cols = ()
        rows = [tuple(r) for r in cur] if cols else []
        changed = db.total_changes() - before
        return Result(cols, rows, rows_affected=changed, last_insert_rowid=db.last_insert_rowid())
    except Exception as exc:
        raise translate(exc) from exc


class DevSession:
    def __init__(self, store: DevStore) -> None:
        self.store = store
        self.db: apsw.Connection | None = None

    @property
    def is_autocommit(self) -> bool:
        return self.db is None or self.db.get_autocommit()

    async def execute(self, sql: str, params: Any = None, *, max_rows: int | None = None) -> Any:
        if self.db is None:
            self.db = self.store.connect()
        db = self.db
        if _READONLY_BEGIN.match(sql):
            db.execute("PRAGMA query_only=1")
            sql = "BEGIN"
        try:
            return await asyncio.to_thread(_run, db, sql, params)
        finally:
            if db.get_autocommit():
                db.execute("PRAGMA query_only=0")

    async def close(self) -> None:
        if self.db is not None:
            db, self.db = self.db, None
            if not db.get_autocommit():
                db.execute("ROLLBACK")
            db.close()
            self.store.pool.open -= 1


class DevStore:
    def __init__(self, path: Path, settings: Settings) -> None:
        self.path = path
        self.settings = settings
        self.pool = _Pool()
        db = self.connect()
        db.execute("PRAGMA journal_mode=WAL")
        db.close()
        self.pool.open -= 1

    def connect(self) -> apsw.Connection:
        db = apsw.Connection(str(self.path))
        db.set_busy_timeout(5000)
        self.pool.open += 1
        return db

    async def session(self) -> DevSession:
        return DevSession(self)

    async def execute(self, sql: str, params: Any = None) -> Result:
        s = DevSession(self)
        try:
            return await s.execute(sql, params)  # type: ignore[no-any-return]
        finally:
            await s.close()

    query = execute

    def _analyze(self, sql: str) -> Any:
        db = apsw.Connection(str(self.path))
        try:
            return analyze(db, sql)
        finally:
            db.close()

    async def describe(self, sql: str) -> Description:
        a = self._analyze(sql)
        return Description(a.columns, a.params, a.deps.readonly, a.is_explain)

    def deps(self, sql: str) -> TableDeps:
        return self._analyze(sql).deps  # type: ignore[no-any-return]

    async def close(self) -> None:
        return None
