"""A real edgestore server on an ephemeral loopback port, in the test's own event loop.

The app runs under uvicorn as a task of the test loop, so a test can look at the very Store
the server uses (pool stats, versions) while real clients talk to it over TCP. Blocking
clients (the Rust-based ``libsql``, node) run in a thread or a subprocess.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from litestar import Litestar

import edgestore
from edgestore.config import Settings

STORAGE_READY = (Path(edgestore.__file__).parent / "storage" / "READY").exists()


@dataclass
class Server:
    url: str
    ws_url: str
    app: Litestar
    settings: Settings

    @property
    def state(self) -> Any:
        return self.app.state["edgestore"]

    @property
    def store(self) -> Any:
        return self.state.store


def _build_app(settings: Settings) -> Litestar:
    if STORAGE_READY:
        from edgestore.web.app import create_app

        return create_app(settings)
    # Until the real Store exists: the Hrana routes alone over a stop-gap SQLite store.
    from edgestore.auth import Authenticator
    from edgestore.web.errors import exception_handlers
    from edgestore.web.guard import make_guard
    from edgestore.web.hrana_routes import route_handlers
    from edgestore.web.metrics import Metrics
    from edgestore.web.state import AppState

    from ._devstore import DevStore

    state = AppState(
        settings=settings, authenticator=Authenticator(settings), metrics=Metrics()
    )
    state.store_or_none = DevStore(settings.db_path, settings)  # type: ignore[assignment]
    app = Litestar(
        route_handlers=route_handlers(state),
        guards=[make_guard(state)],
        exception_handlers=exception_handlers(),
        request_max_body_size=settings.max_body_bytes,
        logging_config=None,
    )
    app.state["edgestore"] = state
    return app


StartServer = Callable[..., Awaitable[Server]]


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[StartServer]:
    running: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(**overrides: Any) -> Server:
        overrides.setdefault("db_path", tmp_path / "hrana.db")
        overrides.setdefault("schemas_dir", None)
        schemas = overrides.pop("schemas_dir")
        settings = Settings.load(environ={}, **overrides).replace(schemas_dir=schemas)
        app = _build_app(settings)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_level="warning",
            ws="websockets-sansio",
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        running.append((server, task))
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            raise RuntimeError("the test server did not start")
        return Server(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", app, settings)

    yield start
    for server, task in running:
        server.should_exit = True
    for server, task in running:
        await asyncio.wait_for(task, 15)


@pytest.fixture
async def server(start_server: StartServer) -> Server:
    return await start_server()
