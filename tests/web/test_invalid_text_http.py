"""Stored TEXT that is not valid UTF-8, over HTTP and Hrana: a 400 / a Hrana error that says
what is wrong and how to read the bytes, not a bare 500 (tests/storage/test_invalid_text.py
covers the store)."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient

BAD = "INSERT INTO t VALUES (1, CAST(x'ff41' AS TEXT)), (2, 'fine')"


def test_http_and_hrana_answer_with_the_reason(client: TestClient[Any]) -> None:
    assert (
        client.post(
            "/api/v1/execute", json={"sql": "CREATE TABLE t(id INTEGER PRIMARY KEY, s TEXT)"}
        ).status_code
        == 200
    )
    assert client.post("/api/v1/execute", json={"sql": BAD}).status_code == 200
    for r in (
        client.get("/api/v1/tables/t/rows/1"),
        client.get("/api/v1/tables/t/rows"),
        client.post("/api/v1/query", json={"sql": "SELECT * FROM t"}),
    ):
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["type"] == "InvalidTextError"
        assert "not valid UTF-8" in error["message"]
    stmt = {"sql": "SELECT * FROM t WHERE id = ?", "args": [{"type": "integer", "value": "1"}]}
    body = {"baton": None, "requests": [{"type": "execute", "stmt": stmt}, {"type": "close"}]}
    for path in ("/v2/pipeline", "/v3/pipeline"):
        r = client.post(path, json=body)
        assert r.status_code == 200, r.text
        result = r.json()["results"][0]
        assert result["type"] == "error"
        assert "not valid UTF-8" in result["error"]["message"]
    # Still serving.
    r = client.post("/api/v1/query", json={"sql": "SELECT s FROM t WHERE id = 2"})
    assert r.status_code == 200
    assert r.json()["rows"] == [["fine"]]
