"""EdgestorePlugin: edgestore mounted under /db inside an app that has its own routes.

The host app runs under uvicorn on a loopback port, so real clients (libsql-client over
WebSocket and HTTP, httpx) talk to it; the README's example is the host app of one test.
"""

from __future__ import annotations

import re
import shutil
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import libsql_client
import pytest
from litestar import Litestar, get
from litestar.di import NamedDependency
from litestar.testing import AsyncTestClient, TestClient

from edgestore import Settings, Store
from edgestore.auth import hash_token
from edgestore.cache import KVCache
from edgestore.errors import NoSuchTableError
from edgestore.web import EdgestoreConfig, EdgestorePlugin, create_app
from tests.in_loop import LoopServers

from .conftest import REPO, make_settings

RW = "rw-secret"
TOKENS = (f"rw:{hash_token(RW)}",)
README = (REPO / "README.md").read_text(encoding="utf-8")

Serve = Callable[[Litestar], Awaitable[str]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """``await serve(app)`` -> base URL of ``app`` under uvicorn; every server stops at teardown."""
    servers = LoopServers()

    async def start(app: Litestar) -> str:
        return f"127.0.0.1:{await servers.start(app)}"

    yield start
    await servers.stop()


@get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


@get("/items/count")
async def count_items(store: NamedDependency[Store]) -> dict[str, int]:
    result = await store.query("SELECT count(*) AS n FROM items")
    n = result.rows[0]["n"]
    assert isinstance(n, int)
    return {"items": n}


@get("/visits")
async def visits(cache: NamedDependency[KVCache]) -> dict[str, int]:
    seen: int = await cache.get("visits", 0) + 1
    await cache.set("visits", seen)
    return {"visits": seen}


@get("/broken")
async def broken(store: NamedDependency[Store]) -> None:
    await store.query("SELECT * FROM no_such_table")


def host_app(settings: Settings) -> tuple[Litestar, EdgestorePlugin]:
    plugin = EdgestorePlugin(EdgestoreConfig(settings=settings, path="/db"))
    app = Litestar(route_handlers=[hello, count_items, visits, broken], plugins=[plugin])
    return app, plugin


async def test_host_app_serves_its_routes_and_edgestore_under_db(
    tmp_path: Path, serve: Serve
) -> None:
    app, plugin = host_app(make_settings(tmp_path))
    addr = await serve(app)
    async with httpx.AsyncClient(base_url=f"http://{addr}", timeout=10) as http:
        # edgestore's JSON API and table REST under the prefix ...
        r = await http.post("/db/api/v1/tables/items/rows", json={"name": "pear", "price": 3})
        assert r.status_code == 201, r.text
        r = await http.get("/db/api/v1/tables/items/rows")
        assert [row["name"] for row in r.json()["rows"]] == ["pear"]
        r = await http.post("/db/api/v1/query", json={"sql": "SELECT count(*) AS n FROM items"})
        assert r.status_code == 200, r.text
        # ... and nowhere else: the host app owns every other path.
        assert (await http.get("/api/v1/tables/items/rows")).status_code == 404
        # The host's handlers get the same store and its key/value cache injected.
        assert (await http.get("/items/count")).json() == {"items": 1}
        assert (await http.get("/visits")).json() == {"visits": 1}
        assert (await http.get("/visits")).json() == {"visits": 2}
        assert await plugin.state.store.cache.get("visits") == 2
        assert (await http.get("/hello")).json() == {"hello": "world"}
        # An edgestore error raised in a host handler gets edgestore's status and shape.
        r = await http.get("/broken")
        assert r.status_code == 400, r.text
        assert r.json()["error"]["type"] == NoSuchTableError.__name__

    # Hrana: libsql-client over WebSocket and over HTTP, both at the prefix.
    # (libsql-client resolves "v2/pipeline" against the URL, so the HTTP one ends in a slash.)
    for url in (f"ws://{addr}/db", f"http://{addr}/db/"):
        async with libsql_client.create_client(url) as client:
            await client.execute("INSERT INTO items(name, price) VALUES (?, ?)", ["plum", 1])
            rs = await client.execute("SELECT name FROM items ORDER BY id")
            assert [row[0] for row in rs.rows][:2] == ["pear", "plum"]
    assert (await plugin.state.store.query("SELECT count(*) FROM items")).values == [(3,)]


async def test_dashboard_under_the_prefix_reads_its_stats_there(
    tmp_path: Path, serve: Serve
) -> None:
    app, _ = host_app(make_settings(tmp_path))
    addr = await serve(app)
    async with httpx.AsyncClient(base_url=f"http://{addr}", timeout=10) as http:
        page = await http.get("/db/dashboard")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        # Every URL the page loads (scripts, styles) or fetches, resolved against the page's
        # own URL as a browser does, answers under the prefix.
        html = page.text
        assets = re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html)
        fetched = re.findall(r'fetch\("([^"]+)"', html)
        assert fetched, "the dashboard fetches its data"
        for url in [*assets, *fetched]:
            if url.startswith("data:"):
                continue
            resolved = page.url.join(url)
            assert resolved.path.startswith("/db/"), url
            r = await http.get(resolved)
            assert r.status_code == 200, (url, r.text)


