"""drizzle-orm + drizzle-kit (``dialect: "turso"``) against ``edgestore serve``.

drizzle-kit's prompts need a terminal; without one (CI) it throws on any question, which is how
these tests notice a prompt they must not get (e.g. "renamed from <an internal table>?").
``push --force`` auto-approves data-loss statements (it never answers rename questions).
drizzle-kit exits 0 even when a statement fails, so every step checks the database itself.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import apsw

from tests.server import EdgestoreServer

from .conftest import run_tool, schema_dir, table_digests, user_tables

TABLES = ("authors", "posts", "comments")


def drizzle_kit(
    node_tools: Path, command: str, schema: str, url: str, out: Path, *flags: str
) -> str:
    code, output = run_tool(
        [
            node_tools / "node_modules/.bin/drizzle-kit",
            command,
            "--config",
            "drizzle/drizzle.config.ts",
            *flags,
        ],
        cwd=node_tools,
        # drizzle-kit reads "out" relative to the working directory (it prefixes "./").
        env={
            "DRIZZLE_SCHEMA": f"./drizzle/{schema}",
            "DRIZZLE_URL": url,
            "DRIZZLE_OUT": os.path.relpath(out, node_tools),
        },
    )
    assert code == 0, output
    assert "Error" not in output, output
    return output


def run_app(node_tools: Path, script: str, *args: str) -> dict[str, object]:
    code, output = run_tool(
        [node_tools / "node_modules/.bin/tsx", f"drizzle/{script}", *args], cwd=node_tools
    )
    assert code == 0, output
    report: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return report


def test_drizzle_push_queries_and_schema_changes(
    node_tools: Path, server: EdgestoreServer, tmp_path: Path
) -> None:
    out = tmp_path / "drizzle"
    # push (create) on a served database: edgestore's own record table must not show up as a
    # candidate for a rename (that would be a prompt, which fails here without a terminal).
    drizzle_kit(node_tools, "push", "schema_v1.ts", server.url, out)
    assert {"authors", "posts", "comments"} <= user_tables(server.db_path)
    assert run_app(node_tools, "app.ts", server.url) == {
        "ok": True,
        "authors": 2,
        "posts": 3,
        "comments": 7,
    }
    before = table_digests(server.db_path, TABLES)

    # A foreign-key change: drizzle-kit rebuilds posts under PRAGMA foreign_keys=off; with the
    # pragma refused, DROP TABLE posts cascaded into comments and every comment was lost.
    drizzle_kit(node_tools, "push", "schema_v2_fk.ts", server.url, out, "--force")
    assert table_digests(server.db_path, TABLES) == before
    fk = _foreign_keys(server.db_path, "posts")
    assert fk == [("authors", "author_id", "RESTRICT")]

    # A nullability change: libSQL's ALTER TABLE ... ALTER COLUMN ... TO ...
    drizzle_kit(node_tools, "push", "schema_v3_nullable.ts", server.url, out, "--force")
    assert table_digests(server.db_path, TABLES) == before
    assert _not_null(server.db_path, "posts", "title") is False

    # Nothing left to do: the pushed schema and the database agree.
    again = drizzle_kit(node_tools, "push", "schema_v3_nullable.ts", server.url, out)
    assert "No changes detected" in again

    # pull: the introspected schema has the three tables and nothing of edgestore's.
    drizzle_kit(node_tools, "pull", "schema_v3_nullable.ts", server.url, out)
    pulled = (out / "schema.ts").read_text()
    for table in TABLES:
        assert f'sqliteTable("{table}"' in pulled
    assert "edgestore" not in pulled


def test_drizzle_generate_migrate_and_migrator_twice(node_tools: Path, tmp_path: Path) -> None:
    out = tmp_path / "migrations"
    # generate needs no database: two migrations, the second a table rebuild (FK change).
    drizzle_kit(node_tools, "generate", "schema_v1.ts", "http://unused", out, "--name", "init")
    drizzle_kit(node_tools, "generate", "schema_v2_fk.ts", "http://unused", out, "--name", "fk")
    assert len(list(out.glob("*.sql"))) == 2
    assert "PRAGMA foreign_keys=OFF" in next(out.glob("0001_*.sql")).read_text()

    schemas = schema_dir(tmp_path)
    with EdgestoreServer(tmp_path / "kit.db", schemas_dir=schemas) as kit:
        drizzle_kit(node_tools, "migrate", "schema_v1.ts", kit.url, out)
        assert {"authors", "posts", "comments", "__drizzle_migrations"} <= user_tables(kit.db_path)
        assert _foreign_keys(kit.db_path, "posts") == [("authors", "author_id", "RESTRICT")]

    # drizzle-orm's migrator (what an app runs at start-up), twice: the second run is a no-op.
    with EdgestoreServer(tmp_path / "orm.db", schemas_dir=schemas) as orm:
        first = run_app(node_tools, "migrate.ts", orm.url, str(out))
        second = run_app(node_tools, "migrate.ts", orm.url, str(out))
        assert first == {"ok": True, "applied": 2, "tables": ["authors", "comments", "posts"]}
        assert second == first
    shutil.rmtree(out)


def _foreign_keys(db_path: Path, table: str) -> list[tuple[str, str, str]]:
    db = apsw.Connection(str(db_path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        rows = db.execute(
            f'SELECT "table", "from", on_delete FROM pragma_foreign_key_list(\'{table}\')'
        )
        return [(str(a), str(b), str(c)) for a, b, c in rows]
    finally:
        db.close()


def _not_null(db_path: Path, table: str, column: str) -> bool:
    db = apsw.Connection(str(db_path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        row = db.execute(
            f"SELECT \"notnull\" FROM pragma_table_info('{table}') WHERE name = ?", (column,)
        ).fetchone()
        assert row is not None
        return bool(row[0])
    finally:
        db.close()


def test_drizzle_push_on_a_database_with_the_old_schema_record(
    node_tools: Path, tmp_path: Path
) -> None:
    """A database made before keeps its record in _edgestore_schema, which drizzle-kit saw (it
    asked whether a new table was "renamed from _edgestore_schema", a prompt that fails
    without a terminal); the server moves the record at start-up."""
    db_path = tmp_path / "old.db"
    db = apsw.Connection(str(db_path))
    db.execute(
        "CREATE TABLE _edgestore_schema ("
        " name TEXT PRIMARY KEY, sha256 TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    db.close()
    with EdgestoreServer(db_path, schemas_dir=schema_dir(tmp_path)) as server:
        drizzle_kit(node_tools, "push", "schema_v1.ts", server.url, tmp_path / "out")
        tables = user_tables(db_path)
        assert {"authors", "posts", "comments", "sqlite_edgestore_schema"} <= tables
        assert "_edgestore_schema" not in tables
