"""The libSQL sync pull protocol over HTTP, served from the primary's WAL.

``GET /info``, ``GET /export/{generation}``, ``GET /sync/{generation}/{start}/{end}`` (what
``libsql`` embedded replicas and ``@libsql/client`` with ``syncUrl`` speak), the refused
``POST /sync/...`` (offline-write push), and two edgestore routes:
``POST /replication/checkpoint`` (admin: end the generation now) and ``GET /replication``.

Pulling needs the ``ro`` role; a replica forwards its writes over Hrana, which needs ``rw``.
The work is in :mod:`edgestore.replication`; this module only translates.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any

from litestar import MediaType, Response, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import PathParameter
from litestar.response import Stream
from litestar.types import ASGIApp, Receive, Scope, Send

from ..auth import Role
from ..errors import EndOfGeneration, NotFoundError, SyncPushRefused
from ..replication import (
    POSITION_HEADER,
    PrimaryHealth,
    PrimaryStats,
    ReplicaStatus,
    ReplicationPrimary,
    format_position,
    position_of,
)
from ..replication.read_options import reset_read_options
from .errors import ERROR_BODY_OPT, OK, error_body
from .replica_headers import set_from_headers
from .state import ROLE_OPT, AppState

__all__ = [
    "position_header",
    "replica_headers_middleware",
    "replication_health",
    "route_handlers",
]

_OCTETS = "application/octet-stream"

Generation = Annotated[int, PathParameter(ge=1, description="A generation id")]
FrameNo = Annotated[int, PathParameter(ge=0, description="A frame number (1-based)")]


def _sync_error_body(exc: BaseException) -> Any:
    """libsql reads ``{"generation": N}`` from the "nothing more" answer; else the usual body."""
    if isinstance(exc, EndOfGeneration):
        return {"generation": exc.generation}
    return error_body(exc)


async def _chunks(it: Iterator[bytes]) -> AsyncIterator[bytes]:
    """Read file-backed chunks on a worker thread, never on the event loop."""
    end = object()
    while True:
        piece = await asyncio.to_thread(next, it, end)
        if piece is end:
            return
        assert isinstance(piece, bytes)
        yield piece


def route_handlers(state: AppState) -> list[HTTPRouteHandler]:
    """The sync routes for ``state``'s app. They answer 404 when replication is off or this
    node is itself a replica (replicas do not serve replicas)."""

    async def primary() -> ReplicationPrimary:
        settings = state.settings
        found = ReplicationPrimary.of(state.store)
        if found is None or not settings.replication or settings.replica_of:
            raise NotFoundError(
                "this node does not serve replicas (replication is off or it is a replica)"
            )
        return found

    ro = {ROLE_OPT: Role.RO, ERROR_BODY_OPT: _sync_error_body}

    @get("/info", opt=ro, media_type=MediaType.JSON, include_in_schema=True)
    async def info() -> dict[str, int]:
        """The current generation: ``{"current_generation": N}``."""
        return (await primary()).info()

    @get("/export/{generation:int}", opt=ro)
    async def export(generation: Generation) -> Stream:
        """The database file as at the start of ``generation`` (the current one)."""
        chunks = (await primary()).export(generation)
        first = await asyncio.to_thread(next, chunks, b"")  # raise errors before streaming
        return Stream(_prepend(first, chunks), media_type=_OCTETS)

    @get("/sync/{generation:int}/{start:int}/{end:int}", opt=ro)
    async def pull(generation: Generation, start: FrameNo, end: FrameNo) -> Response[Any]:
        """WAL frames ``start..end-1`` of ``generation``, cut at a commit frame; 400 with
        ``{"generation": N}`` when there is nothing more."""
        p = await primary()
        frames = await asyncio.to_thread(p.frames, generation, start, end)
        headers = {"x-edgestore-frames": str(frames.count)}
        return Stream(_chunks(frames.chunks), media_type=_OCTETS, headers=headers)

    @post("/sync/{generation:int}/{start:int}/{end:int}", opt=ro, status_code=OK)
    async def push(generation: Generation, start: FrameNo, end: FrameNo) -> None:
        """Refused: edgestore replicas write through Hrana, not by pushing frames."""
        raise SyncPushRefused()

    @post("/sync/{generation:int}/{start:int}/{end:int}/{baton:str}", opt=ro, status_code=OK)
    async def push_baton(
        generation: Generation, start: FrameNo, end: FrameNo, baton: Annotated[str, PathParameter()]
    ) -> None:
        """Refused, as without a baton."""
        raise SyncPushRefused()

    @post("/replication/checkpoint", opt={ROLE_OPT: Role.ADMIN}, status_code=OK)
    async def checkpoint() -> dict[str, Any]:
        """End the current generation now; returns the new generation and position."""
        p = await primary()
        generation = await p.checkpoint()
        return {"generation": generation, "position": format_position(p.position())}

    @get("/replication", opt={ROLE_OPT: Role.RO})
    async def status() -> PrimaryStats:
        """Generation, position, WAL size and archived generations of this primary."""
        return await asyncio.to_thread((await primary()).stats)

    return [info, export, pull, push, push_baton, checkpoint, status]


async def _prepend(first: bytes, rest: Iterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for piece in _chunks(rest):
        yield piece


def replica_headers_middleware(app: ASGIApp) -> ASGIApp:
    """ASGI middleware: a request's ``x-edgestore-accept-stale`` / ``x-edgestore-position``
    headers become the replica read options of its context (see replication.read_options)."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        token = (
            set_from_headers(scope.get("headers", ()))
            if scope["type"] in ("http", "websocket")
            else None
        )
        try:
            await app(scope, receive, send)
        finally:
            if token is not None:
                reset_read_options(token)

    return middleware


def position_header(state: AppState) -> tuple[str, str] | None:
    """``(name, value)`` of the replication position header for a response, or None.

    On a primary: the position after the latest commit (so after a write, at least that
    write's); on a replica node: the position it has pulled.
    """
    position = position_of(state.store_or_none)
    return None if position is None else (POSITION_HEADER, format_position(position))


async def replication_health(state: AppState) -> PrimaryHealth | ReplicaStatus | None:
    """Replication part of ``/health/ready``: role, position and, on a replica, the lag
    (``ok`` false further behind than ``max_replication_lag``); None without replication."""
    store = state.store_or_none
    if store is None or store.replication_role is None:
        return None
    primary = ReplicationPrimary.of(store)
    if primary is not None:
        return PrimaryHealth(position=format_position(primary.position()))
    # Imported here: only replica nodes load the follower (and its HTTP client).
    from ..replication.replica_store import ReplicaStore

    return await store.follower.status() if isinstance(store, ReplicaStore) else None
