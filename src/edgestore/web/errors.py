"""The error mapper: the only module of edgestore where HTTP status codes appear.

Every edgestore error class, every exception Litestar raises itself (validation, 404, 405,
413, ...) and any unexpected exception become one JSON shape::

    {"error": {"type": "NoSuchColumnError", "message": "no such column: nope",
               "code": "SQLITE_ERROR"}}

``type`` is the edgestore error class name (or a stable name for framework errors), ``message``
is safe to show to clients, ``code`` is the SQLite extended result code name for database
errors, the libSQL code for protocol errors, else ``null``.

A route may render errors in its own shape (the Hrana routes use the libSQL one) by setting
``opt={ERROR_BODY_OPT: fn}`` where ``fn(exc) -> JSON-able body``; the status is still chosen
here, so the two shapes never disagree on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.openapi import ResponseSpec
from litestar.types import ExceptionHandlersMap, Scope, Send

from .. import errors as e

__all__ = [
    "CONFLICT",
    "CREATED",
    "ERROR_BODY_OPT",
    "NOT_FOUND",
    "NOT_MODIFIED",
    "NO_CONTENT",
    "OK",
    "SERVER_ERROR",
    "ErrorBody",
    "ErrorOut",
    "asgi_error",
    "error_body",
    "exception_handlers",
    "log_fault",
    "ok_response",
    "responses",
    "status_for",
]

log = logging.getLogger("edgestore.web")

ERROR_BODY_OPT = "edgestore_error_body"
"""Route ``opt`` key naming a function ``exc -> body`` that renders that route's errors."""

ErrorBody = Callable[[BaseException], Any]

# Most specific class first: the first isinstance match decides.
_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (e.PermissionDenied, 403),
    (e.AuthError, 401),
    (e.NotFoundError, 404),
    (e.UnsupportedMediaType, 415),
    (e.MisdirectedRequest, 421),
    (e.RequestTimeout, 408),
    (e.InvalidRequest, 400),
    (e.OverloadedError, 503),
    (e.ValueTooLarge, 413),
    (e.CacheError, 400),
    # Every SQL error, constraint violations included, is a 400 that
    # carries SQLite's code (SQLITE_CONSTRAINT_UNIQUE, ...), so clients branch on `code`.
    (e.ConstraintViolation, 400),
    (e.DatabaseBusyError, 503),
    (e.SchemaError, 500),
    # The disk, the file or memory failed: the server's fault. 503 (with Retry-After) when a
    # retry can help (full disk, I/O error, out of memory), 500 when it cannot (corruption).
    (e.StorageFault, 503),
    # A statement that runs past the bound was sent by the client: a client error, not a crash.
    (e.StatementTimeout, 400),
    # Parameters that cannot be bound (missing, wrong count or type, beyond 64 bits).
    (e.ParameterError, 400),
    (e.DatabaseError, 400),
    (e.PoolTimeout, 503),
    (e.TransactionTimeout, 409),
    (e.StoreClosedError, 503),
    (e.ProtocolError, 400),
    # The sync protocol's "nothing more" answer: libsql clients expect exactly 400.
    (e.EndOfGeneration, 400),
    # 4xx, not 5xx: libsql retries 5xx, and a refused push will not succeed on retry.
    (e.SyncPushRefused, 405),
    (e.ReplicationError, 503),
    (e.MissingExtraError, 501),
    (e.ConfigError, 500),
    (e.EdgestoreError, 500),
)

# Framework exceptions, named in the same vocabulary as edgestore errors.
_FRAMEWORK_TYPES: tuple[tuple[type[HTTPException], str], ...] = (
    (RequestEntityTooLarge, "RequestTooLarge"),
    (ValidationException, "InvalidRequest"),
    (NotFoundException, "NotFoundError"),
    (MethodNotAllowedException, "MethodNotAllowed"),
    (NotAuthorizedException, "AuthError"),
    (PermissionDeniedException, "PermissionDenied"),
    (TooManyRequestsException, "TooManyRequests"),
)

# Seconds suggested to clients for transient refusals that carry no retry_after of their own.
_DEFAULT_RETRY_AFTER = 1


def status_for(exc: BaseException) -> int:
    """The HTTP status for ``exc``."""
    if isinstance(exc, HTTPException):
        return exc.status_code
    if isinstance(exc, e.StorageFault) and not exc.transient:
        return 500
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def _type_name(exc: BaseException) -> str:
    if isinstance(exc, e.EdgestoreError):
        return type(exc).__name__
    if isinstance(exc, HTTPException):
        for cls, name in _FRAMEWORK_TYPES:
            if isinstance(exc, cls):
                return name
        if exc.status_code == 400:
            return "InvalidRequest"  # malformed JSON and other request-parsing failures
        return "HTTPError" if exc.status_code < 500 else "InternalError"
    return "InternalError"


def _message(exc: BaseException) -> str:
    if isinstance(exc, e.EdgestoreError):
        return exc.detail
    if isinstance(exc, ValidationException):
        return _validation_message(exc)
    if isinstance(exc, HTTPException):
        return exc.detail
    # Never echo internals of an unexpected exception to the client; the log has them.
    return "internal error"


def _validation_message(exc: ValidationException) -> str:
    """Litestar's validation detail plus the offending fields, in one line."""
    parts = [exc.detail]
    if isinstance(exc.extra, list):
        for item in exc.extra[:5]:
            if isinstance(item, dict):
                key = item.get("key")
                msg = _plain_words(str(item.get("message")))
                source = getattr(item.get("source"), "value", item.get("source"))
                where = f"{source} parameter {key!r}" if source and key else (key or source or "")
                parts.append(f"{where}: {msg}" if where else str(msg))
    return "; ".join(str(p) for p in parts if p)


