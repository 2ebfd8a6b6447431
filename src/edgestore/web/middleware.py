"""The one per-route ASGI middleware: pressure refusal, auth, metrics, access log, position.

Done as plain ASGI rather than Litestar guards and layered middlewares because this path runs
on every request: Litestar copies the route handler for each guard call (~20 µs), and every
extra middleware layer costs a coroutine and a send wrapper. Here it is one layer.

Per route (``opt`` of the handler, see ``state``): ``ROLE_OPT`` is the least role needed
(absent: public); ``ESSENTIAL_OPT`` keeps the route answering under emergency memory
pressure. Write responses carry the replication position header when the store has a
replication primary attached, so replicas can wait for a client's own writes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from ..auth import Role
from ..errors import EdgestoreError, OverloadedError
from .errors import asgi_error
from .metrics import log_access
from .state import ESSENTIAL_OPT, ROLE_OPT, AppState

__all__ = ["ROLE_SCOPE_KEY", "bearer_token", "edge_middleware", "role_of"]

log = logging.getLogger("edgestore.web")

ROLE_SCOPE_KEY = "edgestore_role"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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


def _position_header() -> Callable[[Any], tuple[bytes, bytes] | None]:
    try:
        from ..storage.replication import POSITION_HEADER, ReplicationPrimary, format_position
    except ImportError:  # replication not available in this build: no header to add
        log.warning("edgestore.storage.replication unavailable; no position header")
        return lambda store: None
    name = POSITION_HEADER.encode("latin-1")

    def header(store: Any) -> tuple[bytes, bytes] | None:
        primary = ReplicationPrimary.of(store) if store is not None else None
        if primary is None:
            return None
        return name, format_position(primary.position()).encode("latin-1")

    return header


def edge_middleware(state: AppState) -> Callable[[ASGIApp], ASGIApp]:
    """The middleware factory for ``state``'s app."""
    metrics = state.metrics
    authenticator = state.authenticator
    position_header = _position_header()

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP:
                await app(scope, receive, send)
                return
            start = time.perf_counter()
            method: str = scope["method"]
            status = 500
            writes = method not in _READ_METHODS

            async def send_wrapper(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    if writes:
                        extra = position_header(state.store_or_none)
                        if extra is not None:
                            message["headers"] = [*message.get("headers", ()), extra]
                await send(message)

            try:
                refusal = _check(scope, state, authenticator)
                if refusal is not None:
                    await asgi_error(refusal, send_wrapper)
                else:
                    await app(scope, receive, send_wrapper)
            finally:
                elapsed = time.perf_counter() - start
                route = scope.get("path_template") or "unmatched"
                metrics.observe(method, route, status, elapsed)
                if metrics.access_log:
                    log_access(scope, method, status, elapsed)

        return middleware

    return factory


def _check(scope: Scope, state: AppState, authenticator: Any) -> EdgestoreError | None:
    """The error that refuses this request, or None to let it through."""
    handler = scope.get("route_handler")
    opt: dict[str, Any] = getattr(handler, "opt", None) or {}
    memory = state.memory
    if memory is not None and memory.refuse_non_essential and not opt.get(ESSENTIAL_OPT):
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
