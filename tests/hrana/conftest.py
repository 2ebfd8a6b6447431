"""A real edgestore server on an ephemeral loopback port, in the test's own event loop.

The app runs under uvicorn as a task of the test loop, so a test can look at the very Store
the server uses (pool stats, versions) while real clients talk to it over TCP. Blocking
clients (the Rust-based ``libsql``, node) run in a thread or a subprocess.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar

from edgestore.config import Settings
from tests.in_loop import LoopServers

from .clients import install_js_packages


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
    from edgestore.web.app import create_app

    return create_app(settings)


StartServer = Callable[..., Awaitable[Server]]


@pytest.fixture(scope="module")
def js_packages() -> None:
    """node and tests/js's npm packages, for the tests that run ``@libsql/client``."""
    install_js_packages()


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[StartServer]:
    servers = LoopServers()

    async def start(**overrides: Any) -> Server:
        overrides.setdefault("db_path", tmp_path / "hrana.db")
        overrides.setdefault("schemas_dir", None)
        schemas = overrides.pop("schemas_dir")
        settings = Settings.load(environ={}, **overrides).replace(schemas_dir=schemas)
        app = _build_app(settings)
        port = await servers.start(app)
        return Server(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", app, settings)

    yield start
    await servers.stop()


@pytest.fixture
async def server(start_server: StartServer) -> Server:
    return await start_server()


async def open_raw_cursor(server: Server, body: bytes) -> asyncio.StreamWriter:
    """POST ``body`` to /v3/cursor on a bare socket and wait for the 200 head; the caller
    closes the returned writer to vanish mid-stream (an HTTP client would read the rows)."""
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /v3/cursor HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        + f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.read(4096), 10)
    assert b" 200 " in head.split(b"\r\n", 1)[0]
    return writer


async def pipeline(
    client: Any, baton: str | None, *requests: dict[str, Any], path: str = "/v2/pipeline"
) -> dict[str, Any]:
    """POST one Hrana pipeline; returns the decoded body (asserts a 200)."""
    resp = await client.post(path, json={"baton": baton, "requests": list(requests)})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def execute(sql: str, *args: Any, **named: Any) -> dict[str, Any]:
    """An execute request with Hrana-encoded arguments."""
    stmt: dict[str, Any] = {"sql": sql}
    if args:
        stmt["args"] = [hv(a) for a in args]
    if named:
        stmt["named_args"] = [{"name": k, "value": hv(v)} for k, v in named.items()]
    return {"type": "execute", "stmt": stmt}


def hv(value: Any) -> dict[str, Any]:
    """A Python value as a Hrana value (the way clients encode them)."""
    import base64

    if value is None:
        return {"type": "null"}
    if isinstance(value, int):
        return {"type": "integer", "value": str(value)}
    if isinstance(value, float):
        return {"type": "float", "value": value}
    if isinstance(value, str):
        return {"type": "text", "value": value}
    return {"type": "blob", "base64": base64.b64encode(value).decode()}
