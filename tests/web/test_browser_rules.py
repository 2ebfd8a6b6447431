"""Host, Origin, body type and CORS rules over HTTP and WebSocket (see web/origins.py).

The browser itself is in test_origins_browser.py; here each rule is checked on its own, and
the requests the libSQL clients really send (JSON, or no Content-Type at all from the Rust
client) keep working.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

from .conftest import AppFactory

INSERT = {"sql": "INSERT INTO items(name, price) VALUES ('x', 1)"}
PIPELINE = {"baton": None, "requests": [{"type": "execute", "stmt": {"sql": "SELECT 1"}}]}


def count(client: TestClient[Any]) -> int:
    r = client.post("/api/v1/query", json={"sql": "SELECT count(*) FROM items", "cache": False})
    assert r.status_code == 200, r.text
    return int(r.json()["rows"][0][0])


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ],
)
def test_non_json_bodies_are_refused_with_415(client: TestClient[Any], content_type: str) -> None:
    body = json.dumps(INSERT)
    for path, payload in (("/api/v1/execute", body), ("/v2/pipeline", json.dumps(PIPELINE))):
        r = client.post(path, content=payload, headers={"content-type": content_type})
        assert r.status_code == 415, (path, r.text)
    r = client.put("/api/v1/cache/k", content="1", headers={"content-type": content_type})
    assert r.status_code == 415
    assert count(client) == 0


def test_json_and_missing_content_type_are_accepted(client: TestClient[Any]) -> None:
    r = client.post("/api/v1/execute", json=INSERT)
    assert r.status_code == 200, r.text
    r = client.post(
        "/api/v1/execute",
        content=json.dumps(INSERT),
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200, r.text
    # The libsql (Rust) client posts its pipelines without a Content-Type.
    r = client.post("/v3/pipeline", content=json.dumps(PIPELINE).encode())
    assert "content-type" not in r.request.headers
    assert r.status_code == 200, r.text
    assert count(client) == 2


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "10.0.0.7", "[fe80::1]"])
def test_foreign_host_headers_are_refused(client: TestClient[Any], host: str) -> None:
    """DNS rebinding: a hostile name that resolves to 127.0.0.1 still says its name."""
    r = client.get("/api/v1/tables/items/rows", headers={"host": host})
    assert r.status_code == 421, r.text
    assert "allowed_hosts" in r.json()["error"]["message"]
    r = client.post("/api/v1/execute", json=INSERT, headers={"host": host})
    assert r.status_code == 421
    assert count(client) == 0


@pytest.mark.parametrize(
    "host", ["localhost", "localhost:8080", "127.0.0.1:9", "127.5.6.7", "[::1]:80", "a.localhost"]
)
def test_loopback_hosts_are_served(client: TestClient[Any], host: str) -> None:
    r = client.get("/health", headers={"host": host})
    assert r.status_code == 200


def test_configured_hosts_are_served(app_client: AppFactory) -> None:
    client = app_client(allowed_hosts=("db.example.com", ".internal"))
    for host in ("db.example.com", "db.example.com:443", "a.internal", "localhost"):
        assert client.get("/health", headers={"host": host}).status_code == 200, host
    for host in ("example.com", "internal.evil", "db.example.com.evil"):
        assert client.get("/health", headers={"host": host}).status_code == 421, host


def test_cross_origin_writes_are_refused(client: TestClient[Any]) -> None:
    for origin in ("http://evil.example", "http://127.0.0.1:9999", "null"):
        r = client.post("/api/v1/execute", json=INSERT, headers={"origin": origin})
        assert r.status_code == 403, (origin, r.text)
        assert "allowed_origins" in r.json()["error"]["message"]
        r = client.post("/v2/pipeline", json=PIPELINE, headers={"origin": origin})
        assert r.status_code == 403
    # Reads are not refused (the browser keeps the response from the page: no CORS headers).
    r = client.get("/api/v1/tables/items/rows", headers={"origin": "http://evil.example"})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers
    assert count(client) == 0


def test_same_origin_writes_are_served(client: TestClient[Any]) -> None:
    # The dashboard's own page: Origin names the server's own host and port.
    r = client.post(
        "/api/v1/execute",
        json=INSERT,
        headers={"origin": "http://127.0.0.1:8080", "host": "127.0.0.1:8080"},
    )
    assert r.status_code == 200, r.text
    r = client.post(
        "/api/v1/execute", json=INSERT, headers={"origin": "http://127.0.0.1", "host": "127.0.0.1"}
    )
    assert r.status_code == 200, r.text
    assert count(client) == 2


def test_cors_is_off_unless_configured(client: TestClient[Any]) -> None:
    r = client.options(
        "/api/v1/execute",
        headers={"origin": "http://app.example", "access-control-request-method": "POST"},
    )
    assert "access-control-allow-origin" not in r.headers


def test_allowed_origin_gets_cors(app_client: AppFactory) -> None:
    client = app_client(allowed_origins=("http://app.example",))
    r = client.options(
        "/api/v1/execute",
        headers={
            "origin": "http://app.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, authorization",
        },
    )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "http://app.example"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert "content-type" in r.headers["access-control-allow-headers"]
    r = client.post("/api/v1/execute", json=INSERT, headers={"origin": "http://app.example"})
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == "http://app.example"
    # Another origin still gets nothing.
    r = client.post("/api/v1/execute", json=INSERT, headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    assert "access-control-allow-origin" not in r.headers
    assert count(client) == 1


def test_websocket_upgrade_checks_origin_and_host(app_client: AppFactory) -> None:
    client = app_client(allowed_origins=("http://app.example",))
    for headers in ({"origin": "http://evil.example"}, {"host": "evil.example"}):
        with pytest.raises(WebSocketDisconnect):
            hello(client, headers)
    for headers in ({}, {"origin": "http://app.example"}):
        assert hello(client, headers) == "hello_ok"


def hello(client: TestClient[Any], headers: dict[str, str]) -> str:
    """The type of the server's answer to a Hrana hello over a WebSocket."""
    with client.websocket_connect("/", subprotocols=["hrana3"], headers=headers) as ws:
        ws.send_text(json.dumps({"type": "hello", "jwt": None}))
        return str(json.loads(ws.receive_text())["type"])
