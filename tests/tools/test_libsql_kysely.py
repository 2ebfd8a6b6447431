"""``@libsql/client``'s ``migrate()`` and kysely + ``@libsql/kysely-libsql`` against
``edgestore serve``; each program checks its own results and prints one JSON line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.server import EdgestoreServer

from .conftest import NODE, run_tool, user_tables


def run_node(node_tools: Path, script: str, url: str) -> dict[str, object]:
    assert NODE is not None
    code, output = run_tool([NODE, script, url], cwd=node_tools)
    assert code == 0, output
    report: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return report


@pytest.mark.parametrize("scheme", ["http", "ws"])
def test_libsql_client_migrate(node_tools: Path, server: EdgestoreServer, scheme: str) -> None:
    url = server.url.replace("http", scheme, 1)
    assert run_node(node_tools, "libsql/migrate.mjs", url) == {"ok": True, "visits": 3}


def test_kysely_migrator_and_queries(node_tools: Path, server: EdgestoreServer) -> None:
    report = run_node(node_tools, "kysely/app.mjs", server.url)
    assert report["steps"] == [
        "Up:0001_shop:Success",
        "Up:0002_note:Success",
        "Down:0002_note:Success",
        "Down:0001_shop:Success",
        "Up:0001_shop:Success",
        "Up:0002_note:Success",
    ]
    assert report["skus"] == ["C", "D"]
    assert {"customers", "orders", "lines", "kysely_migration"} <= user_tables(server.db_path)
