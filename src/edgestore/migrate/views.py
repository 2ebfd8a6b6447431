"""Proving a translated view (or a user's query) returns on SQLite what it returns on Postgres.

Both sides' rows go through :func:`loose_row` and into an order-independent checksum
(normalise.RowHasher). Loose, because the two engines compute with different number types:
Postgres sums numeric exactly, SQLite sums doubles; numbers therefore compare as integers when
integral and to 15 significant digits otherwise (exactly what a double holds of a decimal),
booleans as 0/1, bytes by content, dates and times as Postgres's ISO text.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Iterable, Sequence
from typing import Any

import apsw

from .normalise import RowHasher
from .plan import ViewPlan
from .typemap import quote_ident as q

__all__ = ["hash_rows", "loose_row", "verify_views"]


def _loose(v: Any) -> Any:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float | decimal.Decimal):
        f = float(v)
        if not math.isfinite(f):
            return str(f)
        if f == int(f) and abs(f) < 2**53:
            return int(f)
        return float(f"{f:.15g}")
    if isinstance(v, bytes | bytearray | memoryview):
        return "\\x" + bytes(v).hex()
    if isinstance(v, dt.datetime):
        text = v.isoformat(sep=" ")
        return text.replace(".000000", "") if v.tzinfo is None else text
    if isinstance(v, dt.date | dt.time):
        return v.isoformat()
    return str(v)


def loose_row(row: Sequence[Any]) -> list[Any]:
    return [_loose(v) for v in row]


def hash_rows(rows: Iterable[Sequence[Any]]) -> RowHasher:
    h = RowHasher()
    h.update(loose_row(r) for r in rows)
    return h


def verify_views(db: apsw.Connection, views: list[ViewPlan]) -> list[dict[str, str]]:
    """Create each translated view, keep it only when its rows match Postgres's (counted and
    checksummed at export); returns one outcome per view: kind, name, status, reason."""
    outcomes: list[dict[str, str]] = []
    pending = list(views)
    while pending:  # a view may use another: retry until nothing more can be created
        failed: list[tuple[ViewPlan, str]] = []
        for view in pending:
            try:
                with db:
                    db.execute(f"DROP VIEW IF EXISTS {q(view.name)}")
                    db.execute(view.sqlite_sql)
                    h = hash_rows(db.execute(f"SELECT * FROM {q(view.name)}"))
            except apsw.Error as exc:
                failed.append((view, f"the translation does not run in SQLite: {exc}"))
                continue
            if view.source_checksum is None:
                reason = "its Postgres rows were not recorded at export"
            elif (h.count, h.checksum) != (view.source_rows, view.source_checksum):
                reason = (
                    f"the translation returns different rows in SQLite ({h.count} rows, "
                    f"Postgres {view.source_rows})"
                )
            else:
                outcomes.append(
                    {"kind": "view", "name": view.name, "status": "verified", "reason": ""}
                )
                continue
            failed.append((view, reason))
        if len(failed) == len(pending):
            for view, reason in failed:
                with db:
                    db.execute(f"DROP VIEW IF EXISTS {q(view.name)}")
                outcomes.append(
                    {"kind": "view", "name": view.name, "status": "not moved", "reason": reason}
                )
            break
        pending = [v for v, _ in failed]
    for outcome in outcomes:  # a kept view must not use one that was dropped
        if outcome["status"] != "verified":
            continue
        try:
            db.execute(f"SELECT * FROM {q(outcome['name'])} LIMIT 0").fetchall()
        except apsw.Error as exc:
            with db:
                db.execute(f"DROP VIEW IF EXISTS {q(outcome['name'])}")
            outcome.update(status="not moved", reason=f"it uses a view that was not moved: {exc}")
    return sorted(outcomes, key=lambda o: o["name"])
