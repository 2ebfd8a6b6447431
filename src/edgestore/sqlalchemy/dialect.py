"""The ``sqlite+edgestore`` (sync) and ``sqlite+edgestore_async`` (asyncio) dialects.

Both are SQLAlchemy's pysqlite dialect (SQL, types, reflection, dates as ISO text) with the
shim of :mod:`edgestore.sqlalchemy.connection` in place of ``sqlite3``. Settings of the store
come from the URL query (``?idle_timeout=5&query_cache=false``, texts parsed as ``EDGESTORE_*``
variables are) and from ``connect_args`` (Python values); both override the environment.

Isolation levels: ``READ COMMITTED`` (the default: reads before a transaction's first write
see the latest commit, the writer is taken at the first write), ``SERIALIZABLE`` (the writer
is taken when SQLAlchemy begins the transaction, so every read of it is on one snapshot) and
``AUTOCOMMIT`` (each statement commits; writes are group-committed).
"""

from __future__ import annotations

import dataclasses
import re
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import apsw
from sqlalchemy import exc as sa_exc
from sqlalchemy import pool
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine.url import URL
from sqlalchemy.util import concurrency as _concurrency

from ..config import ENV_PREFIX, Settings
from ..storage import Store
from . import dbapi, registry
from .connection import Connection
from .errors import CLOSED_MESSAGE

__all__ = ["EdgestoreAsyncDialect", "EdgestoreDialect"]

_LEVELS = ("AUTOCOMMIT", "READ COMMITTED", "SERIALIZABLE")
_SETTINGS = frozenset(f.name for f in dataclasses.fields(Settings))

# SQL functions registered per store (by name and arity): SQLAlchemy registers them for every
# new DB-API connection, the store needs them once.
_functions: weakref.WeakKeyDictionary[Store, set[tuple[str, int]]] = weakref.WeakKeyDictionary()


def _settings_from_url(url: URL) -> dict[str, Any]:
    """URL query parameters as typed settings, parsed the way environment variables are."""
    raw: dict[str, str] = {}
    for name, value in url.query.items():
        if name not in _SETTINGS or name == "db_path":
            raise sa_exc.ArgumentError(
                f"unknown edgestore setting {name!r} in the URL; "
                f"see the Configuration section of edgestore's README"
            )
        raw[name] = value if isinstance(value, str) else value[-1]
    parsed = Settings.load(environ={ENV_PREFIX + k.upper(): v for k, v in raw.items()})
    return {name: getattr(parsed, name) for name in raw}


def _register_function(
    store: Store, name: str, nargs: int, fn: Callable[..., Any], det: bool
) -> None:
    done = _functions.setdefault(store, set())
    if (name, nargs) in done:
        return
    done.add((name, nargs))

    def hook(db: apsw.Connection, role: str) -> None:
        db.create_scalar_function(name, fn, nargs, deterministic=det)

    store.add_connection_hook(hook)


class EdgestoreDialect(SQLiteDialect_pysqlite):
    """``sqlite+edgestore:///path.db``: a sync Engine over the shared edgestore Store."""

    driver = "edgestore"
    supports_statement_cache = True
    supports_server_side_cursors = False
    has_terminate = False

    @classmethod
    def import_dbapi(cls) -> Any:
        return dbapi

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        # Pooled shim connections are cheap (no SQLite connection each) and keep the shared
        # store open between checkouts; the store's own pool bounds SQLite connections.
        return pool.QueuePool

    def retrieve_dbapi_version(self, dbapi_module: Any) -> Any:
        from sqlalchemy import util

        from .._version import __version__

        return util.parse_version_string(__version__)

    def create_connect_args(self, url: URL) -> tuple[list[Any], dict[str, Any]]:
        if url.username or url.password or url.host or url.port:
            raise sa_exc.ArgumentError(
                f"Invalid edgestore URL: {url}; use sqlite+edgestore:///relative/path.db or "
                "sqlite+edgestore:////absolute/path.db"
            )
        database = url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            raise sa_exc.ArgumentError(
                "edgestore keeps its data in a database file (WAL mode): give a path, "
                "sqlite+edgestore:///app.db"
            )
        opts = _settings_from_url(url)
        # SQLAlchemy and Alembic own the schema here: apply no schemas/ directory unless asked.
        opts.setdefault("schemas_dir", None)
        return [str(Path(database).absolute())], opts

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        path = Path(cargs[0])
        key, store = registry.run_sync(registry.acquire(path, cparams))
        return Connection(store, registry.run_sync, lambda: registry.release(key))

    # -- functions SQLAlchemy's SQLite dialect relies on (REGEXP, floor) -----------------------

    def on_connect(self) -> Callable[[Any], None]:
        def regexp(pattern: str, value: str | None) -> bool | None:
            if value is None:
                return None
            return re.search(pattern, value) is not None

        def floor(value: Any) -> Any:
            import math

            return None if value is None else math.floor(value)

        def connect(conn: Any) -> None:
            store = cast(Connection, conn).store
            _register_function(store, "regexp", 2, regexp, True)
            _register_function(store, "floor", 1, floor, True)

        return connect

    # -- isolation and transactions --------------------------------------------------------

    def get_isolation_level_values(self, dbapi_connection: Any) -> Any:
        return list(_LEVELS)

    def set_isolation_level(self, dbapi_connection: Any, level: Any) -> None:
        conn = cast(Connection, dbapi_connection)
        if level not in _LEVELS:
            raise sa_exc.ArgumentError(
                f"Invalid value {level!r} for isolation_level; use one of {', '.join(_LEVELS)}"
            )
        conn.autocommit = level == "AUTOCOMMIT"
        if level != "AUTOCOMMIT":
            conn.serializable = level == "SERIALIZABLE"

    def get_isolation_level(self, dbapi_connection: Any) -> Any:
        conn = cast(Connection, dbapi_connection)
        return "SERIALIZABLE" if conn.serializable else "READ COMMITTED"

    def detect_autocommit_setting(self, dbapi_conn: Any) -> bool:
        return cast(Connection, dbapi_conn).autocommit

    def do_begin(self, dbapi_connection: Any) -> None:
        conn = cast(Connection, dbapi_connection)
        if conn.serializable:
            conn.begin()

    def is_disconnect(self, e: Any, connection: Any, cursor: Any) -> bool:
        return isinstance(e, dbapi.ProgrammingError) and CLOSED_MESSAGE in str(e)


class EdgestoreAsyncDialect(EdgestoreDialect):
    """``sqlite+edgestore_async:///path.db``: an AsyncEngine over the shared Store of its loop."""

    driver = "edgestore_async"
    is_async = True
    supports_statement_cache = True

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        return pool.AsyncAdaptedQueuePool

    def connect(self, *cargs: Any, **cparams: Any) -> Any:
        path = Path(cargs[0])
        key, store = _await(registry.acquire(path, cparams))
        return Connection(store, _await, lambda: registry.release(key))


# SQLAlchemy 2.1 names it await_, 2.0 await_only.
_await: Callable[[Any], Any] = getattr(_concurrency, "await_", None) or _concurrency.await_only


dialect = EdgestoreDialect
