"""Protocol abuse: none of it may crash the server or leave a connection pinned."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from edgestore.auth import hash_token
from tests.pool import eventually_idle

from .conftest import Server, StartServer, execute, open_raw_cursor, pipeline


async def still_serving(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as c:
        body = await pipeline(c, None, execute("SELECT 1"), {"type": "close"})
        assert body["results"][0]["type"] == "ok"


@pytest.mark.parametrize("path", ["/v1/execute", "/v1/batch", "/v2/pipeline", "/v3/cursor"])
@pytest.mark.parametrize(
    "body", [b"{not json", b"[]", b'"text"', b"", b'{"requests": 5}', b'{"batch": []}']
)
async def test_malformed_bodies(server: Server, path: str, body: bytes) -> None:
    async with httpx.AsyncClient(base_url=server.url) as c:
        resp = await c.post(path, content=body, headers={"content-type": "application/json"})
        assert 400 <= resp.status_code < 500
        assert resp.headers["content-type"] == "application/json"
        error = resp.json()
        assert error["message"]
        assert error["code"]
    await still_serving(server)


async def test_malformed_requests_inside_a_pipeline(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as c:
        body = await pipeline(
            c,
            None,
            {"type": "execute"},
            {"type": "execute", "stmt": {"sql": 5}},
            {"type": "execute", "stmt": {"sql": "SELECT 1", "sql_id": 1}},
            {"type": "batch", "batch": {"steps": "nope"}},
            {"type": "store_sql", "sql_id": "x", "sql": "SELECT 1"},
            "not an object",
            {"type": "teleport"},
            execute("SELECT 42"),
            {"type": "close"},
        )
        results = body["results"]
        assert all(r["type"] == "error" and r["error"]["code"] for r in results[:7])
        assert results[7]["response"]["result"]["rows"] == [[{"type": "integer", "value": "42"}]]
    await eventually_idle(server.store)


async def test_one_baton_raced_by_two_requests(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as c:
        first = await pipeline(c, None, execute("SELECT 1"))
        req = {"baton": first["baton"], "requests": [execute("SELECT 2")]}
        a, b = await asyncio.gather(
            c.post("/v2/pipeline", json=req), c.post("/v2/pipeline", json=req)
        )
        statuses = sorted([a.status_code, b.status_code])
        assert statuses[0] == 200
        assert statuses[1] >= 400
        loser = a if a.status_code != 200 else b
        winner = a if a.status_code == 200 else b
        assert loser.json()["code"] == "BATON_REUSED"
        await pipeline(c, winner.json()["baton"], {"type": "close"})


async def test_ten_thousand_row_cursor(server: Server) -> None:
    await server.store.execute("CREATE TABLE big(i INTEGER PRIMARY KEY, s TEXT)")
    await server.store.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000) "
        "INSERT INTO big SELECT i, printf('row-%05d', i) FROM n"
    )
    batch = {"steps": [{"stmt": {"sql": "SELECT i, s FROM big ORDER BY i"}}]}
    rows = 0
    last: dict[str, Any] = {}
    async with (
        httpx.AsyncClient(base_url=server.url) as c,
        c.stream("POST", "/v3/cursor", json={"baton": None, "batch": batch}) as resp,
    ):
        assert resp.status_code == 200
        async for line in resp.aiter_lines():
            if not line:
                continue
            entry = json.loads(line)
            if entry.get("type") == "row":
                rows += 1
                last = entry
    assert rows == 10_000
    assert last["row"][1] == {"type": "text", "value": "row-10000"}
    await eventually_idle(server.store)


async def test_oversized_requests(start_server: StartServer) -> None:
    server = await start_server(max_body_bytes=64 * 1024)
    huge = "x" * (100 * 1024)
    async with httpx.AsyncClient(base_url=server.url) as c:
        resp = await c.post(
            "/v2/pipeline",
            json={"baton": None, "requests": [execute("SELECT ?", huge)]},
        )
        assert resp.status_code == 413
        assert resp.json()["code"] == "REQUEST_TOO_LARGE"
    async with connect(server.ws_url, subprotocols=["hrana3"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "hello", "jwt": None}))
        assert json.loads(await ws.recv())["type"] == "hello_ok"
        await ws.send(json.dumps({"type": "request", "request_id": 1, "request": {"pad": huge}}))
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 10)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1009
    await still_serving(server)


async def test_client_disconnects_mid_cursor(server: Server) -> None:
    store = server.store
    await store.execute("CREATE TABLE wide(i INTEGER PRIMARY KEY, s TEXT)")
    await store.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000) "
        "INSERT INTO wide SELECT i, hex(randomblob(64)) FROM n"
    )
    async with httpx.AsyncClient(base_url=server.url) as c:
        # The stream holds the writer (an open write transaction) while the cursor runs.
        began = await pipeline(
            c, None, execute("BEGIN IMMEDIATE"), execute("DELETE FROM wide WHERE i = 1")
        )
    body = json.dumps(
        {"baton": began["baton"], "batch": {"steps": [{"stmt": {"sql": "SELECT * FROM wide"}}]}}
    ).encode()
    writer = await open_raw_cursor(server, body)
    writer.close()  # gone mid-stream: megabytes of rows are still to come
    await eventually_idle(store)
    # The abandoned transaction was rolled back, and writes go through again.
    assert (await store.query("SELECT count(*) FROM wide WHERE i = 1", cache=False)).values == [
        (1,)
    ]
    await asyncio.wait_for(store.execute("DELETE FROM wide WHERE i = 2"), 10)
    await still_serving(server)


async def test_websocket_abuse(server: Server) -> None:
    url = server.ws_url
    # Not JSON: the socket is closed with a protocol error.
    async with connect(url, subprotocols=["hrana2"]) as ws:  # type: ignore[list-item]
        await ws.send("{nope")
        with pytest.raises(ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 10)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1002
    # A request before hello.
    async with connect(url, subprotocols=["hrana3"]) as ws:  # type: ignore[list-item]
        await ws.send(
            json.dumps(
                {
                    "type": "request",
                    "request_id": 1,
                    "request": {"type": "open_stream", "stream_id": 1},
                }
            )
        )
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
    # Unknown request types and unknown streams answer with errors; the socket lives on.
    async with connect(url, subprotocols=["hrana3"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "hrana3"
        await ws.send(json.dumps({"type": "hello", "jwt": None}))
        assert json.loads(await ws.recv())["type"] == "hello_ok"
        for rid, req in enumerate(
            [
                {"type": "teleport"},
                {"type": "execute", "stream_id": 99, "stmt": {"sql": "SELECT 1"}},
                {"type": "open_stream", "stream_id": 1},
                {"type": "execute", "stream_id": 1, "stmt": {"sql": "SELECT 7"}},
            ]
        ):
            await ws.send(json.dumps({"type": "request", "request_id": rid, "request": req}))
        answers = {}
        for _ in range(4):
            msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
            answers[msg["request_id"]] = msg
        assert answers[0]["type"] == "response_error"
        assert answers[0]["error"]["code"] == "UNKNOWN_REQUEST"
        assert answers[1]["error"]["code"] == "STREAM_NOT_FOUND"
        assert answers[3]["response"]["result"]["rows"] == [[{"type": "integer", "value": "7"}]]
    # Offering only subprotocols we do not speak is refused.
    with pytest.raises(Exception):  # noqa: B017, PT011 - the handshake fails, however reported
        async with connect(url, subprotocols=["hrana9"]) as ws:  # type: ignore[list-item]
            await ws.recv()
    await still_serving(server)
    await eventually_idle(server.store)


async def test_websocket_gone_with_an_open_transaction(server: Server) -> None:
    store = server.store
    await store.execute("CREATE TABLE g(x)")
    async with connect(server.ws_url, subprotocols=["hrana3"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "hello", "jwt": None}))
        await ws.recv()
        for rid, req in enumerate(
            [
                {"type": "open_stream", "stream_id": 1},
                {"type": "execute", "stream_id": 1, "stmt": {"sql": "BEGIN IMMEDIATE"}},
                {"type": "execute", "stream_id": 1, "stmt": {"sql": "INSERT INTO g VALUES (1)"}},
                {
                    "type": "open_cursor",
                    "stream_id": 1,
                    "cursor_id": 1,
                    "batch": {"steps": [{"stmt": {"sql": "SELECT x FROM g"}}]},
                },
                {"type": "fetch_cursor", "cursor_id": 1, "max_count": 2},
            ]
        ):
            await ws.send(json.dumps({"type": "request", "request_id": rid, "request": req}))
        got = [json.loads(await asyncio.wait_for(ws.recv(), 10)) for _ in range(5)]
        fetched = next(m for m in got if m["request_id"] == 4)["response"]
        assert [e["type"] for e in fetched["entries"]] == ["step_begin", "row"]
        assert fetched["done"] is False
    # The socket closed without COMMIT: rolled back, writer free.
    await eventually_idle(store)
    assert (await store.query("SELECT count(*) FROM g", cache=False)).values == [(0,)]


async def test_websocket_hello_with_a_bad_jwt(start_server: StartServer) -> None:
    server = await start_server(
        auth_tokens=(f"rw:{hash_token('good')}", f"ro:{hash_token('reader')}")
    )
    async with connect(server.ws_url, subprotocols=["hrana2"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "hello", "jwt": "bad"}))
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert msg["type"] == "hello_error"
        assert msg["error"]["code"]
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
    async with connect(server.ws_url, subprotocols=["hrana2"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "hello", "jwt": "good"}))
        assert json.loads(await ws.recv())["type"] == "hello_ok"

    # A read-only token's streams refuse writes and BEGIN IMMEDIATE, but read.
    async with connect(server.ws_url, subprotocols=["hrana3"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "hello", "jwt": "reader"}))
        assert json.loads(await ws.recv())["type"] == "hello_ok"
        requests = [
            {"type": "open_stream", "stream_id": 1},
            {"type": "execute", "stream_id": 1, "stmt": {"sql": "CREATE TABLE nope(x)"}},
            {"type": "execute", "stream_id": 1, "stmt": {"sql": "BEGIN IMMEDIATE"}},
            {"type": "execute", "stream_id": 1, "stmt": {"sql": "SELECT 1"}},
        ]
        for rid, req in enumerate(requests):
            await ws.send(json.dumps({"type": "request", "request_id": rid, "request": req}))
        got = {}
        for _ in requests:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
            got[msg["request_id"]] = msg
        assert got[1]["error"]["code"] == "SQLITE_READONLY"
        assert got[2]["error"]["code"] == "SQLITE_READONLY"
        assert got[3]["type"] == "response_ok"
