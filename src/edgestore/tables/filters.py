"""Typed row filters, and their text form ``col``, ``col__gte``, ``col__in`` shared by the
HTTP query string and the command line.

Column names are checked against the catalogue and quoted from it; values are always bound.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias, get_args

from ..errors import InvalidRequest
from ..storage.results import Value
from .catalog import TableInfo, quote_ident

__all__ = ["MAX_IN", "Filter", "Op", "Where", "filter_from_text", "where_sql"]

Op = Literal["eq", "ne", "gt", "gte", "lt", "lte", "like", "in", "isnull"]
_OPS: Mapping[str, str] = {
    "eq": "=",
    "ne": "!=",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "like": "LIKE",
}
_OP_NAMES: tuple[str, ...] = get_args(Op)
MAX_IN = 500
"""Most values one ``in`` filter may list (each is a bound parameter)."""


@dataclass(frozen=True, slots=True)
class Filter:
    """One condition on a column: ``Filter("price", "gte", 10)``.

    ``in`` takes a sequence of values, ``isnull`` a bool; the others one value.
    """

    column: str
    op: Op = "eq"
    value: Value | Sequence[Value] | bool = None


Where: TypeAlias = Mapping[str, Value] | Iterable[Filter]
"""Filters: a mapping of column to value (equality; ``None`` matches NULL) or Filter objects."""


def _filters(where: Where) -> Iterable[Filter]:
    if isinstance(where, Mapping):
        return (
            Filter(col, "isnull", True) if value is None else Filter(col, "eq", value)
            for col, value in where.items()
        )
    return where


def where_sql(t: TableInfo, where: Where) -> tuple[list[str], list[Value]]:
    """The WHERE terms (joined by AND) and their parameters."""
    terms: list[str] = []
    params: list[Value] = []
    for f in _filters(where):
        t.column(f.column)
        q = quote_ident(f.column)
        if f.op in _OPS:
            if isinstance(f.value, (list, tuple)):
                raise InvalidRequest(f"{f.column}__{f.op}: expected one value")
            terms.append(f"{q} {_OPS[f.op]} ?")
            params.append(f.value)  # type: ignore[arg-type]
        elif f.op == "in":
            if not isinstance(f.value, (list, tuple)):
                raise InvalidRequest(f"{f.column}__in: expected a list of values")
            if len(f.value) > MAX_IN:
                raise InvalidRequest(f"{f.column}__in: at most {MAX_IN} values")
            terms.append(f"{q} IN ({', '.join('?' * len(f.value))})")
            params.extend(f.value)
        elif f.op == "isnull":
            terms.append(f"{q} IS {'' if f.value else 'NOT '}NULL")
        else:
            raise InvalidRequest(f"{f.column}: unknown filter operator {f.op!r}")
    return terms, params


def filter_from_text(t: TableInfo, key: str, text: str) -> Filter:
    """A filter from its text form: ``col=v`` (equality), ``col__OP=v`` with OP one of eq,
    ne, gt, gte, lt, lte, like; ``col__in=a,b,c``; ``col__isnull=true|false``. Values are
    coerced to the column's type (``ColumnInfo.coerce``)."""
    col, op = key, "eq"
    if key not in t.columns and "__" in key:
        col, _, op = key.rpartition("__")
    column = t.column(col)
    if op in _OPS:
        return Filter(col, op, column.coerce(text))  # type: ignore[arg-type]
    if op == "in":
        items = text.split(",")
        if len(items) > MAX_IN:
            raise InvalidRequest(f"{key}: at most {MAX_IN} values")
        return Filter(col, "in", tuple(column.coerce(v) for v in items))
    if op == "isnull":
        low = text.lower()
        if low not in ("true", "false", "1", "0"):
            raise InvalidRequest(f"{key}: expected true or false")
        return Filter(col, "isnull", low in ("true", "1"))
    raise InvalidRequest(f"{key}: unknown filter operator {op!r} ({', '.join(_OP_NAMES)})")
