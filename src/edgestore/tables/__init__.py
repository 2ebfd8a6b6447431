"""The table model: tables of a store as resources, for the library, the HTTP API and the CLI.

Typed filters, ordering by indexed columns, keyset cursors, composite keys, upsert, and the
catalogue (tables, columns, indexes, primary keys) cached until the schema changes. Above
storage; the web layer only parses query strings into these calls and renders their results.
"""

from .catalog import Catalog, ColumnInfo, IndexInfo, TableInfo
from .filters import Filter, Op, Where, filter_from_text
from .paging import RawPage, parse_order, read_page
from .rows import delete_row, insert_rows, read_row, update_row
from .table import Page, Table, table_names

__all__ = [
    "Catalog",
    "ColumnInfo",
    "Filter",
    "IndexInfo",
    "Op",
    "Page",
    "RawPage",
    "Table",
    "TableInfo",
    "Where",
    "delete_row",
    "filter_from_text",
    "insert_rows",
    "parse_order",
    "read_page",
    "read_row",
    "table_names",
    "update_row",
]
