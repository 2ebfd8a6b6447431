"""ASGI apps served by uvicorn as tasks of the test's own event loop, on ephemeral loopback
ports: real clients talk to them over TCP while the test looks at the very objects the app
uses (its Store, pool stats, versions)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn

__all__ = ["LoopServers"]


class LoopServers:
    """Start apps with :meth:`start`; :meth:`stop` ends every one (call it at teardown)."""

    def __init__(self) -> None:
        self._running: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []

    async def start(self, app: Any) -> int:
        """Serve ``app`` (lifespan on) on a free loopback port; returns the port once it serves."""
        # The socket is bound here and handed to uvicorn: no window in which another process
        # could take a port chosen but not yet bound.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_level="warning",
            ws="websockets-sansio",
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        self._running.append((server, task))
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            raise RuntimeError("the test server did not start")
        return port

    async def stop(self) -> None:
        for server, _ in self._running:
            server.should_exit = True
        for _, task in self._running:
            await asyncio.wait_for(task, 15)
