"""The commonest HTTP pipeline in one step: ``{"baton": null, "requests": [execute, close]}``
whose statement is a read.

It is what ``@libsql/client`` sends for every ``execute()`` over HTTP, and what a point read
is. The general path (``HranaHttp.pipeline``) opens a Stream, a storage Session and a
RowStream only to close them again. Here the statement runs as the store's ordinary read,
``Store.query`` (inline when it fits, through the query cache, as the JSON API reads), and
the response is written around one msgspec encode. Measured on bench_reads.py's workload
(the app driven in-process, CPU time per request): the whole pipeline request fell from
135 µs to 76 µs, against 63 µs for the REST row read.

The answer must be what the general path would have answered, byte for byte. So this path
only takes what it can answer the same way, and hands anything else back (``None``) before
it has run anything, or after a read whose error message could differ:

* not a Store (a ``StoreLike`` of another kind), ``sql_id``, not exactly one statement, bad
  arguments, a statement the policy refuses for this caller, one whose analysis fails (a
  replica forwards those), anything but a plain read (writes, transactions, session PRAGMAs);
* a read that failed with a parameter or size error (the general path words those itself),
  more rows than one chunk of the general path (it stops reading one row past it), or rows
  beyond ``max_response_bytes``.

The caller checks first that a new stream could be opened (the stream limits still refuse
with STREAMS_EXHAUSTED exactly as before).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from ..errors import CacheError, EdgestoreError, InvalidRequest, ParameterError
from ..storage.policy import classify, permit
from ..storage.store import Store
from .errors import error_of
from .sqltext import one_statement
from .values import decode_args, encode_row

__all__ = ["MAX_POINT_ROWS", "point_read"]

MAX_POINT_ROWS = 256
"""Most rows answered here: the general path encodes and bounds rows a chunk (256) at a time,
so up to one chunk the encoded bytes and the size check are the same."""

_encode = msgspec.json.Encoder().encode

# The constant parts of the response, encoded once: the stream is closed (baton null) and
# the close request answers ok.
_HEAD = b'{"baton":null,"base_url":null,"results":['
_OK_HEAD = _HEAD + b'{"type":"ok","response":{"type":"execute","result":'
_ERROR_HEAD = _HEAD + b'{"type":"error","error":'
_CLOSED = b',{"type":"ok","response":{"type":"close"}}]}'
_OK_TAIL = b"}}" + _CLOSED
_ERROR_TAIL = b"}" + _CLOSED

# Errors whose wording (or whether they happen at all) may differ between this path and the
# general one: let the general path answer them.
_DEFER = (ParameterError, InvalidRequest, CacheError)


def _shape(requests: list[Any]) -> Mapping[str, Any] | None:
    """The Stmt of ``[execute {stmt with sql}, close]``, or None for any other pipeline."""
    if len(requests) != 2:
        return None
    first, second = requests
    if type(first) is not dict or type(second) is not dict:
        return None
    if first.get("type") != "execute" or second.get("type") != "close":
        return None
    stmt = first.get("stmt")
    if type(stmt) is not dict or type(stmt.get("sql")) is not str:
        return None
    if stmt.get("sql_id") is not None:
        return None
    return stmt


async def point_read(
    store: object, requests: list[Any], *, readonly: bool, max_response_bytes: int
) -> bytes | None:
    """The whole response body of a ``[execute <read>, close]`` pipeline on a new stream,
    or None when the general path must answer it (nothing has been run then, or only a read
    the general path runs again)."""
    if not isinstance(store, Store):
        return None
    stmt = _shape(requests)
    if stmt is None:
        return None
    sql: str = stmt["sql"]
    try:
        one_statement(sql)
        params = decode_args(stmt)
        # The statement policy first, as Stream._guard: nothing is prepared before it.
        permit(classify(sql), "read-only" if readonly else "read-write")
        analysis = store.cached_analysis(sql) or await store.analysis(sql)
    except Exception:
        return None
    if analysis.kind != "read" or analysis.setting is not None:
        return None
    if readonly and not analysis.deps.readonly:
        return None
    want_rows = stmt.get("want_rows", True) is not False
    try:
        # One row past the bound at most: a longer result is read again by the general path,
        # so what is read twice stays small.
        result = await store.query(sql, params, max_rows=MAX_POINT_ROWS)
    except _DEFER:
        return None
    except EdgestoreError as exc:
        # The same error the general path's read would raise (SQLite's, a pool timeout, a
        # replica too far behind): not worth running twice.
        return _ERROR_HEAD + _encode(error_of(exc)) + _ERROR_TAIL
    except Exception:
        return None
    if result.truncated:
        return None
    values = result.values
    rows = b"[]"
    if want_rows and values:
        rows = _encode([encode_row(r) for r in values])
        if len(rows) > max_response_bytes:
            return None
    rowid = result.last_insert_rowid
    body = _encode(
        {
            "cols": [{"name": c.name, "decltype": c.decltype} for c in result.columns],
            "rows": msgspec.Raw(rows),
            "affected_row_count": result.rows_affected,
            "last_insert_rowid": None if rowid is None else str(rowid),
        }
    )
    return _OK_HEAD + body + _OK_TAIL
