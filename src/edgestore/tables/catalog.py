"""What the table model knows about the schema: tables, columns, primary keys, indexes.

Read from SQLite's own catalogue (``pragma_table_list``/``table_info``/``index_list``), cached,
and dropped whenever the store reports that everything changed (a schema change or an
external write) or a caller names a table the cache does not know. Caller input is only ever
compared against these names; identifiers in generated SQL come from here, quoted.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import InvalidRequest, NotFoundError

if TYPE_CHECKING:
    from ..storage import Store
    from ..storage.results import Value

__all__ = ["Catalog", "ColumnInfo", "IndexInfo", "TableInfo", "quote_ident"]

_INT_TEXT = re.compile(r"-?[0-9]{1,19}\Z")


def quote_ident(name: str) -> str:
    """An SQL identifier, double-quoted."""
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class ColumnInfo:
    """One column as ``PRAGMA table_info`` reports it."""

    name: str
    type: str
    notnull: bool
    default: str | None
    pk: int
    """1-based position in the primary key, 0 if not part of it."""

    @property
    def integer_affinity(self) -> bool:
        return "INT" in self.type.upper()

    def coerce(self, text: str) -> Value:
        """A value given as text (a query string, a command line) for this column: decimal
        text becomes an int for INTEGER columns (so a cache key and the comparison are exact);
        anything else stays text and SQLite's affinity rules apply."""
        if self.integer_affinity and _INT_TEXT.match(text):
            value = int(text)
            if -(2**63) <= value < 2**63:
                return value
        return text


_ROWID = ColumnInfo("rowid", "INTEGER", True, None, 1)


@dataclass(frozen=True, slots=True)
class IndexInfo:
    """One index (including the automatic ones behind PRIMARY KEY and UNIQUE)."""

    name: str
    columns: tuple[str | None, ...]
    """Indexed columns in order; ``None`` for an expression."""
    unique: bool


@dataclass(slots=True)
class TableInfo:
    """One table: its columns, key and indexes."""

    name: str
    columns: dict[str, ColumnInfo]
    pk: tuple[str, ...]
    """Primary key columns; ``("rowid",)`` for a table without a declared primary key."""
    rowid_key: bool
    """True when the key is the implicit rowid (then rows carry a ``rowid`` field)."""
    without_rowid: bool
    indexed: frozenset[str]
    """Columns that lead some index (or the primary key): the ones rows may be ordered by."""
    indexes: tuple[IndexInfo, ...] = ()
    sql: dict[str, str] = field(default_factory=dict)
    """Generated statements for this table, memoised by purpose."""

    @property
    def quoted(self) -> str:
        return quote_ident(self.name)

    def column(self, name: str) -> ColumnInfo:
        """The column ``name`` (``rowid`` too when it is the key); InvalidRequest if unknown."""
        col = self.columns.get(name)
        if col is None:
            if name == "rowid" and self.rowid_key:
                return _ROWID
            raise InvalidRequest(f"table {self.name!r} has no column {name!r}")
        return col

    def coerce(self, column: str, text: str) -> Value:
        return self.column(column).coerce(text)

    def key_values(self, values: list[Value] | tuple[Value, ...]) -> list[Value]:
        """The primary key values of a row key: one per key column, text coerced."""
        if len(values) != len(self.pk):
            raise InvalidRequest(
                f"table {self.name!r} has a {len(self.pk)}-column primary key "
                f"({', '.join(self.pk)}); got {len(values)} value(s)"
            )
        return [
            self.coerce(col, v) if isinstance(v, str) else v
            for col, v in zip(self.pk, values, strict=True)
        ]

    def select_list(self) -> str:
        return "rowid, *" if self.rowid_key else "*"


_TABLES_SQL = (
    "SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type = 'table' "
    "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_edgestore%' ESCAPE '\\' "
    "ORDER BY name"
)
_COLUMNS_SQL = 'SELECT name, type, "notnull", dflt_value, pk FROM pragma_table_info(?) ORDER BY cid'
_INDEXES_SQL = (
    'SELECT il.name, il."unique", ii.name FROM pragma_index_list(?1) AS il, '
    "pragma_index_info(il.name) AS ii ORDER BY il.name, ii.seqno"
)

_shared: weakref.WeakKeyDictionary[Store, Catalog] = weakref.WeakKeyDictionary()


class Catalog:
    """Table metadata of one store, refreshed on schema change."""

    def __init__(self) -> None:
        self._tables: dict[str, TableInfo] | None = None
        self._unsubscribe: Callable[[], None] | None = None

    @classmethod
    def of(cls, store: Store) -> Catalog:
        """The catalogue shared by every library ``Table`` of ``store`` (attached to it)."""
        catalog = _shared.get(store)
        if catalog is None:
            catalog = _shared[store] = cls()
            catalog.attach(store)
        return catalog

    def attach(self, store: Store) -> None:
        """Drop the cache whenever ``store`` says everything changed."""

        def on_change(tables: frozenset[str] | None) -> None:
            if tables is None:
                self._tables = None

        self._unsubscribe = store.versions.subscribe(on_change)

    def detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._tables = None

    async def tables(self, store: Store) -> dict[str, TableInfo]:
        """Every user table by name (edgestore's own and SQLite's internal ones left out)."""
        if self._tables is None:
            self._tables = await self._load(store)
        return self._tables

    async def table(self, store: Store, name: str) -> TableInfo:
        """One table; NotFoundError if it does not exist."""
        tables = await self.tables(store)
        info = tables.get(name)
        if info is None:
            # Maybe created since we looked: read the catalogue once more before saying no.
            self._tables = None
            info = (await self.tables(store)).get(name)
            if info is None:
                raise NotFoundError(f"no such table: {name}")
        return info

    async def _load(self, store: Store) -> dict[str, TableInfo]:
        out: dict[str, TableInfo] = {}
        listing = await store.query(_TABLES_SQL, cache=False)
        for name, wr in listing.values:
            assert isinstance(name, str)
            cols_result = await store.query(_COLUMNS_SQL, [name], cache=False)
            columns: dict[str, ColumnInfo] = {}
            for cname, ctype, notnull, default, pk in cols_result.values:
                columns[str(cname)] = ColumnInfo(
                    name=str(cname),
                    type=str(ctype or ""),
                    notnull=bool(notnull),
                    default=None if default is None else str(default),
                    pk=int(pk or 0),
                )
            pk_cols = tuple(
                c.name for c in sorted(columns.values(), key=lambda c: c.pk) if c.pk > 0
            )
            rowid_key = not pk_cols
            if rowid_key:
                pk_cols = ("rowid",)
            indexes = _indexes((await store.query(_INDEXES_SQL, [name], cache=False)).values)
            leading = {i.columns[0] for i in indexes}
            indexed = frozenset(c for c in leading if c is not None) | {pk_cols[0]}
            out[name] = TableInfo(
                name=name,
                columns=columns,
                pk=pk_cols,
                rowid_key=rowid_key,
                without_rowid=bool(wr),
                indexed=indexed,
                indexes=indexes,
            )
        return out


def _indexes(rows: list[tuple[Value, ...]]) -> tuple[IndexInfo, ...]:
    """IndexInfo from (index name, unique, column) rows ordered by index and position."""
    grouped: dict[str, tuple[bool, list[str | None]]] = {}
    for index, unique, column in rows:
        entry = grouped.setdefault(str(index), (bool(unique), []))
        entry[1].append(None if column is None else str(column))
    return tuple(IndexInfo(n, tuple(cols), u) for n, (u, cols) in grouped.items())
