"""Hooks the replication part relies on."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import apsw

import edgestore
from edgestore.storage import Store


async def test_connection_hook_sees_every_connection(store: Store) -> None:
    seen: list[str] = []
    await store.query("SELECT 1")  # a reader is open before the hook is added

    def hook(conn: apsw.Connection, role: str) -> None:
        assert isinstance(conn, apsw.Connection)
        seen.append(role)

    store.add_connection_hook(hook)
    assert seen == ["reader"]  # the idle reader got it at once
    await store.execute("INSERT INTO items(name) VALUES ('a')")
    assert seen.count("writer") == 1
    await store.close_idle()
    await store.query("SELECT 1")
    await store.execute("INSERT INTO items(name) VALUES ('b')")
    assert seen.count("reader") == 2
    assert seen.count("writer") == 2


async def test_idle_close_handler_replaces_the_checkpoint(db_path: Path) -> None:
    st = await edgestore.open(db_path, schemas_dir=None, idle_timeout=0.1)
    calls: list[bool] = []

    def handler(conn: apsw.Connection) -> None:
        calls.append(conn.in_transaction)
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    st.set_idle_close_handler(handler)
    try:
        await st.execute("CREATE TABLE t(x)")
        for _ in range(100):
            if st.pool.stats().connections_open == 0:
                break
            await asyncio.sleep(0.05)
        assert calls == [False]
    finally:
        await st.close()


async def test_run_on_writer(store: Store) -> None:
    def fn(conn: apsw.Connection) -> tuple[bool, int]:
        conn.execute("INSERT INTO items(name) VALUES ('raw')")
        return conn.in_transaction, int(conn.execute("SELECT count(*) FROM items").fetchall()[0][0])

    assert await store.run_on_writer(fn) == (False, 1)


async def test_commit_listener(store: Store) -> None:
    heard: list[frozenset[str]] = []
    remove = store.add_commit_listener(heard.append)
    await store.execute("INSERT INTO items(name) VALUES ('a')")
    async with store.transaction() as tx:
        await tx.execute("UPDATE items SET price = 1")
    assert heard == [frozenset({"items"}), frozenset({"items"})]
    remove()
    await store.execute("INSERT INTO items(name) VALUES ('b')")
    assert len(heard) == 2


async def test_checkpoint(store: Store, db_path: Path) -> None:
    await store.execute("INSERT INTO items(name) VALUES ('a')")
    await store.checkpoint()
    assert wal_size(db_path) == 0


def wal_size(db_path: Path) -> int:
    wal = str(db_path) + "-wal"
    return os.path.getsize(wal) if os.path.exists(wal) else 0
