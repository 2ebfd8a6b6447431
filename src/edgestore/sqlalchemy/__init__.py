"""SQLAlchemy dialects over the embedded store: ``sqlite+edgestore`` and ``sqlite+edgestore_async``.

Both are SQLAlchemy's SQLite dialect with a DB-API 2 shim (``edgestore.sqlalchemy.dbapi``)
whose connections are thin: they hold no SQLite connection of their own. Every statement goes
through one shared :class:`edgestore.Store` per database file (``edgestore.sqlalchemy.registry``),
so the store's pool (one writer, two readers, idle close), its group commit and its query cache
serve every SQLAlchemy connection, session and engine of the process.

SQLAlchemy is an optional dependency: ``pip install 'edgestore[sqlalchemy]'``. The dialects are
registered as entry points, so ``create_engine("sqlite+edgestore:///app.db")`` needs no import.
"""

from __future__ import annotations

from ..errors import MissingExtraError

try:
    import sqlalchemy as _sqlalchemy  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in a venv without the extra
    raise MissingExtraError("the SQLAlchemy dialects", "sqlalchemy") from exc

from .registry import shared_store

__all__ = ["shared_store"]
