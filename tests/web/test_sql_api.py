"""SQL over HTTP: /api/v1/query, /execute, /batch, the value encoding and the limits."""

from __future__ import annotations

import base64
from typing import Any

from litestar.testing import TestClient

from .conftest import AppFactory

BIG = 2**62 + 3


def q(client: TestClient[Any], sql: str, params: Any = None, **extra: Any) -> Any:
    return client.post("/api/v1/query", json={"sql": sql, "params": params, **extra})


def x(client: TestClient[Any], sql: str, params: Any = None) -> Any:
    return client.post("/api/v1/execute", json={"sql": sql, "params": params})


def assert_error(resp: Any, status: int, type_: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "message", "code"}
    if type_ is not None:
        assert body["error"]["type"] == type_, body
    return body["error"]  # type: ignore[no-any-return]


def test_execute_and_query_positional_and_named(client: TestClient[Any]) -> None:
    r = x(client, "INSERT INTO items(name, price) VALUES (?, ?)", ["a", 3])
    assert r.status_code == 200, r.text
    assert r.json()["rows_affected"] == 1
    assert r.json()["last_insert_rowid"] == 1
    r = x(
        client, "INSERT INTO items(name, price) VALUES (:name, $price)", {"name": "b", "$price": 5}
    )
    assert r.status_code == 200, r.text
    r = q(client, "SELECT name, price FROM items WHERE price >= :p ORDER BY id", {":p": 3})
    body = r.json()
    assert r.status_code == 200
    assert [c["name"] for c in body["columns"]] == ["name", "price"]
    assert body["columns"][1]["decltype"] == "INTEGER"
    assert body["rows"] == [["a", 3], ["b", 5]]
    assert body["truncated"] is False


def test_query_cache_flag_and_invalidation(client: TestClient[Any]) -> None:
    x(client, "INSERT INTO items(name, price) VALUES ('a', 1)")
    sql = "SELECT price FROM items WHERE name = 'a'"
    first = q(client, sql).json()
    second = q(client, sql).json()
    assert first["rows"] == second["rows"] == [[1]]
    assert second["cached"] is True
    assert q(client, sql, cache=False).json()["cached"] is False
    x(client, "UPDATE items SET price = 2 WHERE name = 'a'")
    after = q(client, sql).json()
    assert after["rows"] == [[2]]  # an acknowledged write is never followed by a stale read


def test_big_integers_blobs_and_infinity_round_trip(client: TestClient[Any]) -> None:
    blob = bytes(range(256))
    b64 = base64.b64encode(blob).decode()
    r = q(
        client,
        "SELECT ?, ?, ?, ?, ?, ?",
        [{"$int": str(BIG)}, -BIG, {"$blob": b64}, {"$float": "-Infinity"}, 2**53 - 1, None],
    )
    assert r.status_code == 200, r.text
    row = r.json()["rows"][0]
    assert row == [
        {"$int": str(BIG)},
        {"$int": str(-BIG)},
        {"$blob": b64},
        {"$float": "-Infinity"},
        2**53 - 1,
        None,
    ]
    # And back in as a parameter, through a table, unchanged.
    x(client, "CREATE TABLE vals (v)")
    for value in row:
        assert x(client, "INSERT INTO vals VALUES (?)", [value]).status_code == 200
    back = q(client, "SELECT v, typeof(v) FROM vals ORDER BY rowid").json()["rows"]
    assert [r[0] for r in back] == row
    assert [r[1] for r in back] == ["integer", "integer", "blob", "real", "integer", "null"]


def test_row_limit_sets_truncated(app_client: AppFactory) -> None:
    client = app_client(max_rows=5)
    sql = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50) "
    sql += "SELECT i FROM n"
    body = q(client, sql).json()
    assert len(body["rows"]) == 5
    assert body["truncated"] is True
    body = q(client, sql, max_rows=3).json()
    assert len(body["rows"]) == 3
    assert body["truncated"] is True
    body = q(client, "SELECT 1").json()
    assert body["truncated"] is False


