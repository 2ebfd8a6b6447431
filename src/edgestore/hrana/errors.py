"""Exceptions to Hrana ``Error`` objects: ``{"message": ..., "code": ...}``, ``code`` always set.

SQLite errors carry SQLite's *base* code name (``SQLITE_CONSTRAINT``), as the libSQL server does
and the JS client's tests expect; the extended name goes in ``extended_code``, which clients
ignore. Protocol-level failures use the libSQL server's own codes.
"""

from __future__ import annotations

import logging
from typing import Any

from .. import errors as e

__all__ = ["error_of"]

log = logging.getLogger("edgestore.hrana")

# Codes for edgestore errors that are not SQLite's, most specific class first.
_CODES: tuple[tuple[type[BaseException], str], ...] = (
    (e.TransactionTimeout, "TRANSACTION_TIMEOUT"),
    # The writer stayed pinned by another stream's transaction past pool_timeout: the same
    # meaning SQLite gives SQLITE_BUSY, so clients' retry logic applies.
    (e.PoolTimeout, "SQLITE_BUSY"),
    (e.PermissionDenied, "NOT_AUTHORIZED"),
    (e.AuthError, "UNAUTHORIZED"),
    (e.OverloadedError, "BLOCKED"),
    (e.StoreClosedError, "STORE_CLOSED"),
    (e.InvalidRequest, "INVALID_REQUEST"),
    (e.NotFoundError, "NOT_FOUND"),
)


def error_of(exc: BaseException) -> dict[str, Any]:
    """The Hrana Error object for ``exc`` (never raises, never leaks internals)."""
    if isinstance(exc, e.ProtocolError):
        return {"message": exc.detail, "code": exc.code}
    if isinstance(exc, e.ParameterError):
        # The code the libSQL server answers when arguments do not match the statement's
        # parameters; SQLite's code goes along in extended_code.
        return {"message": exc.detail, "code": "ARGS_INVALID", "extended_code": exc.code}
    if isinstance(exc, e.DatabaseError):
        out: dict[str, Any] = {"message": exc.detail, "code": exc.base_code}
        if exc.code != exc.base_code:
            out["extended_code"] = exc.code
        return out
    if isinstance(exc, e.EdgestoreError):
        for cls, code in _CODES:
            if isinstance(exc, cls):
                return {"message": exc.detail, "code": code}
        return {"message": exc.detail, "code": "INTERNAL"}
    log.error("unexpected error in a Hrana request", exc_info=exc)
    return {"message": "internal error", "code": "INTERNAL"}
