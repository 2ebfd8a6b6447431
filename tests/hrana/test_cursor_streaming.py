"""Cursors stream rows as SQLite produces them; execute/batch results are bounded in size.

A SQL function ``gate(i)`` (installed on the server's own connections through the store's
connection hook) blocks the statement at one row until the test releases it: rows that reach
the client before that are proof that nothing waited for the whole result.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from pathlib import Path
from typing import Any

import apsw
import httpx
from websockets.asyncio.client import ClientConnection, connect

from tests.pool import eventually, eventually_idle

from .clients import run_client
from .conftest import Server, StartServer, execute, open_raw_cursor, pipeline

ROWS = 10_000
FILL = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n}) "
    "INSERT INTO big SELECT i, printf('row-%05d', i) FROM n"
)
SCRIPT = Path(__file__).with_name("libsql_cursor_script.py")


class Gate:
    """``gate(i)`` returns ``i``, but at row ``at`` it waits until ``go`` is set."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.entered = threading.Event()
        self.go = threading.Event()

    def __call__(self, i: int) -> int:
        if i == self.at:
            self.entered.set()
            self.go.wait(30)  # bounded: a failing test never keeps a server thread
        return i

    def install(self, store: Any) -> None:
        def hook(db: apsw.Connection, role: str) -> None:
            db.create_scalar_function("gate", self, 1)

        store.add_connection_hook(hook)


async def big_table(server: Server, rows: int = ROWS) -> None:
    await server.store.execute("CREATE TABLE big(i INTEGER PRIMARY KEY, s TEXT)")
    await server.store.execute(FILL.format(n=rows))


def cursor_body(sql: str, baton: str | None = None) -> dict[str, Any]:
    return {"baton": baton, "batch": {"steps": [{"stmt": {"sql": sql}}]}}


async def test_libsql_client_reads_ten_thousand_rows_through_a_cursor(server: Server) -> None:
    seen = await run_client(sys.executable, SCRIPT, server.url)
    assert seen["count"] == ROWS
    assert seen["first"] == [1, "row-00001", 1]
    assert seen["last"] == [ROWS, f"row-{ROWS:05d}", ROWS % 7]
    assert seen["sum"] == ROWS * (ROWS + 1) // 2
    assert seen["description"] == ["i", "s", "b"]
    await eventually_idle(server.store)


async def test_http_cursor_rows_arrive_while_the_statement_runs(server: Server) -> None:
    await big_table(server)
    gate = Gate(at=5_000)
    gate.install(server.store)
    # (ORDER BY the table's i, not the gated column: sorting by it would run every row first.)
    body = cursor_body("SELECT gate(i) AS n, s FROM big ORDER BY i")
    rows: list[list[dict[str, Any]]] = []
    entries: list[dict[str, Any]] = []
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as c,
        c.stream("POST", "/v3/cursor", json=body) as resp,
    ):
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/x-ndjson")
        lines = resp.aiter_lines()
        head = json.loads(await asyncio.wait_for(anext(lines), 10))
        assert set(head) >= {"baton", "base_url"}

        async def read_until(count: int) -> None:
            while len(rows) < count:
                line = await anext(lines)
                if line:
                    entry = json.loads(line)
                    entries.append(entry)
                    if entry["type"] == "row":
                        rows.append(entry["row"])

        # A thousand rows arrive while SQLite is held at row 5,000: nothing waited for the
        # whole result. (A server that buffers the result would never get here.)
        await asyncio.wait_for(read_until(1_000), 20)
        await asyncio.to_thread(gate.entered.wait, 20)
        assert gate.entered.is_set()
        assert len(rows) < 5_000
        gate.go.set()
        async for line in lines:
            if line:
                entry = json.loads(line)
                entries.append(entry)
                if entry["type"] == "row":
                    rows.append(entry["row"])
    assert len(rows) == ROWS
    assert rows[0] == [{"type": "integer", "value": "1"}, {"type": "text", "value": "row-00001"}]
    assert rows[-1][1] == {"type": "text", "value": f"row-{ROWS:05d}"}
    kinds = [e["type"] for e in entries]
    assert kinds[0] == "step_begin"
    assert entries[0]["cols"] == [
        {"name": "n", "decltype": None},
        {"name": "s", "decltype": "TEXT"},
    ]
    assert kinds[-1] == "step_end"
    end = entries[-1]
    assert end["last_insert_rowid"] is None
    assert end["last_inserted_rowid"] is None  # the Rust reader's spelling, both sent
    await eventually_idle(server.store)


