"""The raw implementations of the hottest routes (web/rawroute.py): GET one row and POST
/api/v1/query answer as their Litestar handlers do, and give way to them whenever the host app
asks Litestar to run something around its handlers."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from litestar import Litestar, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler
from litestar.testing import TestClient

from edgestore.web import EdgestoreConfig, EdgestorePlugin

from .conftest import AppFactory, make_settings
from .test_sql_api import assert_error

ROW = "/api/v1/tables/items/rows/1"
QUERY = {"sql": "SELECT name FROM items WHERE id = ?", "params": [1]}


def _seed(client: TestClient[Any]) -> None:
    r = client.post("/api/v1/execute", json={"sql": "INSERT INTO items(id, name) VALUES (1, 'a')"})
    assert r.status_code == 200, r.text


def _requests_counted(client: TestClient[Any], method: str, route: str, status: int) -> float:
    text = client.get("/metrics").text
    pattern = (
        rf'^edgestore_http_requests_total\{{method="{method}",route="{re.escape(route)}",'
        rf'status="{status}"\}} ([\d.e+]+)$'
    )
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


def test_invalid_query_fields_are_400_not_500(client: TestClient[Any]) -> None:
    # `cache` is also the name of the KVCache dependency: Litestar reported a bad value for it
    # as a server error.
    r = client.post("/api/v1/query", json={"sql": "SELECT 1", "cache": 3})
    err = assert_error(r, 400, "InvalidRequest")
    assert "'cache'" in err["message"]
    err = assert_error(client.post("/api/v1/query", json={"sql": 5}), 400, "InvalidRequest")
    assert err["message"].endswith("body parameter 'sql': Expected a string, got an integer")
    r = client.post("/api/v1/query", content=b"", headers={"content-type": "application/json"})
    assert_error(r, 400, "InvalidRequest")


def test_errors_of_raw_routes_are_counted_and_carry_cors(app_client: AppFactory) -> None:
    client = app_client(allowed_origins=["http://app.example"])
    _seed(client)
    origin = {"origin": "http://app.example"}
    route = "/api/v1/tables/{table_name}/rows/{key}"
    before = _requests_counted(client, "GET", route, 404)
    r = client.get("/api/v1/tables/items/rows/999", headers=origin)
    assert_error(r, 404, "NotFoundError")
    assert r.headers["access-control-allow-origin"] == "http://app.example"
    assert _requests_counted(client, "GET", route, 404) == before + 1
    r = client.post("/api/v1/query", json={"sql": "SELEC 1"}, headers=origin)
    assert_error(r, 400, "SQLSyntaxError")
    assert r.headers["access-control-allow-origin"] == "http://app.example"
    assert _requests_counted(client, "POST", "/api/v1/query", 400) == 1
    r = client.get(ROW, headers=origin)
    assert r.status_code == 200
    assert r.json()["name"] == "a"
    assert r.headers["access-control-allow-origin"] == "http://app.example"


def _needs_header(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    if connection.headers.get("x-host-pass") != "yes":
        raise NotAuthorizedException("the host app's guard")


def test_host_app_guards_still_guard_the_hot_routes(tmp_path: Path) -> None:
    plugin = EdgestorePlugin(EdgestoreConfig(settings=make_settings(tmp_path)))
    app = Litestar(plugins=[plugin], guards=[_needs_header])
    passing = {"x-host-pass": "yes"}
    with TestClient(app, base_url="http://127.0.0.1") as client:
        r = client.post(
            "/api/v1/execute",
            json={"sql": "INSERT INTO items(id, name) VALUES (1, 'a')"},
            headers=passing,
        )
        assert r.status_code == 200, r.text
        assert client.get(ROW).status_code == 401
        assert client.post("/api/v1/query", json=QUERY).status_code == 401
        r = client.get(ROW, headers=passing)
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "a"
        r = client.post("/api/v1/query", json=QUERY, headers=passing)
        assert r.status_code == 200, r.text
        assert r.json()["rows"] == [["a"]]


def _stamp(response: Response[Any]) -> Response[Any]:
    response.headers["x-host-hook"] = "ran"
    return response


def test_host_app_hooks_still_run_around_the_hot_routes(tmp_path: Path) -> None:
    plugin = EdgestorePlugin(EdgestoreConfig(settings=make_settings(tmp_path)))
    app = Litestar(plugins=[plugin], after_request=_stamp)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        _seed(client)
        r = client.post("/api/v1/query", json=QUERY)
        assert r.status_code == 200, r.text
        assert r.headers.get("x-host-hook") == "ran"
        assert r.json()["rows"] == [["a"]]
