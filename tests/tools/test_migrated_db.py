"""Schema tools on a database made by ``edgestore migrate``: its bookkeeping tables
(sqlite_edgestore_migration, sqlite_edgestore_sequences) are invisible to them, so drizzle-kit
push neither asks whether a new table was renamed from one nor drops one, and Alembic
autogenerate proposes no drop_table for them. With their former ``_edgestore_`` names both did.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from edgestore.migrate import run
from tests.migrate.conftest import admin_dsn, make_db, pg_server  # noqa: F401 (fixtures)
from tests.server import EdgestoreServer

from .conftest import file_rows, schema_dir, table_digests, user_tables
from .test_drizzle import drizzle_kit

sa = pytest.importorskip("sqlalchemy", reason="the compat extra is not installed")
autogenerate = pytest.importorskip(
    "alembic.autogenerate", reason="the compat extra is not installed"
)
MigrationContext = pytest.importorskip(
    "alembic.runtime.migration", reason="the compat extra is not installed"
).MigrationContext

SOURCE = """
CREATE TABLE authors (id serial PRIMARY KEY, name text NOT NULL);
-- a serial that is not the rowid: numbered by a trigger from sqlite_edgestore_sequences
CREATE TABLE events (day date NOT NULL, id serial, note text, PRIMARY KEY (day, id));
INSERT INTO authors(name) VALUES ('ann'), ('bob');
INSERT INTO events(day, note) VALUES ('2026-01-01', 'a'), ('2026-01-02', 'b');
"""
TABLES = ("authors", "events")
BOOKKEEPING = ("sqlite_edgestore_migration", "sqlite_edgestore_sequences")


@pytest.fixture
def migrated(make_db: Callable[..., str], tmp_path: Path) -> Path:  # noqa: F811
    target = tmp_path / "migrated.db"
    report = run(make_db(SOURCE), target)
    assert report["ok"], report
    return target


def _bookkeeping(db_path: Path) -> dict[str, list[tuple[object, ...]]]:
    return {t: file_rows(db_path, f"SELECT * FROM {t} ORDER BY 1") for t in BOOKKEEPING}


def _execute(server: EdgestoreServer, sql: str) -> None:
    """One statement through the server (Hrana over HTTP), i.e. the store's own connection."""
    body = {"requests": [{"type": "execute", "stmt": {"sql": sql}}, {"type": "close"}]}
    reply = httpx.post(server.url + "/v2/pipeline", json=body, timeout=30).json()
    assert reply["results"][0]["type"] == "ok", reply


def test_drizzle_push_on_a_migrated_database(
    node_tools: Path, migrated: Path, tmp_path: Path
) -> None:
    before = table_digests(migrated, TABLES)
    bookkeeping = _bookkeeping(migrated)
    assert bookkeeping["sqlite_edgestore_sequences"] == [("public.events_id_seq", 2, 1)]
    with EdgestoreServer(migrated, schemas_dir=schema_dir(tmp_path)) as server:
        # Without a terminal, a rename question ("notes renamed from <an internal table>?") or a
        # data-loss confirmation makes drizzle_kit's checks fail.
        output = drizzle_kit(node_tools, "push", "schema_migrated.ts", server.url, tmp_path / "o")
        assert "renamed" not in output
        assert {*TABLES, *BOOKKEEPING, "notes"} <= user_tables(migrated)
        assert table_digests(migrated, TABLES) == before
        assert _bookkeeping(migrated) == bookkeeping
        # The sequence trigger still numbers rows inserted through the store's connection.
        _execute(server, "INSERT INTO events(day, note) VALUES ('2026-02-01', 'c')")
        again = drizzle_kit(node_tools, "push", "schema_migrated.ts", server.url, tmp_path / "o")
        assert "No changes detected" in again
    assert file_rows(migrated, "SELECT id FROM events WHERE note = 'c'") == [(3,)]
    assert file_rows(migrated, "SELECT value FROM sqlite_edgestore_sequences") == [(3,)]
    assert file_rows(
        migrated, "SELECT value FROM sqlite_edgestore_migration WHERE key = 'state'"
    ) == [("complete",)]


def test_alembic_autogenerate_on_a_migrated_database(migrated: Path) -> None:
    # Models that know none of the migrated tables: autogenerate proposes dropping every table
    # it reflects, which must be exactly the migrated ones (none of edgestore's).
    engine = sa.create_engine(f"sqlite:///{migrated}")
    try:
        with engine.connect() as conn:
            diffs = autogenerate.compare_metadata(MigrationContext.configure(conn), sa.MetaData())
    finally:
        engine.dispose()
    dropped = {d[1].name for d in diffs if d[0] == "remove_table"}
    assert dropped == set(TABLES)
