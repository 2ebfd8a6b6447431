"""Prisma 7 (query compiler, no query-engine binary) with ``@prisma/adapter-libsql``.

``prisma generate`` works offline: the CLI only checks that a schema-engine binary exists
(``PRISMA_SCHEMA_ENGINE_BINARY`` points at a stub that fails if run). ``prisma migrate`` and
``prisma db push`` run that engine, a separate download unreachable here, so the tables come
from ``create.sql`` (what ``prisma migrate diff --script`` writes for ``schema.prisma``).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.server import EdgestoreServer

from .conftest import run_tool, user_tables


def test_prisma_client_with_libsql_adapter(node_tools: Path, server: EdgestoreServer) -> None:
    code, output = run_tool(
        [
            node_tools / "node_modules/.bin/prisma",
            "generate",
            "--config",
            "prisma/prisma.config.ts",
        ],
        cwd=node_tools,
        env={"PRISMA_SCHEMA_ENGINE_BINARY": str(node_tools / "prisma/no-schema-engine.sh")},
    )
    assert code == 0, output
    assert (node_tools / ".generated/prisma/client.ts").is_file()
    code, output = run_tool(
        [node_tools / "node_modules/.bin/tsx", "prisma/app.ts", server.url], cwd=node_tools
    )
    assert code == 0, output
    assert json.loads(output.strip().splitlines()[-1]) == {
        "ok": True,
        "tasks": ["c"],
        "members": 2,
    }
    assert {"Team", "Member", "Task"} <= user_tables(server.db_path)
