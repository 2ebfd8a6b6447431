"""edgestore: an edge-ready data layer on SQLite.

The public API is exactly ``__all__``; everything else is private and may change.
Importing this package does not import the web stack, click or an ASGI server.
"""

import typing as _typing

from ._version import __version__
from .config import Settings
from .errors import (
    AuthError,
    CacheError,
    ConfigError,
    ConstraintViolation,
    DatabaseBusyError,
    DatabaseError,
    EdgestoreError,
    InvalidRequest,
    MigrationError,
    MissingExtraError,
    NoSuchColumnError,
    NoSuchTableError,
    NotFoundError,
    OverloadedError,
    ParameterError,
    PermissionDenied,
    PoolTimeout,
    ProtocolError,
    ReadOnlyError,
    ReplicationError,
    SchemaError,
    SnapshotError,
    SourceError,
    SQLSyntaxError,
    StatementTimeout,
    StoreClosedError,
    TransactionTimeout,
    ValidationFailed,
    ValueTooLarge,
)

if _typing.TYPE_CHECKING:
    from .opening import connect, open
    from .storage import (
        Column,
        Description,
        PoolStats,
        Result,
        Row,
        Session,
        Store,
        SyncStore,
        TableDeps,
        Transaction,
    )
    from .tables import Filter, Page, Table

# The storage layer imports asyncio, which imports ssl (~6 MB of RSS): its names load on
# first use, so `import edgestore` stays light (bench/bench_storage.py import).
_LAZY = frozenset(
    {
        "Column",
        "Description",
        "PoolStats",
        "Result",
        "Row",
        "Session",
        "Store",
        "SyncStore",
        "TableDeps",
        "Transaction",
        "connect",
        "open",
    }
)
# The table model (edgestore.tables) sits on the storage layer: lazy for the same reason.
_LAZY_TABLES = frozenset({"Filter", "Page", "Table"})


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from . import opening, storage

        value = getattr(opening if name in ("open", "connect") else storage, name)
        globals()[name] = value
        return value
    if name in _LAZY_TABLES or name == "tables":
        # Importing the submodule sets ``tables`` here; ``from . import tables`` would ask
        # this function for it first.
        from .tables import Filter, Page, Table

        globals().update(Filter=Filter, Page=Page, Table=Table)
        return globals()[name]
    raise AttributeError(f"module 'edgestore' has no attribute {name!r}")


__all__ = [
    "AuthError",
    "CacheError",
    "Column",
    "ConfigError",
    "ConstraintViolation",
    "DatabaseBusyError",
    "DatabaseError",
    "Description",
    "EdgestoreError",
    "Filter",
    "InvalidRequest",
    "MigrationError",
    "MissingExtraError",
    "NoSuchColumnError",
    "NoSuchTableError",
    "NotFoundError",
    "OverloadedError",
    "Page",
    "ParameterError",
    "PermissionDenied",
    "PoolStats",
    "PoolTimeout",
    "ProtocolError",
    "ReadOnlyError",
    "ReplicationError",
    "Result",
    "Row",
    "SQLSyntaxError",
    "SchemaError",
    "Session",
    "Settings",
    "SnapshotError",
    "SourceError",
    "StatementTimeout",
    "Store",
    "StoreClosedError",
    "SyncStore",
    "Table",
    "TableDeps",
    "Transaction",
    "TransactionTimeout",
    "ValidationFailed",
    "ValueTooLarge",
    "__version__",
    "connect",
    "open",
]
