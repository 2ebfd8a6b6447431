"""Mounts the libSQL wire protocol (``edgestore.hrana``) on the app.

HTTP: ``POST /v1/execute``, ``/v1/batch``, ``GET /v2``, ``POST /v2/pipeline``, ``GET /v3``,
``POST /v3/pipeline``, ``POST /v3/cursor`` (streamed NDJSON), ``GET /v3-protobuf`` (404, so
probing clients fall back to JSON). WebSocket on ``/`` with subprotocols hrana3/2/1.

Errors render in the Hrana shape ``{"message", "code"}`` with ``content-type:
application/json`` exactly (the JS client only reads error bodies with that type); the status
comes from the app's error mapper like every other route.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from litestar import MediaType, Request, Response, WebSocket, get, post, websocket
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    WebSocketDisconnect,
)
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.response import Stream
from litestar.response.base import ASGIResponse
from litestar.types import Receive, Scope, Send

from ..auth import Role
from ..errors import EdgestoreError, NotFoundError, ProtocolError
from ..hrana import (
    CLOSE_PROTOCOL_ERROR,
    SUBPROTOCOLS,
    HranaHttp,
    WsConnection,
    choose_subprotocol,
    error_of,
)
from ..hrana.http import pipeline_request
from ..hrana.quota import Quotas, caller_key, token_digest
from ..hrana.ws import CLOSE_NORMAL, CLOSE_TOO_BIG
from .drain import LONG_RUNNING_OPT
from .errors import ERROR_BODY_OPT, OK
from .middleware import ROLE_SCOPE_KEY, bearer_token
from .rawroute import RAW_OPT, read_body, send_json
from .routes.tables import RawResponse
from .state import ROLE_OPT, AppState

__all__ = ["close_streams", "hrana_error_body", "route_handlers"]

NDJSON = "application/x-ndjson"
CLOSE_GOING_AWAY = 1001  # WebSocket close code: the server is going down


def hrana_error_body(exc: BaseException) -> dict[str, Any]:
    """Hrana's error shape for request-level failures (including the framework's own)."""
    if isinstance(exc, HTTPException):
        if isinstance(exc, RequestEntityTooLarge):
            code = "REQUEST_TOO_LARGE"
        elif isinstance(exc, NotAuthorizedException):
            code = "UNAUTHORIZED"
        else:
            code = "HTTP_ERROR"
        return {"message": exc.detail, "code": code}
    return error_of(exc)


_OPT: dict[str, Any] = {ROLE_OPT: Role.RO, ERROR_BODY_OPT: hrana_error_body}
_JSON_HEADER = [(b"content-type", b"application/json")]


class _Hrana:
    """The HranaHttp of the app's current store (the store opens in the lifespan)."""

    def __init__(self, state: AppState) -> None:
        self.state = state
        self._http: HranaHttp | None = None
        self.quotas = Quotas(state.settings)

    @property
    def http(self) -> HranaHttp:
        store = self.state.store
        if self._http is None or self._http.store is not store:
            self._http = HranaHttp(store, quotas=self.quotas)
            self.state.buffers.track(self._http.registry)  # its streams' memory
        return self._http

    def caller(self, scope: Any) -> tuple[bool, str, str]:
        """(read-only?, owner key for batons, whose share it counts in) of the request's
        credentials (the middleware has authenticated them already). The share is the
        token's, or without one the client address's."""
        token = bearer_token(scope)
        client = scope.get("client")
        share = caller_key(token, client[0] if client else None)
        return _readonly(scope), token_digest(token or ""), share

    async def pipeline(self, scope: Any, receive: Receive) -> bytes:
        """The response body of a ``v2``/``v3`` pipeline request, from its ASGI scope and
        receive: the route's whole work, so that a raw ASGI implementation of the route can
        share it."""
        body = await read_body(receive, self.state.settings.max_body_bytes, scope)
        http = self.http
        requests, baton = pipeline_request(body)
        # A point read needs neither the owner digest nor the share's key (2% of a point-read
        # request, py-spy on the app driven in-process): the key only says whether the caller
        # may open one more stream, which any caller may while no caller holds a share.
        caller = self.caller(scope) if len(self.quotas) else None
        answer = await http.point_pipeline(
            requests,
            baton,
            readonly=_readonly(scope),
            caller=None if caller is None else caller[2],
        )
        if answer is not None:
            return answer
        readonly, owner, share = caller or self.caller(scope)
        return await http.run_pipeline(
            requests, baton, owner=owner, readonly=readonly, caller=share
        )


