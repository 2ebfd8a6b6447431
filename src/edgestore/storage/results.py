"""Plain data returned by the store: columns, rows, results, table dependencies, descriptions.

These are built on the hot path of every query, so they are slotted classes that keep the raw
tuples SQLite returned and only build per-row objects when asked to.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

__all__ = ["Column", "Description", "Params", "Result", "Row", "TableDeps", "Value"]

Value: TypeAlias = int | float | str | bytes | None
"""A SQLite value as Python sees it."""
Params: TypeAlias = Sequence[Value] | Mapping[str, Value] | None
"""Positional parameters (``?``) or named ones (keys without their ``:``/``@``/``$`` prefix)."""


@dataclass(frozen=True, slots=True)
class Column:
    """A result column: its name and the declared type of the table column behind it, if any."""

    name: str
    decltype: str | None


class Row:
    """One result row; index it by position (``row[0]``) or by column name (``row["id"]``)."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: tuple[Value, ...], index: Mapping[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str) -> Value:
        if isinstance(key, str):
            return self._values[self._index[key]]
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Value]:
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Row):
            return self._values == other._values
        if isinstance(other, tuple):
            return self._values == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values)

    def __repr__(self) -> str:
        return f"Row({self.as_dict()!r})"

    def keys(self) -> list[str]:
        """Column names in order."""
        return list(self._index)

    def values(self) -> tuple[Value, ...]:
        """The raw values in column order."""
        return self._values

    def as_dict(self) -> dict[str, Value]:
        """``{column name: value}``; with duplicate names the last column wins."""
        values = self._values
        return {name: values[i] for name, i in self._index.items()}


class Result:
    """The outcome of one statement.

    ``values`` holds the rows as plain tuples (cheapest to build and to encode); ``rows`` wraps
    them in :class:`Row` objects on first access.
    """

    __slots__ = (
        "_index",
        "_rows",
        "cached",
        "columns",
        "last_insert_rowid",
        "rows_affected",
        "truncated",
        "values",
    )

    def __init__(
        self,
        columns: tuple[Column, ...] = (),
        values: list[tuple[Value, ...]] | None = None,
        *,
        rows_affected: int = 0,
        last_insert_rowid: int | None = None,
        truncated: bool = False,
        cached: bool = False,
    ) -> None:
        self.columns = columns
        self.values: list[tuple[Value, ...]] = [] if values is None else values
        self.rows_affected = rows_affected
        self.last_insert_rowid = last_insert_rowid
        self.truncated = truncated
        self.cached = cached
        self._rows: list[Row] | None = None
        self._index: dict[str, int] | None = None

    @property
    def column_names(self) -> list[str]:
        """The column names in order."""
        return [c.name for c in self.columns]

    def _name_index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {c.name: i for i, c in enumerate(self.columns)}
        return self._index

    @property
    def rows(self) -> list[Row]:
        """The rows as :class:`Row` objects (built once, on first access)."""
        if self._rows is None:
            index = self._name_index()
            self._rows = [Row(v, index) for v in self.values]
        return self._rows

    def as_dicts(self) -> list[dict[str, Value]]:
        """The rows as ``{column: value}`` dicts (duplicate column names: the last one wins)."""
        names = [c.name for c in self.columns]
        return [dict(zip(names, v, strict=True)) for v in self.values]

    def scalar(self) -> Value:
        """The first column of the first row, or ``None`` when there is no row."""
        return self.values[0][0] if self.values and self.values[0] else None

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __repr__(self) -> str:
        return (
            f"Result(columns={[c.name for c in self.columns]!r}, rows={len(self.values)}, "
            f"rows_affected={self.rows_affected}, last_insert_rowid={self.last_insert_rowid}, "
            f"truncated={self.truncated}, cached={self.cached})"
        )


@dataclass(frozen=True, slots=True)
class TableDeps:
    """The tables a statement reads and writes, as SQLite's authorizer reported them.

    Views count as read together with their base tables; writes done by triggers count as
    writes of the statement that fires them. ``schema_change`` is set for CREATE, DROP and
    ALTER statements.
    """

    reads: frozenset[str]
    writes: frozenset[str]
    readonly: bool
    schema_change: bool


@dataclass(frozen=True, slots=True)
class Description:
    """What a statement would return and take, without running it (for Hrana ``describe``).

    ``params`` holds each parameter's name with its prefix (``:name``, ``@name``, ``$name``)
    or ``None`` for a positional one.
    """

    columns: tuple[Column, ...]
    params: tuple[str | None, ...]
    is_readonly: bool
    is_explain: bool
