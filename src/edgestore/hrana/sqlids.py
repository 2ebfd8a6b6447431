"""SQL texts by id: ``store_sql`` / ``close_sql`` and resolving a Stmt's ``sql_id``.

Shared by HTTP streams (one store per stream) and WebSocket connections (one per connection).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from ..errors import ProtocolError
from .batch import check_batch

__all__ = ["MAX_STORED_SQL", "close_sql", "resolve_batch", "resolve_sql", "store_sql", "with_sql"]

MAX_STORED_SQL = 1000
"""Most SQL texts one stream (HTTP) or connection (WebSocket) may hold with store_sql."""


def resolve_sql(obj: Mapping[str, Any], sqls: Mapping[int, str]) -> str:
    """The SQL text of a Stmt / sequence / describe: its ``sql``, or the stored ``sql_id``."""
    sql = obj.get("sql")
    sql_id = obj.get("sql_id")
    if sql is not None:
        if sql_id is not None:
            raise ProtocolError("give sql or sql_id, not both")
        if not isinstance(sql, str):
            raise ProtocolError("sql must be a string")
        return sql
    if sql_id is None:
        raise ProtocolError("sql or sql_id is required")
    if isinstance(sql_id, bool) or not isinstance(sql_id, int):
        raise ProtocolError("sql_id must be an integer")
    try:
        return sqls[sql_id]
    except KeyError:
        raise ProtocolError(f"no SQL stored under sql_id {sql_id}", code="SQL_NOT_FOUND") from None


def with_sql(obj: Mapping[str, Any], sqls: Mapping[int, str]) -> dict[str, Any]:
    """A copy of a Stmt-like object with ``sql_id`` replaced by the stored text."""
    out = dict(obj)
    out["sql"] = resolve_sql(obj, sqls)
    out.pop("sql_id", None)
    return out


def resolve_batch(batch: Any, sqls: Mapping[int, str]) -> dict[str, Any]:
    """A copy of a Batch with every step's sql_id resolved (done when a WebSocket request
    arrives, so a later close_sql cannot pull the text from under a queued request)."""
    steps = check_batch(batch)
    return {"steps": [{**s, "stmt": with_sql(s["stmt"], sqls)} for s in steps]}


def store_sql(sqls: MutableMapping[int, str], req: Mapping[str, Any]) -> None:
    """``store_sql``: remember ``req.sql`` under ``req.sql_id`` in ``sqls``."""
    sql_id = req.get("sql_id")
    sql = req.get("sql")
    if isinstance(sql_id, bool) or not isinstance(sql_id, int) or not isinstance(sql, str):
        raise ProtocolError("store_sql needs an integer sql_id and a sql string")
    if sql_id in sqls:
        raise ProtocolError(f"sql_id {sql_id} is already in use")
    if len(sqls) >= MAX_STORED_SQL:
        raise ProtocolError(
            f"at most {MAX_STORED_SQL} SQL texts can be stored", code="SQL_STORE_TOO_MANY"
        )
    sqls[sql_id] = sql


def close_sql(sqls: MutableMapping[int, str], req: Mapping[str, Any]) -> None:
    """``close_sql``: forget ``req.sql_id`` (unknown ids are fine: closing is idempotent)."""
    sql_id = req.get("sql_id")
    if isinstance(sql_id, bool) or not isinstance(sql_id, int):
        raise ProtocolError("close_sql needs an integer sql_id")
    sqls.pop(sql_id, None)