def _readonly(scope: Any) -> bool:
    """Whether the request's credentials are read-only (no role: auth is off, admin)."""
    role = scope.get(ROLE_SCOPE_KEY)
    return isinstance(role, Role) and role < Role.RW


# The Hrana side of each live app, so that the app's shutdown can close its streams.
_LIVE: dict[int, _Hrana] = {}


async def close_streams(state: AppState) -> None:
    """Close the app's open Hrana HTTP streams, rolling back their transactions. Call it in
    the lifespan shutdown before the store closes: a stream abandoned inside a transaction
    pins the writer, and the store's close waits for the writer."""
    hrana = _LIVE.pop(id(state), None)
    if hrana is not None and hrana._http is not None:
        await hrana._http.close()


def route_handlers(state: AppState) -> list[Any]:
    """The Hrana route handlers of an app built around ``state``."""
    hrana = _Hrana(state)
    _LIVE[id(state)] = hrana

    async def v1_execute_raw(scope: Scope, receive: Receive, send: Send) -> None:
        """The raw implementation of ``v1_execute`` (web/rawroute.py): what ``libsql-client``
        (Python) sends for every statement over HTTP."""
        body = await read_body(receive, state.settings.max_body_bytes, scope)
        await send_json(send, OK, await hrana.http.v1_execute(body, readonly=_readonly(scope)))

    @post(
        "/v1/execute",
        status_code=OK,
        opt={**_OPT, RAW_OPT: v1_execute_raw},
        include_in_schema=False,
    )
    async def v1_execute(request: Request[Any, Any, Any]) -> Response[bytes]:
        body = await hrana.http.v1_execute(await request.body(), readonly=_readonly(request.scope))
        return Response(body, media_type=MediaType.JSON)

    @post("/v1/batch", status_code=OK, opt=_OPT, include_in_schema=False)
    async def v1_batch(request: Request[Any, Any, Any]) -> Response[bytes]:
        body = await hrana.http.v1_batch(await request.body(), readonly=_readonly(request.scope))
        return Response(body, media_type=MediaType.JSON)

    @get(["/v2", "/v3"], status_code=OK, opt=_OPT, include_in_schema=False)
    async def version_probe() -> Response[bytes]:
        return Response(b"", media_type=MediaType.TEXT)

    @get("/v3-protobuf", opt=_OPT, include_in_schema=False)
    async def protobuf_probe() -> None:
        raise NotFoundError("the protobuf encoding is not supported; use /v3 (JSON)")

    async def pipeline_raw(scope: Scope, receive: Receive, send: Send) -> None:
        """The raw implementation of ``pipeline`` (web/rawroute.py): the route libSQL clients
        send every statement to, without Litestar's Request and Response layers."""
        await send_json(send, OK, await hrana.pipeline(scope, receive))

    @post(
        ["/v2/pipeline", "/v3/pipeline"],
        status_code=OK,
        opt={**_OPT, RAW_OPT: pipeline_raw},
        include_in_schema=False,
    )
    async def pipeline(request: Request[Any, Any, Any]) -> ASGIResponse:
        body = await hrana.pipeline(request.scope, request.receive)
        # Raw ASGI messages, as the hot table reads send them: Litestar's Response costs
        # ~10 µs a request here (~9% of a point-read pipeline, py-spy on bench_reads.py).
        return RawResponse(OK, [*_JSON_HEADER, (b"content-length", b"%d" % len(body))], body)

    @post(
        "/v3/cursor",
        status_code=OK,
        opt={**_OPT, LONG_RUNNING_OPT: True},
        include_in_schema=False,
    )
    async def cursor(request: Request[Any, Any, Any]) -> Stream:
        readonly, owner, share = hrana.caller(request.scope)
        chunks: AsyncIterator[bytes] = hrana.http.cursor(
            await request.body(), owner=owner, readonly=readonly, caller=share
        )
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            state.drain.at_end(aclose)  # releases its connection if shutdown ends it
        return Stream(chunks, media_type=NDJSON)

    # No ROLE_OPT: WebSocket clients authenticate with the JWT in their hello message.
    @websocket("/", opt={ERROR_BODY_OPT: hrana_error_body, LONG_RUNNING_OPT: True})
    async def hrana_ws(socket: WebSocket[Any, Any, Any]) -> None:
        offered = [str(p) for p in socket.scope.get("subprotocols", [])]
        try:
            subprotocol = choose_subprotocol(offered)
        except ProtocolError as exc:
            await socket.close(code=CLOSE_PROTOCOL_ERROR, reason=exc.detail[:120])
            return
        await socket.accept(subprotocols=subprotocol)
        state.metrics.websockets_opened += 1
        store = state.store

        def authenticate(jwt: str | None) -> bool:
            return state.authenticator.authenticate(jwt) < Role.RW

        client = socket.scope.get("client")
        conn = WsConnection(
            store,
            version=SUBPROTOCOLS.get(subprotocol or "", 1),
            authenticate=authenticate,
            send=socket.send_text,
            quotas=hrana.quotas,
            peer=str(client[0]) if client else None,
            buffers=state.buffers,
        )
        limit = state.settings.max_body_bytes
        closing: asyncio.Future[None] | None = None

        def close_connection() -> asyncio.Future[None]:
            # One rollback of the connection's streams, awaited both by this handler and by
            # a shutdown that ends it (which must not close the store before it is done).
            # Shielded: an awaiter cancelled meanwhile (this handler, cancelled by the
            # shutdown) must not cancel the rollback the other one is waiting for, or the
            # shutdown fails before it checkpoints.
            nonlocal closing
            if closing is None:
                closing = asyncio.ensure_future(conn.close())
            return asyncio.shield(closing)

        state.drain.at_end(close_connection)
        try:
            while True:
                event = await socket.receive()
                if event["type"] == "websocket.disconnect":
                    break
                text = event.get("text")
                raw = event.get("bytes")
                data: str | bytes = (
                    text if isinstance(text, str) else raw if isinstance(raw, bytes) else b""
                )
                if len(data) > limit:
                    await socket.close(code=CLOSE_TOO_BIG, reason="message too large")
                    break
                await conn.handle(data)
                if conn.closing:
                    await socket.close(code=CLOSE_NORMAL, reason="authentication failed")
                    break
        except WebSocketDisconnect:
            pass
        except asyncio.CancelledError:  # the server is shutting down (web/drain.py)
            await _close_quietly(socket, CLOSE_GOING_AWAY, "server shutting down")
            raise
        except ProtocolError as exc:
            await _close_quietly(socket, CLOSE_PROTOCOL_ERROR, exc.detail)
        except EdgestoreError as exc:
            await _close_quietly(socket, CLOSE_PROTOCOL_ERROR, exc.detail)
        finally:
            await close_connection()
            state.metrics.websockets_closed += 1

    return [v1_execute, v1_batch, version_probe, protobuf_probe, pipeline, cursor, hrana_ws]


async def _close_quietly(socket: WebSocket[Any, Any, Any], code: int, reason: str) -> None:
    try:
        await socket.close(code=code, reason=reason[:120])
    except Exception:  # the peer may be gone already; closing is best effort
        return
