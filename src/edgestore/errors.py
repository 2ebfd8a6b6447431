"""Every error edgestore raises on purpose.

All of them derive from :class:`EdgestoreError`, which carries a human-readable ``detail``
(safe to show to a client) and, where there is one, the original exception as ``__cause__``.
The web layer maps each class to one HTTP status in a single place (``edgestore.web.errors``);
the Hrana layer maps them to libSQL error codes.

The tree::

    EdgestoreError
    ├── ConfigError                  invalid settings, config file or environment variable
    ├── MissingExtraError            an optional feature used without its pip extra installed
    ├── StoreClosedError             the store (or a transaction) was used after close()
    ├── PoolTimeout                  no connection became free within the pool timeout
    ├── TransactionTimeout           an explicit transaction outlived its time bound
    ├── DatabaseError                SQLite said no; carries ``code`` (extended code name)
    │   ├── SQLSyntaxError           the statement does not parse / is not one statement
    │   ├── NoSuchTableError         a table or view that does not exist
    │   ├── NoSuchColumnError        a column that does not exist
    │   ├── ConstraintViolation      UNIQUE, NOT NULL, CHECK, FOREIGN KEY, PRIMARY KEY
    │   ├── DatabaseBusyError        the database stayed locked past busy_timeout
    │   ├── ReadOnlyError            a write sent where only reads are allowed
    │   ├── StatementTimeout         a statement was interrupted after its time bound
    │   ├── ParameterError           parameters that cannot be bound: a missing name, a wrong
    │   │                            count, an unsupported type, an integer outside 64 bits
    │   ├── SchemaError              a schema file failed to apply (names the file)
    │   ├── InvalidTextError         a stored TEXT value is not valid UTF-8, so it cannot be
    │   │                            returned as text (read it as a BLOB)
    │   └── StorageFault             the file, disk or memory failed (SQLITE_FULL, IOERR,
    │                                CORRUPT, NOMEM, CANTOPEN, NOTADB): the server's fault
    ├── CacheError
    │   └── ValueTooLarge            a value larger than the whole cache budget
    ├── OverloadedError              refused under memory pressure; retry after ``retry_after``
    ├── AuthError                    missing or invalid credentials
    │   └── PermissionDenied         valid credentials, insufficient role
    │       └── OriginRefused        a browser page of another origin tried to write
    ├── NotFoundError                an unknown table, row, key or resource
    ├── InvalidRequest               a request that is well-formed but not acceptable
    │   ├── ResponseTooLarge         a result larger than max_response_bytes (or a value)
    │   ├── UnsupportedMediaType     a request body that is not JSON where JSON is taken
    │   ├── MisdirectedRequest       a Host header that does not name this server
    │   └── RequestTimeout           the request body did not arrive in time
    ├── ProtocolError                a libSQL (Hrana) protocol violation; carries ``code``
    ├── ReplicationError             the sync protocol or a replica could not proceed
    │   ├── EndOfGeneration          sync pull: no more frames in that generation (a protocol
    │   │                            answer: 400 + {"generation": N}, as libSQL servers send)
    │   ├── SyncPushRefused          POST /sync (libsql offline-write push) is not supported
    │   └── ReplicaLagging           a replica is further behind than allowed, or did not reach
    │                                a requested replication position in time
    └── MigrationError               the Postgres pipeline could not proceed
        ├── SourceError              the source database is unreachable or refuses us
        ├── SnapshotError            a snapshot is corrupt, incomplete or of a newer format
        └── ValidationFailed         source and target differ (the report says where)
"""

from __future__ import annotations

__all__ = [
    "AuthError",
    "CacheError",
    "ConfigError",
    "ConstraintViolation",
    "DatabaseBusyError",
    "DatabaseError",
    "EdgestoreError",
    "EndOfGeneration",
    "InvalidRequest",
    "InvalidTextError",
    "MigrationError",
    "MisdirectedRequest",
    "MissingExtraError",
    "NoSuchColumnError",
    "NoSuchTableError",
    "NotFoundError",
    "OriginRefused",
    "OverloadedError",
    "ParameterError",
    "PermissionDenied",
    "PoolTimeout",
    "ProtocolError",
    "ReadOnlyError",
    "ReplicaLagging",
    "ReplicationError",
    "RequestTimeout",
    "ResponseTooLarge",
    "SQLSyntaxError",
    "SchemaError",
    "SnapshotError",
    "SourceError",
    "StatementTimeout",
    "StorageFault",
    "StoreClosedError",
    "SyncPushRefused",
    "TransactionTimeout",
    "UnsupportedMediaType",
    "ValidationFailed",
    "ValueTooLarge",
]


class EdgestoreError(Exception):
    """Base of every edgestore error. ``detail`` is a message safe to show to clients."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ConfigError(EdgestoreError):
    """A setting, config file or ``EDGESTORE_*`` variable is invalid."""


class MissingExtraError(EdgestoreError):
    """An optional feature was used without its extra installed; the message names the extra."""

    def __init__(self, feature: str, extra: str) -> None:
        super().__init__(f"{feature} needs the '{extra}' extra: pip install 'edgestore[{extra}]'")
        self.extra = extra


class StoreClosedError(EdgestoreError):
    """The store or transaction was used after it was closed."""


class PoolTimeout(EdgestoreError):
    """No connection became available within the pool's ``timeout``."""


class TransactionTimeout(EdgestoreError):
    """An explicit transaction was open longer than its bound and was rolled back."""


class DatabaseError(EdgestoreError):
    """SQLite refused a statement.

    ``code`` is SQLite's extended result code name (for example ``SQLITE_CONSTRAINT_UNIQUE``);
    ``base_code`` is the primary code name (``SQLITE_CONSTRAINT``), which is what libSQL clients
    expect to see.
    """

    def __init__(self, detail: str, *, code: str = "SQLITE_ERROR", base_code: str | None = None):
        super().__init__(detail)
        self.code = code
        self.base_code = base_code or code


