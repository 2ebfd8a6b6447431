"""One caller cannot starve the others: per-caller shares of Hrana streams, of the readers
held by read transactions and cursors, and of the writer; /health/ready answers whatever
callers hold. Real HTTP, real WebSocket clients (libsql-client)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import libsql_client
import pytest

from edgestore.auth import hash_token
from tests.server import EdgestoreServer

from .clients import run_node
from .conftest import Server, StartServer, execute, pipeline

RO_A, RO_B, RW_A, RW_B = "ro-caller-a", "ro-caller-b", "rw-caller-a", "rw-caller-b"
TOKENS = (
    f"ro:{hash_token(RO_A)}",
    f"ro:{hash_token(RO_B)}",
    f"rw:{hash_token(RW_A)}",
    f"rw:{hash_token(RW_B)}",
)


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
async def shared(start_server: StartServer) -> Server:
    return await start_server(auth_tokens=TOKENS, pool_timeout=3.0, max_streams_per_caller=5)


async def test_one_caller_cannot_take_every_stream(shared: Server) -> None:
    async with httpx.AsyncClient(base_url=shared.url) as c:
        for _ in range(5):
            resp = await c.post(
                "/v3/pipeline",
                json={"baton": None, "requests": [execute("SELECT 1")]},
                headers=_auth(RO_A),
            )
            assert resp.json()["baton"] is not None
        resp = await c.post(
            "/v3/pipeline",
            json={"baton": None, "requests": [execute("SELECT 1")]},
            headers=_auth(RO_A),
        )
        assert resp.status_code == 400, resp.text
        assert resp.json()["code"] == "STREAMS_EXHAUSTED"
        # WebSocket streams count in the same share.
        async with libsql_client.create_client(shared.ws_url, auth_token=RO_A) as client:
            with pytest.raises(libsql_client.LibsqlError) as info:
                await client.execute("SELECT 1")
            assert info.value.code == "STREAMS_EXHAUSTED"
        # Another caller is not affected.
        body = await c.post(
            "/v3/pipeline",
            json={"baton": None, "requests": [execute("SELECT 2"), {"type": "close"}]},
            headers=_auth(RO_B),
        )
        assert body.json()["results"][0]["type"] == "ok"
    # Without credentials, a caller is its address: 127.0.0.2 has its own share.
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=shared.url, transport=transport) as c:
        assert shared.store is not None
        resp = await c.post("/v3/pipeline", json={"baton": None, "requests": []})
        assert resp.status_code == 401  # auth is on: the address does not stand in for it


async def test_address_is_the_caller_without_auth(start_server: StartServer) -> None:
    server = await start_server(max_streams_per_caller=3)
    local = httpx.AsyncHTTPTransport(local_address="127.0.0.1")
    other = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with (
        httpx.AsyncClient(base_url=server.url, transport=local) as a,
        httpx.AsyncClient(base_url=server.url, transport=other) as b,
    ):
        for _ in range(3):
            await pipeline(a, None, execute("SELECT 1"))
        body = await pipeline(b, None, execute("SELECT 1"), {"type": "close"})
        assert body["results"][0]["type"] == "ok"
        resp = await a.post("/v3/pipeline", json={"baton": None, "requests": []})
        assert resp.json()["code"] == "STREAMS_EXHAUSTED"


async def test_read_transactions_of_one_caller_leave_a_reader_for_others(shared: Server) -> None:
    """Two read transactions of one caller used to pin both readers: every other read and
    /health/ready then waited pool_timeout and failed."""
    async with (
        libsql_client.create_client(shared.ws_url, auth_token=RO_A) as a,
        libsql_client.create_client(shared.ws_url, auth_token=RO_B) as b,
        httpx.AsyncClient(base_url=shared.url, timeout=10) as http,
    ):
        first = a.transaction()  # BEGIN on a read-only token: a read transaction (a reader)
        await first.execute("SELECT 1")
        second = a.transaction()
        waiting = asyncio.ensure_future(second.execute("SELECT 2"))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # it waits for the caller's own share, not the pool
        rs = await b.execute("SELECT 3")  # another caller reads at once
        assert rs.rows[0][0] == 3
        resp = await http.get("/health/ready")
        assert resp.status_code == 200, resp.text
        first.close()  # its reader comes back: the caller's second transaction proceeds
        rs = await waiting
        assert rs.rows[0][0] == 2
        second.close()


async def test_cursors_of_one_caller_leave_a_reader_for_others(shared: Server) -> None:
    big = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) "
        "SELECT i, randomblob(100) FROM n"
    )
    cursor = {"baton": None, "batch": {"steps": [{"stmt": {"sql": big}}]}}
    async with httpx.AsyncClient(base_url=shared.url, timeout=10) as c:
        # Two cursors of one caller that stop reading after their first lines.
        streams: list[Any] = []
        for _ in range(2):
            request = c.build_request("POST", "/v3/cursor", json=cursor, headers=_auth(RO_A))
            resp = await c.send(request, stream=True)
            streams.append(resp)
        lines = streams[0].aiter_lines()
        await anext(lines)
        await anext(lines)  # the first cursor is streaming rows: it holds a reader
        resp = await c.post(
            "/v3/pipeline",
            json={"baton": None, "requests": [execute("SELECT 4"), {"type": "close"}]},
            headers=_auth(RO_B),
        )
        assert resp.json()["results"][0]["response"]["result"]["rows"] == [
            [{"type": "integer", "value": "4"}]
        ]
        assert (await c.get("/health/ready")).status_code == 200
        for resp in streams:
            await resp.aclose()


async def test_writer_transactions_of_one_caller_queue_behind_their_own(shared: Server) -> None:
    """A caller with three transactions no longer queues them all for the writer in front
    of another caller's: the other gets the writer after the caller's first one."""
    order: list[str] = []
    async with (
        libsql_client.create_client(shared.ws_url, auth_token=RW_A) as a,
        libsql_client.create_client(shared.ws_url, auth_token=RW_B) as b,
    ):
        await a.execute("CREATE TABLE log(who TEXT)")
        first = a.transaction()
        await first.execute("INSERT INTO log VALUES ('a1')")

        async def run(client: Any, name: str) -> None:
            tx = client.transaction()
            await tx.execute(f"INSERT INTO log VALUES ('{name}')")
            order.append(name)
            await tx.commit()

        more = [asyncio.ensure_future(run(a, "a2")), asyncio.ensure_future(run(a, "a3"))]
        await asyncio.sleep(0.2)
        other = asyncio.ensure_future(run(b, "b1"))
        await asyncio.sleep(0.2)
        await first.commit()
        await asyncio.gather(other, *more)
        assert order[0] == "b1", order


@pytest.mark.usefixtures("js_packages")
async def test_js_client_read_transactions_leave_a_reader(tmp_path: Path) -> None:
    # Against `edgestore serve` itself: the in-process test server (uvicorn) does not notice
    # node's sockets closing when node exits, and would keep their streams open.
    env = {"EDGESTORE_AUTH_TOKENS": ",".join(TOKENS), "EDGESTORE_POOL_TIMEOUT": "3"}
    with EdgestoreServer(tmp_path / "js.db", schemas_dir=None, env=env) as server:
        ws_url = server.url.replace("http://", "ws://")
        report = await run_node("caller_shares.mjs", ws_url, server.url, RO_A, RO_B, limit=60)
    assert report == {"ok": True}


async def test_health_ready_answers_while_every_reader_is_held(shared: Server) -> None:
    """Two callers hold a read transaction each: no pooled reader is left, and the probe
    still answers (it queues behind nobody)."""
    async with (
        libsql_client.create_client(shared.ws_url, auth_token=RO_A) as a,
        libsql_client.create_client(shared.ws_url, auth_token=RO_B) as b,
        httpx.AsyncClient(base_url=shared.url, timeout=2.0) as http,
    ):
        held = [a.transaction(), b.transaction()]
        for tx in held:
            await tx.execute("SELECT 1")
        assert shared.store.pool.stats().readers_busy == 2
        resp = await http.get("/health/ready")
        assert resp.status_code == 200, resp.text
        for tx in held:
            tx.close()
