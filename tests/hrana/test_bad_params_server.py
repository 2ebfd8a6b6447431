"""Bad parameters and statements over the wire (JSON API, tables REST, Hrana HTTP and
WebSocket) against a real server: a 400 / ARGS_INVALID naming the parameter, and afterwards
nothing held and reads still answered."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect

from .conftest import Server, StartServer, execute, hv

NAMED = "SELECT id, v FROM t WHERE id = :id"
ONE = "SELECT ?"
TWO = "SELECT ?, ?"


async def post(client: httpx.AsyncClient, path: str, body: Any) -> httpx.Response:
    """POST ``body`` as JSON, encoded by the stdlib (integers of any size travel as written)."""
    return await client.post(
        path,
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )


async def pipeline(
    client: httpx.AsyncClient, baton: str | None, *requests: dict[str, Any], path: str
) -> dict[str, Any]:
    resp = await post(client, path, {"baton": baton, "requests": list(requests)})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


@pytest.fixture
async def srv(start_server: StartServer) -> Server:
    # Two readers, a short pool_timeout: two leaked readers make the next read a 503.
    server = await start_server(max_readers=2, pool_timeout=2.0, statement_timeout=0.5)
    await server.store.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
    await server.store.execute("INSERT INTO t(id, v) VALUES (1, 'one')")
    return server


async def assert_serving(server: Server, client: httpx.AsyncClient) -> None:
    """Nothing held; reads (more at once than there are readers) and a write answer."""
    stats = server.store.pool.stats()
    assert stats.readers_busy == 0, stats
    assert not stats.writer_busy, stats
    assert stats.writes_pending == 0, stats
    reads = await asyncio.gather(
        *(
            client.post("/api/v1/query", json={"sql": NAMED, "params": {"id": 1}, "cache": False})
            for _ in range(3)
        ),
        client.get("/api/v1/tables/t/rows/1"),
        client.get("/health/ready"),
    )
    assert [r.status_code for r in reads] == [200] * 5, [r.text for r in reads]
    write = await post(client, "/api/v1/execute", {"sql": "UPDATE t SET v = 'one'"})
    assert write.status_code == 200, write.text


@pytest.mark.parametrize(
    ("sql", "params", "parameter"),
    [
        (ONE, [2**63], "?1"),
        (ONE, [-(2**63) - 1], "?1"),
        (ONE, [2**64], "?1"),
        (NAMED, {"nope": 1}, ":id"),
        (NAMED, {}, ":id"),
        (NAMED, None, ":id"),
        (TWO, [1], "?2"),
        (ONE, [1, 2], None),
    ],
)
async def test_json_api_names_the_parameter(
    srv: Server, sql: str, params: Any, parameter: str | None
) -> None:
    async with httpx.AsyncClient(base_url=srv.url) as c:
        for _ in range(3):  # more than there are readers
            for path, body in (
                ("/api/v1/query", {"sql": sql, "params": params}),
                ("/api/v1/query", {"sql": sql, "params": params, "cache": False}),
                ("/api/v1/execute", {"sql": sql, "params": params}),
                ("/api/v1/batch", {"statements": [{"sql": sql, "params": params}]}),
                (
                    "/api/v1/batch",
                    {"statements": [{"sql": sql, "params": params}], "atomic": False},
                ),
            ):
                resp = await post(c, path, body)
                if path.endswith("batch") and resp.status_code == 200:
                    # non-atomic: the failure is reported in that statement's result
                    error = resp.json()["results"][0]["error"]
                else:
                    assert resp.status_code == 400, (path, resp.text)
                    error = resp.json()["error"]
                assert error["type"] == "ParameterError", error
                assert error["code"] in ("SQLITE_RANGE", "SQLITE_MISMATCH")
                if parameter is not None:
                    assert parameter in error["message"], error
        await assert_serving(srv, c)


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        # From a query string or a path, digits beyond 64 bits stay text (SQLite's affinity
        # rules then apply): no such row, not an error.
        ("GET", "/api/v1/tables/t/rows?id=18446744073709551616", None, 200),
        ("GET", "/api/v1/tables/t/rows?id__in=1,9223372036854775808", None, 200),
        ("GET", "/api/v1/tables/t/rows/18446744073709551616", None, 404),
        # JSON numbers are numbers: beyond 64 bits they cannot be bound.
        ("GET", "/api/v1/tables/t/rows/[18446744073709551616]", None, 400),
        ("DELETE", "/api/v1/tables/t/rows/[-9223372036854775809]", None, 400),
        ("PATCH", "/api/v1/tables/t/rows/1", {"v": 2**64}, 400),
        ("POST", "/api/v1/tables/t/rows", {"id": 2**63, "v": 1}, 400),
        ("POST", "/api/v1/tables/t/rows", [{"v": 1}, {"v": -(2**63) - 1}], 400),
    ],
)
async def test_tables_rest_and_out_of_range_integers(
    srv: Server, method: str, path: str, body: Any, status: int
) -> None:
    async with httpx.AsyncClient(base_url=srv.url) as c:
        for _ in range(3):
            resp = await c.request(method, path, json=body)
            assert resp.status_code == status, resp.text
            if status == 400:
                error = resp.json()["error"]
                assert error["type"] == "ParameterError", error
                assert "64-bit" in error["message"], error
        await assert_serving(srv, c)


def _hrana_named(sql: str, named: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "execute",
        "stmt": {"sql": sql, "named_args": [{"name": k, "value": hv(v)} for k, v in named.items()]},
    }


HRANA_BAD = [
    (_hrana_named(NAMED, {"nope": 1}), ":id"),
    (_hrana_named(NAMED, {":nope": 1}), ":id"),
    ({"type": "execute", "stmt": {"sql": NAMED}}, ":id"),
    (execute(TWO, 1), "?2"),
    (execute(ONE, 1, 2), None),
]


@pytest.mark.parametrize("path", ["/v2/pipeline", "/v3/pipeline"])
async def test_hrana_http_answers_args_invalid(srv: Server, path: str) -> None:
    async with httpx.AsyncClient(base_url=srv.url) as c:
        for _ in range(3):
            requests = [req for req, _ in HRANA_BAD]
            # the same inside a transaction, which then still commits
            requests += [execute("BEGIN"), *requests, execute("COMMIT")]
            body = await pipeline(c, None, *requests, {"type": "close"}, path=path)
            results = body["results"]
            bad = [results[i] for i in range(len(HRANA_BAD))]
            bad += [results[len(HRANA_BAD) + 1 + i] for i in range(len(HRANA_BAD))]
            for result, (_, parameter) in zip(bad, HRANA_BAD * 2, strict=True):
                assert result["type"] == "error", result
                assert result["error"]["code"] == "ARGS_INVALID", result
                if parameter is not None:
                    assert parameter in result["error"]["message"], result
            assert results[-2]["type"] == "ok", results[-2]  # COMMIT
            resp = await post(
                c,
                "/v2/pipeline" if path.startswith("/v2") else "/v3/pipeline",
                {
                    "requests": [
                        {"type": "batch", "batch": {"steps": [{"stmt": req["stmt"]}]}}
                        for req, _ in HRANA_BAD
                    ]
                },
            )
            for result in resp.json()["results"]:
                step_errors = result["response"]["result"]["step_errors"]
                assert step_errors[0]["code"] == "ARGS_INVALID", result
            resp = await post(c, "/v1/execute", {"stmt": HRANA_BAD[0][0]["stmt"]})
            assert resp.status_code == 400, resp.text
            assert resp.json()["code"] == "ARGS_INVALID"
        await assert_serving(srv, c)


async def _ws_request(ws: ClientConnection, rid: int, request: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "request", "request_id": rid, "request": request}))
    msg: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 30))
    assert msg["request_id"] == rid, msg
    return msg


async def test_hrana_websocket_answers_args_invalid(srv: Server) -> None:
    async with connect(srv.ws_url, subprotocols=["hrana3"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "hello", "jwt": None}))
        assert json.loads(await ws.recv())["type"] == "hello_ok"
        await _ws_request(ws, 0, {"type": "open_stream", "stream_id": 1})
        rid = 1
        for _ in range(3):
            for begin in (False, True):
                if begin:
                    rid += 1
                    await _ws_request(
                        ws, rid, {"type": "execute", "stream_id": 1, **execute("BEGIN")}
                    )
                for req, parameter in HRANA_BAD:
                    rid += 1
                    msg = await _ws_request(ws, rid, {**req, "stream_id": 1})
                    assert msg["type"] == "response_error", msg
                    assert msg["error"]["code"] == "ARGS_INVALID", msg
                    if parameter is not None:
                        assert parameter in msg["error"]["message"]
                if begin:
                    rid += 1
                    msg = await _ws_request(
                        ws, rid, {"type": "execute", "stream_id": 1, **execute("ROLLBACK")}
                    )
                    assert msg["type"] == "response_ok", msg
        async with httpx.AsyncClient(base_url=srv.url) as c:
            await assert_serving(srv, c)


# -- the fuzz over the wire ---------------------------------------------------------------

JSON_BAD_VALUES = st.one_of(
    st.integers(min_value=2**63, max_value=2**64 - 1),
    st.integers(min_value=-(2**64), max_value=-(2**63) - 1),
    st.lists(st.integers(-5, 5), max_size=2),
    # (a lone surrogate never gets this far: the JSON decoder refuses the whole body)
    st.sampled_from([{"$int": "18446744073709551616"}, {"$blob": "!!"}, {"x": 1}]),
)
JSON_GOOD = st.one_of(st.none(), st.integers(-(2**53), 2**53), st.text(max_size=5))
WIRE_CASES = st.one_of(
    st.tuples(st.sampled_from([ONE, "INSERT INTO t(v) VALUES (?)"]), st.tuples(JSON_BAD_VALUES)),
    st.tuples(st.just(TWO), st.tuples(JSON_GOOD, JSON_BAD_VALUES)),
    st.tuples(
        st.sampled_from([NAMED, "UPDATE t SET v = :v WHERE id = :id"]),
        st.one_of(
            st.fixed_dictionaries({"id": JSON_BAD_VALUES, "v": JSON_GOOD}),
            st.sampled_from([{}, {"nope": 1}, {"v": 1}, None]),
        ),
    ),
    st.tuples(
        st.sampled_from([ONE, TWO, "INSERT INTO t(v) VALUES (?)"]),
        st.one_of(
            st.lists(JSON_GOOD, min_size=3, max_size=4).map(tuple),
            st.sampled_from([(), None, {"a": 1}]),
        ),
    ),
    st.tuples(
        st.sampled_from(
            [
                "SELEC 1",
                "SELECT 1; SELECT 2",
                "SELECT * FROM nope",
                "INSERT INTO t(id, v) VALUES (1, 'dup')",
                "BEGIN",
                "COMMIT",
                "SAVEPOINT s",
                "ATTACH 'x.db' AS x",
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c",
            ]
        ),
        st.sampled_from([None, (), (1,)]),
    ),
)


def _json_params(params: Any) -> Any:
    return list(params) if isinstance(params, tuple) else params


def _hrana_value(value: Any) -> dict[str, Any]:
    if isinstance(value, list | dict):
        return {"type": "text", "value": json.dumps(value)} if not value else {"type": "??"}
    return hv(value)


def _hrana_stmt(sql: str, params: Any) -> dict[str, Any]:
    stmt: dict[str, Any] = {"sql": sql}
    if isinstance(params, tuple):
        stmt["args"] = [_hrana_value(v) for v in params]
    elif isinstance(params, dict):
        stmt["named_args"] = [{"name": k, "value": _hrana_value(v)} for k, v in params.items()]
    return stmt


async def run_over_the_wire(
    server: Server, client: httpx.AsyncClient, sql: str, params: Any
) -> None:
    """``sql`` with ``params`` through every door of the server; every answer is a 4xx or a
    Hrana error (or a 200 for what happens to be valid), never a crash."""
    jparams = _json_params(params)
    statuses: list[tuple[str, int, str]] = []
    for path, body in (
        ("/api/v1/query", {"sql": sql, "params": jparams}),
        ("/api/v1/query", {"sql": sql, "params": jparams, "cache": False, "max_rows": 3}),
        ("/api/v1/execute", {"sql": sql, "params": jparams, "max_rows": 3}),
        ("/api/v1/batch", {"statements": [{"sql": "SELECT 1"}, {"sql": sql, "params": jparams}]}),
        ("/v1/execute", {"stmt": _hrana_stmt(sql, params)}),
    ):
        resp = await post(client, path, body)
        statuses.append((path, resp.status_code, resp.text[:200]))
    stmt = _hrana_stmt(sql, params)
    for path in ("/v2/pipeline", "/v3/pipeline"):
        resp = await post(
            client,
            path,
            {
                "requests": [
                    {"type": "execute", "stmt": stmt},
                    {"type": "execute", "stmt": {"sql": "BEGIN"}},
                    {"type": "execute", "stmt": stmt},
                    {"type": "batch", "batch": {"steps": [{"stmt": stmt}]}},
                    {"type": "execute", "stmt": {"sql": "ROLLBACK"}},
                    {"type": "close"},
                ]
            },
        )
        statuses.append((path, resp.status_code, resp.text[:200]))
    resp = await post(
        client,
        "/v3/cursor",
        {"baton": None, "batch": {"steps": [{"stmt": stmt}, {"stmt": {"sql": "SELECT 1"}}]}},
    )
    statuses.append(("/v3/cursor", resp.status_code, resp.text[:200]))
    if resp.status_code == 200:
        # A BEGIN leaves the stream open in a transaction for whoever holds the baton: close it.
        baton = json.loads(resp.text.splitlines()[0])["baton"]
        await pipeline(client, baton, {"type": "close"}, path="/v3/pipeline")
    async with connect(server.ws_url, subprotocols=["hrana3"]) as ws:  # type: ignore[list-item]
        await ws.send(json.dumps({"type": "hello", "jwt": None}))
        await ws.recv()
        await _ws_request(ws, 1, {"type": "open_stream", "stream_id": 1})
        for rid, request in enumerate(
            [
                {"type": "execute", "stream_id": 1, "stmt": stmt},
                {"type": "execute", "stream_id": 1, "stmt": {"sql": "BEGIN"}},
                {"type": "execute", "stream_id": 1, "stmt": stmt},
                {
                    "type": "open_cursor",
                    "stream_id": 1,
                    "cursor_id": 1,
                    "batch": {"steps": [{"stmt": stmt}]},
                },
                {"type": "close_cursor", "cursor_id": 1},
            ],
            start=2,
        ):
            msg = await _ws_request(ws, rid, request)
            assert msg["type"] in ("response_ok", "response_error"), msg
    for path, status, text in statuses:
        assert status < 500, (path, status, text)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=WIRE_CASES)
async def test_fuzz_over_the_wire_nothing_is_held(srv: Server, case: tuple[str, Any]) -> None:
    sql, params = case
    async with httpx.AsyncClient(base_url=srv.url, timeout=30) as c:
        await run_over_the_wire(srv, c, sql, params)
        # Streams closed by the client are released by tasks: give them a moment.
        for _ in range(100):
            stats = srv.store.pool.stats()
            if not stats.readers_busy and not stats.writer_busy:
                break
            await asyncio.sleep(0.02)
        await assert_serving(srv, c)
