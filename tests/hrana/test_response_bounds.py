"""Responses are bounded as rows are produced, on every path: the JSON API (query, execute,
atomic and non-atomic batch), tables REST, Hrana v1/v2/v3 pipeline, cursor and WebSocket.

Past ``max_response_bytes`` a result stops with RESPONSE_TOO_LARGE (a 400 on the JSON API);
no single value larger than that is built at all; ``max_rows`` holds for every statement of
an atomic batch. After each refusal nothing is left holding a connection.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import libsql_client
import pytest

from tests.pool import assert_pool_idle
from tests.rss import peak_rss_mib
from tests.server import EdgestoreServer

from .conftest import Server, StartServer, execute, pipeline

LIMIT = 256 * 1024
MAX_ROWS = 500
HUGE = "SELECT zeroblob(3000000) AS b"  # one value of ~11 x LIMIT
# 64 rows of 8 KiB: 512 KiB of rows, within max_rows but twice the byte budget.
WIDE = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 64) "
    "SELECT i, randomblob(8192) AS b FROM n"
)
LONG = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000) SELECT i FROM n"
)


@pytest.fixture
async def bounded(start_server: StartServer) -> Server:
    return await start_server(max_response_bytes=LIMIT, max_rows=MAX_ROWS)


def _too_large(resp: httpx.Response) -> None:
    assert resp.status_code == 400, resp.text
    assert resp.json()["error"]["code"] == "RESPONSE_TOO_LARGE", resp.text


@pytest.mark.parametrize("sql", [HUGE, WIDE])
async def test_json_api_query_and_execute_stop_at_the_budget(bounded: Server, sql: str) -> None:
    async with httpx.AsyncClient(base_url=bounded.url) as c:
        _too_large(await c.post("/api/v1/query", json={"sql": sql, "cache": False}))
        _too_large(await c.post("/api/v1/execute", json={"sql": sql}))
        resp = await c.post("/api/v1/query", json={"sql": "SELECT 1 AS one"})
        assert resp.json()["rows"] == [[1]]
    await assert_pool_idle(bounded.store)


async def test_json_api_atomic_batch_keeps_max_rows_and_one_budget(bounded: Server) -> None:
    async with httpx.AsyncClient(base_url=bounded.url) as c:
        resp = await c.post("/api/v1/batch", json={"statements": [{"sql": LONG}]})
        assert resp.status_code == 200, resp.text
        result = resp.json()["results"][0]["result"]
        assert len(result["rows"]) == MAX_ROWS
        assert result["truncated"] is True
        # Each statement alone fits the budget; together they do not.
        part = "SELECT randomblob(100000) AS b"
        statements = [{"sql": part}] * 3
        _too_large(await c.post("/api/v1/batch", json={"statements": statements}))
        _too_large(await c.post("/api/v1/batch", json={"statements": [{"sql": HUGE}]}))
        resp = await c.post("/api/v1/batch", json={"statements": statements, "atomic": False})
        assert resp.status_code == 200, resp.text
        items = resp.json()["results"]
        assert "result" in items[0]
        assert "result" in items[1]
        assert items[2]["error"]["code"] == "RESPONSE_TOO_LARGE"
    await assert_pool_idle(bounded.store)


async def test_json_api_batch_with_a_session_pragma_keeps_max_rows_and_one_budget(
    bounded: Server,
) -> None:
    """A batch holding PRAGMA foreign_keys runs on a session of its own: the same bounds."""
    pragma = {"sql": "PRAGMA foreign_keys = OFF"}
    async with httpx.AsyncClient(base_url=bounded.url) as c:
        resp = await c.post("/api/v1/batch", json={"statements": [pragma, {"sql": LONG}]})
        assert resp.status_code == 200, resp.text
        result = resp.json()["results"][1]["result"]
        assert len(result["rows"]) == MAX_ROWS
        assert result["truncated"] is True
        part = {"sql": "SELECT randomblob(100000) AS b"}
        _too_large(await c.post("/api/v1/batch", json={"statements": [pragma, part, part, part]}))
    await assert_pool_idle(bounded.store)


async def test_tables_rest_is_bounded(bounded: Server) -> None:
    async with httpx.AsyncClient(base_url=bounded.url) as c:
        resp = await c.post(
            "/api/v1/execute", json={"sql": "CREATE TABLE blobs(id INTEGER PRIMARY KEY, b BLOB)"}
        )
        assert resp.status_code == 200, resp.text
        for _ in range(4):
            resp = await c.post(
                "/api/v1/execute", json={"sql": "INSERT INTO blobs(b) VALUES (zeroblob(100000))"}
            )
            assert resp.status_code == 200, resp.text
        _too_large(await c.get("/api/v1/tables/blobs/rows", params={"limit": 10}))
    await assert_pool_idle(bounded.store)


@pytest.mark.parametrize("sql", [HUGE, WIDE])
async def test_hrana_http_paths_stop_at_the_budget(bounded: Server, sql: str) -> None:
    async with httpx.AsyncClient(base_url=bounded.url) as c:
        resp = await c.post("/v1/execute", json={"stmt": {"sql": sql}})
        assert resp.status_code == 400, resp.text
        assert resp.json()["code"] == "RESPONSE_TOO_LARGE"
        resp = await c.post("/v1/batch", json={"batch": {"steps": [{"stmt": {"sql": sql}}]}})
        assert resp.status_code == 200, resp.text
        assert resp.json()["result"]["step_errors"][0]["code"] == "RESPONSE_TOO_LARGE"
        for path in ("/v2/pipeline", "/v3/pipeline"):
            body = await pipeline(c, None, execute(sql), {"type": "close"}, path=path)
            assert body["results"][0]["error"]["code"] == "RESPONSE_TOO_LARGE"
    await assert_pool_idle(bounded.store)


async def test_hrana_cursor_refuses_a_value_larger_than_a_response(bounded: Server) -> None:
    batch = {"steps": [{"stmt": {"sql": HUGE}}, {"stmt": {"sql": WIDE}}]}
    async with httpx.AsyncClient(base_url=bounded.url) as c:
        resp = await c.post("/v3/cursor", json={"baton": None, "batch": batch})
        assert resp.status_code == 200, resp.text
        entries: list[dict[str, Any]] = [json.loads(line) for line in resp.text.splitlines()[1:]]
    errors = [e for e in entries if e["type"] == "step_error"]
    assert errors[0]["step"] == 0
    assert errors[0]["error"]["code"] == "RESPONSE_TOO_LARGE"
    # Cursors have no total budget: the 512 KiB of rows stream in chunks.
    assert sum(e["type"] == "row" for e in entries) == 64
    await assert_pool_idle(bounded.store)


@pytest.mark.parametrize("sql", [HUGE, WIDE])
async def test_websocket_client_gets_response_too_large(bounded: Server, sql: str) -> None:
    async with libsql_client.create_client(bounded.ws_url) as client:
        with pytest.raises(libsql_client.LibsqlError) as info:
            await client.execute(sql)
        assert info.value.code == "RESPONSE_TOO_LARGE"
        rs = await client.execute("SELECT 1")
        assert rs.rows[0][0] == 1
        # Inside a transaction too (rows read on the pinned writer).
        with client.transaction() as tx:
            with pytest.raises(libsql_client.LibsqlError) as info:
                await tx.execute(sql)
            assert info.value.code == "RESPONSE_TOO_LARGE"
            await tx.rollback()
    await assert_pool_idle(bounded.store)


def test_refused_results_are_never_built_in_memory(tmp_path: Path) -> None:
    """Peak RSS of `edgestore serve` (default settings) across the refusals stays near where
    it started: the 200 MB values and the 2M-row result are never materialised."""
    many = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000000) "
        "SELECT i, 'some text to make rows wider' FROM n"
    )
    blob = "SELECT zeroblob(200000000)"
    with EdgestoreServer(tmp_path / "mem.db", schemas_dir=None) as server:
        assert server.proc is not None
        with httpx.Client(base_url=server.url, timeout=120) as c:
            assert c.post("/api/v1/query", json={"sql": "SELECT 1"}).status_code == 200
            before = peak_rss_mib(server.proc.pid)
            resp = c.post("/v1/execute", json={"stmt": {"sql": blob}})
            assert resp.json()["code"] == "RESPONSE_TOO_LARGE", resp.text
            three = f"{blob} UNION ALL {blob} UNION ALL {blob}"
            _too_large(c.post("/api/v1/query", json={"sql": three, "cache": False}))
            resp = c.post("/api/v1/batch", json={"statements": [{"sql": many}]})
            assert resp.status_code == 200, resp.text
            assert resp.json()["results"][0]["result"]["truncated"] is True
            grown = peak_rss_mib(server.proc.pid) - before
    assert grown < 64, f"peak RSS grew by {grown:.0f} MiB"
