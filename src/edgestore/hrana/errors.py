"""Exceptions to Hrana ``Error`` objects (``{"message": ..., "code": ...}``, ``code`` always
set) with :func:`error_of`, and back with :func:`exception_of`: the server answers with the first,
the replica node's forwarding client raises the second, so a write forwarded to the primary
fails with the same edgestore error class as the same write run locally.

SQLite errors carry SQLite's *base* code name (``SQLITE_CONSTRAINT``), as the libSQL server does
and the JS client's tests expect; the extended name goes in ``extended_code``, which clients
ignore. Protocol-level failures use the libSQL server's own codes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import edgestore.errors as e

__all__ = ["error_of", "exception_of"]

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
    (e.ResponseTooLarge, "RESPONSE_TOO_LARGE"),
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


# The inverse of _CODES (first class wins), plus the libSQL server's own protocol codes.
_CLASSES: dict[str, type[e.EdgestoreError]] = {
    code: cls
    for cls, code in reversed(_CODES)
    if issubclass(cls, e.EdgestoreError) and not code.startswith("SQLITE_")
}
_SQLITE_CLASSES: dict[str, type[e.DatabaseError]] = {
    "SQLITE_CONSTRAINT": e.ConstraintViolation,
    "SQLITE_BUSY": e.DatabaseBusyError,
    "SQLITE_READONLY": e.ReadOnlyError,
    "SQLITE_INTERRUPT": e.StatementTimeout,
    "SQLITE_RANGE": e.ParameterError,
    "SQLITE_MISMATCH": e.ParameterError,
}
_SYNTAX_CODES = frozenset({"SQL_PARSE_ERROR", "SQL_NO_STATEMENT", "SQL_MANY_STATEMENTS"})


def exception_of(error: Mapping[str, Any]) -> e.EdgestoreError:
    """The edgestore exception for a Hrana Error object (the inverse of :func:`error_of`).

    A malformed object (no message, no code) still becomes an error, never a success.
    """
    message = error.get("message")
    detail = message if isinstance(message, str) else "error without a message"
    raw_code = error.get("code")
    code = raw_code if isinstance(raw_code, str) and raw_code else "SQLITE_ERROR"
    raw_extended = error.get("extended_code")
    extended = raw_extended if isinstance(raw_extended, str) and raw_extended else None
    if code == "ARGS_INVALID" and extended is not None and extended.startswith("SQLITE_"):
        return e.ParameterError(detail, code=extended)
    if code in _SYNTAX_CODES:
        return e.SQLSyntaxError(detail, code="SQLITE_ERROR")
    if code.startswith("SQLITE_"):
        # error_of answers a pool timeout with SQLITE_BUSY as well: the same meaning (the
        # writer stayed busy), so it comes back as DatabaseBusyError.
        base = "_".join(code.split("_")[:2])
        cls = _SQLITE_CLASSES.get(base, e.DatabaseError)
        if cls is e.ParameterError:
            return e.ParameterError(detail, code=extended or code)
        return cls(detail, code=extended or code, base_code=base)
    found = _CLASSES.get(code)
    return found(detail) if found is not None else e.ProtocolError(detail, code=code)
