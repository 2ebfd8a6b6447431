"""``@libsql/client`` 0.18 (npm) against edgestore over http:// and ws://, from node."""

from __future__ import annotations

import pytest

from edgestore.auth import hash_token
from tests.pool import assert_pool_idle

from .clients import run_node
from .conftest import Server, StartServer

pytestmark = pytest.mark.usefixtures("js_packages")


@pytest.mark.parametrize("scheme", ["http", "ws"])
async def test_js_client(scheme: str, server: Server) -> None:
    url = server.url if scheme == "http" else server.ws_url
    report = await run_node("hrana_client.mjs", url)
    assert report["ok"] is True
    assert report["constraintCode"] == "SQLITE_CONSTRAINT"
    assert report["noTableCode"] == "SQLITE_ERROR"
    table = f"js_{scheme}"
    names = await server.store.query(f"SELECT name FROM {table} ORDER BY id", cache=False)
    assert [r[0] for r in names.values] == [
        "alpha",
        "beta",
        "gamma",
        "tx-commit",
        "tx-batch-1",
        "tx-batch-2",
    ]
    await assert_pool_idle(server.store)


@pytest.mark.parametrize("scheme", ["http", "ws"])
async def test_js_client_with_a_token(scheme: str, start_server: StartServer) -> None:
    server = await start_server(auth_tokens=(f"rw:{hash_token('js-secret')}",))
    url = server.url if scheme == "http" else server.ws_url
    report = await run_node("hrana_client.mjs", url, "js-secret")
    assert report["ok"] is True
    await assert_pool_idle(server.store)