def test_edgestore_middleware_applies_to_its_own_routes_only(tmp_path: Path) -> None:
    app, _ = host_app(make_settings(tmp_path, auth_tokens=TOKENS))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        # Auth is edgestore's: its routes need the token, the host's do not.
        query = {"sql": "SELECT 1"}
        assert client.post("/db/api/v1/query", json=query).status_code == 401
        ok = client.post("/db/api/v1/query", json=query, headers={"Authorization": f"Bearer {RW}"})
        assert ok.status_code == 200, ok.text
        assert client.get("/hello").json() == {"hello": "world"}
        assert client.get("/items/count").json() == {"items": 0}
        # Its metrics count its own routes only.
        observed = client.get("/db/metrics", headers={"Authorization": f"Bearer {RW}"}).text
        assert 'route="/db/api/v1/query"' in observed
        assert "/hello" not in observed
        assert "/items/count" not in observed


def test_memory_pressure_refuses_edgestore_routes_only(tmp_path: Path) -> None:
    # A budget far below this process's RSS puts the monitor in emergency at once.
    settings = make_settings(tmp_path, memory_budget_bytes=4 * 1024 * 1024)
    app, plugin = host_app(settings.replace(memory_sample_interval=0.05))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        for _ in range(200):  # bounded wait for the first samples
            if plugin.state.memory.refuse_non_essential:
                break
            time.sleep(0.05)
        refused = client.post("/db/api/v1/query", json={"sql": "SELECT 1"})
        assert refused.status_code == 503, refused.text
        assert client.get("/hello").status_code == 200
        assert client.get("/items/count").status_code == 200


def test_host_app_without_the_lifespan_bug(tmp_path: Path) -> None:
    """create_app's app mounted inside another app never ran its lifespan (503, store closed);
    the plugin's lifespan runs with the host's."""
    app, plugin = host_app(make_settings(tmp_path))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        r = client.post("/db/api/v1/query", json={"sql": "SELECT 1 AS one"})
        assert r.status_code == 200, r.text
        assert plugin.state.store_or_none is not None
    assert plugin.state.store_or_none is None  # closed at shutdown


async def test_plugin_serves_a_store_it_does_not_own(tmp_path: Path) -> None:
    import edgestore

    store = await edgestore.open(settings=make_settings(tmp_path))
    try:
        app = create_app(store=store)
        async with AsyncTestClient(app, base_url="http://127.0.0.1") as client:
            r = await client.post("/api/v1/query", json={"sql": "SELECT 1"})
            assert r.status_code == 200, r.text
        assert not store.closed  # the caller owns it
        assert (await store.query("SELECT 1")).values == [(1,)]
    finally:
        await store.close()


def _readme_example() -> str:
    start = README.index("## Use edgestore inside your Litestar app\n")
    return README[start:].split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_plugin_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(REPO / "schemas", tmp_path / "schemas")
    (tmp_path / "readme_host_app.py").write_text(_readme_example(), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import readme_host_app

    try:
        app: Any = readme_host_app.app
        with TestClient(app, base_url="http://127.0.0.1") as client:
            r = client.post("/db/api/v1/tables/items/rows", json={"name": "fig", "price": 2})
            assert r.status_code == 201, r.text
            assert client.get("/items/count").json() == {"items": 1}
            assert client.get("/visits").json() == {"visits": 1}
            assert client.get("/db/dashboard").status_code == 200
        assert (tmp_path / "app.db").exists()
    finally:
        sys.modules.pop("readme_host_app", None)
