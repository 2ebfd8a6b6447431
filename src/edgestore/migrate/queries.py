"""``migrate validate --queries FILE``: the application's own queries, run on both sides.

The file is TOML, one ``[[query]]`` table per query::

    [[query]]
    name = "payments over 5"
    postgres = "SELECT count(*) FROM payment WHERE amount > 5"
    sqlite = "SELECT count(*) FROM payment WHERE amount > 5"   # optional

Without a ``sqlite`` form the Postgres text is translated with sqlglot. Results are compared
after views.loose_row (numbers to 15 significant digits, booleans as 0/1, times as ISO text):
in order when the Postgres query ends with ORDER BY, as multisets otherwise. Each query gives
``same``, ``different`` (with the first rows only one side returned) or ``error``.
"""

from __future__ import annotations

import os
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import apsw

from ..errors import MigrationError
from .objects import translate_view
from .source import connect
from .views import loose_row

__all__ = ["load_queries", "run_queries"]

SHOWN = 5  # differing rows shown per query


def load_queries(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise MigrationError(f"queries file {p} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise MigrationError(f"queries file {p} is not valid TOML: {exc}") from exc
    queries = doc.get("query")
    if not isinstance(queries, list) or not queries:
        raise MigrationError(f"{p}: expected [[query]] tables with name and postgres")
    out: list[dict[str, str]] = []
    for i, q in enumerate(queries):
        if not isinstance(q, dict) or not isinstance(q.get("postgres"), str):
            raise MigrationError(f"{p}: query {i + 1} has no postgres = '...'")
        extra = set(q) - {"name", "postgres", "sqlite"}
        if extra:
            raise MigrationError(f"{p}: query {i + 1} has unknown keys {', '.join(sorted(extra))}")
        out.append({k: str(v) for k, v in q.items()} | {"name": str(q.get("name", i + 1))})
    return out


def _ordered(sql: str) -> bool:
    import sqlglot
    from sqlglot.errors import SqlglotError

    try:
        tree = sqlglot.parse_one(sql, read="postgres")
    except SqlglotError:
        return False
    return tree.args.get("order") is not None


def _compare(pg: list[list[Any]], lite: list[list[Any]], ordered: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"postgres_rows": len(pg), "sqlite_rows": len(lite)}
    if ordered:
        same = pg == lite
        only_pg = [r for r, s in zip(pg, lite, strict=False) if r != s] + pg[len(lite) :]
        only_lite = [s for r, s in zip(pg, lite, strict=False) if r != s] + lite[len(pg) :]
    else:
        a = Counter(repr(r) for r in pg)
        b = Counter(repr(r) for r in lite)
        same = a == b
        only_pg = [r for r in pg if a[repr(r)] > b[repr(r)]]
        only_lite = [r for r in lite if b[repr(r)] > a[repr(r)]]
    out["status"] = "same" if same else "different"
    out["compared"] = "in order" if ordered else "as a multiset"
    if not same:
        out["only_in_postgres"] = only_pg[:SHOWN]
        out["only_in_sqlite"] = only_lite[:SHOWN]
    return out


def run_queries(
    dsn: str, target: str | os.PathLike[str], path: str | os.PathLike[str]
) -> list[dict[str, Any]]:
    """Each query's outcome (see the module docstring)."""
    queries = load_queries(path)
    conn = connect(dsn)
    db = apsw.Connection(os.fspath(target), flags=apsw.SQLITE_OPEN_READONLY)
    import psycopg

    results: list[dict[str, Any]] = []
    try:
        for q in queries:
            entry: dict[str, Any] = {"name": q["name"], "postgres": q["postgres"]}
            lite_sql = q.get("sqlite")
            if lite_sql is None:
                lite_sql, reason = translate_view(q["postgres"])
                if lite_sql is None:
                    results.append(entry | {"status": "error", "error": reason})
                    continue
            entry["sqlite"] = lite_sql
            try:
                pg = [loose_row(r) for r in conn.execute(q["postgres"]).fetchall()]
            except psycopg.Error as exc:
                results.append(entry | {"status": "error", "error": f"postgres: {exc}".strip()})
                continue
            try:
                lite = [loose_row(r) for r in db.execute(lite_sql).fetchall()]
            except apsw.Error as exc:
                results.append(entry | {"status": "error", "error": f"sqlite: {exc}"})
                continue
            results.append(entry | _compare(pg, lite, _ordered(q["postgres"])))
    finally:
        conn.close()
        db.close()
    return results
