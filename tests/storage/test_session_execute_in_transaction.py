"""Session.execute_in_transaction: a transaction that takes the writer at its first write."""

from __future__ import annotations

import pytest

import edgestore
from edgestore.storage import Store


async def test_opens_a_write_transaction_with_its_first_statement(store: Store) -> None:
    async with await store.session() as session:
        assert session.is_autocommit
        result = await session.execute_in_transaction(
            "INSERT INTO items(name, price) VALUES (?, ?)", ["a", 1]
        )
        assert result.rows_affected == 1
        assert result.last_insert_rowid == 1
        assert not session.is_autocommit  # the transaction stays open, holding the writer
        assert store.pool.writer_idle() is None
        # Inside the transaction it is execute(): later statements see the first one.
        again = await session.execute_in_transaction("SELECT count(*) FROM items")
        assert again.values == [(1,)]
        # Not committed yet: a reader sees nothing.
        assert (await store.query("SELECT count(*) FROM items", cache=False)).values == [(0,)]
        await session.execute("ROLLBACK")
        assert session.is_autocommit
    assert (await store.query("SELECT count(*) FROM items", cache=False)).values == [(0,)]


async def test_commit_publishes_and_releases_the_writer(store: Store) -> None:
    async with await store.session() as session:
        await session.execute_in_transaction("INSERT INTO items(name) VALUES ('b')")
        await session.execute("COMMIT")
        assert session.is_autocommit
    assert store.pool.writer_idle() is not None
    assert (await store.query("SELECT name FROM items")).values == [("b",)]


async def test_a_failing_first_statement_leaves_no_transaction(store: Store) -> None:
    await store.execute("INSERT INTO items(name) VALUES ('dup')")
    async with await store.session() as session:
        with pytest.raises(edgestore.ConstraintViolation):
            await session.execute_in_transaction("INSERT INTO items(name) VALUES ('dup')")
        assert session.is_autocommit
        assert store.pool.writer_idle() is not None  # the writer was given back
        with pytest.raises(edgestore.InvalidRequest):
            await session.execute_in_transaction("BEGIN")
        assert session.is_autocommit
