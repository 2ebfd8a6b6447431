"""Reading what the source schema holds, from pg_catalog.

Plain catalog queries instead of reflection: they say exactly what we need (identity and
generated columns, domain bases and constraints, enum labels, index key expressions and
predicates, composite foreign keys in column order) and nothing else.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import SourceError
from .typemap import TypeInfo, quote_ident

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "CatalogColumn",
    "CatalogIndex",
    "CatalogPartition",
    "CatalogTable",
    "NotMoved",
    "read_catalog",
]


@dataclass(slots=True)
class CatalogColumn:
    num: int
    name: str
    type: TypeInfo
    not_null: bool
    default: str | None  # pg_get_expr of the default
    identity: str  # '' | 'a' (ALWAYS) | 'd' (BY DEFAULT)
    generated: str  # '' | 's' (stored)
    domain_checks: list[str] = field(default_factory=list)  # with VALUE as the column
    sequence: str | None = None  # owned sequence (serial / identity), qualified name
    fits_double: bool | None = None  # unconstrained numeric: every value has <= 15 digits


@dataclass(slots=True)
class CatalogIndex:
    name: str
    unique: bool
    method: str
    keys: list[str]  # column names or expression text (pg_get_indexdef per key)
    key_is_expr: list[bool]
    desc: list[bool]
    predicate: str | None
    include: int  # number of INCLUDE columns
    nulls_not_distinct: bool


@dataclass(slots=True)
class CatalogConstraint:
    name: str
    kind: str  # p u f c x
    columns: list[str]
    ref_table: str | None = None
    ref_schema: str | None = None
    ref_columns: list[str] = field(default_factory=list)
    on_update: str = "a"
    on_delete: str = "a"
    deferrable: bool = False
    deferred: bool = False
    validated: bool = True
    definition: str = ""
    nulls_not_distinct: bool = False


@dataclass(slots=True)
class CatalogPartition:
    name: str
    bound: str  # pg_get_expr(relpartbound): FOR VALUES FROM (...) TO (...), IN (...), DEFAULT
    constraints: list[CatalogConstraint]
    indexes: list[CatalogIndex]


@dataclass(slots=True)
class CatalogTable:
    oid: int
    schema: str
    name: str
    kind: str  # r or p
    estimated_rows: int
    columns: list[CatalogColumn]
    constraints: list[CatalogConstraint]
    indexes: list[CatalogIndex]
    partition_key: str = ""  # pg_get_partkeydef: RANGE (payment_date)
    partitions: list[CatalogPartition] = field(default_factory=list)


@dataclass(slots=True)
class NotMoved:
    kind: str
    name: str
    reason: str


_TABLES = """
SELECT c.oid, c.relname, c.relkind, GREATEST(c.reltuples, 0)::int8,
       has_table_privilege(c.oid, 'SELECT')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY c.relname
"""

_COLUMNS = """
SELECT a.attnum, a.attname, a.attnotnull, pg_get_expr(d.adbin, d.adrelid),
       a.attidentity, a.attgenerated, format_type(a.atttypid, a.atttypmod), a.atttypid,
       pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname),
                              a.attname)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_TYPE = """
SELECT t.typname, t.typtype, t.typcategory, t.typbasetype,
       format_type(t.oid, %s), t.typtypmod, pg_get_expr(t.typdefaultbin, 0)
FROM pg_type t WHERE t.oid = %s
"""

_DOMAIN_CHECKS = """
SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE contypid = %s AND contype = 'c'
ORDER BY conname
"""

_ENUM = "SELECT enumlabel FROM pg_enum WHERE enumtypid = %s ORDER BY enumsortorder"

_CONSTRAINTS = """
SELECT con.conname, con.contype,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n
             ORDER BY k.i),
       fc.relname, fn.nspname,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n
             ORDER BY k.i),
       con.confupdtype, con.confdeltype, con.condeferrable, con.condeferred, con.convalidated,
       pg_get_constraintdef(con.oid),
       COALESCE((SELECT i.indnullsnotdistinct FROM pg_index i
                 WHERE i.indexrelid = con.conindid), false)
FROM pg_constraint con
LEFT JOIN pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE con.conrelid = %s
  AND (con.contype <> 'c' OR con.conislocal)  -- a partition's inherited CHECKs are the parent's
ORDER BY con.contype, con.conname
"""

_INDEXES = """
SELECT ic.relname, i.indisunique, am.amname, i.indnkeyatts, i.indnatts,
       ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, true)
             FROM generate_series(1, i.indnkeyatts) k ORDER BY k),
       ARRAY(SELECT i.indkey[k - 1] = 0 FROM generate_series(1, i.indnkeyatts) k ORDER BY k),
       ARRAY(SELECT (i.indoption[k - 1] & 1) = 1
             FROM generate_series(1, i.indnkeyatts) k ORDER BY k),
       pg_get_expr(i.indpred, i.indrelid), i.indnullsnotdistinct
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam
WHERE i.indrelid = %s
  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid
                  AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x'))
ORDER BY ic.relname
"""

# every leaf and intermediate partition of a partitioned table, with its bound
_PARTITIONS = """
WITH RECURSIVE tree(oid) AS (
  SELECT inhrelid FROM pg_inherits WHERE inhparent = %(oid)s
  UNION ALL SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid
)
SELECT c.oid, c.relname, pg_get_expr(c.relpartbound, c.oid) FROM tree
JOIN pg_class c ON c.oid = tree.oid ORDER BY c.relname
"""

