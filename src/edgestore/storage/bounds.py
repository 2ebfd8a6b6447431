"""Bounds on the size of results, enforced as SQLite produces the rows (never after).

Two limits, both from ``max_response_bytes``:

* while a read runs, SQLite's own ``SQLITE_LIMIT_LENGTH`` is lowered to it, so no single value
  larger than a whole response is ever built (``SELECT zeroblob(200000000)`` fails inside
  SQLite, before 200 MB are allocated and copied into Python);
* the rows kept are counted as they are stepped (:func:`take_rows`): a result stops with
  :class:`~edgestore.errors.ResponseTooLarge` as soon as its rows pass the budget, so memory
  stays within one budget plus one row whatever the statement returns.

The size of a row is the length of its JSON (blobs in base64): what it costs to send.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apsw
import msgspec

from ..errors import ResponseTooLarge
from .sqlerrors import invalid_text

__all__ = ["ByteBudget", "length_limit", "restore_length", "row_size", "take_rows", "too_big"]

_LIMIT_LENGTH = apsw.SQLITE_LIMIT_LENGTH

_encode_into = msgspec.json.Encoder().encode_into
_SPEND_EVERY = 64 * 1024
"""Rows are charged to the budget in batches of this many bytes (or at once, a big row)."""


class ByteBudget:
    """Bytes of rows a result (or a whole batch of results) may still hold."""

    __slots__ = ("left", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.left = limit

    def spend(self, size: int) -> None:
        """Spend ``size`` bytes; ResponseTooLarge once the budget is passed."""
        self.left -= size
        if self.left < 0:
            raise ResponseTooLarge(
                f"the result is larger than max_response_bytes={self.limit}; read it in "
                "pages (LIMIT/OFFSET, or a keyset on the primary key) or with a cursor"
            )


def row_size(row: tuple[Any, ...]) -> int:
    """A quick estimate of one row's size in bytes (texts and blobs by length, 8 for
    anything else), for rows already in memory."""
    size = 0
    for value in row:
        cls = value.__class__
        size += len(value) if cls is str or cls is bytes else 8
    return size


def take_rows(
    rows: Iterator[tuple[Any, ...]],
    count: int,
    budget: ByteBudget | None,
    chunk_bytes: int = 0,
) -> tuple[list[tuple[Any, ...]], bool]:
    """Up to ``count`` rows from ``rows``, spent from ``budget`` as they are read.

    With ``chunk_bytes`` the chunk also ends once it holds that many bytes (cursors: a chunk of
    big rows stays small). Returns ``(rows, exhausted)``; raises ResponseTooLarge (the caller
    ends the statement) when the budget runs out, at most ``_SPEND_EVERY`` bytes plus one row
    after it did.
    """
    out: list[tuple[Any, ...]] = []
    append = out.append
    encode_into = _encode_into
    # Each row's JSON is written into one reusable buffer and only its length is kept: a C
    # call per row, about a third of the cost of summing value sizes in Python.
    buf = bytearray()
    held = 0
    try:
        for row in rows:
            encode_into(row, buf, -1)
            append(row)
            if len(buf) >= _SPEND_EVERY:
                size = len(buf)
                buf.clear()
                if budget is not None:
                    budget.spend(size)
                held += size
                if chunk_bytes and held >= chunk_bytes:
                    return out, False
            if len(out) >= count:
                if budget is not None:
                    budget.spend(len(buf))
                return out, False
    except UnicodeDecodeError as exc:
        raise invalid_text(exc) from exc
    if budget is not None:
        budget.spend(len(buf))
    return out, True


def length_limit(db: apsw.Connection, limit: int) -> int:
    """Lower SQLITE_LIMIT_LENGTH on ``db`` to ``limit`` (0: leave it); returns the old value
    for :func:`restore_length`. Connection thread only."""
    if limit <= 0:
        return -1
    return int(db.limit(_LIMIT_LENGTH, limit))


def restore_length(db: apsw.Connection, old: int) -> None:
    """Undo :func:`length_limit`."""
    if old >= 0:
        db.limit(_LIMIT_LENGTH, old)


def too_big(limit: int, exc: BaseException) -> ResponseTooLarge:
    """The error for a value SQLite refused to build under :func:`length_limit`."""
    err = ResponseTooLarge(
        f"a value in the result is larger than max_response_bytes={limit}; select a part of "
        "it (substr) or its length instead"
    )
    err.__cause__ = exc
    return err
