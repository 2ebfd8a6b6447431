"""Raw ASGI implementations of the hottest routes, run by the edge middleware.

A Litestar route costs ~12 µs a request before its handler runs and after it returns (the
Request object, the kwargs model, the signature model's validation, the response
conversion); a random-key point read through the store costs ~25 µs in all (py-spy and CPU
time per request, bench/bench_reads.py). So the hottest routes also have a raw
implementation, named in their ``opt`` under ``RAW_OPT``: an ASGI callable that the edge
middleware (``web/middleware.py``) calls instead of Litestar's handler once routing, the
browser rules, auth and the pressure check have passed. The decorated Litestar handler stays:
it documents the route in the OpenAPI schema, and it serves the route whenever the raw one
must not (:func:`runs_raw`).

Both share their work (the row read, the statement run, the encoding), and errors of both go
through the one error mapper (``web/errors.py``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import msgspec
from litestar.exceptions import InternalServerException, ValidationException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.types import Receive, Scope, Send

from ..errors import InvalidRequest

__all__ = ["RAW_OPT", "RawHandler", "decode_body", "read_body", "runs_raw", "send_json"]

RAW_OPT = "edgestore_raw"
"""Route ``opt`` key: the route's raw implementation, an ASGI callable (see the module)."""

RawHandler = Callable[[Scope, Receive, Send], Awaitable[None]]

T = TypeVar("T")

# What a layer of the host app (app, router, handler) may set that Litestar runs around a
# handler: while any is set on a route, the raw implementation would skip it, so the route
# runs through Litestar. edgestore sets none of them on its own routes.
_LITESTAR_HOOKS = (
    "guards",
    "before_request",
    "after_request",
    "after_response",
    "response_class",
    "response_headers",
    "response_cookies",
    "cache_control",
    "etag",
)

_JSON_HEADER = (b"content-type", b"application/json")
# msgspec's validation messages end with where the value is: " - at `$.params[0]`".
_AT = re.compile(r" - at `\$\.?(.*)`$")


def runs_raw(handler: Any) -> RawHandler | None:
    """The raw implementation of ``handler``'s route, unless a layer of the app asks Litestar
    to run something around the handler (a guard, a hook, response headers or cookies)."""
    raw: RawHandler | None = (getattr(handler, "opt", None) or {}).get(RAW_OPT)
    if raw is None:
        return None
    for layer in handler.ownership_layers:
        if any(getattr(layer, name, None) for name in _LITESTAR_HOOKS):
            return None
    return raw


def content_length(scope: Scope) -> int:
    """The request's Content-Length, or -1 (absent, or not a plain number)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return -1


async def read_body(receive: Receive, limit: int, scope: Scope) -> bytes:
    """The request body straight from the ASGI messages, 413 past ``limit`` bytes, as
    Litestar's ``request.body()`` does (which first builds the parsed headers and streams
    through an async generator). A body whose Content-Length already says it is too large
    is refused before any of it is read, as Litestar does."""
    if content_length(scope) > limit:
        raise RequestEntityTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        event: Any = await receive()
        kind = event["type"]
        if kind == "http.request":
            body = event.get("body", b"")
            size += len(body)
            if size > limit:
                raise RequestEntityTooLarge
            chunks.append(body)
            if not event.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif kind == "http.disconnect":
            raise InternalServerException("client disconnected prematurely")


def decode_body(body: bytes, decoder: msgspec.json.Decoder[T], scope: Scope) -> T:
    """The JSON body decoded into the decoder's type, errors worded as Litestar words those of
    a ``JSONBody`` parameter named ``data`` (so both implementations of a route answer alike)."""
    if not body.strip():
        raise _invalid(scope, "data", "a JSON body is required")
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        text = str(exc)
        at = _AT.search(text)
        key = at.group(1) if at and at.group(1) else "data"
        raise _invalid(scope, key, text.split(" - ", 1)[0]) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(str(exc)) from None


def _invalid(scope: Scope, key: str, message: str) -> ValidationException:
    return ValidationException(
        detail=f"Validation failed for {scope['method']} {scope['path']}",  # type: ignore[typeddict-item]
        extra=[{"message": message, "key": key, "source": "body"}],
    )


async def send_json(send: Send, status: int, body: bytes) -> None:
    """A complete JSON response on a raw ASGI ``send``."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [_JSON_HEADER, (b"content-length", b"%d" % len(body))],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
