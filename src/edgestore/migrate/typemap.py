"""How each Postgres type becomes a SQLite value.

One rule per type: the SQL expression that Postgres evaluates to export a column (so the
conversion runs in Postgres's C code, not per value in Python), the Postgres type that
expression yields on the wire (one of ``int8``, ``float8``, ``text``, ``bytea``), the SQLite
declared type (chosen for its *affinity*: a decltype such as ``DECIMAL`` would make SQLite turn
the text ``'12.50'`` into the real 12.5), and the lossy/risky flags the plan reports.

Validation compares values after exactly this conversion, on both sides, so a flag here is the
complete list of what "validated" does not cover. The README's type table mirrors this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "FLAG_TEXT",
    "TypeInfo",
    "TypeRule",
    "map_type",
    "numeric_rule",
    "numeric_typmod",
    "quote_ident",
    "scaled_rule",
]

# wire types the export SELECT produces; psycopg's binary loaders turn them into int, float,
# str and bytes without Python-level parsing.
Wire = str  # "int8" | "float8" | "text" | "bytea"


@dataclass(frozen=True, slots=True)
class TypeInfo:
    """What the catalog says about one column's type (domains already resolved to the base)."""

    name: str  # pg_type.typname of the base type (for arrays: the array type, e.g. "_int4")
    sql: str  # format_type() of the declared type, e.g. "numeric(10,2)", "my_domain"
    typtype: str  # b=base c=composite d=domain e=enum p=pseudo r=range m=multirange
    category: str  # pg_type.typcategory (A = array)
    enum_labels: tuple[str, ...] = ()
    domain: str | None = None  # the domain's name when the column is declared with a domain


@dataclass(frozen=True, slots=True)
class TypeRule:
    """How one column moves."""

    sqlite_type: str  # INTEGER | REAL | TEXT | BLOB
    wire: Wire
    storage: str  # short name of the stored form, shown in the plan and the README table
    flags: tuple[str, ...] = ()  # lossy/risky conversion codes (see FLAG_TEXT)
    float_column: bool = False  # a float8 on the wire: NaN must become the text 'NaN'
    comparable: bool = True  # CHECK/index expressions on this column mean the same in SQLite

    def expr(self, column_sql: str) -> str:
        """The export expression for a column (``column_sql`` is already quoted)."""
        if self.storage.startswith("integer x10^"):  # exact: numeric(p,s) has scale s
            return f"({column_sql} * 1e{self.storage[12:]})::int8"
        return _EXPR[self.storage].format(c=column_sql)


# storage name -> export expression. The session runs with DateStyle=ISO, IntervalStyle=
# iso_8601, TimeZone=UTC and extra_float_digits=1 so every ::text below is deterministic.
_EXPR: dict[str, str] = {
    "integer": "{c}::int8",
    "boolean 0/1": "{c}::int4::int8",
    "real (float8)": "{c}",
    "real (cast)": "{c}::float8",
    "bytes of text": "convert_to({c}::text, 'UTF8')",
    # float4 via its shortest round-trip text: 21.35 stays 21.35 (not 21.350000381...) and
    # casting the stored double back to real gives the identical float4 bits.
    "real (float4 shortest)": "{c}::text::float8",
    "decimal text": "{c}::text",
    # numeric whose every value has at most 15 significant digits: the double holds it exactly
    # (float8 -> numeric prints 15 digits, so c::float8::numeric = c proves the round trip)
    "real (exact decimal)": "{c}::float8",
    # an unconstrained numeric whose snapshot values all fit (checked at export): a later value
    # that does not (a live-source validation) reads NULL, a difference, never a rounded twin
    "real (decimal by data)": "CASE WHEN {c}::float8::numeric = {c} THEN {c}::float8 END",
    "money as decimal text": "{c}::numeric::text",
    "text": "{c}::text",
    # char(n) as stored, padding included (a ::text cast would trim it); the binary wire form
    # of bpchar is the text's
    "padded text": "{c}",
    "blob": "{c}",
    "timestamp UTC text": (
        "CASE WHEN isfinite({c}) THEN ({c} AT TIME ZONE 'UTC')::text || '+00:00' ELSE {c}::text END"
    ),
    "json": "to_json({c})::text",
    "range json": (
        "CASE WHEN {c} IS NULL THEN NULL WHEN isempty({c}) THEN '{{\"empty\": true}}' "
        "ELSE jsonb_build_object('lower', lower({c}), 'upper', upper({c}), 'bounds', "
        "(CASE WHEN lower_inc({c}) THEN '[' ELSE '(' END) || "
        "(CASE WHEN upper_inc({c}) THEN ']' ELSE ')' END))::text END"
    ),
}

