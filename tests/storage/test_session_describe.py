"""Session.describe sees the session's own uncommitted schema (Hrana describes mid-transaction)."""

from pathlib import Path

import pytest

import edgestore


async def test_describe_inside_transaction_sees_new_table(tmp_path: Path) -> None:
    store = await edgestore.open(tmp_path / "d.db", schemas_dir=None)
    try:
        session = await store.session()
        await session.execute("BEGIN")
        await session.execute("CREATE TABLE q(id INTEGER PRIMARY KEY, body TEXT)")
        desc = await session.describe("SELECT id, body FROM q WHERE id = :id")
        assert [(c.name, c.decltype) for c in desc.columns] == [
            ("id", "INTEGER"),
            ("body", "TEXT"),
        ]
        assert desc.is_readonly
        assert desc.params == (":id",)
        # The store outside the transaction does not see the table yet.
        with pytest.raises(edgestore.NoSuchTableError):
            await store.describe("SELECT * FROM q")
        await session.execute("ROLLBACK")
        # Back in autocommit, describe goes through the store.
        with pytest.raises(edgestore.NoSuchTableError):
            await session.describe("SELECT * FROM q")
        await session.close()
    finally:
        await store.close()
