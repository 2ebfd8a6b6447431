"""Row streams: chunks read as SQLite produces them, connections given back on every ending."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import apsw
import pytest
from tests.pool import assert_pool_idle, eventually

import edgestore
from edgestore.errors import (
    DatabaseError,
    SQLSyntaxError,
    StatementTimeout,
    StoreClosedError,
    TransactionTimeout,
)
from edgestore.storage import RowStream, Store

FILL = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
    "INSERT INTO t SELECT i, printf('row-%05d', i) FROM n"
)
# Produces rows for ever; only a time bound stops it.
ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c"


async def _store(db_path: Path, rows: int = 1000, **overrides: Any) -> Store:
    st = await edgestore.open(db_path, schemas_dir=None, idle_timeout=0, **overrides)
    await st.execute("CREATE TABLE t(i INTEGER PRIMARY KEY, s TEXT)")
    if rows:
        await st.execute(FILL, [rows])
    return st


@pytest.fixture
async def big(db_path: Path) -> Any:
    st = await _store(db_path)
    try:
        yield st
    finally:
        await st.close()


async def collect(rows: RowStream, into: list[Any]) -> None:
    """Read every chunk of ``rows`` into ``into`` (bounded, whatever the stream does)."""
    async for chunk in rows:
        into.extend(chunk)
        assert len(into) < 50_000_000


class Gate:
    """A SQL function ``gate(i)`` that blocks its thread at row ``at`` until released, so a
    test can look at a stream while SQLite is still producing rows."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.entered = threading.Event()
        self.go = threading.Event()

    def __call__(self, i: int) -> int:
        if i == self.at:
            self.entered.set()
            self.go.wait(30)  # bounded: a failing test never hangs a thread for ever
        return i

    def install(self, store: Store) -> None:
        def hook(db: apsw.Connection, role: str) -> None:
            db.create_scalar_function("gate", self, 1)

        store.add_connection_hook(hook)

    async def wait_entered(self) -> None:
        await eventually(self.entered.is_set)


async def test_chunks_of_a_read(big: Store) -> None:
    rows = big.stream("SELECT i, s FROM t ORDER BY i", chunk_rows=100)
    cols = await rows.start()
    assert [c.name for c in cols] == ["i", "s"]
    assert [c.decltype for c in cols] == ["INTEGER", "TEXT"]
    assert rows.streamed
    sizes = []
    got = []
    async for chunk in rows:
        sizes.append(len(chunk))
        got += chunk
    assert sizes == [100] * 10
    assert got == (await big.query("SELECT i, s FROM t ORDER BY i", cache=False)).values
    assert (rows.rows_affected, rows.last_insert_rowid) == (0, None)
    await assert_pool_idle(big)


async def test_small_and_empty_results_release_at_start(big: Store) -> None:
    async with big.stream("SELECT i FROM t WHERE i < 4 ORDER BY i") as rows:
        await rows.start()
        assert big.pool.stats().readers_busy == 0  # all rows read with the first chunk
        assert [c async for c in rows] == [[(1,), (2,), (3,)]]
    async with big.stream("SELECT i, s AS label FROM t WHERE i < 0") as rows:
        assert [c.name for c in await rows.start()] == ["i", "label"]
        assert [c async for c in rows] == []
    await assert_pool_idle(big)


async def test_early_close_gives_the_reader_back(big: Store) -> None:
    rows = big.stream("SELECT i FROM t", chunk_rows=10)
    first = await anext(rows)
    assert len(first) == 10
    assert big.pool.stats().readers_busy == 1
    await rows.aclose()
    assert big.pool.stats().readers_busy == 0
    with pytest.raises(StopAsyncIteration):
        await anext(rows)
    await rows.aclose()  # idempotent
    # Leaving an ``async with`` early does the same.
    async with big.stream("SELECT i FROM t", chunk_rows=10) as rows:
        async for _ in rows:
            break
    assert big.pool.stats().readers_busy == 0
    await assert_pool_idle(big)


async def test_closed_before_start(big: Store) -> None:
    rows = big.stream("SELECT 1")
    await rows.aclose()
    with pytest.raises(StoreClosedError):
        await rows.start()
    assert big.pool.stats().readers_busy == 0


