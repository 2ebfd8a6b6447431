"""The one per-route ASGI middleware: browser rules, pressure refusal, auth, metrics, access log,
position, body read timeout, JSON nesting bound, and the raw implementations of the hottest
routes (web/rawroute.py).

Done as plain ASGI rather than Litestar guards and layered middlewares because this path runs
on every request: Litestar copies the route handler for each guard call (~20 µs), and every
extra middleware layer costs a coroutine and a send wrapper. Here it is one layer.

Per route (``opt`` of the handler, see ``state``): ``ROLE_OPT`` is the least role needed
(absent: public); ``ESSENTIAL_OPT`` keeps the route answering under emergency memory
pressure. Write responses carry the replication position header when the store has a
replication primary attached, so replicas can wait for a client's own writes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from ..auth import Role
from ..errors import EdgestoreError, InvalidRequest, OverloadedError, ProtocolError
from .body_deadline import BodyDeadlines
from .drain import LONG_RUNNING_OPT
from .errors import NOT_MODIFIED, OK, SERVER_ERROR, asgi_error
from .hotcache import HOT_OPT, MAX_AGE
from .json_depth import MAX_DEPTH, DepthGuard, too_deep
from .metrics import log_access
from .origins import BrowserPolicy
from .rawroute import RawHandler, content_length, runs_raw
from .routes.tables import hot_key
from .state import ESSENTIAL_OPT, ROLE_OPT, AppState

__all__ = ["ROLE_SCOPE_KEY", "bearer_token", "edge_middleware", "role_of"]

log = logging.getLogger("edgestore.web")

ROLE_SCOPE_KEY = "edgestore_role"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# WebSocket close code for a refused upgrade (before accept the server answers 403).
_WS_POLICY_VIOLATION = 1008


def bearer_token(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if any."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


def role_of(connection: Any) -> Role:
    """The role authenticated for this request (ADMIN when auth is off)."""
    role = connection.scope.get(ROLE_SCOPE_KEY)
    return role if isinstance(role, Role) else Role.ADMIN


def _replication_hooks() -> tuple[Callable[[Any], tuple[bytes, bytes] | None], Any, Any]:
    """(position header of a store, set read options from headers, reset them)."""
    try:
        from ..replication import POSITION_HEADER, format_position, position_of
        from ..replication.read_options import reset_read_options
        from .replica_headers import set_from_headers
    except ImportError:  # replication not available in this build
        log.warning("edgestore.replication unavailable; no replication headers")
        return (lambda store: None), (lambda headers: None), (lambda token: None)
    name = POSITION_HEADER.encode("latin-1")

    def header(store: Any) -> tuple[bytes, bytes] | None:
        position = position_of(store) if store is not None else None
        if position is None:
            return None
        return name, format_position(position).encode("latin-1")

    return header, set_from_headers, reset_read_options


def edge_middleware(state: AppState) -> Callable[[ASGIApp], ASGIApp]:
    """The middleware factory for ``state``'s app."""
    metrics = state.metrics
    authenticator = state.authenticator
    position_header, set_read_options, reset_read_options = _replication_hooks()

    policy = BrowserPolicy(state.settings)
    deadlines = BodyDeadlines(state.settings.body_read_timeout)
    # Per route handler (by id; handlers live as long as the app): its raw implementation
    # when it may run (web/rawroute.py), else None. Decided once, at the route's first request.
    raw_routes: dict[int, RawHandler | None] = {}

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                if scope["type"] == ScopeType.WEBSOCKET:
                    if policy.refusal(scope) is not None:
                        close: Any = {"type": "websocket.close", "code": _WS_POLICY_VIOLATION}
                        await send(close)
                        return
                    receive = _depth_checked_frames(receive)
                    if _long_running(scope):
                        await _run_long(state, app, scope, receive, send)
                        return
                await app(scope, receive, send)
                return
            start = time.perf_counter()
            method: str = scope["method"]
            status = SERVER_ERROR  # until the app says otherwise
            started = False
            writes = method not in _READ_METHODS
            cors_origin = policy.cors_origin(scope)

            async def send_wrapper(message: Message) -> None:
                nonlocal status, started
                if message["type"] == "http.response.start":
                    status = message["status"]
                    started = True
                    if writes:
                        extra = position_header(state.store_or_none)
                        if extra is not None:
                            message["headers"] = [*message.get("headers", ()), extra]
                    if cors_origin is not None:
                        policy.add_cors_headers(message, cors_origin)
                await send(message)

            body_done = False
            depth: DepthGuard | None = None
            body_left: int | None = None  # bytes still to come (Content-Length); -1 unknown

            async def checked_receive() -> Any:
                # Only while the request body is still arriving: afterwards the app waits on
                # receive() for a disconnect (streamed responses), which may take any time.
                nonlocal body_done, depth, body_left
                if body_done:
                    return await receive()
                message = await deadlines.read(receive())
                if message["type"] != "http.request":
                    body_done = True
                    return message
                more = message.get("more_body", False)
                if more:
                    if body_left is None:
                        body_left = content_length(scope)
                    if body_left >= 0:
                        body_left -= len(message.get("body", b""))
                        if body_left == 0:
                            # Content-Length bytes are in: the body is complete. Granian still
                            # sends an empty message to say so, and every receive() is a task
                            # on its runtime and a wake-up of the loop from another thread,
                            # ~10 µs of CPU (a bare ASGI app under wrk: 40-56 µs a POST reading
                            # both, 35-37 µs stopping here). So this one says it, and readers
                            # stop now.
                            message["more_body"] = False
                            more = False
                if not more:
                    body_done = True
                if depth is None:
                    depth = DepthGuard()
                if depth.feed(message.get("body", b""), not more):
                    body_done = True
                    raise InvalidRequest(
                        f"the request body is nested too deeply (at most {MAX_DEPTH} levels)"
                    )
                return message

            handler = scope.get("route_handler")
            opt: dict[str, Any] = getattr(handler, "opt", None) or {}
            # Replica read options (x-edgestore-position / accept-stale) for the store; a request
            # carrying them must really read, so it skips the hot response cache.
            token = set_read_options(scope["headers"])
            try:
                refusal = policy.refusal(scope) or _check(opt, scope, state, authenticator)
                if refusal is not None:
                    await asgi_error(refusal, send_wrapper, scope)
                elif await policy.answer_preflight(scope, send_wrapper) or (
                    method == "GET"
                    and token is None
                    and opt.get(HOT_OPT)
                    and await _serve_hot(scope, state, send_wrapper)
                ):
                    pass  # answered
                elif opt.get(LONG_RUNNING_OPT):
                    await _run_long(state, app, scope, checked_receive, send_wrapper)
                else:
                    key = id(handler)
                    if key in raw_routes:
                        raw = raw_routes[key]
                    else:
                        raw = raw_routes[key] = runs_raw(handler)
                    if raw is None:
                        await app(scope, checked_receive, send_wrapper)
                    else:
                        try:
                            await raw(scope, checked_receive, send_wrapper)
                        except Exception as exc:
                            if started:
                                raise
                            # What Litestar's exception middleware does for its handlers.
                            await asgi_error(exc, send_wrapper, scope)
            finally:
                if token is not None:
                    reset_read_options(token)
                elapsed = time.perf_counter() - start
                route = scope.get("path_template") or "unmatched"
                metrics.observe(method, route, status, elapsed)
                if metrics.access_log:
                    log_access(scope, method, status, elapsed)

        return middleware

    return factory


