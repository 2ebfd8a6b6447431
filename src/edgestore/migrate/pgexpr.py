"""Translating the small Postgres expressions that SQLite can also evaluate.

CHECK constraints, index key expressions, partial-index predicates and column defaults come out
of Postgres deparsed (``pg_get_constraintdef``/``pg_get_expr``). A conservative rewrite handles
what both engines mean the same way -- comparisons, AND/OR/NOT, IN lists (Postgres writes
``= ANY (ARRAY[...])``), IS [NOT] NULL, a few scalar functions, literals with harmless casts --
and returns ``None`` for anything else, which the plan flags as dropped. Expressions that touch a
column stored in a form that compares differently in SQLite (numeric as text, timestamptz, json,
...) are refused as well. The planner then test-compiles every translated expression in SQLite.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from decimal import Decimal, InvalidOperation

__all__ = ["translate_default", "translate_expr"]

_SAFE_CASTS = {
    "text",
    "character varying",
    "character",
    "bpchar",
    "varchar",
    "name",
    "integer",
    "bigint",
    "smallint",
    "double precision",
    "real",
    "boolean",
    "date",
    "timestamp without time zone",
    "time without time zone",
    "numeric",
}
_CAST = re.compile(
    r"::(\"?[a-z_][a-z0-9_]*\"?(?: varying| precision| without time zone| with time zone)?)"
    r"(?:\(\d+(?:\s*,\s*\d+)?\))?(\[\])?"
)
_ARRAY_CAST = re.compile(r"\(ARRAY\[(.*?)\]\)::[a-z ]+\[\]")
_ANY = re.compile(r"=\s*ANY\s*\(\s*ARRAY\[(.*?)\]\s*\)")
_ALL = re.compile(r"<>\s*ALL\s*\(\s*ARRAY\[(.*?)\]\s*\)")
_FUNC = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_WORD = re.compile(r"\"((?:[^\"]|\"\")+)\"|\b([A-Za-z_][A-Za-z0-9_]*)\b")
_STRING = re.compile(r"'(?:[^']|'')*'")
_ALLOWED_FUNCS = {
    "lower",
    "upper",
    "length",
    "abs",
    "coalesce",
    "nullif",
    "substr",
    "trim",
    "ltrim",
    "rtrim",
    "replace",
    "in",
    "and",
    "or",
    "not",
}
_RENAMED_FUNCS = {"char_length": "length", "character_length": "length", "btrim": "trim"}
_KEYWORDS = {
    "and",
    "or",
    "not",
    "is",
    "null",
    "in",
    "between",
    "true",
    "false",
    "case",
    "when",
    "then",
    "else",
    "end",
    "like",
    "escape",
    "collate",
}
_FORBIDDEN = ("~", "@", "&&", "#", "ARRAY", "ANY", "ALL", "SIMILAR", "E'", "$")


def _strip_casts(sql: str, extra: Collection[str] = ()) -> str | None:
    bad = False

    def repl(m: re.Match[str]) -> str:
        nonlocal bad
        name = m.group(1).strip('"')
        if (name not in _SAFE_CASTS and name not in extra) or m.group(2):
            bad = True
        return ""

    out = _CAST.sub(repl, sql)
    return None if bad or "::" in out else out


def translate_expr(sql: str, columns: Mapping[str, bool]) -> str | None:
    """A SQLite spelling of a Postgres boolean/scalar expression, or ``None``.

    ``columns`` maps each column name of the table to whether comparisons on it mean the same
    in SQLite (typemap.TypeRule.comparable).
    """
    sql = _ARRAY_CAST.sub(r"ARRAY[\1]", sql.strip())
    out = _strip_casts(sql)
    if out is None:
        return None
    out = _ANY.sub(r"IN (\1)", out)
    out = _ALL.sub(r"NOT IN (\1)", out)
    # judge the expression with string literals blanked out: their content is data, not SQL
    bare = _STRING.sub("''", out)
    if any(tok in bare for tok in _FORBIDDEN):
        return None
    for m in _FUNC.finditer(bare):
        name = m.group(1).lower()
        if name not in _ALLOWED_FUNCS and name not in _RENAMED_FUNCS and name not in columns:
            return None
    for m in _WORD.finditer(bare):
        name = m.group(1).replace('""', '"') if m.group(1) is not None else m.group(2)
        if name in columns:
            if not columns[name]:
                return None
        elif m.group(1) is not None:
            return None  # a quoted name that is not a column of this table
        elif name.lower() not in _KEYWORDS | _ALLOWED_FUNCS | _RENAMED_FUNCS.keys():
            return None
    for old, new in _RENAMED_FUNCS.items():
        out = re.sub(rf"\b{old}\s*\(", f"{new}(", out)
    return out


_UUID_SQL = (
    "(lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || "
    "substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1)"
    " || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))))"
)
_NOW = {"now()", "current_timestamp", "statement_timestamp()", "transaction_timestamp()"}
_LITERAL = re.compile(r"^(?:'(?:[^']|'')*'|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|true|false|null)$")


def translate_default(
    sql: str, storage: str, pg_type: str, casts: Collection[str] = ()
) -> str | None:
    """A SQLite DEFAULT clause body for a Postgres default, or ``None`` when not portable.

    ``storage`` is the typemap storage name: decimal-text columns get quoted defaults (SQLite
    would otherwise turn ``0.00`` into the text ``'0.0'``), booleans become 0/1, scaled
    integers their count of units. ``casts``: further type names a literal may be cast to
    (an enum's own type: ``'G'::mpaa_rating``).
    """
    low = sql.strip().lower()
    if low in _NOW or low.startswith("now()") or low == "localtimestamp":
        if storage == "timestamp UTC text":
            return "(strftime('%Y-%m-%d %H:%M:%f+00:00', 'now'))"
        if pg_type.startswith("timestamp"):
            return "(strftime('%Y-%m-%d %H:%M:%f', 'now'))"
        return None
    if low in ("current_date", "('now'::text)::date"):
        return "CURRENT_DATE" if pg_type == "date" else None
    if low in ("gen_random_uuid()", "uuid_generate_v4()"):
        return _UUID_SQL
    out = _strip_casts(sql.strip(), casts)
    if out is None:
        return None
    while out.startswith("(") and out.endswith(")"):
        out = out[1:-1].strip()
    if not _LITERAL.match(out):
        return None
    lowered = out.lower()
    if storage == "boolean 0/1":
        return {"true": "1", "false": "0", "null": "NULL"}.get(lowered)
    if lowered in ("true", "false"):
        return None
    if storage in ("decimal text", "money as decimal text") and not out.startswith("'"):
        return "NULL" if lowered == "null" else f"'{out}'"
    if storage.startswith("integer x10^"):
        try:
            units = Decimal(out.strip("'")) * 10 ** int(storage[12:])
        except InvalidOperation:
            return None
        return str(int(units)) if units == units.to_integral_value() else None
    numeric = (
        "integer",
        "real (float8)",
        "real (float4 shortest)",
        "real (exact decimal)",
        "real (decimal by data)",
    )
    if out.startswith("'") and storage in numeric:
        inner = out[1:-1]
        try:
            float(inner)
        except ValueError:
            return None
        if storage == "integer":
            return inner if re.fullmatch(r"-?\d+", inner) else None
        special = {"nan": "'NaN'", "infinity": "9e999", "-infinity": "-9e999"}
        return special.get(inner.lower(), inner)
    return out
