"""A partitioned table becomes one SQLite table: what its partitions carried comes along.

Postgres keeps foreign keys, indexes and CHECKs per partition (declared on each, or cloned from
the parent). The merged table gets the union of the partitions' foreign keys and indexes, one
of each (a partition's copy of the parent's own is the parent's); a uniqueness that held only
within one partition becomes a plain index (it may not hold across partitions), and a
partition's own CHECK (it constrains that partition's rows only) is dropped; both are named.
Every merged object names the partition objects it stands for. The partition bounds are listed
in the plan; where a single-column RANGE partitioning covers one contiguous range without a
DEFAULT partition, the plan offers the CHECK that keeps new rows inside it
(:func:`suggest_check`, evaluated by Postgres so the bounds are in the stored form).
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from typing import Any

from .catalog import CatalogConstraint, CatalogIndex, CatalogTable
from .typemap import quote_ident as q

__all__ = ["merge_partitions", "suggest_check"]

Flagged = tuple[str, str, str]  # (code, object, detail)


def _fk_key(c: CatalogConstraint) -> tuple[Any, ...]:
    return (
        tuple(c.columns),
        c.ref_schema,
        c.ref_table,
        tuple(c.ref_columns),
        c.on_update,
        c.on_delete,
        c.deferrable,
        c.deferred,
    )


def _ix_key(ix: CatalogIndex) -> tuple[Any, ...]:
    return (ix.method, tuple(ix.keys), tuple(ix.key_is_expr), tuple(ix.desc), ix.predicate)


def merge_partitions(t: CatalogTable) -> tuple[CatalogTable, list[Flagged]]:
    """``t`` with its partitions' foreign keys and indexes merged in, and the flags naming
    what was merged, demoted or dropped."""
    if not t.partitions:
        return t, []
    constraints = list(t.constraints)
    indexes = list(t.indexes)
    fks = {_fk_key(c): c.name for c in constraints if c.kind == "f"}
    uniques = {tuple(c.columns) for c in constraints if c.kind in ("p", "u")}
    ixs = {_ix_key(ix): ix.name for ix in indexes}
    stands_for: dict[str, list[str]] = {}
    flags: list[Flagged] = []
    for part in t.partitions:
        for con in part.constraints:
            obj = f"{part.name}.{con.name}"
            if con.kind == "f":
                key = _fk_key(con)
                if key not in fks:
                    fks[key] = con.name
                    constraints.append(con)
                stands_for.setdefault(fks[key], []).append(obj)
            elif con.kind in ("p", "u") and tuple(con.columns) not in uniques:
                ix = CatalogIndex(
                    con.name,
                    False,
                    "btree",
                    con.columns,
                    [False] * len(con.columns),
                    [False] * len(con.columns),
                    None,
                    0,
                    False,
                )
                if _ix_key(ix) not in ixs:
                    ixs[_ix_key(ix)] = ix.name
                    indexes.append(ix)
                flags.append(("partition_unique_local", obj, ", ".join(con.columns)))
            elif con.kind == "c":
                flags.append(("partition_check_dropped", obj, con.definition))
            elif con.kind == "x":
                flags.append(("exclusion_dropped", obj, con.definition))
        for ix in part.indexes:
            obj = f"{part.name}.{ix.name}"
            if ix.unique:
                flags.append(("partition_unique_local", obj, ", ".join(ix.keys)))
                ix = dataclasses.replace(ix, unique=False)
            key = _ix_key(ix)
            if key not in ixs:
                ixs[key] = ix.name
                indexes.append(ix)
            stands_for.setdefault(ixs[key], []).append(obj)
    for name, objs in stands_for.items():
        flags.append(("partition_objects_merged", f"{t.name}.{name}", ", ".join(objs)))
    return dataclasses.replace(t, constraints=constraints, indexes=indexes), flags


_RANGE_KEY = re.compile(r'^RANGE \(("?)([^",()]+)\1\)$')
_RANGE_BOUND = re.compile(r"^FOR VALUES FROM \((.+)\) TO \((.+)\)$")


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(value)


def suggest_check(
    conn: Any, key: str, bounds: list[str], column: str, expr: str, pg_type: str
) -> str | None:
    """The CHECK a contiguous single-column RANGE partitioning implies, in SQLite's terms.

    ``expr`` is the column's export expression: each bound goes through it in Postgres, so the
    CHECK compares with exactly the values the column stores. None when the partitioning is
    not a single-column range, has a DEFAULT partition, or has gaps.
    """
    m = _RANGE_KEY.match(key)
    if m is None or m.group(2) != column or not bounds:
        return None
    ranges: list[tuple[Any, Any]] = []
    for bound in bounds:
        b = _RANGE_BOUND.match(bound)
        if b is None:  # DEFAULT (or a multi-column bound): any value may come
            return None
        pair: list[Any] = []
        for lit in b.groups():
            if lit in ("MINVALUE", "MAXVALUE"):
                pair.append(None)
                continue
            sql = "SELECT " + expr.replace(q(column), f"(({lit})::{pg_type})")
            pair.append(conn.execute(sql).fetchone()[0])
        ranges.append((pair[0], pair[1]))
    try:
        ranges.sort(key=lambda r: (r[0] is not None, r[0]))
    except TypeError:
        return None
    for (_, upper), (lower, _) in itertools.pairwise(ranges):
        if upper is None or upper != lower:
            return None
    low, high = ranges[0][0], ranges[-1][1]
    parts = []
    if low is not None:
        parts.append(f"{q(column)} >= {_literal(low)}")
    if high is not None:
        parts.append(f"{q(column)} < {_literal(high)}")
    return " AND ".join(parts) or None