FLAG_TEXT: dict[str, str] = {
    "numeric_as_text": "numeric kept exact as decimal text because its values need more than "
    "15 significant digits: in SQLite comparisons, MIN/MAX and ORDER BY on it are text-wise "
    "('10.00' < '9.99') and arithmetic goes through a double; override the column with "
    "'real' (rounds to 15 digits) or 'scaled_integer' (exact units of 10^-scale, p <= 18)",
    "numeric_as_real": "numeric(p,s) with p <= 15 stored as REAL: every value has at most 15 "
    "significant digits, which a double holds exactly, so comparisons, ordering, MIN/MAX and "
    "arithmetic are numeric; the declared scale is not kept for display ('19.90' reads 19.9)",
    "numeric_real_by_data": "unconstrained numeric stored as REAL because every value in the "
    "source has at most 15 significant digits (checked at export); a later value with more "
    "digits is rounded by SQLite, and display scale is not kept ('1.50' reads 1.5)",
    "numeric_scaled": "numeric stored as an exact integer count of 10^-scale units "
    "(override scaled_integer): divide by 10^scale for the value; compare with scaled "
    "constants",
    "char_rtrim_collation": "char(n) kept with its padding and declared COLLATE RTRIM, so "
    "=, <, ORDER BY, GROUP BY and UNIQUE ignore trailing spaces as in Postgres; LIKE, "
    "length() and || still see them (override 'trimmed_text' trims on import instead)",
    "enum_order_text": "enum stored as its label with a CHECK of the labels; the labels' "
    "declaration order differs from text order, so ORDER BY/< on the column sort by text: "
    "sort by the CASE expression given here to get Postgres's order",
    "sequence_trigger": "sequence default on a column that is not the rowid: a trigger "
    "numbers rows inserted without it, continuing after Postgres's last value "
    "(sqlite_edgestore_sequences holds the position); INSERT ... RETURNING shows NULL for it "
    "(it is set after the row): read it back WHERE rowid = last_insert_rowid()",
    "money_as_text": "money converted to numeric and kept as decimal text (currency symbol "
    "and lc_monetary formatting dropped)",
    "float_nan_as_text": "SQLite has no NaN (it would store NULL): NaN is stored as the text "
    "'NaN'; +/-Infinity stay real; -0.0 becomes 0.0 (SQLite drops the sign of zero)",
    "float4_widened": "real (float4) stored as the double of its shortest decimal form",
    "timestamptz_utc": "timestamptz stored as UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]+00:00' "
    "(the instant is exact; Postgres never stored the original offset)",
    "timetz_text": "time with time zone kept as text with its offset; SQLite time functions "
    "ignore it",
    "interval_iso": "interval stored as ISO 8601 duration text (P1Y2M3DT4H); SQLite date "
    "arithmetic cannot use it directly",
    "array_as_json": "array stored as JSON text; lower bounds other than 1 are lost",
    "enum_as_text": "enum stored as text with a CHECK of its labels",
    "domain_base_type": "domain stored as its base type; its CHECK is kept where portable",
    "network_as_text": "inet/cidr/macaddr stored as text; no network operators in SQLite",
    "tsvector_as_text": "full-text value stored as its text form; not searchable as such",
    "bit_as_text": "bit string stored as text of 0/1",
    "composite_as_json": "composite value stored as a JSON object",
    "range_as_json": "range stored as JSON {lower, upper, bounds} or {empty: true}",
    "json_text": "json kept as the exact text written (whitespace, key order, duplicates)",
    "jsonb_canonical": "jsonb stored as Postgres's canonical JSON text",
    "xml_as_text": "xml stored as text",
    "geometric_as_text": "geometric value stored as its Postgres text form",
    "unknown_type_as_text": "type without a specific rule: stored as its Postgres text form",
    "date_text": "date/time stored as ISO 8601 text; 'infinity' and BC dates keep Postgres's "
    "spelling",
    "generated_materialised": "generated column: values copied, expression not recomputed "
    "in SQLite",
    "default_dropped": "default expression not portable to SQLite; dropped",
    "check_dropped": "CHECK constraint not portable to SQLite; dropped",
    "index_dropped": "index not portable to SQLite (kind or expression); dropped",
    "index_kind_changed": "hash index rebuilt as a b-tree index",
    "index_include_dropped": "INCLUDE columns of an index dropped (SQLite has none)",
    "exclusion_dropped": "exclusion constraint has no SQLite equivalent; dropped",
    "no_primary_key": "table has no primary key: moved and validated by content only; "
    "differing rows cannot be named by key",
    "partitioned_merged": "partitioned table moved as one table with all partitions' rows "
    "(the partitions' foreign keys and indexes merged into it)",
    "partition_objects_merged": "one foreign key or index on the merged table stands for "
    "these partition objects",
    "partition_unique_local": "a uniqueness that held within one partition only: kept as a "
    "plain index on the merged table (it may not hold across partitions)",
    "partition_check_dropped": "a partition's own CHECK (it constrained that partition's "
    "rows only) is not carried to the merged table",
    "nulls_not_distinct_dropped": "UNIQUE NULLS NOT DISTINCT is enforced as plain UNIQUE",
    "sequence_default_dropped": "nextval() default dropped: the column is not stored as an "
    "integer (a type override), or its sequence could not be read from the default",
    "collation_binary": "text compares and sorts by bytes (SQLite BINARY), not by the "
    "Postgres collation",
    "override_lossy": "type override to a lossier storage requested",
    "fk_not_valid": "foreign key was NOT VALID in Postgres: existing rows may violate it",
    "char_trimmed": "char(n) trimmed on import (override trimmed_text): comparisons match "
    "Postgres; the padding is gone",
    "varchar_length_unchecked": "varchar(n)/char(n) length limit not enforced by SQLite",
}

