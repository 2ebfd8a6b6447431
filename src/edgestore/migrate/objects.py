"""Views, triggers and functions: translated where SQLite can do the same, named otherwise.

Views go through sqlglot (Postgres -> SQLite dialect, refusing what it cannot express). A
translated view is only a candidate: export runs the view in Postgres inside its snapshot
transaction and keeps the count and checksum of its rows, and import keeps the SQLite view
only when it returns the same rows (:mod:`.views`). Row triggers whose function is a single
PL/pgSQL assignment ``NEW.col = <expr>`` with an expression SQLite can compute (``now()``, a
literal) become an ``AFTER`` trigger that updates the row it fired for (SQLite cannot assign
to NEW). Everything else -- other triggers, functions, procedures, materialized views -- is
listed with the reason in the plan, the run's output and the report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import MissingExtraError
from .catalog import type_info
from .pgexpr import translate_default
from .plan import Plan, TriggerPlan, ViewPlan
from .typemap import map_type
from .typemap import quote_ident as q

if TYPE_CHECKING:
    import psycopg

__all__ = ["SourceObjects", "plan_objects", "read_objects", "translate_view"]


@dataclass(slots=True)
class SourceView:
    name: str
    definition: str
    columns: list[tuple[str, str]]  # (name, export expression)


@dataclass(slots=True)
class SourceTrigger:
    table: str
    name: str
    tgtype: int
    function: str
    language: str
    body: str
    has_when: bool
    update_of: bool
    args: str  # the trigger's arguments (tsvector_update_trigger(fulltext, ...) names columns)


@dataclass(slots=True)
class SourceObjects:
    views: list[SourceView]
    triggers: list[SourceTrigger]
    functions: list[tuple[str, str, str]]  # (kind, name, signature)
    others: list[tuple[str, str]]  # (kind, name): materialized views, foreign tables, ...


_VIEWS = """
SELECT c.oid, c.relname, pg_get_viewdef(c.oid, true) FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'v'
ORDER BY c.oid
"""
_VIEW_COLUMNS = """
SELECT attname, atttypid FROM pg_attribute
WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum
"""
_TRIGGERS = """
SELECT c.relname, t.tgname, t.tgtype, p.proname, l.lanname, p.prosrc, t.tgqual IS NOT NULL,
       cardinality(t.tgattr::int2[]) > 0, encode(t.tgargs, 'escape')
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_language l ON l.oid = p.prolang
WHERE n.nspname = %s AND NOT t.tgisinternal AND t.tgparentid = 0
ORDER BY c.relname, t.tgname
"""
_FUNCTIONS = """
SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
       p.proname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')'
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = %s
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
ORDER BY 3
"""
_OTHERS = """
SELECT CASE c.relkind WHEN 'm' THEN 'materialized view' WHEN 'f' THEN 'foreign table'
       ELSE 'sequence' END, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('m', 'f', 'S')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))