# an unconstrained numeric moves as REAL only when every value survives a double: float8 ->
# numeric prints 15 significant digits, so equality proves the value has at most 15
_NUMERIC_PROBE = """
SELECT coalesce(bool_and(CASE WHEN {c} = 'NaN' OR abs({c}) = 'Infinity' THEN true
                              WHEN abs({c}) > 1e300 THEN false
                              ELSE {c}::float8::numeric = {c} END), false)
FROM {t} WHERE {c} IS NOT NULL
"""


def type_info(conn: psycopg.Connection[Any], oid: int) -> tuple[TypeInfo, list[str], str | None]:
    """Resolve domains (possibly nested) to their base type (with the domain's typmod, e.g.
    numeric(10,2)); collect their CHECKs and the nearest domain default."""
    checks: list[str] = []
    domain: str | None = None
    default: str | None = None
    typmod: int | None = None
    while True:
        row = conn.execute(_TYPE, (typmod, oid)).fetchone()
        if row is None:  # pragma: no cover - the catalog is consistent
            raise SourceError(f"type oid {oid} not found in pg_type")
        typname, typtype, category, base, sql, base_typmod, type_default = row
        if typtype == "d":
            domain = domain or sql
            default = default or type_default
            checks += [r[0] for r in conn.execute(_DOMAIN_CHECKS, (oid,)).fetchall()]
            typmod = base_typmod if base_typmod >= 0 else typmod
            oid = base
            continue
        labels: tuple[str, ...] = ()
        if typtype == "e":
            labels = tuple(r[0] for r in conn.execute(_ENUM, (oid,)).fetchall())
        return TypeInfo(typname, sql, typtype, category, labels, domain), checks, default


def _constraints(conn: psycopg.Connection[Any], oid: int) -> list[CatalogConstraint]:
    return [
        CatalogConstraint(
            name=r[0],
            kind=r[1],
            columns=list(r[2]),
            ref_table=r[3],
            ref_schema=r[4],
            ref_columns=list(r[5]),
            on_update=r[6],
            on_delete=r[7],
            deferrable=r[8],
            deferred=r[9],
            validated=r[10],
            definition=r[11],
            nulls_not_distinct=r[12],
        )
        for r in conn.execute(_CONSTRAINTS, (oid,)).fetchall()
    ]


def _indexes(conn: psycopg.Connection[Any], oid: int) -> list[CatalogIndex]:
    return [
        CatalogIndex(
            name=r[0],
            unique=r[1],
            method=r[2],
            keys=list(r[5]),
            key_is_expr=list(r[6]),
            desc=list(r[7]),
            predicate=r[8],
            include=r[4] - r[3],
            nulls_not_distinct=r[9],
        )
        for r in conn.execute(_INDEXES, (oid,)).fetchall()
    ]


def _partitions(conn: psycopg.Connection[Any], oid: int) -> tuple[str, list[CatalogPartition]]:
    key = conn.execute("SELECT pg_get_partkeydef(%s)", (oid,)).fetchone()
    parts = [
        CatalogPartition(name, bound, _constraints(conn, poid), _indexes(conn, poid))
        for poid, name, bound in conn.execute(_PARTITIONS, {"oid": oid}).fetchall()
    ]
    return (key[0] if key else "") or "", parts


def _qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def read_catalog(
    conn: psycopg.Connection[Any], schema: str, tables: list[str] | None = None
) -> tuple[list[CatalogTable], list[NotMoved]]:
    """Every ordinary and partitioned table of ``schema`` (or just ``tables``)."""
    rows = conn.execute(_TABLES, (schema,)).fetchall()
    if (
        not rows
        and not conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    ):
        raise SourceError(f"schema {schema!r} does not exist in the source database")
    wanted = set(tables) if tables else None
    if wanted is not None:
        missing = wanted - {r[1] for r in rows}
        if missing:
            raise SourceError(
                f"tables not found in schema {schema!r}: {', '.join(sorted(missing))}"
            )
    result: list[CatalogTable] = []
    for oid, name, kind, est, can_select in rows:
        if wanted is not None and name not in wanted:
            continue
        if not can_select:
            raise SourceError(
                f"missing permission: the source user may not SELECT from {schema}.{name} "
                f"(GRANT SELECT ON {schema}.{name} TO <user>)"
            )
        columns: list[CatalogColumn] = []
        for num, cname, notnull, default, ident, gen, sql, typoid, seq in conn.execute(
            _COLUMNS, (oid,)
        ).fetchall():
            info, checks, domain_default = type_info(conn, typoid)
            if info.domain is None:
                info = dataclasses.replace(info, sql=sql)  # with typmod: numeric(10,2)
            fits: bool | None = None
            if info.name == "numeric" and info.sql == "numeric" and info.category != "A":
                probe = _NUMERIC_PROBE.format(c=quote_ident(cname), t=_qualified(schema, name))
                fits = bool(conn.execute(probe).fetchone()[0])  # type: ignore[index]
            columns.append(
                CatalogColumn(
                    num,
                    cname,
                    info,
                    notnull,
                    default or domain_default,
                    ident,
                    gen,
                    checks,
                    seq,
                    fits,
                )
            )
        constraints = _constraints(conn, oid)
        indexes = _indexes(conn, oid)
        key, parts = _partitions(conn, oid) if kind == "p" else ("", [])
        result.append(
            CatalogTable(oid, schema, name, kind, est, columns, constraints, indexes, key, parts)
        )
    return result, []  # views, triggers, functions...: objects.read_objects
