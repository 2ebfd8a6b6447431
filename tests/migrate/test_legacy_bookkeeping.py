"""Targets and snapshots made before migrate's bookkeeping tables had ``sqlite_`` names
(``_edgestore_migration``, ``_edgestore_sequences``): an interrupted import of such a snapshot
resumes, its tables are moved over (with the sequence triggers that name them), and a
completed target is still read (validation, the stored report)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import apsw
import msgspec
import pytest

from edgestore.migrate import export_snapshot, import_snapshot, read_manifest, validate
from edgestore.migrate.bookkeeping import adopt_legacy_tables
from edgestore.migrate.importer import snapshot_digest, target_meta

SOURCE = """
CREATE TABLE authors (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE events (day date NOT NULL, id serial, note text, PRIMARY KEY (day, id));
INSERT INTO authors(name) VALUES ('ann'), ('bob');
INSERT INTO events(day, note) VALUES ('2026-01-01', 'a'), ('2026-01-02', 'b');
"""
NEW, OLD = "sqlite_edgestore_sequences", "_edgestore_sequences"


@pytest.fixture
def old_snapshot(make_db: Callable[..., str], tmp_path: Path) -> Path:
    """A snapshot whose plan (as older versions wrote it) numbers events.id from the old table."""
    snap = tmp_path / "snap"
    export_snapshot(make_db(SOURCE), snap)
    path = snap / "manifest.json"
    manifest = json.loads(path.read_text())
    for table in manifest["plan"]["tables"]:
        for trigger in table["triggers"]:
            trigger["sql"] = trigger["sql"].replace(NEW, OLD)
    text = json.dumps(manifest)
    assert OLD in text
    path.write_text(text)
    return snap


def _tables(db: apsw.Connection) -> set[str]:
    return {str(r[0]) for r in db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}


def test_interrupted_import_with_the_old_record_resumes_and_moves_it(
    old_snapshot: Path, tmp_path: Path
) -> None:
    manifest = read_manifest(old_snapshot)
    # Its digest covers the DDL as older versions printed it (old table name included), so an
    # import they interrupted still matches its snapshot.
    assert f"CREATE TABLE IF NOT EXISTS {OLD} " in manifest.plan.ddl()
    # What an older version left when killed after creating the tables, before any chunk.
    target = tmp_path / "t.db"
    db = apsw.Connection(str(target))
    with db:
        db.execute("CREATE TABLE _edgestore_migration (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        for table in manifest.plan.tables:
            db.execute(table.create_sql)
        db.executemany(
            "INSERT INTO _edgestore_migration VALUES (?, ?)",
            [
                ("state", "loading"),
                ("plan_digest", snapshot_digest(manifest)),
                ("source", manifest.plan.source),
                ("plan", msgspec.json.encode(manifest.plan).decode()),
            ],
        )
    db.close()
    assert target_meta(target) is not None  # read under the old name

    result = import_snapshot(old_snapshot, target)
    assert (result.rows, result.chunks_skipped) == (4, 0)
    assert validate(old_snapshot, target)["ok"]
    db = apsw.Connection(str(target))
    try:
        tables = _tables(db)
        assert {"sqlite_edgestore_migration", NEW} <= tables
        assert not {"_edgestore_migration", OLD} & tables
        trigger = db.execute(
            "SELECT sql FROM sqlite_schema WHERE name = 'events_id_sequence'"
        ).fetchone()
        assert trigger is not None
        assert NEW in trigger[0]
        db.execute("INSERT INTO events(day, note) VALUES ('2026-02-01', 'c')")
        assert db.execute("SELECT id FROM events WHERE note = 'c'").fetchone() == (3,)
    finally:
        db.close()


def test_completed_target_with_the_old_tables_is_read_then_moved(tmp_path: Path) -> None:
    target = tmp_path / "done.db"
    db = apsw.Connection(str(target))
    with db:
        db.execute("CREATE TABLE _edgestore_migration (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO _edgestore_migration VALUES ('state', 'complete')")
        db.execute(
            f"CREATE TABLE {OLD} "
            "(name TEXT PRIMARY KEY, value INTEGER NOT NULL, increment INTEGER NOT NULL)"
        )
        db.execute(f"INSERT INTO {OLD} VALUES ('public.events_id_seq', 2, 1)")
        db.execute("CREATE TABLE events (day TEXT NOT NULL, id INTEGER, PRIMARY KEY (day, id))")
        db.execute(
            'CREATE TRIGGER "events_id_sequence" AFTER INSERT ON "events" FOR EACH ROW '
            'WHEN NEW."id" IS NULL BEGIN '
            f"UPDATE {OLD} SET value = value + increment WHERE name = 'public.events_id_seq'; "
            f'UPDATE "events" SET "id" = (SELECT value FROM {OLD} '
            "WHERE name = 'public.events_id_seq') WHERE rowid = NEW.rowid; END"
        )
    db.close()
    assert target_meta(target) == {"state": "complete"}

    db = apsw.Connection(str(target))
    try:
        assert adopt_legacy_tables(db) is True
        assert adopt_legacy_tables(db) is False  # nothing left to move
        assert not {"_edgestore_migration", OLD} & _tables(db)
        db.execute("INSERT INTO events(day) VALUES ('2026-03-01')")
        assert db.execute("SELECT id FROM events").fetchall() == [(3,)]
        assert db.execute(f"SELECT value FROM {NEW}").fetchall() == [(3,)]
    finally:
        db.close()
    assert target_meta(target) == {"state": "complete"}