# msgspec names types the way Python spells them; callers of an HTTP API read words.
_TYPE_WORDS = (
    ("`int`", "an integer"),
    ("`str`", "a string"),
    ("`float`", "a number"),
    ("`bool`", "true or false"),
    ("`object`", "a JSON object"),
    ("`array`", "a JSON array"),
)


def _plain_words(message: str) -> str:
    for code, words in _TYPE_WORDS:
        message = message.replace(code, words)
    return message


def _code(exc: BaseException) -> str | None:
    if isinstance(exc, e.DatabaseError | e.ProtocolError | e.ResponseTooLarge):
        return exc.code
    return None


def error_body(exc: BaseException) -> dict[str, Any]:
    """The standard JSON error body for ``exc``."""
    return {"error": {"type": _type_name(exc), "message": _message(exc), "code": _code(exc)}}


def _headers(exc: BaseException, status: int) -> dict[str, str]:
    headers: dict[str, str] = {}
    if isinstance(exc, HTTPException) and exc.headers:
        headers.update(exc.headers)
    if isinstance(exc, e.OverloadedError):
        headers["Retry-After"] = str(max(1, int(exc.retry_after)))
    elif status == 503 and "Retry-After" not in headers:
        headers["Retry-After"] = str(_DEFAULT_RETRY_AFTER)
    if status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="edgestore"')
    return headers


def log_fault(exc: BaseException, db_path: object, where: str) -> None:
    """Log a storage fault with the database it concerns (operators need the path)."""
    if isinstance(exc, e.StorageFault):
        log.error(
            "storage fault on database %s (%s): %s [%s]", db_path, where, exc.detail, exc.code
        )


def _caller_error(exc: Exception) -> Exception:
    """Exceptions the framework raises on bad input that are not HTTP errors of its own."""
    # A backstop only: web/json_depth.py refuses bodies nested past its bound before any
    # decoder runs, whatever the interpreter's recursion limit.
    if isinstance(exc, RecursionError):
        return e.InvalidRequest("the request body is nested too deeply (at most 1000 levels)")
    return exc


def _log(exc: BaseException, status: int, scope: Any) -> None:
    """Log what operators must see: storage faults (with the database) and server errors."""
    where = f"{scope.get('method', '?')} {scope.get('path', '?')}"
    if isinstance(exc, e.StorageFault):
        app = scope.get("app")
        state = app.state.get("edgestore") if app is not None else None
        log_fault(exc, state.settings.db_path if state is not None else "?", where)
    elif status >= 500 and not isinstance(exc, e.OverloadedError | e.DatabaseBusyError):
        log.error("request failed: %s", where, exc_info=exc)


def _handle(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    exc = _caller_error(exc)
    status = status_for(exc)
    _log(exc, status, request.scope)
    render = _renderer(request.scope.get("route_handler"))
    return Response(
        content=render(exc),
        status_code=status,
        headers=_headers(exc, status),
        media_type=MediaType.JSON,
    )


def _renderer(handler: Any) -> ErrorBody:
    opt = getattr(handler, "opt", None)
    if isinstance(opt, dict) and callable(opt.get(ERROR_BODY_OPT)):
        return opt[ERROR_BODY_OPT]  # type: ignore[no-any-return]
    return error_body


async def asgi_error(exc: BaseException, send: Send, scope: Scope | None = None) -> None:
    """Send ``exc`` as a complete JSON error response on a raw ASGI ``send``: the same status,
    shape, headers and log lines as the handler Litestar calls."""
    if isinstance(exc, Exception):
        exc = _caller_error(exc)
    status = status_for(exc)
    if scope is not None:
        _log(exc, status, scope)
    render = _renderer(scope.get("route_handler") if scope is not None else None)
    body = msgspec.json.encode(render(exc))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in _headers(exc, status).items()
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def exception_handlers() -> ExceptionHandlersMap:
    """Handlers for the Litestar app: one function for every exception."""
    return {Exception: _handle}


# Success statuses, named here so that route modules hold no status numbers.
OK = 200
CREATED = 201
NO_CONTENT = 204
NOT_MODIFIED = 304
NOT_FOUND = 404
CONFLICT = 409
SERVER_ERROR = 500


class ErrorDetail(msgspec.Struct):
    type: str
    message: str
    code: str | None


class ErrorOut(msgspec.Struct):
    """The one error shape of the JSON API."""

    error: ErrorDetail


_ERROR_DOCS: dict[int, str] = {
    400: "Invalid request, malformed JSON or an SQL error (code: the SQLite error code)",
    401: "Missing or invalid bearer token",
    403: "The token's role does not allow this",
    404: "Unknown table, row, key or route",
    408: "The request body did not arrive within body_read_timeout",
    409: "The transaction outlived transaction_timeout and was rolled back",
    413: "Request body larger than max_body_bytes",
    415: "The request body is not JSON (send Content-Type: application/json)",
    421: "The Host header does not name this server (see allowed_hosts)",
    500: "The database file is corrupt (SQLITE_CORRUPT / SQLITE_NOTADB) or an internal error",
    503: "Refused under memory pressure, the store is unavailable, or the disk, file or memory "
    "failed (SQLITE_FULL, IOERR, NOMEM, CANTOPEN); see Retry-After",
}


def ok_response(container: Any, description: str) -> dict[int, ResponseSpec]:
    """OpenAPI documentation of a 200 for routes that return a raw ASGI response."""
    return {OK: ResponseSpec(data_container=container, description=description)}


def responses(*extra: int) -> dict[int, ResponseSpec]:
    """OpenAPI documentation of the error responses a route can give."""
    codes = sorted({400, 401, 403, 413, 503, *extra})
    return {
        code: ResponseSpec(data_container=ErrorOut, description=_ERROR_DOCS[code]) for code in codes
    }