_INT = {"int2", "int4", "int8", "oid"}
_TEXT = {"text", "varchar", "name", "char", "citext", "uuid"}
_DATE = {"date", "time", "timestamp"}
_NET = {"inet", "cidr", "macaddr", "macaddr8"}
_GEOM = {"point", "line", "lseg", "box", "path", "polygon", "circle"}

# overrides a user may ask for per column (see migrate/type-overrides.example.toml)
OVERRIDES: dict[str, TypeRule] = {
    "text": TypeRule("TEXT", "text", "text"),
    "real": TypeRule(
        "REAL", "float8", "real (cast)", ("override_lossy",), float_column=True, comparable=False
    ),
    "integer": TypeRule("INTEGER", "int8", "integer", ("override_lossy",)),
    "blob": TypeRule("BLOB", "bytea", "bytes of text"),
    "json": TypeRule("TEXT", "text", "json", ("array_as_json",), comparable=False),
    "trimmed_text": TypeRule("TEXT", "text", "text", ("char_trimmed",)),
    # numeric(p,s) only: the plan fills in the scale (see scaled_rule)
    "scaled_integer": TypeRule("INTEGER", "int8", "scaled integer", ("numeric_scaled",)),
}
_NUMERIC_TYPMOD = re.compile(r"^numeric\((\d+)(?:,(\d+))?\)$")
REAL_DIGITS = 15  # significant decimal digits every double round-trips (DBL_DIG)


def numeric_typmod(sql: str) -> tuple[int, int] | None:
    """(precision, scale) of a ``numeric(p,s)`` type, None when unconstrained."""
    m = _NUMERIC_TYPMOD.match(sql.replace(" ", ""))
    return (int(m.group(1)), int(m.group(2) or 0)) if m else None


def scaled_rule(sql: str) -> TypeRule | None:
    """The scaled-integer storage of a numeric(p,s) with p <= 18 (None for other types)."""
    typmod = numeric_typmod(sql)
    if typmod is None or typmod[0] > 18:
        return None
    return TypeRule(
        "INTEGER", "int8", f"integer x10^{typmod[1]}", ("numeric_scaled",), comparable=False
    )


