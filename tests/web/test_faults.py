"""Faults are the server's (5xx, logged with the database path); bad input is the caller's (4xx).

The faults are real: a page limit on the server's own writer (SQLITE_FULL), SQLite's process-wide
heap limit (SQLITE_NOMEM), a file with overwritten pages (SQLITE_CORRUPT), a path that cannot be
opened (SQLITE_CANTOPEN).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import apsw
import httpx
import pytest
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

from edgestore.errors import StorageFault
from edgestore.storage.sqlerrors import translate
from edgestore.web.errors import status_for
from tests.server import EdgestoreServer

from .conftest import AppFactory

DEEP = "[" * 1500 + "]" * 1500


def store_of(client: TestClient[Any]) -> Any:
    return client.app.state["edgestore"].store


def on_writer(client: TestClient[Any], sql: str) -> Any:
    """Run ``sql`` on the server's own writer connection, on the server's loop."""
    store = store_of(client)

    def run(db: apsw.Connection) -> Any:
        return db.execute(sql).fetchall()

    return client.blocking_portal.call(store.run_on_writer, run)


def test_full_database_is_503_with_retry_after_and_logged(
    app_client: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = app_client(schemas_dir=None)
    assert client.post("/api/v1/execute", json={"sql": "CREATE TABLE t(b BLOB)"}).status_code == 200
    (pages,) = on_writer(client, "PRAGMA page_count")[0]
    on_writer(client, f"PRAGMA max_page_count = {pages}")
    big = {"sql": "INSERT INTO t VALUES (randomblob(200000))"}
    with caplog.at_level(logging.ERROR, logger="edgestore.web"):
        r = client.post("/api/v1/execute", json=big)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "SQLITE_FULL"
    assert int(r.headers["retry-after"]) >= 1
    db_path = str(store_of(client).path)
    assert any("SQLITE_FULL" in m and db_path in m for m in caplog.messages), caplog.messages
    # A retry does help once there is room again; caller errors are still 4xx meanwhile.
    on_writer(client, "PRAGMA max_page_count = 1073741823")
    assert client.post("/api/v1/execute", json=big).status_code == 200
    assert (
        client.post("/api/v1/execute", json={"sql": "INSERT INTO nope VALUES (1)"}).status_code
        == 400
    )


def test_ready_is_503_when_sqlite_fails(client: TestClient[Any]) -> None:
    assert client.get("/health/ready").status_code == 200
    # Readiness must open a connection again (statements it prepared before are cached) ...
    client.blocking_portal.call(store_of(client).close_idle)
    apsw.hard_heap_limit(1)  # ... and SQLite's heap limit is process-wide: every allocation fails
    try:
        r = client.get("/health/ready")
    finally:
        apsw.hard_heap_limit(0)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "SQLITE_NOMEM"
    assert "retry-after" in r.headers
    assert client.get("/health/ready").status_code == 200


def test_corrupt_file_is_500_and_logged_with_path(
    app_client: AppFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db_path = tmp_path / "corrupt.db"
    conn = apsw.Connection(str(db_path))
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t(i INTEGER PRIMARY KEY, b BLOB)")
    conn.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000) "
        "INSERT INTO t SELECT i, randomblob(100) FROM n"
    )
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with db_path.open("r+b") as fh:  # pages 3.. hold the table's rows: overwrite some
        fh.seek(page_size * 2)
        fh.write(b"\xff" * page_size * 20)
    client = app_client(db_path=db_path, schemas_dir=None)
    with caplog.at_level(logging.ERROR, logger="edgestore.web"):
        r = client.post(
            "/api/v1/query", json={"sql": "SELECT sum(length(b)) FROM t", "cache": False}
        )
    assert r.status_code == 500, r.text
    assert r.json()["error"]["code"].startswith("SQLITE_CORRUPT")
    assert any(str(db_path) in m and "SQLITE_CORRUPT" in m for m in caplog.messages)


def test_real_faults_translate_to_storage_faults(tmp_path: Path) -> None:
    cases: list[tuple[BaseException, int]] = []
    try:
        apsw.Connection(str(tmp_path / "missing" / "x.db"), flags=apsw.SQLITE_OPEN_READWRITE)
    except apsw.Error as exc:
        cases.append((exc, 503))  # SQLITE_CANTOPEN: the directory may be back on a retry
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database file at all" * 200)
    try:
        apsw.Connection(str(garbage)).execute("SELECT * FROM sqlite_schema").fetchall()
    except apsw.Error as exc:
        cases.append((exc, 500))  # SQLITE_NOTADB: no retry mends it
    assert len(cases) == 2
    for raw, status in cases:
        err = translate(raw)
        assert isinstance(err, StorageFault), (raw, err)
        assert status_for(err) == status, (err.code, status_for(err))


BODIES = {
    "/api/v1/query": '{"sql": "SELECT 1", "params": %s}',
    "/api/v1/execute": '{"sql": "SELECT 1", "params": %s}',
    "/api/v1/batch": '{"statements": [{"sql": "SELECT 1", "params": %s}]}',
    "/api/v1/tables/items/rows": '{"name": %s}',
    "/v1/execute": '{"stmt": {"sql": "SELECT 1", "args": %s}}',
    "/v1/batch": '{"batch": %s}',
    "/v2/pipeline": '{"baton": null, "requests": %s}',
    "/v3/pipeline": '{"baton": null, "requests": %s}',
    "/v3/cursor": '{"baton": null, "batch": %s}',
    "/api/v1/memory/optimize": "%s",
}


@pytest.mark.parametrize("path", sorted(BODIES))
def test_deeply_nested_json_is_400(client: TestClient[Any], path: str) -> None:
    r = client.post(path, content=BODIES[path] % DEEP, headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert "nested too deeply" in r.text


def test_deeply_nested_json_over_websocket_is_a_protocol_error(client: TestClient[Any]) -> None:
    with client.websocket_connect("/", subprotocols=["hrana3"]) as ws:
        ws.send_text(json.dumps({"type": "hello", "jwt": None}))
        assert json.loads(ws.receive_text())["type"] == "hello_ok"
        ws.send_text('{"type": "request", "request_id": 1, "request": ' + DEEP + "}")
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
    assert info.value.code == 1002  # protocol error, not 4500 (internal error)
    assert "nested too deeply" in info.value.detail


@pytest.mark.parametrize("baton", ["1" * 4300 + ".0.abc", "0." + "9" * 5000 + ".abc", "²³.0.x"])
def test_absurd_batons_are_400(client: TestClient[Any], baton: str) -> None:
    r = client.post("/v2/pipeline", json={"baton": baton, "requests": []})
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "BATON_INVALID"


def test_messages_are_written_for_http_callers(client: TestClient[Any]) -> None:
    messages = []
    r = client.post("/api/v1/query", json={"sql": "INSERT INTO items(name, price) VALUES ('a', 1)"})
    assert r.status_code == 400
    messages.append(r.json()["error"]["message"])
    r = client.post("/api/v1/execute", json={"sql": "SELECT 1; SELECT 2"})
    assert r.status_code == 400
    messages.append(r.json()["error"]["message"])
    r = client.post("/api/v1/execute", json={"sql": "BEGIN"})
    assert r.status_code == 400
    messages.append(r.json()["error"]["message"])
    r = client.get("/api/v1/tables/items/rows?limit=0")
    assert r.status_code == 400
    messages.append(r.json()["error"]["message"])
    for message in messages:
        for python_only in ("()", "store.", "ParamType", "`int`"):
            assert python_only not in message, message


def test_io_error_is_503_in_a_real_server(tmp_path: Path) -> None:
    """A file-size limit on the server process: writing the WAL past it fails with EFBIG,
    which SQLite reports as SQLITE_IOERR_WRITE."""
    limit = 4 * 1024 * 1024
    server = EdgestoreServer(tmp_path / "io.db", schemas_dir=None)
    command = EdgestoreServer.command(server)
    command[2] = (
        "import resource; "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
        "from edgestore.cli import main; main()"
    )
    server.command = lambda: command  # type: ignore[method-assign]
    with server:
        url = server.url + "/api/v1/execute"
        assert httpx.post(url, json={"sql": "CREATE TABLE t(b BLOB)"}, timeout=30).is_success
        r = httpx.post(url, json={"sql": "INSERT INTO t VALUES (randomblob(6000000))"}, timeout=30)
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"].startswith("SQLITE_IOERR")
        assert "retry-after" in r.headers
        # Small writes still fit: the server kept serving.
        r = httpx.post(url, json={"sql": "INSERT INTO t VALUES (x'00')"}, timeout=30)
        assert r.status_code == 200, r.text
    assert str(server.db_path) in server.log()
    assert "SQLITE_IOERR" in server.log()
