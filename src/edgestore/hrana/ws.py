"""Hrana over WebSocket (``hrana1``, ``hrana2``, ``hrana3``, JSON text frames), framework-free.

The web layer accepts the socket with the negotiated subprotocol, feeds each text frame to
:meth:`WsConnection.handle` and calls :meth:`WsConnection.close` when the socket ends.
Responses go out through the ``send`` callback, possibly out of order across streams.

Ordering: requests on one stream run one after another in arrival order (each stream's FIFO
lock, taken by a task created in arrival order); different streams run concurrently, so one
stream waiting for the writer never blocks another stream's COMMIT. SQL ids (store_sql) and
cursor ids belong to the connection and are resolved when a message arrives, which keeps
store/close_sql ordered with the requests around them.

A client error that breaks the protocol (not JSON, unknown message, a request before hello)
raises :class:`ProtocolError`; the caller closes the socket with ``CLOSE_PROTOCOL_ERROR``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any

import msgspec

from ..errors import AuthError, EdgestoreError, ProtocolError
from ..memory.streams import StreamBuffers
from .backend import StoreLike
from .errors import error_of
from .framing import decode_object
from .quota import CallerShare, Quotas, caller_key
from .stream import Stream, close_sql, resolve_batch, store_sql, with_sql

__all__ = [
    "CLOSE_NORMAL",
    "CLOSE_PROTOCOL_ERROR",
    "CLOSE_TOO_BIG",
    "SUBPROTOCOLS",
    "WsConnection",
    "choose_subprotocol",
]

log = logging.getLogger("edgestore.hrana")

SUBPROTOCOLS: dict[str, int] = {"hrana3": 3, "hrana2": 2, "hrana1": 1}
"""WebSocket subprotocols we speak, with their Hrana version (JSON encoding only)."""

# WebSocket close codes (RFC 6455), not HTTP statuses.
CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002
"""For a client that broke the protocol."""
CLOSE_TOO_BIG = 1009
"""For a message larger than ``max_body_bytes``."""

MAX_STREAMS = 128
"""Most streams one WebSocket connection may have open."""

_encode = msgspec.json.Encoder().encode

Authenticate = Callable[[str | None], bool]
"""Checks a JWT from ``hello``; returns True for a read-only caller, raises AuthError."""


def choose_subprotocol(offered: list[str]) -> str | None:
    """The best subprotocol the client offered; None when it offered none (Hrana 1 then),
    or raises ProtocolError when it offered only ones we do not speak."""
    if not offered:
        return None
    for name in SUBPROTOCOLS:
        if name in offered:
            return name
    raise ProtocolError(
        f"none of the offered subprotocols {offered} is supported; use hrana3, hrana2 or hrana1"
    )


class _Cursor:
    """An open cursor: the stream's entries a group at a time, the rest of the group read
    ahead (``ahead[at:]``) until the client fetches it."""

    def __init__(self, stream: Stream, groups: AsyncGenerator[list[dict[str, Any]], None]) -> None:
        self.stream = stream
        self.groups = groups
        self.ahead: list[dict[str, Any]] = []
        self.at = 0
        self.done = False

    async def fetch(self, max_count: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while len(out) < max_count and not self.done:
            if self.at >= len(self.ahead):
                try:
                    self.ahead, self.at = await anext(self.groups), 0
                except StopAsyncIteration:
                    self.done = True
                    self.ahead, self.at = [], 0
                continue
            taken = self.ahead[self.at : self.at + max_count - len(out)]
            out += taken
            self.at += len(taken)
        return out

    def buffered_bytes(self) -> int:
        """JSON bytes of the entries read ahead and not fetched yet (measured when asked)."""
        if self.at >= len(self.ahead):
            return 0
        return len(_encode(self.ahead[self.at :]))

    async def close(self) -> None:
        self.done = True
        self.ahead, self.at = [], 0
        await self.groups.aclose()


class WsConnection:
    """One Hrana WebSocket connection: its streams, stored SQL, cursors and pending work."""

    def __init__(
        self,
        store: StoreLike,
        *,
        version: int,
        authenticate: Authenticate,
        send: Callable[[str], Awaitable[None]],
        quotas: Quotas | None = None,
        peer: str | None = None,
        buffers: StreamBuffers | None = None,
    ) -> None:
        self.store = store
        self._quotas = quotas
        self._peer = peer
        """The client's address: who the caller is when its hello carries no JWT."""
        self._caller: str | None = None
        self._refused: set[int] = set()
        """Stream ids whose open_stream the caller's share refused: clients pipeline requests
        behind open_stream, and those should say why, not "no such stream"."""
        self.version = version
        self._authenticate = authenticate
        self._send = send
        self._send_lock = asyncio.Lock()
        self._readonly: bool | None = None  # None until a successful hello
        self._streams: dict[int, Stream] = {}
        self._sqls: dict[int, str] = {}
        self._cursors: dict[int, _Cursor] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.closing = False
        self._pending = 0
        """Bytes of request messages waiting for their answer and of answers waiting for
        the socket (see :meth:`held_bytes`)."""
        self._buffers = buffers
        if buffers is not None:
            buffers.track(self)

    def held_bytes(self) -> int:
        """Bytes this connection holds for its client now: messages in flight, stored SQL,
        cursor rows read ahead, and its streams' own state (shallow sizes). Asked by the
        memory monitor when it samples (``edgestore.memory.streams``), never per request."""
        held = self._pending + sum(sys.getsizeof(sql) for sql in self._sqls.values())
        held += sum(c.buffered_bytes() for c in self._cursors.values())
        held += sum(_shallow(s) for s in self._streams.values())
        return held

    # --- framing -------------------------------------------------------------------------
    async def _emit(self, msg: Mapping[str, Any]) -> None:
        frame = _encode(msg)
        self._pending += len(frame)
        try:
            async with self._send_lock:
                await self._send(frame.decode())
        finally:
            self._pending -= len(frame)

    async def handle(self, text: str | bytes) -> None:
        """Handle one client message. Raises ProtocolError when the socket must close."""
        if isinstance(text, bytes):
            raise ProtocolError("binary frames are not supported; use JSON text frames")
        msg = decode_object(text, "message")
        kind = msg.get("type")
        if kind == "hello":
            await self._hello(msg)
        elif kind == "request":
            if self._readonly is None:
                raise ProtocolError("the first message must be hello")
            self._request(msg, len(text))
        else:
            raise ProtocolError(f"unknown message type {kind!r}")

    async def _hello(self, msg: Mapping[str, Any]) -> None:
        if self._readonly is not None and self.version < 2:
            raise ProtocolError("hello can be sent only once in hrana1")
        jwt = msg.get("jwt")
        if jwt is not None and not isinstance(jwt, str):
            raise ProtocolError("hello.jwt must be a string or null")
        try:
            self._readonly = self._authenticate(jwt)
            if self._caller is None:
                self._caller = caller_key(jwt, self._peer)
        except AuthError as exc:
            self._readonly = None
            self.closing = True
            await self._emit({"type": "hello_error", "error": error_of(exc)})
            return
        await self._emit({"type": "hello_ok"})

    # --- requests ------------------------------------------------------------------------
    def _request(self, msg: Mapping[str, Any], size: int) -> None:
        request_id = msg.get("request_id")
        req = msg.get("request")
        if isinstance(request_id, bool) or not isinstance(request_id, int):
            raise ProtocolError("request_id must be an integer")
        if not isinstance(req, Mapping):
            raise ProtocolError("request must be an object")
        try:
            stream, work = self._prepare(req)
        except EdgestoreError as exc:
            error = exc
            self._spawn(lambda: self._respond_error(request_id, error), size)
            return
        if stream is None:
            self._spawn(lambda: self._respond(request_id, work), size)
        else:
            target = stream
            self._spawn(lambda: self._respond_on(target, request_id, work), size)

    def _stream(self, req: Mapping[str, Any]) -> Stream:
        sid = req.get("stream_id")
        stream = self._streams.get(sid) if isinstance(sid, int) else None
        if stream is None:
            if sid in self._refused:
                if req.get("type") == "close_stream":
                    self._refused.discard(sid)
                raise ProtocolError(
                    f"stream {sid} was refused: the caller's share of streams is used up",
                    code="STREAMS_EXHAUSTED",
                )
            raise ProtocolError(f"no open stream with id {sid!r}", code="STREAM_NOT_FOUND")
        return stream

    def _prepare(
        self, req: Mapping[str, Any]
    ) -> tuple[Stream | None, Callable[[], Awaitable[dict[str, Any]]]]:
        """Everything order-sensitive happens here, synchronously, when the message arrives;
        the returned callable does the rest on the stream's turn."""
        kind = req.get("type")
        if kind == "open_stream":
            sid = req.get("stream_id")
            if isinstance(sid, bool) or not isinstance(sid, int):
                raise ProtocolError("open_stream needs an integer stream_id")
            if sid in self._streams:
                raise ProtocolError(f"stream {sid} is already open")
            if len(self._streams) >= MAX_STREAMS:
                raise ProtocolError(
                    f"at most {MAX_STREAMS} streams per connection", code="STREAMS_EXHAUSTED"
                )
            assert self._readonly is not None
            share: CallerShare | None = None
            if self._quotas is not None and self._caller is not None:
                share = self._quotas.share(self._caller)
                try:
                    share.open_stream()
                except ProtocolError:
                    if len(self._refused) < MAX_STREAMS:
                        self._refused.add(sid)
                    raise
            self._refused.discard(sid)
            self._streams[sid] = Stream(
                self.store, readonly=self._readonly, sqls=self._sqls, share=share
            )
            return None, _const({"type": "open_stream"})
        if kind == "close_stream":
            stream = self._stream(req)
            del self._streams[req["stream_id"]]
            cursors = [c for c in self._cursors.values() if c.stream is stream]
            self._cursors = {k: c for k, c in self._cursors.items() if c.stream is not stream}

            async def close_stream() -> dict[str, Any]:
                for cursor in cursors:
                    await cursor.close()
                await stream.close()
                return {"type": "close_stream"}

            return stream, close_stream
        if kind == "store_sql":
            store_sql(self._sqls, req)
            return None, _const({"type": "store_sql"})
        if kind == "close_sql":
            close_sql(self._sqls, req)
            return None, _const({"type": "close_sql"})
        if kind in ("execute", "batch", "sequence", "describe", "get_autocommit"):
            stream = self._stream(req)
            resolved: dict[str, Any] = dict(req)
            if kind == "execute":
                stmt = req.get("stmt")
                if not isinstance(stmt, Mapping):
                    raise ProtocolError("execute needs a stmt object")
                resolved["stmt"] = with_sql(stmt, self._sqls)
            elif kind == "batch":
                resolved["batch"] = resolve_batch(req.get("batch"), self._sqls)
            elif kind in ("sequence", "describe"):
                resolved = with_sql(req, self._sqls)
            return stream, lambda: stream.request(resolved)
        if kind in ("open_cursor", "fetch_cursor", "close_cursor") and self.version >= 3:
            return self._prepare_cursor(kind, req)
        raise ProtocolError(f"unknown request type {kind!r}", code="UNKNOWN_REQUEST")

    def _prepare_cursor(
        self, kind: str, req: Mapping[str, Any]
    ) -> tuple[Stream | None, Callable[[], Awaitable[dict[str, Any]]]]:
        cid = req.get("cursor_id")
        if isinstance(cid, bool) or not isinstance(cid, int):
            raise ProtocolError(f"{kind} needs an integer cursor_id")
        if kind == "open_cursor":
            stream = self._stream(req)
            if cid in self._cursors:
                raise ProtocolError(f"cursor {cid} is already open")
            batch = resolve_batch(req.get("batch"), self._sqls)
            self._cursors[cid] = _Cursor(stream, stream.cursor_chunks(batch))
            return stream, _const({"type": "open_cursor"})
        cursor = self._cursors.get(cid)
        if cursor is None:
            raise ProtocolError(f"no open cursor with id {cid}", code="CURSOR_NOT_FOUND")
        if kind == "close_cursor":
            del self._cursors[cid]

            async def close_cursor() -> dict[str, Any]:
                await cursor.close()
                return {"type": "close_cursor"}

            return cursor.stream, close_cursor
        max_count = req.get("max_count")
        if isinstance(max_count, bool) or not isinstance(max_count, int) or max_count < 0:
            raise ProtocolError("fetch_cursor needs a non-negative integer max_count")

        async def fetch() -> dict[str, Any]:
            entries = await cursor.fetch(min(max_count, 10_000))
            return {"type": "fetch_cursor", "entries": entries, "done": cursor.done}

        return cursor.stream, fetch

    async def _respond_on(
        self, stream: Stream, request_id: int, work: Callable[[], Awaitable[dict[str, Any]]]
    ) -> None:
        async with stream.lock:  # first await: keeps arrival order per stream
            await self._respond(request_id, work)

    async def _respond(
        self, request_id: int, work: Callable[[], Awaitable[dict[str, Any]]]
    ) -> None:
        try:
            response = await work()
        except Exception as exc:
            await self._respond_error(request_id, exc)
            return
        await self._emit({"type": "response_ok", "request_id": request_id, "response": response})

    async def _respond_error(self, request_id: int, exc: BaseException) -> None:
        await self._emit(
            {"type": "response_error", "request_id": request_id, "error": error_of(exc)}
        )

    def _spawn(self, make: Callable[[], Awaitable[None]], size: int) -> None:
        # The coroutine is made inside the task, so a task cancelled before it starts (the
        # socket closed) leaves no never-awaited coroutine behind.
        task: asyncio.Task[None] = asyncio.ensure_future(self._guarded(make, size))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, make: Callable[[], Awaitable[None]], size: int) -> None:
        self._pending += size  # the request's message, held until it is answered
        try:
            await make()
        except Exception:
            # The socket went away while we answered: nothing to tell anyone.
            log.debug("dropping a Hrana response for a closed socket", exc_info=True)
        finally:
            self._pending -= size

    async def close(self) -> None:
        """The socket ended: stop pending work, close cursors and streams (rolling back)."""
        self.closing = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for cursor in list(self._cursors.values()):
            try:
                await cursor.close()
            except Exception:
                log.debug("closing a cursor failed", exc_info=True)
        self._cursors.clear()
        streams = list(self._streams.values())
        self._streams.clear()
        for stream in streams:
            try:
                await stream.close()
            except Exception:
                log.exception("closing a Hrana stream failed")
        if self._buffers is not None:
            self._buffers.untrack(self)


def _shallow(obj: object) -> int:
    """An object's own size and its attribute dict's (not what the attributes point to)."""
    attrs = getattr(obj, "__dict__", None)
    return sys.getsizeof(obj) + (sys.getsizeof(attrs) if attrs is not None else 0)


def _const(response: dict[str, Any]) -> Callable[[], Awaitable[dict[str, Any]]]:
    async def done() -> dict[str, Any]:
        return response

    return done