def test_batch_atomic_rolls_back_on_error(client: TestClient[Any]) -> None:
    r = client.post(
        "/api/v1/batch",
        json={
            "statements": [
                {"sql": "INSERT INTO items(name) VALUES ('x')"},
                {"sql": "INSERT INTO items(id, name) VALUES (1, 'dup')"},
            ]
        },
    )
    err = assert_error(r, 400, "ConstraintViolation")
    assert err["code"].startswith("SQLITE_CONSTRAINT")
    assert q(client, "SELECT count(*) FROM items").json()["rows"] == [[0]]
    r = client.post(
        "/api/v1/batch",
        json={
            "statements": [
                {"sql": "INSERT INTO items(name) VALUES (?)", "params": ["y"]},
                {"sql": "SELECT name FROM items"},
            ]
        },
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results[0]["result"]["rows_affected"] == 1
    assert results[1]["result"]["rows"] == [["y"]]


def test_batch_non_atomic_reports_each_error(client: TestClient[Any]) -> None:
    r = client.post(
        "/api/v1/batch",
        json={
            "atomic": False,
            "statements": [
                {"sql": "INSERT INTO items(id, name) VALUES (7, 'a')"},
                {"sql": "INSERT INTO items(id, name) VALUES (7, 'b')"},
                {"sql": "INSERT INTO items(id, name) VALUES (8, 'c')"},
            ],
        },
    )
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert "result" in results[0]
    assert "result" in results[2]
    assert results[1]["error"]["type"] == "ConstraintViolation"
    assert q(client, "SELECT id FROM items ORDER BY id").json()["rows"] == [[7], [8]]


def test_sql_errors_are_400_with_sqlite_code(client: TestClient[Any]) -> None:
    err = assert_error(q(client, "SELEC 1"), 400, "SQLSyntaxError")
    assert err["code"] == "SQLITE_ERROR"
    assert_error(q(client, "SELECT * FROM nowhere"), 400, "NoSuchTableError")
    assert_error(q(client, "SELECT nope FROM items"), 400, "NoSuchColumnError")
    # A write sent to the read endpoint.
    assert_error(q(client, "DELETE FROM items"), 400, "ReadOnlyError")
    # Two statements where one is expected.
    assert_error(q(client, "SELECT 1; SELECT 2"), 400)


def test_malformed_and_invalid_bodies_are_400(client: TestClient[Any]) -> None:
    for body in (b"{bad json", b"[1,2]", b'{"sql": 5}', b'{"sql": "SELECT 1", "zzz": 1}', b""):
        r = client.post("/api/v1/query", content=body, headers={"content-type": "application/json"})
        assert_error(r, 400, "InvalidRequest")
    r = q(client, "SELECT ?", [{"$blob": "***"}])
    assert_error(r, 400, "InvalidRequest")
    r = q(client, "SELECT ?", [[1, 2]])
    assert_error(r, 400, "InvalidRequest")
    r = q(client, "SELECT ?", "not-params")
    assert_error(r, 400, "InvalidRequest")


def test_body_size_limit_is_413(app_client: AppFactory) -> None:
    client = app_client(max_body_bytes=1024)
    r = q(client, "SELECT ?", ["x" * 5000])
    assert_error(r, 413, "RequestTooLarge")
    assert q(client, "SELECT ?", ["x" * 100]).status_code == 200


def test_statement_timeout_interrupts(app_client: AppFactory) -> None:
    client = app_client(statement_timeout=0.2)
    forever = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"
    )
    err = assert_error(q(client, forever, cache=False), 400, "StatementTimeout")
    assert err["code"] is not None
    assert q(client, "SELECT 1").status_code == 200  # the server is fine afterwards


def test_unknown_route_and_method_share_the_shape(client: TestClient[Any]) -> None:
    assert_error(client.get("/api/v1/nothing-here"), 404, "NotFoundError")
    r = client.delete("/api/v1/query")
    assert_error(r, 405, "MethodNotAllowed")
    assert "POST" in r.headers["allow"]
