"""The tables ``edgestore migrate`` keeps in every target, under ``sqlite_`` names.

``sqlite_edgestore_migration`` records an import's progress and its validation report;
``sqlite_edgestore_sequences`` numbers sequence columns that are not the integer key (read and
updated by ``AFTER INSERT`` triggers, see sequences.py). The ``sqlite_`` prefix is the one every
schema tool skips (the storage/schema.py docstring says which), so drizzle-kit push, Alembic
autogenerate and Kysely never offer to rename or drop them. Targets made before used
``_edgestore_migration`` / ``_edgestore_sequences``: they are read as they are and moved over
(with the triggers that name them) the next time migrate writes to the target.
"""

from __future__ import annotations

import re

import apsw

from ..storage.schema import create_reserved_table, table_exists

__all__ = [
    "LEGACY_META_TABLE",
    "LEGACY_SEQUENCES_TABLE",
    "META_COLUMNS",
    "META_TABLE",
    "SEQUENCES_COLUMNS",
    "SEQUENCES_TABLE",
    "adopt_legacy_tables",
    "current_sequence_sql",
    "meta_table_of",
]

META_TABLE = "sqlite_edgestore_migration"
LEGACY_META_TABLE = "_edgestore_migration"
META_COLUMNS = "key TEXT PRIMARY KEY, value TEXT NOT NULL"
SEQUENCES_TABLE = "sqlite_edgestore_sequences"
LEGACY_SEQUENCES_TABLE = "_edgestore_sequences"
SEQUENCES_COLUMNS = "name TEXT PRIMARY KEY, value INTEGER NOT NULL, increment INTEGER NOT NULL"
# the legacy name as a whole word (the new name contains it after "sqlite")
_LEGACY_SEQUENCES_REF = re.compile(r"(?<![\w$])_edgestore_sequences\b")


def current_sequence_sql(sql: str) -> str:
    """Trigger SQL of a plan made before the rename, pointed at :data:`SEQUENCES_TABLE`."""
    return _LEGACY_SEQUENCES_REF.sub(SEQUENCES_TABLE, sql)


def meta_table_of(db: apsw.Connection) -> str | None:
    """The migration record table ``db`` has (the current name first), None without one."""
    for name in (META_TABLE, LEGACY_META_TABLE):
        if table_exists(db, name):
            return name
    return None


def adopt_legacy_tables(db: apsw.Connection) -> bool:
    """Move the legacy bookkeeping tables of ``db`` to the ``sqlite_`` names, re-creating the
    triggers that use the old sequences table, in one transaction. True if anything moved."""
    legacy = [n for n in (LEGACY_META_TABLE, LEGACY_SEQUENCES_TABLE) if table_exists(db, n)]
    if not legacy:
        return False
    with db:
        if LEGACY_META_TABLE in legacy:
            create_reserved_table(db, META_TABLE, META_COLUMNS)
            db.execute(
                f"INSERT OR REPLACE INTO {META_TABLE}(key, value) "
                f"SELECT key, value FROM {LEGACY_META_TABLE}"
            )
            db.execute(f"DROP TABLE {LEGACY_META_TABLE}")
        if LEGACY_SEQUENCES_TABLE in legacy:
            create_reserved_table(db, SEQUENCES_TABLE, SEQUENCES_COLUMNS)
            db.execute(
                f"INSERT OR REPLACE INTO {SEQUENCES_TABLE}(name, value, increment) "
                f"SELECT name, value, increment FROM {LEGACY_SEQUENCES_TABLE}"
            )
            triggers = db.execute(
                "SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND sql LIKE ?",
                ("%" + LEGACY_SEQUENCES_TABLE + "%",),
            ).fetchall()
            for name, sql in triggers:
                if not _LEGACY_SEQUENCES_REF.search(str(sql)):
                    continue
                db.execute(f'DROP TRIGGER "{str(name).replace(chr(34), chr(34) * 2)}"')
                db.execute(current_sequence_sql(str(sql)))
            db.execute(f"DROP TABLE {LEGACY_SEQUENCES_TABLE}")
    return True