async def test_http_cursor_steps_writes_and_errors(server: Server) -> None:
    await big_table(server, 300)
    batch = {
        "steps": [
            {"stmt": {"sql": "INSERT INTO big(s) VALUES ('new') RETURNING i, s"}},
            {"stmt": {"sql": "SELECT i FROM big ORDER BY i"}},
            # Fails at row 290, after step_begin and the first 256 rows went out.
            {
                "stmt": {
                    "sql": "SELECT CASE WHEN i = 290 THEN abs(-9223372036854775807 - 1) "
                    "ELSE i END FROM big ORDER BY i"
                }
            },
            {"condition": {"type": "error", "step": 2}, "stmt": {"sql": "SELECT 'after'"}},
        ]
    }
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        resp = await c.post("/v3/cursor", json={"baton": None, "batch": batch})
        assert resp.status_code == 200
        lines = [json.loads(x) for x in resp.text.splitlines() if x]
    entries = lines[1:]
    by_step: dict[int, list[dict[str, Any]]] = {}
    step = -1
    for e in entries:
        if e["type"] in ("step_begin", "step_error"):
            step = e["step"]
        by_step.setdefault(step, []).append(e)
    first = by_step[0]
    assert [e["type"] for e in first] == ["step_begin", "row", "step_end"]
    assert first[1]["row"] == [
        {"type": "integer", "value": "301"},
        {"type": "text", "value": "new"},
    ]
    assert first[2]["affected_row_count"] == 1
    assert first[2]["last_insert_rowid"] == first[2]["last_inserted_rowid"] == "301"
    assert sum(e["type"] == "row" for e in by_step[1]) == 301
    third = by_step[2]
    assert third[0]["type"] == "step_begin"
    assert third[-1]["type"] == "step_error"
    assert third[-1]["step"] == 2
    assert third[-1]["error"]["code"] == "SQLITE_ERROR"
    assert sum(e["type"] == "row" for e in third) == 256
    assert [e["type"] for e in by_step[3]][-1] == "step_end"
    await eventually_idle(server.store)


async def test_http_client_gone_mid_cursor_frees_the_reader(server: Server) -> None:
    store = server.store
    await big_table(server)
    gate = Gate(at=3_000)
    gate.install(store)
    body = json.dumps(cursor_body("SELECT gate(i), s FROM big ORDER BY i")).encode()
    writer = await open_raw_cursor(server, body)
    await asyncio.to_thread(gate.entered.wait, 20)
    assert gate.entered.is_set()
    assert store.pool.stats().readers_busy == 1  # the statement holds its reader
    writer.close()  # gone while SQLite is in the middle of the statement
    await asyncio.sleep(0.1)
    gate.go.set()
    await eventually(lambda: store.pool.stats().readers_busy == 0)
    await eventually_idle(store)
    async with httpx.AsyncClient(base_url=server.url) as c:
        body2 = await pipeline(c, None, execute("SELECT count(*) FROM big"), {"type": "close"})
        assert body2["results"][0]["response"]["result"]["rows"] == [
            [{"type": "integer", "value": str(ROWS)}]
        ]


async def _hello(ws: ClientConnection) -> None:
    await ws.send(json.dumps({"type": "hello", "jwt": None}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "hello_ok"


async def _call(ws: ClientConnection, rid: int, request: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "request", "request_id": rid, "request": request}))
    while True:
        msg: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 20))
        if msg.get("request_id") == rid:
            return msg


async def test_websocket_cursor_reads_rows_as_they_are_fetched(server: Server) -> None:
    await big_table(server)
    gate = Gate(at=5_000)
    gate.install(server.store)
    async with connect(server.ws_url, subprotocols=["hrana3"]) as ws:  # type: ignore[list-item]
        await _hello(ws)
        await _call(ws, 1, {"type": "open_stream", "stream_id": 1})
        opened = await _call(
            ws,
            2,
            {
                "type": "open_cursor",
                "stream_id": 1,
                "cursor_id": 7,
                "batch": {"steps": [{"stmt": {"sql": "SELECT gate(i), s FROM big ORDER BY i"}}]},
            },
        )
        assert opened["type"] == "response_ok"
        rows = 0
        entries: list[dict[str, Any]] = []
        rid = 3
        # Rows are read from SQLite as they are fetched: after 1,000 of them the statement
        # has not reached row 5,000 (a server reading the whole result first would have).
        while rows < 1_000:
            got = await _call(ws, rid, {"type": "fetch_cursor", "cursor_id": 7, "max_count": 300})
            rid += 1
            fetched = got["response"]
            assert fetched["done"] is False
            entries += fetched["entries"]
            rows = sum(e["type"] == "row" for e in entries)
        assert not gate.entered.is_set()
        gate.go.set()
        done = False
        while not done:
            got = await _call(
                ws, rid, {"type": "fetch_cursor", "cursor_id": 7, "max_count": 10_000}
            )
            rid += 1
            entries += got["response"]["entries"]
            done = got["response"]["done"]
        assert gate.entered.is_set()
        assert sum(e["type"] == "row" for e in entries) == ROWS
        assert entries[0]["type"] == "step_begin"
        assert entries[-1]["type"] == "step_end"
        assert entries[-1]["last_inserted_rowid"] is None
        closed = await _call(ws, rid, {"type": "close_cursor", "cursor_id": 7})
        assert closed["type"] == "response_ok"
        await eventually_idle(server.store)


