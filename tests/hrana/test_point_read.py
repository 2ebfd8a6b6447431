"""``[execute <read>, close]`` on a new stream answered in one step (hrana/point_read.py):
the same bytes as the general pipeline path, the stream limits still hold, reads go through
the query cache and never answer stale; and a request body ends at its Content-Length."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import edgestore
from edgestore.config import Settings
from edgestore.hrana.errors import error_of
from edgestore.hrana.http import HranaHttp
from edgestore.hrana.point_read import MAX_POINT_ROWS
from edgestore.web.app import create_app

from .conftest import StartServer, execute, hv, pipeline

CLOSE = {"type": "close"}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Any]:
    s = await edgestore.open(tmp_path / "point.db", schemas_dir=None, max_response_bytes=20_000)
    await s.execute(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, v REAL, b BLOB, n NUMERIC, big TEXT)"
    )
    await s.execute(
        "INSERT INTO t VALUES (1, 'a', 1.5, x'00ff', 12.5, NULL), "
        "(2, 'é\"\\\\', NULL, NULL, 3, NULL)"
    )
    await s.execute("CREATE TABLE many(id INTEGER PRIMARY KEY)")
    await s.execute(
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 300) "
        "INSERT INTO many SELECT i FROM c"
    )
    await s.execute("UPDATE t SET big = ? WHERE id = 2", ["x" * 30_000])
    yield s
    await s.close()


def _body(*requests: dict[str, Any], baton: str | None = None) -> bytes:
    return json.dumps({"baton": baton, "requests": list(requests)}).encode()


def _stmt(sql: str, **extra: Any) -> dict[str, Any]:
    return {"type": "execute", "stmt": {"sql": sql, **extra}}


# Pipelines [execute, close] on a new stream: the reads point_read answers, and the ones it
# must hand to the general path (writes, errors, sizes, settings, sql ids, ...).
CASES: list[tuple[str, dict[str, Any]]] = [
    ("row", execute("SELECT * FROM t WHERE id = ?", 1)),
    ("text escapes", execute("SELECT id, name FROM t WHERE id = ?", 2)),
    ("named", execute("SELECT name FROM t WHERE id = :id", id=1)),
    (
        "named with prefix",
        _stmt("SELECT name FROM t WHERE id = $id", named_args=[{"name": "$id", "value": hv(1)}]),
    ),
    ("no row", execute("SELECT * FROM t WHERE id = ?", 99)),
    ("no table columns", execute("SELECT 1 AS one, NULL, 2.5, x'01', 'z'")),
    ("want_rows false", _stmt("SELECT id, name FROM t", want_rows=False)),
    ("want_rows false, too large", _stmt("SELECT * FROM t", want_rows=False)),
    ("want_rows null", _stmt("SELECT id FROM t", want_rows=None)),
    ("unknown field", _stmt("SELECT id FROM t", replication_index=None, sql_id=None)),
    ("one chunk", execute(f"SELECT id FROM many WHERE id <= {MAX_POINT_ROWS}")),
    ("more than a chunk", execute("SELECT id FROM many")),
    ("too large", execute("SELECT big FROM t WHERE id = 2")),
    ("runtime error", execute("SELECT abs(?)", -(2**63))),
    ("too few args", execute("SELECT * FROM t WHERE id = ? AND name = ?", 1)),
    ("too many args", execute("SELECT * FROM t WHERE id = ?", 1, 2)),
    ("unknown name", execute("SELECT * FROM t WHERE id = :id", other=1)),
    ("bad arg", _stmt("SELECT ?", args=[{"type": "integer", "value": "x"}])),
    ("both arg kinds", _stmt("SELECT ?", args=[hv(1)], named_args=[{"name": "a", "value": hv(1)}])),
    ("no such table", execute("SELECT * FROM nope")),
    ("syntax", execute("SELEC 1")),
    ("two statements", execute("SELECT 1; SELECT 2")),
    ("no statement", execute("  -- nothing ;")),
    ("sql id", _stmt("SELECT 1", sql_id=3)),
    ("sql id only", {"type": "execute", "stmt": {"sql_id": 3}}),
    ("session setting", execute("PRAGMA foreign_keys")),
    ("pragma refused", execute("PRAGMA journal_mode = DELETE")),
    ("attach refused", execute("ATTACH 'x.db' AS x")),
    ("begin", execute("BEGIN")),
    ("commit outside", execute("COMMIT")),
    ("write", execute("UPDATE t SET v = v WHERE id = 1")),
    ("write returning", execute("UPDATE t SET v = v WHERE id = 1 RETURNING id, v")),
    ("not a stmt", {"type": "execute", "stmt": "SELECT 1"}),
    # What @libsql/client sends for every execute(): numbers as floats, empty named_args.
    (
        "js client",
        _stmt(
            "SELECT * FROM t WHERE id = ?",
            args=[{"type": "float", "value": 1}],
            named_args=[],
            want_rows=True,
        ),
    ),
    (
        "js client named",
        _stmt(
            "SELECT name FROM t WHERE id = :id",
            args=[],
            named_args=[{"name": "id", "value": {"type": "float", "value": 2}}],
        ),
    ),
    # Every spelling of a value the codec takes or refuses.
    ("integer as a number", _stmt("SELECT ?", args=[{"type": "integer", "value": 5}])),
    ("integer as a bool", _stmt("SELECT ?", args=[{"type": "integer", "value": True}])),
    ("integer too big", _stmt("SELECT ?", args=[{"type": "integer", "value": str(2**63)}])),
    ("float as text", _stmt("SELECT ?", args=[{"type": "float", "value": "2.5"}])),
    ("float as a bool", _stmt("SELECT ?", args=[{"type": "float", "value": False}])),
    ("float as null", _stmt("SELECT ?", args=[{"type": "float", "value": None}])),
    ("real", _stmt("SELECT ?", args=[{"type": "real", "value": 1.5}])),
    ("text, null, blob", execute("SELECT ?, ?, ?", "é", None, b"\x00\x01")),
    ("value not an object", _stmt("SELECT ?", args=[1])),
    ("args not a list", _stmt("SELECT 1", args={"a": 1})),
    ("named_args not a list", _stmt("SELECT 1", named_args="x")),
    # Every type of result value, and the floats JSON cannot carry.
    (
        "result types",
        execute("SELECT 1, -2.5, 'x', x'0001', NULL, 1e999, -1e999, 9223372036854775807"),
    ),
    ("nan", execute("SELECT 0.0 * 1e999")),
]


@pytest.mark.parametrize("readonly", [False, True])
async def test_same_answer_as_the_general_path(store: Any, readonly: bool) -> None:
    fast = HranaHttp(store)
    general = HranaHttp(store, point_reads=False)
    for name, request in CASES:
        for _ in range(3):  # the later rounds may be answered by the query cache
            for path_shape in ([request, CLOSE], [request, {"type": "close", "x": 1}]):
                body = _body(*path_shape)
                # @libsql/client sends no baton key at all on a new stream.
                no_baton = json.dumps({"requests": path_shape}).encode()
                assert await fast.pipeline(
                    no_baton, owner="o", readonly=readonly, caller="c"
                ) == await general.pipeline(no_baton, owner="o", readonly=readonly, caller="c")
                want = await general.pipeline(body, owner="o", readonly=readonly, caller="c")
                got = await fast.pipeline(body, owner="o", readonly=readonly, caller="c")
                assert got == want, (name, readonly)
                assert json.loads(got)["baton"] is None
    # Pipelines of other shapes are not touched; neither path left a stream open.
    assert len(fast.registry) == 0
    assert len(general.registry) == 0
    assert fast.quotas is None


async def _v1(http: HranaHttp, stmt: Any, readonly: bool) -> Any:
    """The v1 execute answer: its body, or the class and Hrana error of what it raised."""
    try:
        return await http.v1_execute(json.dumps({"stmt": stmt}).encode(), readonly=readonly)
    except Exception as exc:
        return type(exc), error_of(exc)


@pytest.mark.parametrize("readonly", [False, True])
async def test_v1_execute_same_answer_as_the_general_path(store: Any, readonly: bool) -> None:
    fast = HranaHttp(store)
    general = HranaHttp(store, point_reads=False)
    for name, request in CASES:
        stmt = request["stmt"]
        for _ in range(3):  # the later rounds may be answered by the query cache
            want = await _v1(general, stmt, readonly)
            assert await _v1(fast, stmt, readonly) == want, (name, readonly)


async def test_v1_reads_take_the_short_path(store: Any) -> None:
    """libsql-client (Python) sends every execute() as v1: its reads go through the query
    cache like a pipeline's point reads (the general path never does)."""
    http = HranaHttp(store)
    body = json.dumps({"stmt": execute("SELECT name FROM t WHERE id = ?", 1)["stmt"]}).encode()
    before = store.cache_stats().query.hits
    for _ in range(3):
        out = json.loads(await http.v1_execute(body, readonly=False))
        assert out["result"]["rows"] == [[hv("a")]]
    assert store.cache_stats().query.hits >= before + 2


