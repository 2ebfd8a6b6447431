"""Alembic on the edgestore dialects: autogenerate, upgrade, downgrade, batch mode ALTERs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect

ENV_SYNC = """
import importlib

from alembic import context
from sqlalchemy import engine_from_config, pool

import models

importlib.reload(models)  # the test changes the models between revisions
config = context.config
engine = engine_from_config(
    config.get_section(config.config_ini_section), prefix="sqlalchemy.", poolclass=pool.NullPool
)
with engine.connect() as connection:
    # render_as_batch: SQLite cannot ALTER most things; batch mode copies the table instead.
    context.configure(
        connection=connection, target_metadata=models.metadata, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
"""

ENV_ASYNC = """
import asyncio
import importlib

from alembic import context
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import async_engine_from_config

import models

importlib.reload(models)
config = context.config


def migrate(connection):
    context.configure(
        connection=connection, target_metadata=models.metadata, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


async def main():
    engine = async_engine_from_config(
        config.get_section(config.config_ini_section),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    async with engine.connect() as connection:
        await connection.run_sync(migrate)
    await engine.dispose()


asyncio.run(main())
"""

MODELS_V1 = """
from sqlalchemy import Column, Integer, MetaData, String, Table

metadata = MetaData()
Table("users", metadata, Column("id", Integer, primary_key=True), Column("name", String(50)))
"""

MODELS_V2 = """
from sqlalchemy import Column, Integer, MetaData, String, Table

metadata = MetaData()
Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), nullable=False),  # an ALTER SQLite can only do in batch mode
    Column("email", String(100), index=True),
)
"""


def _project(tmp_path: Path, scheme: str, env: str) -> tuple[Config, Path]:
    db = tmp_path / "app.db"
    cfg = Config(str(tmp_path / "alembic.ini"))
    cfg.set_main_option("script_location", str(tmp_path / "migrations"))
    cfg.set_main_option("sqlalchemy.url", f"{scheme}:///{db}")
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("prepend_sys_path", str(tmp_path))
    command.init(cfg, str(tmp_path / "migrations"), template="generic")
    (tmp_path / "migrations" / "env.py").write_text(textwrap.dedent(env), encoding="utf-8")
    (tmp_path / "models.py").write_text(MODELS_V1, encoding="utf-8")
    return cfg, db


@pytest.mark.parametrize(
    ("scheme", "env"),
    [("sqlite+edgestore", ENV_SYNC), ("sqlite+edgestore_async", ENV_ASYNC)],
    ids=["sync", "async"],
)
def test_autogenerate_upgrade_downgrade_batch(tmp_path: Path, scheme: str, env: str) -> None:
    cfg, db = _project(tmp_path, scheme, env)
    first = command.revision(cfg, message="users", autogenerate=True)
    command.upgrade(cfg, "head")
    (tmp_path / "models.py").write_text(MODELS_V2, encoding="utf-8")
    second = command.revision(cfg, message="email", autogenerate=True)
    source = Path(second.path).read_text(encoding="utf-8")  # type: ignore[union-attr]
    assert "batch_alter_table" in source
    assert "add_column" in source
    assert "nullable=False" in source
    command.upgrade(cfg, "head")

    engine = create_engine(f"sqlite+edgestore:///{db}")
    try:
        with engine.connect() as conn:
            columns = {c["name"]: c for c in inspect(conn).get_columns("users")}
            assert set(columns) == {"id", "name", "email"}
            assert columns["name"]["nullable"] is False
            assert [i["column_names"] for i in inspect(conn).get_indexes("users")] == [["email"]]
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == (
                second.revision  # type: ignore[union-attr]
            )
        command.downgrade(cfg, "-1")
        with engine.connect() as conn:
            columns = {c["name"]: c for c in inspect(conn).get_columns("users")}
            assert set(columns) == {"id", "name"}
            assert columns["name"]["nullable"] is True
            assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == (
                first.revision  # type: ignore[union-attr]
            )
        command.downgrade(cfg, "base")
        with engine.connect() as conn:
            assert "users" not in inspect(conn).get_table_names()
    finally:
        engine.dispose()
