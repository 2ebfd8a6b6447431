"""Hrana over HTTP at the wire level: every request type, batons, transactions, roles."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from edgestore.auth import hash_token
from tests.pool import assert_pool_idle

from .conftest import Server, StartServer, execute, hv, pipeline


def ok(result: dict[str, Any]) -> dict[str, Any]:
    assert result["type"] == "ok", result
    response: dict[str, Any] = result["response"]
    return response


def err(result: dict[str, Any]) -> dict[str, Any]:
    assert result["type"] == "error", result
    error: dict[str, Any] = result["error"]
    assert error["code"], error
    return error


async def test_every_request_type(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as c:
        body = await pipeline(
            c,
            None,
            execute("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, v REAL)"),
            execute("INSERT INTO t(name, v) VALUES (?, ?)", "a", 1.5),
            execute("INSERT INTO t(name, v) VALUES (:n, :v)", n="b", v=None),
            {"type": "store_sql", "sql_id": 7, "sql": "SELECT id, name FROM t WHERE name = ?"},
            {"type": "execute", "stmt": {"sql_id": 7, "args": [hv("b")]}},
            {"type": "describe", "sql": "SELECT id AS ident, name FROM t WHERE id = :id"},
            {"type": "describe", "sql_id": 7},
            {"type": "describe", "sql": "EXPLAIN SELECT 1"},
            {"type": "describe", "sql": "DELETE FROM t"},
            {"type": "close_sql", "sql_id": 7},
            {"type": "execute", "stmt": {"sql_id": 7}},
            {
                "type": "sequence",
                "sql": "INSERT INTO t(name) VALUES ('c'); INSERT INTO t(name) VALUES ('d');",
            },
            {"type": "get_autocommit"},
            {"type": "no_such_request"},
            execute("SELECT count(*) AS n FROM t"),
            path="/v3/pipeline",
        )
        r = body["results"]
        assert "last_insert_rowid" in ok(r[0])["result"]
        insert = ok(r[1])["result"]
        assert insert["cols"] == []
        assert insert["rows"] == []
        assert insert["affected_row_count"] == 1
        assert insert["last_insert_rowid"] == "1"
        assert ok(r[2])["result"]["last_insert_rowid"] == "2"
        assert ok(r[3]) == {"type": "store_sql"}
        got = ok(r[4])["result"]
        assert got["cols"] == [
            {"name": "id", "decltype": "INTEGER"},
            {"name": "name", "decltype": "TEXT"},
        ]
        assert got["rows"] == [[{"type": "integer", "value": "2"}, {"type": "text", "value": "b"}]]
        desc = ok(r[5])["result"]
        assert desc["cols"] == [
            {"name": "ident", "decltype": "INTEGER"},
            {"name": "name", "decltype": "TEXT"},
        ]
        assert desc["params"] == [{"name": ":id"}]
        assert desc["is_readonly"] is True
        assert desc["is_explain"] is False
        assert ok(r[6])["result"]["params"] == [{"name": None}]
        assert ok(r[7])["result"]["is_explain"] is True
        assert ok(r[8])["result"]["is_readonly"] is False
        assert ok(r[9]) == {"type": "close_sql"}
        assert err(r[10])["code"] == "SQL_NOT_FOUND"
        assert ok(r[11]) == {"type": "sequence"}
        assert ok(r[12]) == {"type": "get_autocommit", "is_autocommit": True}
        assert err(r[13])["code"] == "UNKNOWN_REQUEST"
        count = ok(r[14])["result"]["rows"][0][0]
        assert count == {"type": "integer", "value": "4"}
        await pipeline(c, body["baton"], {"type": "close"})


async def test_statement_errors_carry_codes(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as c:
        body = await pipeline(
            c,
            None,
            execute("CREATE TABLE u(x INTEGER PRIMARY KEY)"),
            execute("INSERT INTO u VALUES (1)"),
            execute("INSERT INTO u VALUES (1)"),
            execute("SELEC 1"),
            execute("SELECT 1; SELECT 2"),
            execute("   "),
            execute("SELECT ?", 1, 2),
            {"type": "execute", "stmt": {"sql": "SELECT ?", "args": [{"type": "integer"}]}},
            {"type": "close"},
        )
        r = body["results"]
        assert err(r[2])["code"] == "SQLITE_CONSTRAINT"
        assert err(r[2]).get("extended_code") == "SQLITE_CONSTRAINT_PRIMARYKEY"
        assert err(r[3])["code"] == "SQLITE_ERROR"
        assert err(r[4])["code"] == "SQL_MANY_STATEMENTS"
        assert err(r[5])["code"] == "SQL_NO_STATEMENT"
        assert err(r[6])["code"]
        assert err(r[7])["code"] == "ARGS_INVALID"
        assert body["baton"] is None


async def test_batch_conditions_and_autocommit(server: Server) -> None:
    steps = [
        {"stmt": {"sql": "BEGIN"}},
        {"stmt": {"sql": "CREATE TABLE b(x)"}, "condition": {"type": "ok", "step": 0}},
        {"stmt": {"sql": "INSERT INTO nope VALUES (1)"}, "condition": {"type": "ok", "step": 1}},
        {"stmt": {"sql": "SELECT 'skipped'"}, "condition": {"type": "ok", "step": 2}},
        {
            "stmt": {"sql": "SELECT 'not autocommit'"},
            "condition": {"type": "not", "cond": {"type": "is_autocommit"}},
        },
        {"stmt": {"sql": "COMMIT"}, "condition": {"type": "error", "step": 2}},
        {
            "stmt": {"sql": "SELECT 'both'"},
            "condition": {
                "type": "and",
                "conds": [
                    {"type": "is_autocommit"},
                    {"type": "or", "conds": [{"type": "ok", "step": 5}, {"type": "ok", "step": 3}]},
                ],
            },
        },
    ]
    async with httpx.AsyncClient(base_url=server.url) as c:
        body = await pipeline(
            c, None, {"type": "batch", "batch": {"steps": steps}}, path="/v3/pipeline"
        )
        res = ok(body["results"][0])["result"]
        assert res["step_results"][0] is not None
        assert res["step_errors"][2]["code"] == "SQLITE_ERROR"
        assert res["step_results"][2] is None
        assert res["step_results"][3] is None
        assert res["step_errors"][3] is None
        assert res["step_results"][4]["rows"] == [[{"type": "text", "value": "not autocommit"}]]
        assert res["step_results"][5] is not None
        assert res["step_results"][6]["rows"] == [[{"type": "text", "value": "both"}]]
        # A batch that refers to a later step is refused as a whole: nothing ran.
        bad = {
            "steps": [
                {
                    "stmt": {"sql": "INSERT INTO b VALUES (1)"},
                    "condition": {"type": "ok", "step": 3},
                }
            ]
        }
        body = await pipeline(c, body["baton"], {"type": "batch", "batch": bad}, {"type": "close"})
        assert err(body["results"][0])
    assert (await server.store.query("SELECT count(*) FROM b", cache=False)).values == [(0,)]


async def test_interactive_transaction_across_requests(server: Server) -> None:
    await server.store.execute("CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER)")
    await server.store.execute("INSERT INTO acct VALUES (1, 100), (2, 0)")
    async with httpx.AsyncClient(base_url=server.url) as c:
        b = await pipeline(
            c, None, execute("BEGIN IMMEDIATE"), {"type": "get_autocommit"}, path="/v3/pipeline"
        )
        assert ok(b["results"][1])["is_autocommit"] is False
        b = await pipeline(c, b["baton"], execute("UPDATE acct SET bal = bal - 30 WHERE id = 1"))
        # Not visible outside the stream before COMMIT.
        assert (
            await server.store.query("SELECT bal FROM acct WHERE id = 1", cache=False)
        ).values == [(100,)]
        b = await pipeline(c, b["baton"], execute("UPDATE acct SET bal = bal + 30 WHERE id = 2"))
        b = await pipeline(
            c, b["baton"], execute("COMMIT"), {"type": "get_autocommit"}, path="/v3/pipeline"
        )
        assert ok(b["results"][1])["is_autocommit"] is True
        b = await pipeline(c, b["baton"], execute("BEGIN"), execute("DELETE FROM acct"))
        b = await pipeline(c, b["baton"], execute("ROLLBACK"), {"type": "close"})
        assert b["baton"] is None
    rows = (await server.store.query("SELECT bal FROM acct ORDER BY id", cache=False)).values
    assert rows == [(70,), (30,)]
    await assert_pool_idle(server.store)


async def test_readonly_transaction_runs_beside_a_writer(server: Server) -> None:
    await server.store.execute("CREATE TABLE r(x)")
    await server.store.execute("INSERT INTO r VALUES (1)")
    async with httpx.AsyncClient(base_url=server.url) as c:
        w = await pipeline(c, None, execute("BEGIN IMMEDIATE"), execute("INSERT INTO r VALUES (2)"))
        ro = await pipeline(
            c,
            None,
            execute("BEGIN TRANSACTION READONLY"),
            execute("SELECT count(*) FROM r"),
            execute("INSERT INTO r VALUES (3)"),
            {"type": "describe", "sql": "BEGIN TRANSACTION READONLY"},
        )
        results = ro["results"]
        assert ok(results[0])
        assert ok(results[1])["result"]["rows"] == [[{"type": "integer", "value": "1"}]]
        assert err(results[2])["code"] in ("SQLITE_READONLY", "SQLITE_ERROR")
        assert ok(results[3])["result"]["is_readonly"] is True
        await pipeline(c, ro["baton"], execute("COMMIT"), {"type": "close"})
        await pipeline(c, w["baton"], execute("COMMIT"), {"type": "close"})
    assert (await server.store.query("SELECT count(*) FROM r", cache=False)).values == [(2,)]
    await assert_pool_idle(server.store)


async def test_writes_invalidate_the_query_cache(server: Server) -> None:
    store = server.store
    await store.execute("CREATE TABLE k(v)")
    await store.execute("INSERT INTO k VALUES (1)")
    before = store.versions.get("k")
    assert (await store.query("SELECT sum(v) FROM k", cache=True)).values == [(1,)]
    assert (await store.query("SELECT sum(v) FROM k", cache=True)).cached
    async with httpx.AsyncClient(base_url=server.url) as c:
        await pipeline(c, None, execute("INSERT INTO k VALUES (10)"), {"type": "close"})
        fresh = await store.query("SELECT sum(v) FROM k", cache=True)
        assert fresh.values == [(11,)]
        assert not fresh.cached
        assert (await store.query("SELECT sum(v) FROM k", cache=True)).cached
        # A write inside an interactive transaction invalidates at COMMIT.
        b = await pipeline(c, None, execute("BEGIN"), execute("INSERT INTO k VALUES (100)"))
        await pipeline(c, b["baton"], execute("COMMIT"), {"type": "close"})
        after_tx = await store.query("SELECT sum(v) FROM k", cache=True)
        assert after_tx.values == [(111,)]
        assert not after_tx.cached
        # v1 goes through the same path.
        resp = await c.post("/v1/execute", json={"stmt": {"sql": "DELETE FROM k"}})
        assert resp.status_code == 200
    assert (await store.query("SELECT count(*) FROM k", cache=True)).values == [(0,)]
    assert store.versions.get("k") > before


async def test_batons_are_single_use_and_unforgeable(start_server: StartServer) -> None:
    server = await start_server()
    other = await start_server(db_path=server.settings.db_path.with_name("other.db"))
    async with httpx.AsyncClient(base_url=server.url) as c:
        first = await pipeline(c, None, execute("SELECT 1"))
        baton = first["baton"]
        second = await pipeline(c, baton, execute("SELECT 2"))
        replay = await c.post("/v2/pipeline", json={"baton": baton, "requests": []})
        assert replay.status_code >= 400
        assert replay.headers["content-type"] == "application/json"
        assert replay.json()["code"] == "BATON_REUSED"
        forged = baton.rsplit(".", 1)[0] + ".00000000000000000000000000000000"
        resp = await c.post("/v2/pipeline", json={"baton": forged, "requests": []})
        assert resp.json()["code"] == "BATON_INVALID"
        for junk in ("garbage", 42, "1.2"):
            resp = await c.post("/v2/pipeline", json={"baton": junk, "requests": []})
            assert resp.status_code >= 400
            assert resp.json()["code"] == "BATON_INVALID"
        # A baton of another server (another key) is refused there.
        async with httpx.AsyncClient(base_url=other.url) as o:
            resp = await o.post("/v2/pipeline", json={"baton": second["baton"], "requests": []})
            assert resp.json()["code"] == "BATON_INVALID"
        # The legitimate holder still continues after all the refusals.
        last = await pipeline(c, second["baton"], {"type": "close"})
        assert last["baton"] is None
        resp = await c.post("/v2/pipeline", json={"baton": second["baton"], "requests": []})
        assert resp.json()["code"] in ("STREAM_EXPIRED", "BATON_REUSED")


async def test_roles_and_foreign_batons(start_server: StartServer) -> None:
    server = await start_server(
        auth_tokens=(f"ro:{hash_token('ro-secret')}", f"rw:{hash_token('rw-secret')}")
    )
    rw = {"authorization": "Bearer rw-secret"}
    ro = {"authorization": "Bearer ro-secret"}
    async with httpx.AsyncClient(base_url=server.url) as c:
        resp = await c.post("/v2/pipeline", json={"baton": None, "requests": []})
        assert resp.status_code == 401
        assert resp.json()["code"]
        resp = await c.post(
            "/v2/pipeline",
            headers=rw,
            json={"baton": None, "requests": [execute("CREATE TABLE p(x)")]},
        )
        baton = resp.json()["baton"]
        resp = await c.post(
            "/v2/pipeline",
            headers=ro,
            json={
                "baton": None,
                "requests": [
                    execute("SELECT count(*) FROM p"),
                    execute("INSERT INTO p VALUES (1)"),
                    execute("BEGIN IMMEDIATE"),
                    execute("BEGIN"),
                    {"type": "get_autocommit"},
                    execute("SELECT count(*) FROM p"),
                    execute("COMMIT"),
                    {"type": "close"},
                ],
            },
        )
        r = resp.json()["results"]
        assert ok(r[0])
        assert err(r[1])["code"] == "SQLITE_READONLY"
        assert err(r[2])["code"] == "SQLITE_READONLY"
        assert ok(r[3])
        assert ok(r[4])["is_autocommit"] is False
        assert ok(r[5])
        assert ok(r[6])
        # The rw stream's baton is useless with other credentials.
        resp = await c.post("/v2/pipeline", headers=ro, json={"baton": baton, "requests": []})
        assert resp.json()["code"] == "BATON_FOREIGN"
        resp = await c.post(
            "/v2/pipeline", headers=rw, json={"baton": baton, "requests": [{"type": "close"}]}
        )
        assert resp.status_code == 200
        resp = await c.post("/v1/execute", headers=ro, json={"stmt": {"sql": "DELETE FROM p"}})
        assert resp.status_code >= 400
        assert resp.json()["code"] == "SQLITE_READONLY"


async def test_idle_stream_expiry_releases_the_writer(start_server: StartServer) -> None:
    server = await start_server(stream_idle_timeout=0.3)
    store = server.store
    await store.execute("CREATE TABLE e(x)")
    async with httpx.AsyncClient(base_url=server.url) as c:
        b = await pipeline(c, None, execute("BEGIN IMMEDIATE"), execute("INSERT INTO e VALUES (1)"))
        # The client walks away; expiry must roll back and free the writer.
        for _ in range(100):
            if server.state.store_or_none is not None and len(_registry(server)) == 0:
                break
            await asyncio.sleep(0.05)
        assert len(_registry(server)) == 0
        resp = await c.post("/v2/pipeline", json={"baton": b["baton"], "requests": []})
        assert resp.json()["code"] == "STREAM_EXPIRED"
        await asyncio.wait_for(store.execute("INSERT INTO e VALUES (2)"), 5)
    assert (await store.query("SELECT x FROM e", cache=False)).values == [(2,)]
    await assert_pool_idle(store)


async def test_second_writer_waits_then_gets_busy(start_server: StartServer) -> None:
    server = await start_server(pool_timeout=0.3)
    async with httpx.AsyncClient(base_url=server.url) as c:
        first = await pipeline(c, None, execute("BEGIN IMMEDIATE"))
        second = await pipeline(c, None, execute("BEGIN IMMEDIATE"), {"type": "close"})
        assert err(second["results"][0])["code"] == "SQLITE_BUSY"
        await pipeline(c, first["baton"], execute("ROLLBACK"), {"type": "close"})
        # Once the first one ends, the next one gets the writer.
        third = await pipeline(
            c, None, execute("BEGIN IMMEDIATE"), execute("COMMIT"), {"type": "close"}
        )
        assert all(x["type"] == "ok" for x in third["results"])
    await assert_pool_idle(server.store)


async def test_cursor_streams_steps(server: Server) -> None:
    await server.store.execute("CREATE TABLE c(x INTEGER, y TEXT)")
    batch = {
        "steps": [
            {"stmt": {"sql": "INSERT INTO c VALUES (1, 'a'), (2, 'b')"}},
            {"stmt": {"sql": "SELECT x, y FROM c ORDER BY x"}},
            {"stmt": {"sql": "SELECT * FROM missing"}},
            {"stmt": {"sql": "SELECT 1"}, "condition": {"type": "ok", "step": 2}},
        ]
    }
    async with httpx.AsyncClient(base_url=server.url) as c:
        resp = await c.post("/v3/cursor", json={"baton": None, "batch": batch})
        assert resp.status_code == 200
        lines = [json.loads(line) for line in resp.text.splitlines()]
        assert lines[0]["baton"]
        assert lines[0]["base_url"] is None
        kinds = [e["type"] for e in lines[1:]]
        assert kinds == [
            "step_begin",
            "step_end",
            "step_begin",
            "row",
            "row",
            "step_end",
            "step_error",
        ]
        assert lines[2]["affected_row_count"] == 2
        assert lines[2]["last_insert_rowid"] == lines[2]["last_inserted_rowid"] == "2"
        assert lines[3]["cols"] == [
            {"name": "x", "decltype": "INTEGER"},
            {"name": "y", "decltype": "TEXT"},
        ]
        assert lines[7]["step"] == 2
        assert lines[7]["error"]["code"] == "SQLITE_ERROR"
        await pipeline(c, lines[0]["baton"], {"type": "close"}, path="/v3/pipeline")


def _registry(server: Server) -> Any:
    """The baton registry of the server's Hrana routes (found through the app's handlers)."""
    for route in server.app.routes:
        for handler in getattr(route, "route_handlers", ()):
            fn = getattr(handler, "fn", None)
            hrana = _closure_value(fn, "hrana")
            if hrana is not None:
                return hrana.http.registry
    raise AssertionError("no Hrana routes mounted")


def _closure_value(fn: Any, name: str) -> Any:
    code = getattr(fn, "__code__", None)
    if code is None or name not in code.co_freevars:
        return None
    return fn.__closure__[code.co_freevars.index(name)].cell_contents


async def test_websocket_hrana1_and_stored_sql(server: Server) -> None:
    from websockets.asyncio.client import connect

    async with connect(server.ws_url) as ws:  # no subprotocol offered: Hrana 1
        await ws.send(json.dumps({"type": "hello", "jwt": None}))
        assert json.loads(await ws.recv()) == {"type": "hello_ok"}
        requests = [
            {"type": "open_stream", "stream_id": 0},
            {"type": "execute", "stream_id": 0, "stmt": {"sql": "SELECT ? AS a", "args": [hv(5)]}},
            {"type": "close_stream", "stream_id": 0},
        ]
        for rid, req in enumerate(requests):
            await ws.send(json.dumps({"type": "request", "request_id": rid, "request": req}))
        got = {}
        for _ in requests:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
            got[msg["request_id"]] = msg
        assert got[1]["response"]["result"]["rows"] == [[{"type": "integer", "value": "5"}]]
        assert got[2]["response"] == {"type": "close_stream"}
    async with connect(server.ws_url, subprotocols=["hrana3"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "hello", "jwt": None}))
        await ws.recv()
        requests = [
            {"type": "open_stream", "stream_id": 1},
            {"type": "store_sql", "sql_id": 3, "sql": "SELECT 40 + ?"},
            {"type": "execute", "stream_id": 1, "stmt": {"sql_id": 3, "args": [hv(2)]}},
            # Closing the SQL right after cannot pull it from under the queued execute.
            {"type": "close_sql", "sql_id": 3},
            {"type": "get_autocommit", "stream_id": 1},
        ]
        for rid, req in enumerate(requests):
            await ws.send(json.dumps({"type": "request", "request_id": rid, "request": req}))
        got = {}
        for _ in requests:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
            got[msg["request_id"]] = msg
        assert got[2]["response"]["result"]["rows"] == [[{"type": "integer", "value": "42"}]]
        assert got[4]["response"] == {"type": "get_autocommit", "is_autocommit": True}
    await assert_pool_idle(server.store)


async def test_version_probes(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as c:
        assert (await c.get("/v2")).status_code == 200
        assert (await c.get("/v3")).status_code == 200
        resp = await c.get("/v3-protobuf")
        assert resp.status_code == 404
        assert resp.json()["code"] == "NOT_FOUND"
        assert (await c.post("/v3-protobuf/pipeline", content=b"")).status_code == 404


async def test_transaction_timeout_is_reported_and_releases(start_server: StartServer) -> None:
    server = await start_server(transaction_timeout=0.3)
    async with httpx.AsyncClient(base_url=server.url) as c:
        b = await pipeline(c, None, execute("BEGIN IMMEDIATE"), execute("SELECT 1"))
        await asyncio.sleep(0.8)
        b = await pipeline(c, b["baton"], execute("SELECT 2"), {"type": "get_autocommit"})
        assert err(b["results"][0])["code"] == "TRANSACTION_TIMEOUT"
        assert ok(b["results"][1])["is_autocommit"] is True
        await pipeline(c, b["baton"], {"type": "close"})
    await assert_pool_idle(server.store)


async def test_describe_inside_a_transaction_sees_its_own_tables(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as c:
        b = await pipeline(
            c,
            None,
            execute("BEGIN"),
            execute("CREATE TABLE fresh(x INTEGER, y TEXT)"),
            {"type": "describe", "sql": "INSERT INTO fresh VALUES (?, :y)"},
            {"type": "describe", "sql": "SELECT x FROM fresh WHERE y = $y"},
            execute("INSERT INTO fresh VALUES (1, 'a')"),
            execute("ROLLBACK"),
            {"type": "close"},
            path="/v3/pipeline",
        )
        r = b["results"]
        assert ok(r[2])["result"]["params"] == [{"name": None}, {"name": ":y"}]
        assert ok(r[2])["result"]["is_readonly"] is False
        assert ok(r[3])["result"]["params"] == [{"name": "$y"}]
        assert ok(r[3])["result"]["is_readonly"] is True
        assert ok(r[3])["result"]["cols"] == [{"name": "x", "decltype": "INTEGER"}]
        assert ok(r[4])
    await assert_pool_idle(server.store)