def numeric_rule(t: TypeInfo, fits_double: bool | None) -> TypeRule:
    """numeric: REAL when every value provably has <= 15 significant digits (by the declared
    precision, or for unconstrained numeric by the data: ``fits_double``), else exact text."""
    typmod = numeric_typmod(t.sql)
    if typmod is not None and typmod[0] <= REAL_DIGITS:
        return TypeRule("REAL", "float8", "real (exact decimal)", ("numeric_as_real",), True)
    if typmod is None and fits_double:
        return TypeRule("REAL", "float8", "real (decimal by data)", ("numeric_real_by_data",), True)
    return TypeRule("TEXT", "text", "decimal text", ("numeric_as_text",), comparable=False)


def map_type(t: TypeInfo, fits_double: bool | None = None) -> TypeRule:
    """The rule for one column type. Unknown types fall back to text, flagged.

    ``fits_double``: for an unconstrained numeric, whether every source value has at most 15
    significant digits (None: not known)."""
    rule = _map_base(t, fits_double)
    if t.domain is not None:
        rule = TypeRule(
            rule.sqlite_type,
            rule.wire,
            rule.storage,
            (*rule.flags, "domain_base_type"),
            rule.float_column,
            rule.comparable,
        )
    return rule


def _map_base(t: TypeInfo, fits_double: bool | None) -> TypeRule:
    n = t.name
    if t.category == "A":
        return TypeRule("TEXT", "text", "json", ("array_as_json",), comparable=False)
    if t.typtype == "e":
        return TypeRule("TEXT", "text", "text", ("enum_as_text",))
    if t.typtype == "c":
        return TypeRule("TEXT", "text", "json", ("composite_as_json",), comparable=False)
    if t.typtype == "r":
        return TypeRule("TEXT", "text", "range json", ("range_as_json",), comparable=False)
    if t.typtype == "m":
        return TypeRule("TEXT", "text", "json", ("range_as_json",), comparable=False)
    if n in _INT:
        return TypeRule("INTEGER", "int8", "integer")
    if n == "bool":
        return TypeRule("INTEGER", "int8", "boolean 0/1")
    if n == "float8":
        return TypeRule(
            "REAL", "float8", "real (float8)", ("float_nan_as_text",), float_column=True
        )
    if n == "float4":
        return TypeRule(
            "REAL",
            "float8",
            "real (float4 shortest)",
            ("float4_widened", "float_nan_as_text"),
            float_column=True,
        )
    if n == "numeric":
        return numeric_rule(t, fits_double)
    if n == "money":
        return TypeRule(
            "TEXT", "text", "money as decimal text", ("money_as_text",), comparable=False
        )
    if n == "bpchar":
        return TypeRule("TEXT", "text", "padded text", ("char_rtrim_collation",))
    if n in _TEXT:
        return TypeRule("TEXT", "text", "text")
    if n == "bytea":
        return TypeRule("BLOB", "bytea", "blob")
    if n in _DATE:
        return TypeRule("TEXT", "text", "text", ("date_text",))
    if n == "timestamptz":
        return TypeRule(
            "TEXT", "text", "timestamp UTC text", ("timestamptz_utc",), comparable=False
        )
    if n == "timetz":
        return TypeRule("TEXT", "text", "text", ("timetz_text",), comparable=False)
    if n == "interval":
        return TypeRule("TEXT", "text", "text", ("interval_iso",), comparable=False)
    if n == "json":
        return TypeRule("TEXT", "text", "text", ("json_text",), comparable=False)
    if n == "jsonb":
        return TypeRule("TEXT", "text", "text", ("jsonb_canonical",), comparable=False)
    if n in _NET:
        return TypeRule("TEXT", "text", "text", ("network_as_text",), comparable=False)
    if n in ("tsvector", "tsquery"):
        return TypeRule("TEXT", "text", "text", ("tsvector_as_text",), comparable=False)
    if n in ("bit", "varbit"):
        return TypeRule("TEXT", "text", "text", ("bit_as_text",))
    if n == "xml":
        return TypeRule("TEXT", "text", "text", ("xml_as_text",), comparable=False)
    if n in _GEOM:
        return TypeRule("TEXT", "text", "text", ("geometric_as_text",), comparable=False)
    return TypeRule("TEXT", "text", "text", ("unknown_type_as_text",), comparable=False)


def quote_ident(name: str) -> str:
    """Quote an identifier the same way for Postgres and SQLite."""
    return '"' + name.replace('"', '""') + '"'
