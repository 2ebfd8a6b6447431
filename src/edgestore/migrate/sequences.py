"""Sequence defaults on columns that cannot be SQLite's rowid.

A ``nextval()`` default (serial, identity) on the single integer primary key becomes the rowid
with AUTOINCREMENT (import sets ``sqlite_sequence`` after Postgres's last value). Any other
column -- a composite key such as a partitioned table's ``(payment_date, payment_id)``, or a
plain numbered column -- is numbered by an ``AFTER INSERT`` trigger from the
``sqlite_edgestore_sequences`` table (bookkeeping.py), which import starts at the sequence's
last value, so an insert without the column works and never hands out an id Postgres had issued.
SQLite checks NOT NULL before any trigger runs, so such a column is declared without it and a
``BEFORE UPDATE`` trigger refuses NULL instead (and an insert leaves it NULL only when it is
numbered).
"""

from __future__ import annotations

import re

from .bookkeeping import SEQUENCES_TABLE
from .typemap import quote_ident as q

__all__ = ["sequence_of_default", "sequence_triggers"]

_NEXTVAL = re.compile(r"^nextval\('((?:[^']|'')+)'(?:::regclass)?\)$", re.IGNORECASE)


def sequence_of_default(default: str | None) -> str | None:
    """The sequence a ``nextval('name'::regclass)`` default draws from (None otherwise)."""
    if default is None:
        return None
    m = _NEXTVAL.match(default.strip())
    return m.group(1).replace("''", "'") if m else None


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def sequence_triggers(
    table: str, column: str, sequence: str, not_null: bool
) -> list[tuple[str, str, str]]:
    """(name, CREATE TRIGGER sql, what it stands for) for a trigger-numbered column."""
    t, c, s = q(table), q(column), _lit(sequence)
    name = f"{table}_{column}_sequence"
    number = (
        f"CREATE TRIGGER {q(name)} AFTER INSERT ON {t} FOR EACH ROW WHEN NEW.{c} IS NULL\n"
        f"BEGIN\n"
        f"  UPDATE {SEQUENCES_TABLE} SET value = value + increment WHERE name = {s};\n"
        f"  UPDATE {t} SET {c} = (SELECT value FROM {SEQUENCES_TABLE} WHERE name = {s})\n"
        f"    WHERE rowid = NEW.rowid;\n"
        f"END"
    )
    out = [(name, number, f"default nextval('{sequence}')")]
    if not_null:
        guard = f"{table}_{column}_not_null"
        message = _lit(f"NOT NULL constraint failed: {table}.{column}")
        out.append(
            (
                guard,
                f"CREATE TRIGGER {q(guard)} BEFORE UPDATE OF {c} ON {t} FOR EACH ROW "
                f"WHEN NEW.{c} IS NULL\nBEGIN\n  SELECT RAISE(ABORT, {message});\nEND",
                f"NOT NULL of {table}.{column}",
            )
        )
    return out