ORDER BY 1, 2
"""

_REASONS = {
    "materialized view": "materialized views are not moved (create a table from its query "
    "if the application reads it)",
    "foreign table": "foreign tables are not moved (their data lives elsewhere)",
    "sequence": "no moved column draws from it; SQLite has no sequences (an application "
    "calling nextval() needs its own counter)",
    "procedure": "SQLite has no stored procedures",
    "aggregate": "SQLite has no user-defined aggregates in SQL",
    "function": "SQLite has no stored functions",
}


def read_objects(conn: psycopg.Connection[Any], schema: str) -> SourceObjects:
    """Views (with their column export expressions), triggers, functions and the rest."""
    views: list[SourceView] = []
    for oid, name, definition in conn.execute(_VIEWS, (schema,)).fetchall():
        columns = []
        for cname, typoid in conn.execute(_VIEW_COLUMNS, (oid,)).fetchall():
            info = type_info(conn, typoid)[0]
            # numeric results (sum, avg, a numeric column) compare as doubles: SQLite computes
            # them with doubles, and both sides are compared to 15 significant digits
            expr = (
                f"{q(cname)}::float8" if info.name == "numeric" else map_type(info).expr(q(cname))
            )
            columns.append((cname, expr))
        views.append(SourceView(name, definition, columns))
    triggers = [SourceTrigger(*r) for r in conn.execute(_TRIGGERS, (schema,)).fetchall()]
    functions = [(k, n, sig) for k, n, sig in conn.execute(_FUNCTIONS, (schema,)).fetchall()]
    others = [(k, n) for k, n in conn.execute(_OTHERS, (schema,)).fetchall()]
    return SourceObjects(views, triggers, functions, others)


def _sqlglot() -> Any:
    try:
        import sqlglot
    except ImportError as exc:  # pragma: no cover - the postgres extra installs it
        raise MissingExtraError("edgestore migrate", "postgres") from exc
    return sqlglot


def translate_view(definition: str) -> tuple[str | None, str]:
    """The SQLite SELECT of a Postgres view definition, or None and the reason."""
    sqlglot = _sqlglot()
    from sqlglot.errors import ErrorLevel, SqlglotError

    try:
        out = sqlglot.transpile(
            definition, read="postgres", write="sqlite", unsupported_level=ErrorLevel.RAISE
        )
    except SqlglotError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"sqlglot cannot translate it: {first}"
    if len(out) != 1:
        return None, "the definition is not a single SELECT"
    return out[0], ""


_ASSIGN = re.compile(
    r"^\s*BEGIN\s+NEW\.(\"?[A-Za-z_][A-Za-z0-9_]*\"?)\s*:?=\s*([^;]+?)\s*;\s*"
    r"RETURN\s+NEW\s*;\s*END\s*;?\s*$",
    re.IGNORECASE,
)
# pg_trigger.tgtype bits
_ROW, _BEFORE, _INSERT, _DELETE, _UPDATE, _TRUNCATE, _INSTEAD = 1, 2, 4, 8, 16, 32, 64


def translate_trigger(tr: SourceTrigger, plan: Plan) -> tuple[list[TriggerPlan], str]:
    """SQLite triggers doing what ``tr`` does, or [] and the reason it cannot move."""
    names = {t.name for t in plan.tables}
    if tr.table not in names:
        return [], "its table is not moved"
    if not tr.tgtype & _ROW:
        return [], "statement-level trigger"
    if not tr.tgtype & _BEFORE or tr.tgtype & (_DELETE | _TRUNCATE | _INSTEAD):
        return [], "only BEFORE INSERT/UPDATE row triggers are translated"
    if tr.has_when or tr.update_of:
        return [], "WHEN condition or UPDATE OF columns"
    if tr.language != "plpgsql":
        return [], f"its function {tr.function}() is written in {tr.language}, not PL/pgSQL"
    m = _ASSIGN.match(tr.body)
    if m is None:
        return [], (
            f"its function {tr.function}() does more than one assignment NEW.column = expression"
        )
    column = m.group(1).strip('"')
    table = plan.table(tr.table)
    col = next((c for c in table.columns if c.name == column), None)
    if col is None:
        return [], f"it assigns {column}, which {tr.table} does not have"
    expr = translate_default(m.group(2), col.storage, _pg_base(col.pg_type))
    if expr is None:
        return [], f"SQLite cannot compute {m.group(2)} the same way"
    out: list[TriggerPlan] = []
    for bit, event in ((_INSERT, "INSERT"), (_UPDATE, "UPDATE")):
        if tr.tgtype & bit:
            name = f"{tr.table}_{tr.name}_{event.lower()}"
            out.append(
                TriggerPlan(
                    name,
                    f"CREATE TRIGGER {q(name)} AFTER {event} ON {q(tr.table)} FOR EACH ROW\n"
                    f"BEGIN\n  UPDATE {q(tr.table)} SET {q(column)} = {expr} "
                    f"WHERE rowid = NEW.rowid;\nEND",
                    f"trigger {tr.table}.{tr.name} ({tr.function}: NEW.{column} = {m.group(2)})",
                )
            )
    return out, ""


def _columns_it_filled(tr: SourceTrigger, plan: Plan) -> str:
    """A note naming the NOT NULL columns without a default that an INSERT trigger left behind
    filled (its function assigns NEW.column, or its arguments name the column, as
    tsvector_update_trigger's do): inserts must now supply them."""
    if not tr.tgtype & _INSERT or tr.table not in {t.name for t in plan.tables}:
        return ""
    table = plan.table(tr.table)
    numbered = {s.column for s in table.sequences} | (
        {table.sequence.column} if table.sequence else set()
    )
    filled = [
        c.name
        for c in table.columns
        if c.not_null
        and c.default is None
        and c.name not in numbered
        and (
            re.search(rf"\bNEW\.\"?{re.escape(c.name)}\"?\s*:?=", tr.body, re.IGNORECASE)
            or c.name in _target_args(tr)
        )
    ]
    if not filled:
        return ""
    return (
        f"; it set {', '.join(filled)} (NOT NULL, no default), which inserts into {tr.table} "
        "must now supply"
    )


def _target_args(tr: SourceTrigger) -> list[str]:
    args = tr.args.split("\\000")  # bytea escape form of the NUL separators
    # the built-in full-text triggers write their first argument and read the others
    return args[:1] if tr.function.startswith("tsvector_update_trigger") else args


def _pg_base(pg_type: str) -> str:
    low = pg_type.lower()
    if low.startswith("timestamp with"):
        return "timestamptz"
    if low.startswith("timestamp"):
        return "timestamp"
    return low


def plan_objects(plan: Plan, objects: SourceObjects) -> None:
    """Add the translated views and triggers to ``plan`` and list everything else, with the
    reason, in ``plan.not_moved``."""
    not_moved: list[dict[str, str]] = []
    for v in objects.views:
        sql, reason = translate_view(v.definition)
        if sql is None:
            not_moved.append({"kind": "view", "name": v.name, "reason": reason})
            continue
        select = ", ".join(expr for _, expr in v.columns)
        plan.views.append(
            ViewPlan(
                v.name,
                v.definition,
                f"CREATE VIEW {q(v.name)} AS {sql}",
                f"SELECT {select} FROM {q(plan.schema)}.{q(v.name)}",
            )
        )
    used_by: dict[str, list[str]] = {}
    for tr in objects.triggers:
        made, reason = translate_trigger(tr, plan)
        if made:
            plan.table(tr.table).triggers.extend(made)
            used_by.setdefault(tr.function, []).append(f"{tr.table}.{tr.name}")
        else:
            reason += _columns_it_filled(tr, plan)
            not_moved.append({"kind": "trigger", "name": f"{tr.table}.{tr.name}", "reason": reason})
    for kind, name, sig in objects.functions:
        reason = _REASONS[kind]
        if name in used_by:
            reason += f"; translated inline into trigger(s) {', '.join(used_by[name])}"
        not_moved.append({"kind": kind, "name": sig, "reason": reason})
    drawn = {s.sequence.split(".")[-1].strip('"') for t in plan.tables for s in t.sequences}
    drawn |= {t.sequence.sequence.split(".")[-1].strip('"') for t in plan.tables if t.sequence}
    for kind, name in objects.others:
        if kind == "sequence" and name in drawn:
            continue
        not_moved.append({"kind": kind, "name": name, "reason": _REASONS[kind]})
    plan.not_moved = sorted(not_moved, key=lambda n: (n["kind"], n["name"]))
