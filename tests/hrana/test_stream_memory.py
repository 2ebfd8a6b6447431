"""The memory breakdown's ``streams`` component counts what open WebSockets and Hrana streams
hold (stored SQL, cursor rows read ahead, stream state), and falls back to zero once they
are closed; ``/api/v1/memory`` and ``/metrics`` both say so."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import aiohttp
import httpx
from libsql_client.hrana.conn import HranaConn
from websockets.asyncio.client import connect

from .conftest import StartServer, pipeline

CONNECTIONS = 6
STREAMS = 3
STORED_SQL = "SELECT 1 -- " + "x" * 64 * 1024
"""A 64 KiB statement each connection stores (store_sql) and keeps until it closes."""
ROW_TEXT = 1000
FILL = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) "
    f"INSERT INTO wide SELECT i, printf('%0{ROW_TEXT}d', i) FROM n"
)


async def streams_bytes(http: httpx.AsyncClient, check: Any) -> int:
    """The ``streams`` component once ``check(value)`` holds (the monitor samples often)."""
    value = -1
    for _ in range(400):
        body = (await http.get("/api/v1/memory")).json()
        breakdown = body["breakdown"]
        if breakdown is not None:
            value = breakdown["components"]["streams"]
            if check(value):
                return int(value)
        await asyncio.sleep(0.025)
    raise AssertionError(f"streams component stayed at {value}")


def streams_metric(text: str) -> float:
    found = re.search(
        r'^edgestore_memory_component_bytes\{component="streams"\} (\S+)$', text, re.MULTILINE
    )
    assert found is not None
    return float(found.group(1))


async def test_open_streams_and_cursors_show_in_the_memory_breakdown(
    start_server: StartServer,
) -> None:
    server = await start_server(memory_sample_interval=0.05)
    await server.store.execute("CREATE TABLE wide(i INTEGER PRIMARY KEY, s TEXT)")
    await server.store.execute(FILL)
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=10) as http,
        aiohttp.ClientSession() as session,
    ):
        assert await streams_bytes(http, lambda v: v == 0) == 0
        # Real libsql-client connections, each with open streams and a stored statement.
        conns = [HranaConn(session, server.ws_url) for _ in range(CONNECTIONS)]
        for conn in conns:
            await conn.wait_connected()
            conn.store_sql(STORED_SQL)
            for _ in range(STREAMS):
                result = await conn.open_stream().execute({"sql": "SELECT 1", "want_rows": True})
                assert result["rows"][0][0]["value"] == "1"
        stored = CONNECTIONS * len(STORED_SQL)
        # A Hrana 3 cursor that has read a chunk of rows ahead of what the client fetched.
        async with connect(server.ws_url, subprotocols=["hrana3"]) as ws:  # type: ignore[list-item]
            await ws.send(json.dumps({"type": "hello", "jwt": None}))
            assert json.loads(await ws.recv())["type"] == "hello_ok"
            batch = {"steps": [{"stmt": {"sql": "SELECT i, s FROM wide ORDER BY i"}}]}
            for rid, req in enumerate(
                [
                    {"type": "open_stream", "stream_id": 1},
                    {"type": "open_cursor", "stream_id": 1, "cursor_id": 1, "batch": batch},
                    {"type": "fetch_cursor", "cursor_id": 1, "max_count": 10},
                ]
            ):
                await ws.send(json.dumps({"type": "request", "request_id": rid, "request": req}))
                msg = json.loads(await ws.recv())
                assert msg["type"] == "response_ok", msg
            fetched = msg["response"]["entries"]
            assert [e["type"] for e in fetched[:2]] == ["step_begin", "row"]
            # The storage chunk is 256 rows: 247 of them are read ahead of the client.
            ahead = 200 * ROW_TEXT
            held = await streams_bytes(http, lambda v: v >= stored + ahead)
            assert held < 2 * (stored + ahead) + 1024 * 1024  # counted once, not per stream
            metrics = (await http.get("/metrics")).text
            assert streams_metric(metrics) >= stored + ahead
        # The cursor's socket is closed: its rows are given back, the stored SQL is not yet.
        left = await streams_bytes(http, lambda v: v < stored + ahead)
        assert left >= stored
        for conn in conns:
            await conn.close()
        assert await streams_bytes(http, lambda v: v == 0) == 0
        assert streams_metric((await http.get("/metrics")).text) == 0


async def test_http_streams_waiting_for_their_baton_are_counted(start_server: StartServer) -> None:
    server = await start_server(memory_sample_interval=0.05)
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
        assert await streams_bytes(http, lambda v: v == 0) == 0
        batons = []
        for _ in range(4):
            body = await pipeline(http, None, {"type": "store_sql", "sql_id": 1, "sql": STORED_SQL})
            batons.append(body["baton"])
        stored = 4 * len(STORED_SQL)
        held = await streams_bytes(http, lambda v: v >= stored)
        assert held < stored + 64 * 1024  # the SQL and a few hundred bytes of state each
        for baton in batons:
            await pipeline(http, baton, {"type": "close"})
        assert await streams_bytes(http, lambda v: v == 0) == 0
