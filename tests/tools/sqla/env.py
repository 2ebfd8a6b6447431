"""Alembic's env.py for the conformance test (online mode only), as a project would write it."""

from __future__ import annotations

from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import create_engine

from tests.tools.sqla import models


def render_item(kind: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    # Migration scripts import only sqlalchemy: the Int64 bind workaround is a BIGINT column.
    if kind == "type" and isinstance(obj, models.Int64):
        return "sa.BigInteger()"
    return False


config = context.config
url = config.get_main_option("sqlalchemy.url")
assert url is not None
metadata = (
    models.metadata_v2() if config.get_main_option("models") == "v2" else models.Base.metadata
)
engine = create_engine(url)
with engine.connect() as connection:
    # No PRAGMA foreign_keys=OFF here: libsql-experimental closes its stream after every
    # statement outside a transaction, so a connection setting does not reach the migration
    # (see the README's compatibility table: batch-rebuild only tables nothing references).
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things in place: Alembic's "batch" mode rebuilds the table.
        render_as_batch=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
