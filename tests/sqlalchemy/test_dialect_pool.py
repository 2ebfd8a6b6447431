"""The edgestore pool is the only pool: thin SQLAlchemy connections over one shared store."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session

from edgestore.cache.store_cache import StoreCache
from edgestore.sqlalchemy import registry
from edgestore.sqlalchemy.connection import Connection
from edgestore.storage import Store

from .conftest import Base, Item


def store_of(conn: object) -> Store:
    dbapi_conn = conn.connection.dbapi_connection  # type: ignore[attr-defined]
    assert isinstance(dbapi_conn, Connection)
    return dbapi_conn.store


def raw_of(conn: object) -> Connection:
    dbapi_conn = conn.connection.dbapi_connection  # type: ignore[attr-defined]
    assert isinstance(dbapi_conn, Connection)
    return dbapi_conn


def test_many_checked_out_connections_share_three_sqlite_connections(db_path: Path) -> None:
    eng = create_engine(f"sqlite+edgestore:///{db_path}", pool_size=25)
    Base.metadata.create_all(eng)
    conns = [eng.connect() for _ in range(25)]
    try:
        stores = {id(store_of(c)) for c in conns}
        assert len(stores) == 1
        for i, conn in enumerate(conns):
            conn.execute(insert(Item).values(name=f"n{i}"))
            conn.commit()  # one writer: the next connection's write waits for this commit
        for conn in conns:
            assert conn.execute(select(func.count()).select_from(Item)).scalar() == 25
        stats = store_of(conns[0]).pool.stats()
        assert stats.peak_connections <= 3
        assert stats.max_connections == 3
    finally:
        for conn in conns:
            conn.close()
        eng.dispose()
    assert all(s.path != db_path for s in registry.open_stores())


def test_idle_close_works_while_connections_are_checked_out(db_path: Path) -> None:
    eng = create_engine(f"sqlite+edgestore:///{db_path}?idle_timeout=0.2")
    conns = [eng.connect() for _ in range(5)]
    try:
        for conn in conns:
            assert conn.execute(text("SELECT 1")).scalar() == 1
            conn.rollback()
        store = store_of(conns[0])
        deadline = time.monotonic() + 10
        while store.pool.stats().connections_open and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.pool.stats().connections_open == 0
        assert store.pool.stats().idle_closes >= 1
        assert conns[3].execute(text("SELECT 2")).scalar() == 2
    finally:
        for conn in conns:
            conn.close()
        eng.dispose()


def test_writer_taken_at_first_write_reads_before_on_readers(engine: Engine) -> None:
    with engine.connect() as a, engine.connect() as b:
        assert a.execute(select(func.count()).select_from(Item)).scalar() == 0
        assert not raw_of(a).in_transaction  # a read: no writer taken
        a.execute(insert(Item).values(name="pending"))
        assert raw_of(a).in_transaction  # the first write took the writer
        assert a.execute(select(Item.name)).scalars().all() == ["pending"]
        # b reads on a reader meanwhile: not blocked, and it does not see a's write.
        assert b.execute(select(Item.name)).scalars().all() == []
        b.rollback()
        a.commit()
        assert not raw_of(a).in_transaction
        assert b.execute(select(Item.name)).scalars().all() == ["pending"]


def test_serializable_takes_the_writer_at_begin(db_path: Path) -> None:
    eng = create_engine(f"sqlite+edgestore:///{db_path}", isolation_level="SERIALIZABLE")
    try:
        with eng.connect() as conn:
            assert conn.get_isolation_level() == "SERIALIZABLE"
            conn.begin()
            assert raw_of(conn).in_transaction
            conn.rollback()
            assert not raw_of(conn).in_transaction
        with eng.connect().execution_options(isolation_level="READ COMMITTED") as conn:
            conn.begin()
            assert not raw_of(conn).in_transaction
    finally:
        eng.dispose()


def test_explicit_begin_in_autocommit_mode(engine: Engine) -> None:
    # The recipe SQLAlchemy documents for pysqlite: driver autocommit + BEGIN on "begin".
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("BEGIN")
        assert raw_of(conn).in_transaction
        conn.execute(insert(Item).values(name="x"))
        conn.exec_driver_sql("ROLLBACK")
        assert not raw_of(conn).in_transaction
        assert conn.execute(select(func.count()).select_from(Item)).scalar() == 0


def test_savepoints_nest_inside_the_transaction(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(Item(name="outer"))
        with session.begin_nested():
            session.add(Item(name="kept"))
        nested = session.begin_nested()
        session.add(Item(name="dropped"))
        session.flush()
        nested.rollback()
        session.commit()
    with Session(engine) as session:
        assert sorted(session.scalars(select(Item.name))) == ["kept", "outer"]
    # A savepoint released inside a transaction that then rolls back is gone too (with the
    # pysqlite dialect's default transaction handling, the SAVEPOINT would have begun the
    # transaction and its RELEASE committed it).
    with engine.connect() as conn:
        conn.begin()
        with conn.begin_nested():
            conn.execute(insert(Item).values(name="released"))
        conn.rollback()
        assert conn.execute(select(func.count()).select_from(Item)).scalar() == 2


async def test_autocommit_writes_from_many_sessions_are_group_committed(
    aengine: AsyncEngine,
) -> None:
    eng = aengine.execution_options(isolation_level="AUTOCOMMIT")

    async def write(i: int) -> None:
        async with eng.connect() as conn:
            await conn.execute(insert(Item).values(name=f"g{i}"))

    async with aengine.connect() as conn:
        raw = await conn.get_raw_connection()
        store = raw.dbapi_connection.store  # type: ignore[union-attr]
    before = store.pool.stats()
    await asyncio.gather(*(write(i) for i in range(60)))
    after = store.pool.stats()
    commits = after.group_commits - before.group_commits
    writes = after.grouped_writes - before.grouped_writes
    assert writes == 60
    assert commits < 60  # several sessions shared a COMMIT
    async with aengine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(Item))).scalar() == 60


async def test_concurrent_async_sessions_never_open_more_than_three(
    aengine: AsyncEngine,
) -> None:
    async def add(i: int) -> None:
        async with AsyncSession(aengine) as session:
            session.add(Item(name=f"c{i}"))
            await session.commit()

    await asyncio.gather(*(add(i) for i in range(200)))
    async with aengine.connect() as conn:
        raw = await conn.get_raw_connection()
        stats = raw.dbapi_connection.store.pool.stats()  # type: ignore[union-attr]
        assert (await conn.execute(select(func.count()).select_from(Item))).scalar() == 200
    assert stats.peak_connections <= 3


def test_engines_on_one_file_share_one_store(db_path: Path) -> None:
    first = create_engine(f"sqlite+edgestore:///{db_path}")
    second = create_engine(f"sqlite+edgestore:///{db_path}")
    try:
        with first.connect() as a, second.connect() as b:
            assert store_of(a) is store_of(b)
            store = store_of(a)
        first.dispose()
        assert not store.closed  # second's pooled connection still holds it
    finally:
        first.dispose()
        second.dispose()
    assert store.closed


def test_settings_from_url_query_and_connect_args(db_path: Path) -> None:
    eng = create_engine(
        f"sqlite+edgestore:///{db_path}?idle_timeout=7&query_cache=false",
        connect_args={"max_readers": 1},
    )
    try:
        with eng.connect() as conn:
            settings = store_of(conn).settings
            assert settings.idle_timeout == 7.0
            assert settings.query_cache is False
            assert settings.max_readers == 1
            assert settings.db_path == db_path
    finally:
        eng.dispose()
    with pytest.raises(sa_exc.ArgumentError, match="unknown edgestore setting 'timeout'"):
        create_engine(f"sqlite+edgestore:///{db_path}?timeout=5").connect()
    with pytest.raises(sa_exc.ArgumentError, match="database file"):
        create_engine("sqlite+edgestore:///:memory:").connect()


async def test_async_engine_settings_and_store_per_loop(db_path: Path) -> None:
    eng = create_async_engine(f"sqlite+edgestore_async:///{db_path}?cache_max_bytes=1048576")
    try:
        async with eng.connect() as conn:
            raw = await conn.get_raw_connection()
            store = raw.dbapi_connection.store  # type: ignore[union-attr]
            assert store.settings.cache_max_bytes == 1048576
            assert store.loop is asyncio.get_running_loop()
    finally:
        await eng.dispose()
    assert store.closed


def test_missing_extra_names_it() -> None:
    code = (
        "import sys; sys.modules['sqlalchemy'] = None\n"
        "import edgestore\n"
        "try:\n"
        "    import edgestore.sqlalchemy\n"
        "except edgestore.MissingExtraError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pip install 'edgestore[sqlalchemy]'" in out.stdout


def test_reads_outside_a_transaction_use_the_query_cache(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(Item).values(name="cached"))
    with engine.connect() as conn:
        store = store_of(conn)
        query_cache = StoreCache.of(store).query
        before = query_cache.hits
        for _ in range(3):
            assert conn.execute(select(Item.name)).scalars().all() == ["cached"]
            conn.rollback()
        assert query_cache.hits - before >= 2
        # A write through SQLAlchemy makes the cached result stale at once.
        conn.execute(insert(Item).values(name="fresh"))
        conn.commit()
        assert conn.execute(select(Item.name)).scalars().all() == ["cached", "fresh"]


def test_a_statement_that_ends_the_transaction_leaves_no_autocommit_behind(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(insert(Item).values(name="a"))
        with pytest.raises(sa_exc.IntegrityError):
            # OR ROLLBACK: SQLite rolls the whole transaction back on the conflict.
            conn.exec_driver_sql("INSERT OR ROLLBACK INTO items (name) VALUES ('a')")
        assert not raw_of(conn).in_transaction
        conn.rollback()
        conn.execute(insert(Item).values(name="b"))
        assert raw_of(conn).in_transaction  # a new transaction, not an autocommit write
        conn.rollback()
        assert conn.execute(select(func.count()).select_from(Item)).scalar() == 0


def test_sqlite3_style_execute_shortcut(engine: Engine) -> None:
    raw = engine.raw_connection()
    try:
        assert raw.driver_connection.execute("SELECT 6 * 7").fetchone() == (42,)  # type: ignore[union-attr]
    finally:
        raw.close()