class SQLSyntaxError(DatabaseError):
    """The SQL does not parse, or more than one statement was given where one is expected."""


class NoSuchTableError(DatabaseError):
    """The statement names a table or view that does not exist."""


class NoSuchColumnError(DatabaseError):
    """The statement names a column that does not exist."""


class ConstraintViolation(DatabaseError):
    """A UNIQUE, NOT NULL, CHECK, PRIMARY KEY or FOREIGN KEY constraint failed."""


class DatabaseBusyError(DatabaseError):
    """The database stayed locked for longer than ``busy_timeout``."""


class ReadOnlyError(DatabaseError):
    """A write was attempted where only reads are allowed (a read-only path or role)."""


class StatementTimeout(DatabaseError):
    """A statement ran past its time bound and was interrupted."""


class ParameterError(DatabaseError):
    """The statement's parameters cannot be bound; ``parameter`` names the one at fault
    (``:id``, ``?2``), or is None when the count or the container is wrong.

    ``code`` is ``SQLITE_RANGE`` for a missing parameter or a wrong count, ``SQLITE_MISMATCH``
    for a value of an unsupported type or an integer outside the signed 64-bit range.
    """

    def __init__(
        self, detail: str, *, parameter: str | None = None, code: str = "SQLITE_RANGE"
    ) -> None:
        super().__init__(detail, code=code)
        self.parameter = parameter


class SchemaError(DatabaseError):
    """A schema file failed to apply; ``detail`` names the file."""


class InvalidTextError(DatabaseError):
    """A TEXT value the statement returns is not valid UTF-8 (SQLite stores what it is given,
    e.g. ``CAST(x'ff' AS TEXT)``), so it cannot be returned as text. ``CAST(col AS BLOB)``
    reads its bytes."""


class StorageFault(DatabaseError):
    """The database file, the disk or memory failed, not the statement: SQLITE_FULL, IOERR,
    CORRUPT, NOMEM, CANTOPEN or NOTADB. ``transient`` tells whether a retry can help (a full
    disk or an I/O error may clear; a corrupt file will not)."""

    def __init__(
        self, detail: str, *, code: str = "SQLITE_IOERR", base_code: str | None = None
    ) -> None:
        super().__init__(detail, code=code, base_code=base_code)
        self.transient = self.base_code not in ("SQLITE_CORRUPT", "SQLITE_NOTADB")


class CacheError(EdgestoreError):
    """A cache operation could not be done."""


class ValueTooLarge(CacheError):
    """The value is larger than the whole cache budget and was refused; the cache is untouched."""


class OverloadedError(EdgestoreError):
    """Non-essential work refused under memory pressure; retry after ``retry_after`` seconds."""

    def __init__(self, detail: str, *, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class AuthError(EdgestoreError):
    """Credentials are missing or invalid."""


class PermissionDenied(AuthError):
    """The credentials are valid but their role does not allow this."""


class OriginRefused(PermissionDenied):
    """A web page of an origin that is not allowed sent a write or opened a WebSocket."""


class NotFoundError(EdgestoreError):
    """An unknown table, row, cache key or resource."""


class InvalidRequest(EdgestoreError):
    """The request is well-formed but cannot be accepted (bad filter, unknown column, ...)."""


class ResponseTooLarge(InvalidRequest):
    """A result would be larger than ``max_response_bytes``: it was stopped as its rows were
    read, before it could fill memory. ``code`` is the libSQL server's name for it."""

    code = "RESPONSE_TOO_LARGE"


class UnsupportedMediaType(InvalidRequest):
    """A request body in a format the endpoint does not take (JSON endpoints take JSON)."""


class MisdirectedRequest(InvalidRequest):
    """The Host header names a server this one is not (refused against DNS rebinding)."""


class RequestTimeout(InvalidRequest):
    """The client did not send its request body within ``body_read_timeout``."""


class ProtocolError(EdgestoreError):
    """A libSQL (Hrana) protocol violation; ``code`` is the libSQL error code."""

    def __init__(self, detail: str, *, code: str = "PROTOCOL_ERROR") -> None:
        super().__init__(detail)
        self.code = code


class ReplicationError(EdgestoreError):
    """The sync protocol or a replica could not proceed."""


class EndOfGeneration(ReplicationError):
    """Sync pull: nothing after the requested frame in that generation.

    ``generation`` is the primary's current generation; the web layer answers status 400 with
    body ``{"generation": N}``, which is how libSQL clients learn to move to the next one.
    """

    def __init__(self, current_generation: int) -> None:
        super().__init__(f"no more frames; the current generation is {current_generation}")
        self.generation = current_generation


class SyncPushRefused(ReplicationError):
    """``POST /sync/...`` (libsql offline-write push) is not supported by edgestore."""

    def __init__(self) -> None:
        super().__init__(
            "edgestore does not accept pushed WAL frames (libsql offline writes); open the "
            "replica without offline mode so that its writes are sent to the primary over Hrana"
        )


class ReplicaLagging(ReplicationError):
    """A replica is behind by more than allowed, or did not reach a requested position in time."""

    def __init__(self, detail: str, *, retry_after: int = 1) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class MigrationError(EdgestoreError):
    """The Postgres pipeline could not proceed."""


class SourceError(MigrationError):
    """The source database is unreachable, refused the credentials or lacks a permission."""


class SnapshotError(MigrationError):
    """A snapshot is corrupt, incomplete, or written by a newer format version."""


class ValidationFailed(MigrationError):
    """Source and target differ; the validation report says which tables and keys."""
