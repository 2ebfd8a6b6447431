"""The bare Litestar baseline for bench/bench_http*.py (served by the same ASGI server).

``GET /const``: a constant dict. ``GET /point/{id}``: the same primary-key select the
edgestore route does, with stdlib ``sqlite3`` inline on the event loop (one connection opened
at startup, like the best case of a hand-written app). ``POST /query``: the same select with
the statement and its parameters in a JSON body (``{"sql": ..., "params": [id]}``), as the
JSON query API takes them: what reading a request body costs the bare app. The database file
comes from ``BENCH_DB``.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Annotated, Any

from litestar import Litestar, get, post
from litestar.params import PathParameter

CONST = {"id": 1, "name": "item-1", "price": 10, "created_at": "2026-01-01T00:00:00.000Z"}
_conn: sqlite3.Connection | None = None


def _db() -> sqlite3.Connection:
    global _conn
    if _conn is None:
        _conn = sqlite3.connect(os.environ["BENCH_DB"], check_same_thread=False)
        _conn.execute("PRAGMA journal_mode=WAL")
    return _conn


@get("/const")
async def const() -> dict[str, Any]:
    return CONST


@get("/point/{row_id:int}")
async def point(row_id: Annotated[int, PathParameter()]) -> dict[str, Any]:
    cur = _db().execute("SELECT * FROM items WHERE id = ?", (row_id,))
    names = [d[0] for d in cur.description]
    row = cur.fetchone()
    return dict(zip(names, row, strict=True)) if row else {}


@post("/query", status_code=200)
async def query(data: dict[str, Any]) -> dict[str, Any]:
    cur = _db().execute(data["sql"], data["params"])
    names = [d[0] for d in cur.description]
    return {"columns": names, "rows": [list(r) for r in cur.fetchall()]}


def create_app() -> Litestar:
    return Litestar([const, point, query], logging_config=None)