async def test_cancelled_while_sqlite_produces_rows(big: Store) -> None:
    gate = Gate(at=500)
    gate.install(big)
    got: list[Any] = []

    async def consume() -> None:
        async for chunk in big.stream("SELECT gate(i) FROM t ORDER BY i", chunk_rows=100):
            got.extend(chunk)

    task = asyncio.create_task(consume())
    await gate.wait_entered()
    # Rows 1..400 arrived while the statement is still running on its thread.
    assert len(got) == 400
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert big.pool.stats().readers_busy == 1  # the thread is still inside SQLite
    gate.go.set()
    await eventually(lambda: big.pool.stats().readers_busy == 0)
    await assert_pool_idle(big)


async def test_cancelled_consumer_in_async_with(big: Store) -> None:
    started = asyncio.Event()

    async def consume() -> None:
        async with big.stream("SELECT i FROM t", chunk_rows=10) as rows:
            async for _ in rows:
                started.set()
                await asyncio.sleep(30)

    task = asyncio.create_task(consume())
    await started.wait()
    assert big.pool.stats().readers_busy == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert big.pool.stats().readers_busy == 0
    await assert_pool_idle(big)


async def test_errors_at_start_and_mid_stream(big: Store) -> None:
    with pytest.raises(SQLSyntaxError):
        await big.stream("SELEC nothing").start()
    rows = big.stream("SELECT * FROM missing")
    with pytest.raises(DatabaseError, match="no such table"):
        await anext(rows)
    # abs() of the smallest integer overflows: SQLite fails at row 250, after 200 rows went out.
    sql = "SELECT CASE WHEN i = 250 THEN abs(-9223372036854775807 - 1) ELSE i END FROM t"
    rows = big.stream(sql, chunk_rows=100)
    got: list[Any] = []
    with pytest.raises(DatabaseError, match="integer overflow") as info:
        await collect(rows, got)
    assert info.value.code == "SQLITE_ERROR"
    assert len(got) == 200
    with pytest.raises(StopAsyncIteration):
        await anext(rows)
    await assert_pool_idle(big)


async def test_statement_timeout_is_a_budget_over_chunks(db_path: Path) -> None:
    st = await _store(db_path, rows=0, statement_timeout=0.3, inline_budget=0)
    try:
        rows = st.stream(ENDLESS, chunk_rows=64)
        got: list[Any] = []
        with pytest.raises(StatementTimeout, match="timed out"):
            await collect(rows, got)
        assert len(got) > 64  # stopped by the time summed over chunks, not in the first
        # A statement that runs long before its first row times out in start().
        slow = ENDLESS + " WHERE x < 0 LIMIT 1"
        with pytest.raises(StatementTimeout):
            await st.stream(slow).start()
        await assert_pool_idle(st)
    finally:
        await st.close()


async def test_a_reader_held_too_long_is_taken_back(db_path: Path) -> None:
    st = await _store(db_path, transaction_timeout=0.2)
    try:
        rows = st.stream("SELECT i FROM t", chunk_rows=10)
        assert len(await anext(rows)) == 10
        await eventually(lambda: st.pool.stats().readers_busy == 0)
        with pytest.raises(TransactionTimeout):
            await anext(rows)
        with pytest.raises(StopAsyncIteration):
            await anext(rows)
        await assert_pool_idle(st)
    finally:
        await st.close()


async def test_inside_a_transaction_it_sees_uncommitted_rows(big: Store) -> None:
    async with await big.session() as session:
        await session.execute("BEGIN")
        await session.execute("INSERT INTO t(i, s) VALUES (5000, 'mine')")
        await session.execute("DELETE FROM t WHERE i <= 500")
        rows = session.stream("SELECT i, s FROM t ORDER BY i", chunk_rows=128)
        got = [r async for chunk in rows for r in chunk]
        assert rows.streamed
        assert len(got) == 501
        assert got[-1] == (5000, "mine")
        # Others do not see it before COMMIT.
        outside = await big.query("SELECT count(*) FROM t", cache=False)
        assert outside.values == [(1000,)]
        await session.execute("COMMIT")
    assert (await big.query("SELECT count(*) FROM t", cache=False)).values == [(501,)]
    await assert_pool_idle(big)


async def test_commit_closes_a_stream_left_open(big: Store) -> None:
    session = await big.session()
    await session.execute("BEGIN IMMEDIATE")
    rows = session.stream("SELECT i FROM t", chunk_rows=10)
    assert len(await anext(rows)) == 10
    await session.execute("COMMIT")
    with pytest.raises(StoreClosedError, match="transaction ended"):
        await anext(rows)
    await rows.aclose()
    # A stream open when the session closes (rolling back) ends the same way.
    await session.execute("BEGIN")
    rows2 = session.stream("SELECT i FROM t", chunk_rows=10)
    await anext(rows2)
    await session.close()
    with pytest.raises(StoreClosedError):
        await anext(rows2)
    await assert_pool_idle(big)


