"""The DB-API 2 module of the shim (what SQLAlchemy's ``import_dbapi()`` returns).

``connect()`` is not here: a connection needs the shared store of its dialect (sync or async),
which :mod:`edgestore.sqlalchemy.dialect` provides. The rest is what PEP 249 and SQLAlchemy's
SQLite dialect look for on a DB-API module.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

import apsw

from .errors import (
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    Warning,
)

__all__ = [
    "Binary",
    "DataError",
    "DatabaseError",
    "Date",
    "DateFromTicks",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
    "Warning",
    "apilevel",
    "paramstyle",
    "sqlite_version",
    "sqlite_version_info",
    "threadsafety",
]

apilevel = "2.0"
threadsafety = 1
# SQLAlchemy's SQLite dialects send "?"; named parameters (":name") work as well.
paramstyle = "qmark"

sqlite_version: str = apsw.sqlite_lib_version()
sqlite_version_info: tuple[int, ...] = tuple(int(p) for p in sqlite_version.split("."))

Binary = bytes
Date = datetime.date
Time = datetime.time
Timestamp = datetime.datetime


def DateFromTicks(ticks: float) -> datetime.date:
    return Date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks: float) -> datetime.time:
    return Time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks: float) -> datetime.datetime:
    return Timestamp(*time.localtime(ticks)[:6])


def connect(*args: Any, **kwargs: Any) -> Any:
    raise NotSupportedError(
        "connect through SQLAlchemy: create_engine('sqlite+edgestore:///path.db')"
    )
