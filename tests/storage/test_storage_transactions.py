"""Explicit transactions and sessions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import edgestore
from edgestore.storage import Store

ITEMS = "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, price INT)"


async def count(store: Store) -> int:
    value = (await store.query("SELECT count(*) FROM items")).values[0][0]
    assert isinstance(value, int)
    return value


async def test_transaction_commits(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.execute("INSERT INTO items(name) VALUES ('a')")
        await tx.execute("INSERT INTO items(name) VALUES ('b')")
        assert (await tx.query("SELECT count(*) FROM items")).values == [(2,)]
        assert await count(store) == 0  # not visible outside before COMMIT
    assert await count(store) == 2


async def test_transaction_rolls_back_on_error(store: Store) -> None:
    async def failing() -> None:
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO items(name) VALUES ('a')")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await failing()
    assert await count(store) == 0
    # a failing statement inside does not end the transaction by itself
    async with store.transaction() as tx:
        await tx.execute("INSERT INTO items(name) VALUES ('a')")
        with pytest.raises(edgestore.ConstraintViolation):
            await tx.execute("INSERT INTO items(name) VALUES ('a')")
        await tx.execute("INSERT INTO items(name) VALUES ('b')")
    assert await count(store) == 2


async def test_transaction_query_refuses_writes(store: Store) -> None:
    async with store.transaction() as tx:
        with pytest.raises(edgestore.ReadOnlyError):
            await tx.query("INSERT INTO items(name) VALUES ('a')")
        with pytest.raises(edgestore.InvalidRequest):
            await tx.execute("COMMIT")


async def test_transaction_timeout_rolls_back(store: Store) -> None:
    async def slow() -> None:
        async with store.transaction(timeout=0.1) as tx:
            await tx.execute("INSERT INTO items(name) VALUES ('a')")
            await asyncio.sleep(0.3)
            await tx.execute("INSERT INTO items(name) VALUES ('b')")

    with pytest.raises(edgestore.TransactionTimeout):
        await slow()
    assert await count(store) == 0
    # the writer was released
    await store.execute("INSERT INTO items(name) VALUES ('c')")
    assert await count(store) == 1


async def test_transaction_timeout_on_clean_exit(store: Store) -> None:
    async def slow() -> None:
        async with store.transaction(timeout=0.1) as tx:
            await tx.execute("INSERT INTO items(name) VALUES ('a')")
            await asyncio.sleep(0.3)

    with pytest.raises(edgestore.TransactionTimeout):
        await slow()
    assert await count(store) == 0


async def test_transaction_timeout_interrupts_a_running_statement(store: Store) -> None:
    endless = (
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) SELECT count(*) FROM c"
    )
    with pytest.raises(edgestore.TransactionTimeout):
        async with store.transaction(timeout=0.2) as tx:
            await tx.query(endless)
    await store.execute("INSERT INTO items(name) VALUES ('after')")


async def test_writes_wait_for_the_transaction(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.execute("INSERT INTO items(name) VALUES ('tx')")
        outside = asyncio.create_task(store.execute("INSERT INTO items(name) VALUES ('outside')"))
        await asyncio.sleep(0.05)
        assert not outside.done()
    await outside
    assert await count(store) == 2


async def test_session_autocommit_and_transactions(store: Store) -> None:
    session = await store.session()
    assert session.is_autocommit
    await session.execute("INSERT INTO items(name) VALUES ('auto')")
    assert await count(store) == 1
    await session.execute("BEGIN IMMEDIATE")
    assert not session.is_autocommit
    await session.execute("INSERT INTO items(name) VALUES ('in-tx')")
    assert (await session.execute("SELECT count(*) FROM items")).values == [(2,)]
    assert await count(store) == 1
    await session.execute("COMMIT")
    assert session.is_autocommit
    assert await count(store) == 2
    await session.execute("BEGIN")
    await session.execute("INSERT INTO items(name) VALUES ('gone')")
    await session.execute("ROLLBACK")
    assert session.is_autocommit
    assert await count(store) == 2
    await session.close()


async def test_session_commit_bumps_versions(store: Store) -> None:
    session = await store.session()
    v = store.versions.get("items")
    await session.execute("BEGIN")
    await session.execute("INSERT INTO items(name) VALUES ('a')")
    assert store.versions.get("items") == v
    await session.execute("END")
    assert store.versions.get("items") > v
    await session.close()


async def test_session_savepoints(store: Store) -> None:
    session = await store.session()
    await session.execute("SAVEPOINT outer_sp")
    assert not session.is_autocommit
    await session.execute("INSERT INTO items(name) VALUES ('a')")
    await session.execute("SAVEPOINT inner_sp")
    await session.execute("INSERT INTO items(name) VALUES ('b')")
    await session.execute("ROLLBACK TO inner_sp")
    await session.execute("RELEASE outer_sp")
    assert session.is_autocommit
    assert (await store.query("SELECT name FROM items")).values == [("a",)]
    with pytest.raises(edgestore.DatabaseError):
        await session.execute("COMMIT")
    await session.close()


async def test_session_readonly_transaction_uses_a_reader(store: Store) -> None:
    await store.execute("INSERT INTO items(name) VALUES ('a')")
    session = await store.session()
    await session.execute("BEGIN TRANSACTION READONLY")
    assert (await session.execute("SELECT count(*) FROM items")).values == [(1,)]
    # a snapshot: a write committed meanwhile is not seen inside
    await store.execute("INSERT INTO items(name) VALUES ('b')")
    assert (await session.execute("SELECT count(*) FROM items")).values == [(1,)]
    with pytest.raises(edgestore.ReadOnlyError):
        await session.execute("INSERT INTO items(name) VALUES ('c')")
    await session.execute("COMMIT")
    assert (await session.execute("SELECT count(*) FROM items")).values == [(2,)]
    await session.close()


async def test_session_transaction_timeout(db_path: Path) -> None:
    async with await edgestore.open(db_path, schemas_dir=None, transaction_timeout=0.1) as st:
        await st.execute(ITEMS)
        session = await st.session()
        await session.execute("BEGIN")
        await session.execute("INSERT INTO items(name) VALUES ('a')")
        await asyncio.sleep(0.3)
        # the writer is free again already
        await st.execute("INSERT INTO items(name) VALUES ('b')")
        with pytest.raises(edgestore.TransactionTimeout):
            await session.execute("INSERT INTO items(name) VALUES ('c')")
        assert session.is_autocommit
        await session.execute("INSERT INTO items(name) VALUES ('d')")
        assert (await st.query("SELECT name FROM items ORDER BY name")).values == [("b",), ("d",)]
        await session.close()


async def test_session_close_rolls_back(store: Store) -> None:
    session = await store.session()
    await session.execute("BEGIN")
    await session.execute("INSERT INTO items(name) VALUES ('a')")
    await session.close()
    assert await count(store) == 0
    await store.execute("INSERT INTO items(name) VALUES ('b')")
    with pytest.raises(edgestore.StoreClosedError):
        await session.execute("SELECT 1")


async def test_session_pinning_the_writer_times_out(db_path: Path) -> None:
    async with await edgestore.open(db_path, schemas_dir=None, pool_timeout=0.1) as st:
        first = await st.session()
        second = await st.session()
        await first.execute("BEGIN IMMEDIATE")
        with pytest.raises(edgestore.PoolTimeout):
            await second.execute("BEGIN IMMEDIATE")
        await first.execute("COMMIT")
        await second.execute("BEGIN IMMEDIATE")
        await second.execute("COMMIT")
        await first.close()
        await second.close()