async def test_transaction_timeout_under_an_open_stream(db_path: Path) -> None:
    st = await _store(db_path, transaction_timeout=0.3)
    try:
        session = await st.session()
        await session.execute("BEGIN IMMEDIATE")
        rows = session.stream("SELECT i FROM t", chunk_rows=10)
        await anext(rows)
        await eventually(lambda: session.is_autocommit)
        with pytest.raises(TransactionTimeout):
            await anext(rows)
        await session.close()
        await assert_pool_idle(st)
    finally:
        await st.close()


async def test_transaction_timeout_during_a_fetch(db_path: Path) -> None:
    st = await _store(db_path, transaction_timeout=0.3)
    gate = Gate(at=300)
    gate.install(st)
    try:
        session = await st.session()
        await session.execute("BEGIN")
        rows = session.stream("SELECT gate(i) FROM t ORDER BY i", chunk_rows=256)
        assert len(await anext(rows)) == 256
        fetch = asyncio.create_task(anext(rows))  # held at row 300 inside SQLite
        await eventually(gate.entered.is_set)
        pin = session._pin
        assert pin is not None
        await eventually(lambda: pin.expired)
        gate.go.set()
        with pytest.raises(TransactionTimeout):
            await fetch
        await eventually(lambda: session.is_autocommit)
        await session.close()
        await assert_pool_idle(st)
    finally:
        await st.close()


async def test_session_close_closes_autocommit_streams(big: Store) -> None:
    session = await big.session()
    rows = session.stream("SELECT i FROM t", chunk_rows=10)
    await anext(rows)
    assert big.pool.stats().readers_busy == 1
    await session.close()
    assert big.pool.stats().readers_busy == 0
    with pytest.raises(StoreClosedError):
        await session.stream("SELECT 1").start()
    await assert_pool_idle(big)


async def test_writes_go_through_execute(big: Store) -> None:
    seen: list[frozenset[str]] = []
    big.add_commit_listener(seen.append)
    before = big.versions.get("t")
    async with big.stream(
        "INSERT INTO t(s) VALUES ('a'), ('b'), ('c') RETURNING i, s", chunk_rows=2
    ) as rows:
        await rows.start()
        assert not rows.streamed
        assert rows.rows_affected == 3
        assert rows.last_insert_rowid == 1003
        chunks = [c async for c in rows]
    assert chunks == [[(1001, "a"), (1002, "b")], [(1003, "c")]]
    assert big.versions.get("t") > before
    assert seen == [frozenset({"t"})]
    # Inside a transaction too: written, published at COMMIT.
    session = await big.session()
    await session.execute("BEGIN")
    async with session.stream("DELETE FROM t WHERE i > 1000 RETURNING i") as rows:
        assert [r async for c in rows for r in c] == [(1001,), (1002,), (1003,)]
        assert rows.rows_affected == 3
    await session.execute("COMMIT")
    assert seen == [frozenset({"t"}), frozenset({"t"})]
    # BEGIN / COMMIT through stream() work like execute().
    await (session.stream("BEGIN")).start()
    assert not session.is_autocommit
    await session.stream("COMMIT").start()
    assert session.is_autocommit
    await session.close()
    await assert_pool_idle(big)


async def test_two_streams_at_once_use_two_readers(big: Store) -> None:
    a = big.stream("SELECT i FROM t", chunk_rows=10)
    b = big.stream("SELECT s FROM t", chunk_rows=10)
    await anext(a)
    await anext(b)
    assert big.pool.stats().readers_busy == 2
    # A third read waits for a reader; closing one lets it through.
    third = asyncio.create_task(big.query("SELECT count(*) FROM t", cache=False))
    await asyncio.sleep(0.05)
    assert not third.done()
    await a.aclose()
    assert (await asyncio.wait_for(third, 10)).values == [(1000,)]
    await b.aclose()
    await assert_pool_idle(big)


async def test_without_readers_it_falls_back_to_execute(db_path: Path) -> None:
    st = await _store(db_path, rows=300, max_readers=0)
    try:
        rows = st.stream("SELECT i FROM t", chunk_rows=100)
        assert len([c async for c in rows]) == 3
        assert not rows.streamed
    finally:
        await st.close()


async def test_bad_chunk_size(big: Store) -> None:
    with pytest.raises(edgestore.errors.InvalidRequest):
        big.stream("SELECT 1", chunk_rows=0)
    assert isinstance(big.stream("SELECT 1"), RowStream)