async def test_columns_follow_a_schema_change(store: Any) -> None:
    """The encoded columns are remembered per columns tuple: a table that gains a column
    answers with the new columns at once, as the general path does."""
    fast = HranaHttp(store)
    general = HranaHttp(store, point_reads=False)
    body = _body(execute("SELECT * FROM t WHERE id = ?", 1), CLOSE)
    first = json.loads(await fast.pipeline(body, owner="o", readonly=False))
    await store.execute("ALTER TABLE t ADD COLUMN extra TEXT DEFAULT 'e'")
    got = await fast.pipeline(body, owner="o", readonly=False)
    assert got == await general.pipeline(body, owner="o", readonly=False)
    cols = json.loads(got)["results"][0]["response"]["result"]["cols"]
    assert len(cols) == len(first["results"][0]["response"]["result"]["cols"]) + 1
    assert cols[-1] == {"name": "extra", "decltype": "TEXT"}


async def test_point_reads_use_the_query_cache_and_see_writes(store: Any) -> None:
    http = HranaHttp(store)
    read = _body(execute("SELECT name FROM t WHERE id = ?", 1), CLOSE)
    before = store.cache_stats().query.hits
    for _ in range(3):
        out = json.loads(await http.pipeline(read, owner="o", readonly=False))
        assert out["results"][0]["response"]["result"]["rows"] == [[hv("a")]]
    assert store.cache_stats().query.hits >= before + 2
    # A write acknowledged through Hrana is seen by the very next point read.
    write = _body(execute("UPDATE t SET name = ? WHERE id = ?", "b", 1), CLOSE)
    out = json.loads(await http.pipeline(write, owner="o", readonly=False))
    assert out["results"][0]["response"]["result"]["affected_row_count"] == 1
    out = json.loads(await http.pipeline(read, owner="o", readonly=False))
    assert out["results"][0]["response"]["result"]["rows"] == [[hv("b")]]


