"""The DB-API 2 exception classes of the shim, and the mapping from edgestore's errors.

The classes follow PEP 249 and the choices of Python's ``sqlite3`` module (which SQLAlchemy's
SQLite dialects are written against): a constraint or type mismatch is an ``IntegrityError``,
a bad binding a ``ProgrammingError``, a lock, timeout or missing table an ``OperationalError``.
Every mapped exception carries the edgestore error (``edgestore_error``, also ``__cause__``)
and SQLite's extended result code as ``sqlite_errorcode`` / ``sqlite_errorname``, as ``sqlite3``
does.
"""

from __future__ import annotations

import apsw

from ..errors import (
    DatabaseError as StoreDatabaseError,
)
from ..errors import (
    EdgestoreError,
    InvalidRequest,
    PoolTimeout,
    StoreClosedError,
    TransactionTimeout,
)

__all__ = [
    "DataError",
    "DatabaseError",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "Warning",
    "to_dbapi_error",
]


class Warning(Exception):
    """PEP 249 ``Warning``."""


class Error(Exception):
    """PEP 249 ``Error``: the base of every exception the shim raises."""

    edgestore_error: EdgestoreError | None = None
    sqlite_errorcode: int | None = None
    sqlite_errorname: str | None = None


class InterfaceError(Error):
    """PEP 249 ``InterfaceError``."""


class DatabaseError(Error):
    """PEP 249 ``DatabaseError``."""


class DataError(DatabaseError):
    """PEP 249 ``DataError``."""


class OperationalError(DatabaseError):
    """PEP 249 ``OperationalError``."""


class IntegrityError(DatabaseError):
    """PEP 249 ``IntegrityError``."""


class InternalError(DatabaseError):
    """PEP 249 ``InternalError``."""


class ProgrammingError(DatabaseError):
    """PEP 249 ``ProgrammingError``."""


class NotSupportedError(DatabaseError):
    """PEP 249 ``NotSupportedError``."""


# Primary result code -> class, as CPython's sqlite3 (Modules/_sqlite/util.c) chooses.
_BY_BASE_CODE: dict[str, type[DatabaseError]] = {
    "SQLITE_CONSTRAINT": IntegrityError,
    "SQLITE_MISMATCH": IntegrityError,
    "SQLITE_TOOBIG": DataError,
    "SQLITE_INTERNAL": InternalError,
    "SQLITE_NOTFOUND": InternalError,
    "SQLITE_RANGE": ProgrammingError,
    "SQLITE_MISUSE": ProgrammingError,
    "SQLITE_AUTH": DatabaseError,
}

CLOSED_MESSAGE = "Cannot operate on a closed database."


def to_dbapi_error(exc: EdgestoreError) -> Error:
    """The DB-API exception for an edgestore error (raise it ``from exc``)."""
    err: Error
    if isinstance(exc, StoreDatabaseError):
        cls = _BY_BASE_CODE.get(exc.base_code, OperationalError)
        err = cls(exc.detail)
        err.sqlite_errorname = exc.code
        code = apsw.mapping_extended_result_codes.get(exc.code)
        if code is None:
            code = apsw.mapping_result_codes.get(exc.base_code)
        err.sqlite_errorcode = code if isinstance(code, int) else None
    elif isinstance(exc, StoreClosedError):
        err = ProgrammingError(f"{CLOSED_MESSAGE} ({exc.detail})")
    elif isinstance(exc, PoolTimeout | TransactionTimeout):
        err = OperationalError(exc.detail)
    elif isinstance(exc, InvalidRequest):
        err = ProgrammingError(exc.detail)
    else:
        err = DatabaseError(exc.detail)
    err.edgestore_error = exc
    return err
