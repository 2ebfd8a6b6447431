"""Ending long-running requests when the server is told to stop.

On SIGTERM granian stops accepting and waits for the requests in flight before it runs the
lifespan shutdown (which rolls back streams, finishes writes and checkpoints the WAL). A Hrana
cursor or WebSocket whose client stopped reading is in flight until the client goes away, so
the whole shutdown would wait ``shutdown_timeout`` and then be killed, leaving the WAL
unmerged. Routes marked with ``LONG_RUNNING_OPT`` run inside :meth:`Drain.track`; the first
SIGTERM or SIGINT cancels them, so in-flight work that does end on its own (ordinary requests,
queued writes) still completes, and the checkpoint runs within the timeout.

The handler chains to whatever handled the signal before (asyncio's, granian's, the default),
so the server's own shutdown proceeds exactly as without it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import signal
import socket
import stat
import threading
from collections.abc import Awaitable, Callable, Iterator
from types import FrameType
from typing import Any

__all__ = ["LONG_RUNNING_OPT", "Drain"]

log = logging.getLogger("edgestore.web")

LONG_RUNNING_OPT = "edgestore_long_running"
"""Route ``opt`` key: True for streaming routes that shutdown ends rather than waits for."""

_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_CLOSE_ATTEMPTS = 200
_CLOSE_RETRY_SECONDS = 0.025


Address = tuple[str, int]


Closer = Callable[[], Awaitable[Any]]


class _Request:
    __slots__ = ("client", "closers", "ended", "server", "task")

    def __init__(self, task: asyncio.Task[Any] | None, scope: Any) -> None:
        self.task = task
        self.client = _address(scope.get("client"))
        self.server = _address(scope.get("server"))
        self.closers: list[Closer] = []
        self.ended = False


_CURRENT: contextvars.ContextVar[_Request | None] = contextvars.ContextVar(
    "edgestore_long_running_request", default=None
)


class Drain:
    """The long-running requests of one app, and the signal handlers that end them."""

    def __init__(self) -> None:
        self._requests: set[_Request] = set()
        self._closing: asyncio.Task[None] | None = None
        self.draining = False

    @contextlib.contextmanager
    def track(self, scope: Any) -> Iterator[None]:
        """Run the current request as one that shutdown ends."""
        request = _Request(asyncio.current_task(), scope)
        self._requests.add(request)
        token = _CURRENT.set(request)
        if self.draining:
            _end(request)  # arrived after the signal
        try:
            yield
        finally:
            _CURRENT.reset(token)
            self._requests.discard(request)

    def at_end(self, closer: Closer) -> None:
        """Also await ``closer()`` when shutdown ends the current request: for a response
        body that holds resources (a cursor's connection) which only closing it releases.
        The server may drop a response whose connection broke without closing its body."""
        request = _CURRENT.get()
        if request is not None:
            request.closers.append(closer)

    def begin(self) -> None:
        """Start ending every tracked request (idempotent); :meth:`end_all` awaits it."""
        if not self.draining:
            self.draining = True
            if self._requests:
                log.info("shutting down: ending %d streaming request(s)", len(self._requests))
        for request in list(self._requests):
            _end(request)
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._run_closers())

    async def end_all(self) -> None:
        """End every tracked request and wait until their closers have run."""
        self.begin()
        if self._closing is not None:
            await self._closing

    async def _run_closers(self) -> None:
        for request in list(self._requests):
            while request.closers:
                await _close(request.closers.pop())

    def install_signal_handlers(self) -> Callable[[], None]:
        """Chain SIGTERM/SIGINT handlers that call :meth:`begin` on this loop; returns the
        function that restores the previous handlers. Only the main thread can do this: an
        app run in another thread (test clients) keeps the handlers it has."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        loop = asyncio.get_running_loop()
        previous: dict[int, Any] = {}

        def handler(signum: int, frame: FrameType | None) -> None:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nothing to end
                loop.call_soon_threadsafe(self.begin)
            before = previous.get(signum)
            if callable(before):
                before(signum, frame)
            elif before == signal.SIG_DFL:
                # Nothing handled it before: do what the default would, after our part.
                signal.signal(signum, signal.SIG_DFL)
                os.kill(os.getpid(), signum)

        for sig in _SIGNALS:
            previous[sig] = signal.getsignal(sig)
            signal.signal(sig, handler)

        def restore() -> None:
            for sig, before in previous.items():
                if signal.getsignal(sig) is handler:
                    signal.signal(sig, before)

        return restore


async def _close(closer: Closer) -> None:
    # A body generator in the middle of producing a chunk cannot be closed yet; once that
    # chunk fails to send (the socket is shut down) it waits at its next yield, closable.
    for _ in range(_CLOSE_ATTEMPTS):
        try:
            await closer()
            return
        except RuntimeError as exc:
            if "already running" not in str(exc):
                raise
        await asyncio.sleep(_CLOSE_RETRY_SECONDS)
    log.warning("a streaming response could not be closed at shutdown")


def _address(value: Any) -> Address | None:
    if isinstance(value, list | tuple) and len(value) == 2:
        return str(value[0]), int(value[1])
    return None


def _end(request: _Request) -> None:
    """Cancel the request's task and shut its connection down.

    Cancelling is not enough: the server keeps a connection open while it still has response
    bytes to write to a client that stopped reading, and waits for it before stopping. Shutting
    the socket down makes those writes fail, so the connection closes at once.

    Once per request: a second cancel (the signal, then the lifespan shutdown) would land in
    the request's own cleanup, which rolls back what it holds.
    """
    if request.ended:
        return
    request.ended = True
    if request.task is not None:
        request.task.cancel()
    if request.client is not None and request.server is not None:
        _shutdown_socket(request.client, request.server)


def _shutdown_socket(client: Address, server: Address) -> None:
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # not Linux: cancelling the task is all we can do
        return
    for fd in fds:
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            duplicate = os.dup(fd)
        except OSError:
            continue  # closed meanwhile
        try:
            sock = socket.socket(fileno=duplicate)
        except OSError:
            os.close(duplicate)
            continue
        try:
            if sock.type == socket.SOCK_STREAM and sock.family in (
                socket.AF_INET,
                socket.AF_INET6,
            ):
                peer, own = sock.getpeername()[:2], sock.getsockname()[:2]
                if (str(peer[0]), int(peer[1])) == client and (str(own[0]), int(own[1])) == (
                    server
                ):
                    sock.shutdown(socket.SHUT_RDWR)
                    return
        except OSError:
            pass  # not connected, or already shut down
        finally:
            sock.close()
