"""Provisioning hooks: SQLite's own, except the ATTACH of ``test_schema`` on edgestore.

SQLAlchemy loads a dialect's provisioning from the dialect's package; edgestore's dialects are
SQLite, so SQLite's hooks are loaded here. They ATTACH a second database file as
``test_schema`` on every connection; edgestore's statement policy refuses ATTACH (one store,
one file), so on the edgestore dialects that hook is left out and the schema tests are closed
in requirements.py.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy.dialects.sqlite.provision  # noqa: F401  (registers the SQLite hooks)
from sqlalchemy.testing.provision import post_configure_engine

__all__: list[str] = []

# The function SQLite registered (the decorator returns the registry, not the function).
_sqlite_hook = post_configure_engine.fns["sqlite"]


@post_configure_engine.for_db("sqlite")
def _post_configure_engine(url: Any, engine: Any, follower_ident: Any) -> None:
    if engine.driver in ("edgestore", "edgestore_async"):
        return
    _sqlite_hook(url, engine, follower_ident)
