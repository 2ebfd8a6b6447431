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
        connect,
        open,
    )

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


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from . import storage

        value = getattr(storage, name)
        globals()[name] = value
        return value
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
    "InvalidRequest",
    "MigrationError",
    "MissingExtraError",
    "NoSuchColumnError",
    "NoSuchTableError",
    "NotFoundError",
    "OverloadedError",
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
    "TableDeps",
    "Transaction",
    "TransactionTimeout",
    "ValidationFailed",
    "ValueTooLarge",
    "__version__",
    "connect",
    "open",
]
