"""Schema files: ``NNNN_name.sql`` applied in order, each exactly once.

Applied files are recorded in ``sqlite_edgestore_schema`` with their SHA-256; a file that changed
after it was applied is an error naming it (edit by adding a new file, never in place).

The record lives in the database (it commits with the file it records) under a ``sqlite_`` name
because that is the one prefix every schema tool leaves alone: drizzle-kit, SQLAlchemy/Alembic,
Prisma and Kysely skip ``sqlite_%`` tables when they introspect, so a tool that diffs the
database against its own models neither offers to rename the table nor drops it. SQLite reserves
the prefix, so the table is made with ``writable_schema`` on; once made, SQLite itself refuses
to drop, alter or index it. Databases made before kept the record in ``_edgestore_schema``; it
is moved over, in one transaction, the next time schema files are applied. The table is only
made when there is a schema file to record. Prisma's schema engine is the exception among the
tools: it skips only SQLite's own tables by name, so ``prisma db pull`` lists this one.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import apsw

from ..errors import SchemaError
from .sqlerrors import code_names

__all__ = [
    "DEFAULT_SCHEMAS_DIR",
    "LEGACY_SCHEMA_TABLE",
    "SCHEMA_TABLE",
    "apply_schema_dir",
    "create_reserved_table",
    "schema_files",
    "table_exists",
]

DEFAULT_SCHEMAS_DIR = Path("schemas")
SCHEMA_TABLE = "sqlite_edgestore_schema"
LEGACY_SCHEMA_TABLE = "_edgestore_schema"
_COLUMNS = "name TEXT PRIMARY KEY, sha256 TEXT NOT NULL, applied_at TEXT NOT NULL"
_NAME = re.compile(r"^\d{4}_[A-Za-z0-9_.-]+\.sql$")


def schema_files(directory: Path) -> list[Path]:
    """The schema files of ``directory`` in the order they apply."""
    return sorted(p for p in directory.iterdir() if p.is_file() and _NAME.match(p.name))


def apply_schema_dir(db: apsw.Connection, directory: Path) -> list[str]:
    """Apply the files of ``directory`` not applied yet, each in its own transaction.

    Runs on the writer (held exclusively). Returns the names applied, in order.
    """
    if not directory.is_dir():
        raise SchemaError(f"schema directory {str(directory)!r} does not exist")
    files = schema_files(directory)
    if not files and not _table_exists(db, LEGACY_SCHEMA_TABLE):
        # Nothing to record: a database served without schema files (e.g. one an ORM's
        # migrations manage) gets no table of edgestore's at all.
        return []
    _ensure_schema_table(db)
    applied: list[str] = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        try:
            # Checked inside the write transaction: several processes starting at once
            # (server workers) apply each file exactly once between them.
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                f"SELECT sha256 FROM {SCHEMA_TABLE} WHERE name = ?", (path.name,)
            ).fetchone()
            if row is not None:
                db.execute("COMMIT")
                previous = str(row[0])
                if previous != digest:
                    raise SchemaError(
                        f"{path.name}: changed after it was applied (sha256 {previous[:12]}... "
                        f"is recorded, the file now has {digest[:12]}...); add a new schema "
                        "file instead",
                        code="SQLITE_ERROR",
                    )
                continue
            db.execute(text).fetchall()
            db.execute(
                f"INSERT INTO {SCHEMA_TABLE}(name, sha256, applied_at) VALUES (?, ?, ?)",
                (path.name, digest, datetime.now(UTC).isoformat(timespec="seconds")),
            )
            db.execute("COMMIT")
        except apsw.Error as exc:
            if db.in_transaction:
                db.execute("ROLLBACK")
            code, base = code_names(exc)
            raise SchemaError(f"{path.name}: {exc}", code=code, base_code=base) from exc
        applied.append(path.name)
    return applied


def _ensure_schema_table(db: apsw.Connection) -> None:
    """Make the record table (and move a legacy one into it) if it is not there yet."""
    if _table_exists(db, SCHEMA_TABLE) and not _table_exists(db, LEGACY_SCHEMA_TABLE):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        create_reserved_table(db, SCHEMA_TABLE, _COLUMNS)
        if _table_exists(db, LEGACY_SCHEMA_TABLE):
            db.execute(
                f"INSERT OR IGNORE INTO {SCHEMA_TABLE}(name, sha256, applied_at) "
                f"SELECT name, sha256, applied_at FROM {LEGACY_SCHEMA_TABLE}"
            )
            db.execute(f"DROP TABLE {LEGACY_SCHEMA_TABLE}")
        db.execute("COMMIT")
    except apsw.Error as exc:
        if db.in_transaction:
            db.execute("ROLLBACK")
        code, base = code_names(exc)
        raise SchemaError(
            f"cannot create {SCHEMA_TABLE}: {exc}", code=code, base_code=base
        ) from exc


def create_reserved_table(db: apsw.Connection, name: str, columns: str) -> None:
    """``CREATE TABLE IF NOT EXISTS name (columns)`` for a ``sqlite_``-prefixed bookkeeping
    table, which schema tools skip when they introspect (see the module docstring).

    The prefix is only accepted with writable_schema on (and the defensive flag off, which
    edgestore's connections never set); it is reset at once. Reading and writing the table
    afterwards needs nothing special, from triggers too; only DROP/ALTER/CREATE INDEX on it
    are refused by SQLite.
    """
    if not name.startswith("sqlite_"):
        raise ValueError(f"{name!r} is not a sqlite_ name")
    db.execute("PRAGMA writable_schema = ON")
    try:
        db.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns})")
    finally:
        db.execute("PRAGMA writable_schema = RESET")


def table_exists(db: apsw.Connection, name: str) -> bool:
    """Whether the main schema of ``db`` has a table called ``name``."""
    return _table_exists(db, name)


def _table_exists(db: apsw.Connection, name: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return row is not None
