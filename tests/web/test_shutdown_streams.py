"""SIGTERM ends open cursors and WebSocket streams instead of waiting for their clients.

A client that opened a Hrana cursor and stopped reading (or a WebSocket stream inside a
transaction that never ends) kept the server from stopping until ``shutdown_timeout`` ran
out and the worker was killed, leaving the WAL unmerged. Now the server stops at once, rolls
back, and checkpoints. The bound below is far under the configured ``shutdown_timeout``, so a
server that waits for the client fails by timing out.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import apsw
import httpx
from websockets.sync.client import connect

from tests.server import EdgestoreServer

SHUTDOWN_TIMEOUT = "60"
EXIT_BOUND = 20.0


def fill(server: EdgestoreServer) -> None:
    for sql in (
        "CREATE TABLE wide(i INTEGER PRIMARY KEY, s TEXT)",
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000) "
        "INSERT INTO wide SELECT i, hex(randomblob(64)) FROM n",
    ):
        r = httpx.post(server.url + "/api/v1/execute", json={"sql": sql}, timeout=60)
        assert r.status_code == 200, r.text


def rows_and_wal(db: Path) -> tuple[int, int]:
    wal = Path(str(db) + "-wal")
    wal_size = wal.stat().st_size if wal.exists() else 0
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        (count,) = conn.execute("SELECT count(*) FROM wide").fetchone()
    finally:
        conn.close()
    return int(count), wal_size


def test_sigterm_with_a_cursor_whose_client_stopped_reading(tmp_path: Path) -> None:
    db = tmp_path / "cursor.db"
    server = EdgestoreServer(
        db, env={"EDGESTORE_SHUTDOWN_TIMEOUT": SHUTDOWN_TIMEOUT}, schemas_dir=None
    ).start()
    try:
        fill(server)
        body = json.dumps(
            {"baton": None, "batch": {"steps": [{"stmt": {"sql": "SELECT * FROM wide"}}]}}
        ).encode()
        with socket.create_connection(("127.0.0.1", server.port), timeout=EXIT_BOUND) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(
                b"POST /v3/cursor HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                b"content-type: application/json\r\n"
                + f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            assert sock.recv(64).startswith(b"HTTP/1.1 200")
            # ... and reads no more: megabytes of rows wait to be sent.
            assert server.stop(timeout=EXIT_BOUND) == 0, server.log()
    finally:
        server.kill()
    assert rows_and_wal(db) == (60000, 0), server.log()


def test_sigterm_with_a_websocket_stream_inside_a_read_transaction(tmp_path: Path) -> None:
    db = tmp_path / "ws.db"
    server = EdgestoreServer(
        db, env={"EDGESTORE_SHUTDOWN_TIMEOUT": SHUTDOWN_TIMEOUT}, schemas_dir=None
    ).start()
    try:
        fill(server)
        ws_url = server.url.replace("http://", "ws://") + "/"
        with connect(ws_url, subprotocols=["hrana3"], open_timeout=EXIT_BOUND) as ws:  # type: ignore[list-item]
            ws.send(json.dumps({"type": "hello", "jwt": None}))
            assert json.loads(ws.recv(EXIT_BOUND))["type"] == "hello_ok"
            requests = [
                {"type": "open_stream", "stream_id": 1},
                {"type": "execute", "stream_id": 1, "stmt": {"sql": "BEGIN"}},
                {"type": "execute", "stream_id": 1, "stmt": {"sql": "SELECT count(*) FROM wide"}},
            ]
            for i, request in enumerate(requests):
                ws.send(json.dumps({"type": "request", "request_id": i, "request": request}))
                answer = json.loads(ws.recv(EXIT_BOUND))
                assert answer["type"] == "response_ok", answer
            # The transaction stays open and the client stays connected.
            assert server.stop(timeout=EXIT_BOUND) == 0, server.log()
    finally:
        server.kill()
    # The server stopped well within shutdown_timeout, rolled the stream back, checkpointed
    # and truncated the WAL.
    assert rows_and_wal(db) == (60000, 0), server.log()
