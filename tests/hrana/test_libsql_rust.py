"""The ``libsql`` package (PyPI 0.1.11, Rust inside) with an http:// database URL: statements
go through /v3/pipeline (describe, get_autocommit, close), queries through /v3/cursor."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.pool import assert_pool_idle

from .clients import run_client
from .conftest import Server

SCRIPT = Path(__file__).with_name("libsql_script.py")


async def test_libsql_over_http(server: Server) -> None:
    seen = await run_client(sys.executable, SCRIPT, server.url)
    assert seen["description"] == ["a", "b", "f", "z"]
    assert seen["rows"] == [
        [1, "x", 0.5, "00ff"],
        [2, "y", None, None],
        [3, "z", None, None],
        [2**62 + 3, "big", None, None],
    ]
    assert seen["big"] == 2**62 + 3
    assert seen["after_tx"] == [[12, "committed"]]
    assert seen["in_tx"] == [[[1, "in-tx"]], ["x", "y"]]
    assert seen["error"]
    assert "no such table" in seen["error"]
    rows = (await server.store.query("SELECT count(*) FROM r", cache=False)).values
    assert rows == [(5,)]
    await assert_pool_idle(server.store)