async def test_stream_limits_still_refuse(start_server: StartServer) -> None:
    server = await start_server(max_streams_per_caller=2)
    async with httpx.AsyncClient(base_url=server.url) as c:
        for _ in range(2):  # two open streams: the caller's whole share
            assert (await pipeline(c, None, execute("SELECT 1")))["baton"] is not None
        resp = await c.post(
            "/v2/pipeline", json={"baton": None, "requests": [execute("SELECT 1"), CLOSE]}
        )
        assert resp.status_code == 400, resp.text
        assert resp.json()["code"] == "STREAMS_EXHAUSTED"


async def test_readonly_token_cannot_write_through_the_short_path(
    start_server: StartServer,
) -> None:
    from edgestore.auth import hash_token

    server = await start_server(auth_tokens=(f"ro:{hash_token('r')}",))
    async with httpx.AsyncClient(base_url=server.url, headers={"authorization": "Bearer r"}) as c:
        await server.store.execute("CREATE TABLE w(id INTEGER PRIMARY KEY)")
        body = await pipeline(c, None, execute("INSERT INTO w VALUES (1) RETURNING id"), CLOSE)
        assert body["results"][0]["error"]["code"] == "SQLITE_READONLY"
        body = await pipeline(c, None, execute("SELECT count(*) FROM w"), CLOSE)
        assert body["results"][0]["response"]["result"]["rows"] == [[hv(0)]]


class _Asgi:
    """The app driven with raw ASGI messages, its lifespan run by hand."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Asgi:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self._events.put_nowait({"type": "lifespan.startup"})
        self._task = asyncio.ensure_future(
            self.app(scope, self._events.get, self._replies.put)  # type: ignore[arg-type]
        )
        assert (await self._replies.get())["type"] == "lifespan.startup.complete"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._events.put_nowait({"type": "lifespan.shutdown"})
        assert self._task is not None
        await asyncio.wait_for(self._task, 10)

    async def post(
        self, path: str, chunks: list[bytes], length: int | None
    ) -> tuple[int, dict[str, Any]]:
        """POST ``chunks`` as separate messages, each saying more is coming; the end of the
        body never comes (receive() then waits for ever)."""
        headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")]
        if length is not None:
            headers.append((b"content-length", b"%d" % length))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        pending = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            if pending:
                return pending.pop(0)
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await asyncio.wait_for(self.app(scope, receive, send), 10)  # type: ignore[arg-type]
        return sent[0]["status"], json.loads(sent[1]["body"])


async def test_body_ends_at_its_content_length(tmp_path: Path) -> None:
    settings = Settings.load(
        environ={}, db_path=tmp_path / "asgi.db", access_log=False, max_body_bytes=4096
    ).replace(schemas_dir=None)
    body = _body(execute("SELECT 40 + 2 AS n"), CLOSE)
    async with _Asgi(settings) as asgi:
        # Granian's way: the data, then (here: never) an empty message to end the body.
        status, out = await asgi.post("/v2/pipeline", [body], len(body))
        assert status == 200, out
        assert out["results"][0]["response"]["result"]["rows"] == [[hv(42)]]
        # In pieces: all of them are read.
        status, out = await asgi.post("/v3/pipeline", [body[:7], body[7:30], body[30:]], len(body))
        assert status == 200, out
        assert out["results"][0]["response"]["result"]["rows"] == [[hv(42)]]
        # Routes reading their body through Litestar's request.body() stop as well.
        one = json.dumps({"stmt": {"sql": "SELECT 7"}}).encode()
        status, out = await asgi.post("/v1/execute", [one], len(one))
        assert status == 200, out
        assert out["result"]["rows"] == [[hv(7)]]