def _depth_checked_frames(receive: Receive) -> Receive:
    """``receive`` of a WebSocket, refusing text and binary frames nested past MAX_DEPTH."""

    async def checked() -> Any:
        message: Any = await receive()
        if message["type"] == "websocket.receive":
            data = message.get("text") or message.get("bytes")
            if data and too_deep(data):
                raise ProtocolError(
                    f"the message is nested too deeply (at most {MAX_DEPTH} levels)"
                )
        return message

    return checked


async def _run_long(
    state: AppState, app: ASGIApp, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run a streaming request that shutdown may end (web/drain.py)."""
    with state.drain.track(scope):
        try:
            await app(scope, receive, send)
        except asyncio.CancelledError:
            if not state.drain.draining:
                raise
            # Ended by shutdown on purpose; the connection is gone, there is nothing to answer.


def _long_running(scope: Scope) -> bool:
    opt = getattr(scope.get("route_handler"), "opt", None)
    return bool(opt and opt.get(LONG_RUNNING_OPT))


async def _serve_hot(scope: Scope, state: AppState, send: Send) -> bool:
    """Answer from the HotCache if the entry is current (the route allows it: HOT_OPT)."""
    hot = state.hot
    key = hot_key(scope)
    entry = hot.get(key)
    store = state.store_or_none
    if entry is None or store is None:
        return False
    if store.versions.stamp(entry.tables) != entry.stamp or time.monotonic() - entry.born > MAX_AGE:
        hot.drop(key)
        return False
    hot.hits += 1
    if _etag_matches(scope, entry.etag):
        await send(
            {
                "type": "http.response.start",
                "status": NOT_MODIFIED,
                "headers": [(b"etag", entry.etag)],
            }
        )
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return True
    await send(
        {
            "type": "http.response.start",
            "status": OK,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(entry.body)),
                (b"etag", entry.etag),
            ],
        }
    )
    await send({"type": "http.response.body", "body": entry.body, "more_body": False})
    return True


def _etag_matches(scope: Scope, etag: bytes) -> bool:
    for name, value in scope["headers"]:
        if name == b"if-none-match":
            tags = {t.strip().removeprefix(b"W/") for t in value.split(b",")}
            return etag in tags or b"*" in tags
    return False


def _check(
    opt: dict[str, Any], scope: Scope, state: AppState, authenticator: Any
) -> EdgestoreError | None:
    """The error that refuses this request (its route's ``opt``), or None to let it through."""
    memory = state.memory
    if memory is not None and memory.refuse_non_essential and not opt.get(ESSENTIAL_OPT):
        state.hot.clear()  # give its memory back too
        return OverloadedError("refused under emergency memory pressure; retry later")
    needed = opt.get(ROLE_OPT)
    if needed is None or not authenticator.enabled:
        return None  # public route, or no auth configured (every caller is admin)
    try:
        role = authenticator.authorize(bearer_token(scope), Role(needed))
    except EdgestoreError as exc:
        return exc
    scope[ROLE_SCOPE_KEY] = role  # type: ignore[literal-required]
    return None