async def test_websocket_gone_mid_cursor_frees_the_reader(server: Server) -> None:
    await big_table(server)
    async with connect(server.ws_url, subprotocols=["hrana3"]) as ws:  # type: ignore[list-item]
        await _hello(ws)
        await _call(ws, 1, {"type": "open_stream", "stream_id": 1})
        await _call(
            ws,
            2,
            {
                "type": "open_cursor",
                "stream_id": 1,
                "cursor_id": 1,
                "batch": {"steps": [{"stmt": {"sql": "SELECT * FROM big"}}]},
            },
        )
        got = await _call(ws, 3, {"type": "fetch_cursor", "cursor_id": 1, "max_count": 10})
        assert len(got["response"]["entries"]) == 10
        assert server.store.pool.stats().readers_busy == 1
    await eventually_idle(server.store)


async def test_response_too_large(start_server: StartServer) -> None:
    server = await start_server(max_response_bytes=64 * 1024)
    await big_table(server)
    big = "SELECT i, s FROM big ORDER BY i"
    small = "SELECT i, s FROM big WHERE i <= 100"
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        body = await pipeline(c, None, execute(big), execute(small), {"type": "close"})
        r = body["results"]
        assert r[0]["type"] == "error"
        assert r[0]["error"]["code"] == "RESPONSE_TOO_LARGE"
        assert "cursor" in r[0]["error"]["message"]
        assert len(r[1]["response"]["result"]["rows"]) == 100
        # One budget per request: several medium results cannot add up past it either.
        medium = "SELECT i, s FROM big WHERE i <= 400"  # about 29 KB of rows
        body = await pipeline(
            c, None, execute(medium), execute(medium), execute(medium), {"type": "close"}
        )
        assert [x["type"] for x in body["results"][:3]] == ["ok", "ok", "error"]
        # A batch's steps share it as well.
        steps = [{"stmt": {"sql": medium}}] * 3
        body = await pipeline(
            c, None, {"type": "batch", "batch": {"steps": steps}}, {"type": "close"}
        )
        result = body["results"][0]["response"]["result"]
        assert [e is None for e in result["step_errors"]] == [True, True, False]
        assert result["step_errors"][2]["code"] == "RESPONSE_TOO_LARGE"
        # v1 execute answers with the error.
        resp = await c.post("/v1/execute", json={"stmt": {"sql": big}})
        assert resp.status_code >= 400
        assert resp.json()["code"] == "RESPONSE_TOO_LARGE"
        # want_rows=false sends no rows, so nothing to bound.
        resp = await c.post("/v1/execute", json={"stmt": {"sql": big, "want_rows": False}})
        assert resp.status_code == 200
        assert resp.json()["result"]["rows"] == []
        # The cursor reads the same result whole.
        resp = await c.post("/v3/cursor", json=cursor_body(big))
        assert resp.status_code == 200
        rows = [x for x in resp.text.splitlines() if '"type":"row"' in x]
        assert len(rows) == ROWS
    async with connect(server.ws_url, subprotocols=["hrana3"]) as ws:  # type: ignore[list-item]
        await _hello(ws)
        await _call(ws, 1, {"type": "open_stream", "stream_id": 1})
        got = await _call(ws, 2, {"type": "execute", "stream_id": 1, "stmt": {"sql": big}})
        assert got["type"] == "response_error"
        assert got["error"]["code"] == "RESPONSE_TOO_LARGE"
        got = await _call(ws, 3, {"type": "execute", "stream_id": 1, "stmt": {"sql": small}})
        assert got["type"] == "response_ok"
    await eventually_idle(server.store)


async def test_cursor_inside_a_transaction_sees_its_writes(server: Server) -> None:
    await big_table(server, 1000)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        began = await pipeline(c, None, execute("BEGIN"), execute("DELETE FROM big WHERE i > 600"))
        resp = await c.post(
            "/v3/cursor", json=cursor_body("SELECT i FROM big ORDER BY i", began["baton"])
        )
        lines = [json.loads(x) for x in resp.text.splitlines() if x]
        assert sum(e.get("type") == "row" for e in lines) == 600
        # Outside the transaction nothing changed yet.
        outside = await server.store.query("SELECT count(*) FROM big", cache=False)
        assert outside.values == [(1000,)]
        done = await pipeline(c, lines[0]["baton"], execute("COMMIT"), {"type": "close"})
        assert done["results"][0]["type"] == "ok"
    assert (await server.store.query("SELECT count(*) FROM big", cache=False)).values == [(600,)]
    await eventually_idle(server.store)
