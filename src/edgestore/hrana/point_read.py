"""The commonest HTTP requests in one step: a pipeline ``{"baton": null, "requests": [execute,
close]}`` whose statement is a read, and ``POST /v1/execute`` of a read.

The first is what ``@libsql/client`` sends for every ``execute()`` over HTTP, and what a point
read is; the second is what ``libsql-client`` (Python) sends for every ``execute()`` over
HTTP. The general paths (``HranaHttp.run_pipeline`` / ``v1_execute``) open a Stream, a storage
Session and a RowStream only to close them again. Here the statement runs as the store's
ordinary read, ``Store.query`` (inline when it fits, through the query cache, as the JSON API
reads), and the StmtResult is written around one msgspec encode of the rows. Measured on
bench_reads.py's workload (the app driven in-process, CPU time per request): the whole
pipeline request fell from 135 µs to 76 µs, against 63 µs for the REST row read; then, with
the policy verdict and the encoded columns remembered, the StmtResult written out and the
value codecs' exact-type shortcuts (values.py), from 1.16x to 1.09x the REST read's CPU
(medians of two runs of each on a loaded machine, the same runs for both).

The answer must be what the general path would have answered, byte for byte. So this path
only takes what it can answer the same way, and hands anything else back (``None``) before
it has run anything, or after a read whose error message could differ:

* not a Store (a ``StoreLike`` of another kind), ``sql_id``, not exactly one statement, bad
  arguments, a statement the policy refuses for this caller, one whose analysis fails (a
  replica forwards those), anything but a plain read (writes, transactions, session PRAGMAs);
* a read that failed with a parameter or size error (the general path words those itself),
  more rows than one chunk of the general path (it stops reading one row past it), or rows
  beyond ``max_response_bytes``.

For a pipeline the caller checks first that a new stream could be opened (the stream limits
still refuse with STREAMS_EXHAUSTED exactly as before).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import msgspec

from ..errors import CacheError, EdgestoreError, InvalidRequest, ParameterError
from ..storage.policy import classify, permit
from ..storage.results import Column
from ..storage.store import Store
from .errors import error_of
from .sqltext import one_statement
from .values import decode_args, encode_row

__all__ = [
    "MAX_POINT_ROWS",
    "pipeline_error",
    "pipeline_ok",
    "point_result",
    "point_stmt",
]

MAX_POINT_ROWS = 256
"""Most rows answered here: the general path encodes and bounds rows a chunk (256) at a time,
so up to one chunk the encoded bytes and the size check are the same."""

_encode = msgspec.json.Encoder().encode

# The constant parts of a pipeline response, encoded once: the stream is closed (baton null)
# and the close request answers ok.
_HEAD = b'{"baton":null,"base_url":null,"results":['
_OK_HEAD = _HEAD + b'{"type":"ok","response":{"type":"execute","result":'
_ERROR_HEAD = _HEAD + b'{"type":"error","error":'
_CLOSED = b',{"type":"ok","response":{"type":"close"}}]}'
_OK_TAIL = b"}}" + _CLOSED
_ERROR_TAIL = b"}" + _CLOSED

# Errors whose wording (or whether they happen at all) may differ between this path and the
# general one: let the general path answer them.
_DEFER = (ParameterError, InvalidRequest, CacheError)

_SHORT_SQL = 1024
"""Statement texts up to this long have their policy verdict remembered (as ``classify``
remembers its own: a cache of long texts would hold megabytes of SQL)."""


def point_stmt(requests: list[Any]) -> Mapping[str, Any] | None:
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


def pipeline_ok(result: bytes) -> bytes:
    """The pipeline response body of ``[execute, close]`` whose execute gave ``result``."""
    return _OK_HEAD + result + _OK_TAIL


def pipeline_error(exc: EdgestoreError) -> bytes:
    """The pipeline response body of ``[execute, close]`` whose execute failed with ``exc``."""
    return _ERROR_HEAD + _encode(error_of(exc)) + _ERROR_TAIL


def _allowed(sql: str, readonly: bool) -> bool:
    """Whether ``sql`` is one statement the policy lets this caller run (else the general
    path answers, wording the refusal itself). Nothing here depends on the store."""
    try:
        one_statement(sql)
        # The statement policy first, as Stream._guard: nothing is prepared before it.
        permit(classify(sql), "read-only" if readonly else "read-write")
    except Exception:
        return False
    return True


# Remembered per (SQL text, read-only?): the statement split and the policy verdict cost
# 0.46 µs for bench_reads.py's SELECT, the lookup 0.09 µs (timeit; more in a real request,
# where each function runs with cold caches).
_allowed_short = functools.lru_cache(maxsize=4096)(_allowed)


# The encoded ``cols`` of a columns tuple, by identity: a statement's columns are one tuple
# (the cached analysis's, or the query cache's memo of them), so the same few are seen again
# and again. Building and encoding the list of dicts cost 0.79 µs for the 4 columns of
# bench_reads.py's table, this lookup 0.10 µs (timeit). Entries hold their tuple, so an id
# is never reused while it is here.
_COLS: dict[int, tuple[tuple[Column, ...], bytes]] = {}
_MAX_COLS = 256


def _cols(columns: tuple[Column, ...]) -> bytes:
    hit = _COLS.get(id(columns))
    if hit is not None and hit[0] is columns:
        return hit[1]
    encoded = _encode([{"name": c.name, "decltype": c.decltype} for c in columns])
    if len(_COLS) >= _MAX_COLS:
        _COLS.clear()
    _COLS[id(columns)] = (columns, encoded)
    return encoded


async def point_result(
    store: object, stmt: Mapping[str, Any], *, readonly: bool, max_response_bytes: int
) -> bytes | None:
    """The StmtResult (JSON) of the read ``stmt`` run on its own, or None when the general
    path must answer it (nothing has been run then, or only a read the general path runs
    again). Raises the read's EdgestoreError when it failed as the general path's would."""
    if not isinstance(store, Store):
        return None
    sql: str = stmt["sql"]
    if not (_allowed_short(sql, readonly) if len(sql) <= _SHORT_SQL else _allowed(sql, readonly)):
        return None
    try:
        params = decode_args(stmt)
        analysis = store.cached_analysis(sql) or await store.analysis(sql)
    except Exception:
        return None
    if analysis.kind != "read" or analysis.setting is not None:
        return None
    if readonly and not analysis.deps.readonly:
        return None
    try:
        # One row past the bound at most: a longer result is read again by the general path,
        # so what is read twice stays small.
        result = await store.query(sql, params, max_rows=MAX_POINT_ROWS)
    except _DEFER:
        return None
    except EdgestoreError:
        # The same error the general path's read would raise (SQLite's, a pool timeout, a
        # replica too far behind): not worth running twice.
        raise
    except Exception:
        return None
    if result.truncated:
        return None
    values = result.values
    rows = b"[]"
    if values and stmt.get("want_rows", True) is not False:
        rows = _encode([encode_row(r) for r in values])
        if len(rows) > max_response_bytes:
            return None
    # The StmtResult written out rather than built as a dict and encoded: 0.30 µs against
    # 1.12 µs with the columns (timeit). Its keys in the order the general path writes them.
    rowid = result.last_insert_rowid
    return b"".join(
        (
            b'{"cols":',
            _cols(result.columns),
            b',"rows":',
            rows,
            b',"affected_row_count":%d,"last_insert_rowid":' % result.rows_affected,
            b"null" if rowid is None else b'"%d"' % rowid,
            b"}",
        )
    )
