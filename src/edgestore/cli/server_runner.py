"""How ``edgestore serve`` runs granian: one process by default, worker processes on request.

With one worker (the default) granian's server is embedded in this process's asyncio loop
(``granian.server.embed``): no supervisor process. Granian's multi-process mode keeps a
master process that only watches the worker, and on this machine that master alone held
~38 MB of RSS next to a ~50 MB worker, which is most of the gap between a whole-server memory
budget and what the worker needs (measured by ``bench/bench_server_modes.py``, which also
shows the embedded server's throughput matches the worker's). One process also means the
memory monitor's RSS is the whole server's RSS.

The loop is uvloop where it is installed (``event_loop``, default ``auto``). The embedded
server hands every request from its Rust thread to the loop with ``call_soon_threadsafe``;
asyncio's loop pays a self-pipe write and a selector wake-up for each, uvloop coalesces them.
Measured by ``bench/bench_server_modes.py throughput`` (cached row read, CPU per request,
medians of 5): on uvloop the embedded server does 1.23x the work per CPU second of granian's
processes on asyncio's loop, and 0.97x of granian's processes on uvloop (granian takes
uvloop itself where it is installed); on asyncio's loop it had been 0.94-0.96x of granian's
processes on the same loop.

``workers > 1`` keeps granian's process model (``granian.Granian``); the memory monitor then
adds the other processes of the server to the figure it acts on (``edgestore.memory``).

Signals: SIGTERM and SIGINT stop accepting, let in-flight requests finish (at most
``shutdown_timeout`` seconds), then run the ASGI lifespan shutdown, where the store finishes
queued writes and checkpoints the WAL.

A startup that edgestore refuses (an ``EdgestoreError`` in the lifespan startup, e.g. a
replicated database whose page size is not 4096) ends the command with that one message and
exit status 1: granian's own report of it is two tracebacks and a ``FatalError`` that bury it.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import click

from ..config import EventLoopChoice, Settings
from ..errors import EdgestoreError
from ..memory.allocator import tune_allocator

__all__ = ["event_loop_name", "loop_factory", "run"]

log = logging.getLogger("edgestore")

# Before granian is imported (its jemalloc reads its settings then): see the module.
tune_allocator()


def run(settings: Settings, log_dictconfig: dict[str, Any]) -> None:
    """Serve ``settings`` until SIGTERM/SIGINT; one process unless ``settings.workers > 1``."""
    if settings.workers > 1:
        _run_processes(settings, log_dictconfig)
        return
    with asyncio.Runner(loop_factory=loop_factory(settings.event_loop)) as runner:
        runner.run(_run_embedded(settings, log_dictconfig))


def event_loop_name(choice: EventLoopChoice) -> Literal["uvloop", "asyncio"]:
    """The event loop ``choice`` comes to here (see the module docstring)."""
    if choice == "asyncio":
        return "asyncio"
    if importlib.util.find_spec("uvloop") is not None:
        return "uvloop"
    if choice == "uvloop":
        raise click.ClickException("event_loop=uvloop, but uvloop is not installed")
    return "asyncio"  # auto, where uvloop is not installed (Windows has no uvloop)


def loop_factory(choice: EventLoopChoice) -> Callable[[], asyncio.AbstractEventLoop]:
    """The constructor of the event loop ``choice`` names."""
    if event_loop_name(choice) == "asyncio":
        return asyncio.new_event_loop
    import uvloop

    return uvloop.new_event_loop


def _run_processes(settings: Settings, log_dictconfig: dict[str, Any]) -> None:
    from granian import Granian
    from granian.constants import Interfaces, Loops

    loop = Loops(event_loop_name(settings.event_loop))
    server = Granian(
        "edgestore.web.app:create_app",
        loop=loop,
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        websockets=True,
        log_dictconfig=log_dictconfig,
        workers_kill_timeout=max(1, round(settings.shutdown_timeout)),
        **_connection_limits(settings),
    )
    server.serve()


async def _run_embedded(settings: Settings, log_dictconfig: dict[str, Any]) -> None:
    from granian.constants import Interfaces
    from granian.errors import FatalError
    from granian.server.embed import Server

    from ..web.app import create_app

    app = _StartupGuard(create_app(settings))
    server = Server(
        app,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        websockets=True,
        log_dictconfig=log_dictconfig,
        **_connection_limits(settings),
    )
    # Not a constructor argument of the embedded server, but honoured by its shutdown.
    server.workers_kill_timeout = max(1, round(settings.shutdown_timeout))
    # granian logs that the embedded mode is experimental on every start: it is the mode
    # chosen here on purpose, so that line would only alarm operators.
    logging.getLogger("_granian").addFilter(_drop_experimental_warning)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, server.stop)
    try:
        await server.serve()
    except FatalError:
        if app.refused is None:
            raise
        raise click.ClickException(f"cannot start: {app.refused.detail}") from None
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


_Message = dict[str, Any]
_ASGIApp = Callable[..., Awaitable[None]]


class _StartupGuard:
    """The app, with a startup refused by edgestore kept as ``refused`` instead of logged as
    tracebacks (granian logs the lifespan's failure message, the formatted traceback, and
    then the exception again). Any other startup failure is passed on as it was. A startup
    that completes settles the heap (:func:`settle_heap`) before the first request."""

    def __init__(self, app: _ASGIApp) -> None:
        self.app = app
        self.refused: EdgestoreError | None = None

    async def __call__(
        self,
        scope: _Message,
        receive: Callable[[], Awaitable[_Message]],
        send: Callable[[_Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        failure: _Message | None = None

        async def hold_failure(message: _Message) -> None:
            # Sent before the app raises: whether it is reported depends on what it raises.
            nonlocal failure
            if message["type"] == "lifespan.startup.failed":
                failure = message
                return
            if message["type"] == "lifespan.startup.complete":
                settle_heap()  # before the first request
            await send(message)

        try:
            await self.app(scope, receive, hold_failure)
        except Exception as exc:
            refused = _edgestore_error(exc) if failure is not None else None
            if refused is None:
                if failure is not None:
                    await send(failure)
                raise
            self.refused = refused
            await send({"type": "lifespan.startup.failed", "message": ""})


def settle_heap() -> None:
    """Leave what startup built (modules, the app, its routes and schemas: ~110,000 objects)
    out of every later garbage collection: collect once, then freeze the survivors.

    A full (oldest-generation) collection walks every tracked object, and the server has no
    say in when one runs: under bench/bench_reads.py's load one took 60-330 ms, stalling
    every request in flight, which is what made the tail (p99) of whichever target it hit.
    With the startup heap frozen the same collections took 1-2 ms. Objects made later are
    collected as before; the frozen ones are alive for the life of the process anyway."""
    gc.collect()
    gc.freeze()


def _edgestore_error(exc: BaseException) -> EdgestoreError | None:
    """The EdgestoreError ``exc`` is or wraps (Litestar raises lifespan errors in a group)."""
    if isinstance(exc, EdgestoreError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = _edgestore_error(inner)
            if found is not None:
                return found
    return None


def _connection_limits(settings: Settings) -> dict[str, Any]:
    from granian.http import HTTP1Settings

    return {
        # A connection that has not sent its headers within the bound is closed, so idle or
        # half-open connections cannot hold the connection slots (granian's default is 30 s).
        "http1_settings": HTTP1Settings(
            header_read_timeout=max(1, round(settings.header_read_timeout * 1000))
        ),
        "backpressure": settings.max_connections,
    }


def _drop_experimental_warning(record: logging.LogRecord) -> bool:
    return "experimental" not in record.getMessage()
