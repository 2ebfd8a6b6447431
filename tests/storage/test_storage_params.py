"""Bad parameters and bad statements: a clear ParameterError naming the parameter, nothing
held afterwards on any path (query, execute, batch, stream, transaction, session), and one
write that cannot be bound fails alone in its group commit."""

from __future__ import annotations

import asyncio
import contextlib
import decimal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import edgestore
from edgestore import ParameterError
from edgestore.storage import Store

NAMED = "SELECT id, v FROM t WHERE id = :id"
ONE = "SELECT ?"
TWO = "SELECT ?, ?"
WRITE = "INSERT INTO t(v) VALUES (?)"
NAMED_WRITE = "UPDATE t SET v = :v WHERE id = :id"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    # Two readers and a short pool_timeout: two leaked readers (or a leaked writer hold) make
    # the next read or write fail with PoolTimeout instead of passing.
    st_ = await edgestore.open(
        tmp_path / "params.db",
        schemas_dir=None,
        max_readers=2,
        pool_timeout=2.0,
        statement_timeout=0.5,
    )
    await st_.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
    await st_.execute("INSERT INTO t(id, v) VALUES (1, 'one')")
    try:
        yield st_
    finally:
        await asyncio.wait_for(st_.close(), 30)


async def assert_nothing_held(store: Store) -> None:
    """Nothing held, and reads and a write still get a connection within pool_timeout."""
    stats = store.pool.stats()
    assert stats.readers_busy == 0, stats
    assert not stats.writer_busy, stats
    assert stats.writes_pending == 0, stats
    # More reads at once than there are readers: each must get one in turn.
    results = await asyncio.gather(*(store.query(NAMED, {"id": 1}, cache=False) for _ in range(3)))
    assert all(r.values == [(1, "one")] for r in results)
    await store.execute("UPDATE t SET v = 'one' WHERE id = 1")


@pytest.mark.parametrize(
    ("sql", "params", "parameter", "code", "words"),
    [
        (ONE, [2**64], "?1", "SQLITE_MISMATCH", "64-bit"),
        (ONE, [-(2**63) - 1], "?1", "SQLITE_MISMATCH", "64-bit"),
        (NAMED, {"nope": 1}, ":id", "SQLITE_RANGE", "no value for parameter :id"),
        (NAMED, {}, ":id", "SQLITE_RANGE", "no value for parameter :id"),
        (NAMED, {":id": 1}, ":id", "SQLITE_RANGE", "without its ':'"),
        (NAMED, None, ":id", "SQLITE_RANGE", "no value for parameter :id"),
        (TWO, [1], "?2", "SQLITE_RANGE", "takes 2 parameters, 1 was given"),
        (ONE, [1, 2], None, "SQLITE_RANGE", "takes 1 parameter, 2 were given"),
        (ONE, [[1]], "?1", "SQLITE_MISMATCH", "unsupported type list"),
        (ONE, [{"a": 1}], "?1", "SQLITE_MISMATCH", "unsupported type dict"),
        (ONE, [decimal.Decimal(1)], "?1", "SQLITE_MISMATCH", "unsupported type Decimal"),
        (NAMED, {"id": object()}, ":id", "SQLITE_MISMATCH", "unsupported type object"),
        (ONE, "a", None, "SQLITE_MISMATCH", "not str"),
        (ONE, 5, None, "SQLITE_MISMATCH", "not int"),
        (ONE, {"a": 1}, "?1", "SQLITE_RANGE", "positional"),
        (ONE, ["\ud800"], "?1", "SQLITE_MISMATCH", "not valid Unicode"),
    ],
)
async def test_bad_parameters_are_named_and_hold_nothing(
    store: Store, sql: str, params: Any, parameter: str | None, code: str, words: str
) -> None:
    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.query(sql, params),
        lambda: store.query(sql, params, cache=False),
        lambda: store.execute(sql, params),
        lambda: store.batch([("SELECT 1", None), (sql, params)]),
    ]
    for call in calls * 2:  # twice: two leaked readers would starve the second round
        with pytest.raises(ParameterError) as info:
            await call()
        err = info.value
        assert err.parameter == parameter
        assert err.code == code
        assert words in err.detail, err.detail
        assert isinstance(err, edgestore.DatabaseError)
    await assert_nothing_held(store)


async def test_store_close_does_not_hang_after_bad_reads(tmp_path: Path) -> None:
    store = await edgestore.open(tmp_path / "x.db", schemas_dir=None, max_readers=2)
    for params in ([2**64], [2**64], [2**64]):
        with pytest.raises(ParameterError):
            await store.query(ONE, params, cache=False)
    assert (await store.query("SELECT 1", cache=False)).scalar() == 1
    await asyncio.wait_for(store.close(), 30)


async def test_a_write_that_cannot_be_bound_fails_alone(store: Store) -> None:
    """Text that is not valid Unicode passes the cheap check and fails while binding, inside
    the group commit: only that write fails, its neighbours in the transaction commit."""

    async def write(i: int) -> str | None:
        try:
            await store.execute(WRITE, ["\ud800" if i % 40 == 0 else f"v{i}"])
        except ParameterError as err:
            return err.parameter
        return None

    before = (await store.query("SELECT count(*) FROM t", cache=False)).scalar()
    done = await asyncio.gather(*(write(i) for i in range(400)))
    assert done.count("?1") == 10
    assert done.count(None) == 390
    after = (await store.query("SELECT count(*) FROM t", cache=False)).scalar()
    assert after == before + 390  # type: ignore[operator]
    assert store.pool.stats().group_commits >= 1
    await assert_nothing_held(store)


# -- the fuzz: every kind of bad parameter and statement on every path ------------------------

BAD_VALUES = st.one_of(
    st.integers(min_value=2**63, max_value=2**80),
    st.integers(min_value=-(2**80), max_value=-(2**63) - 1),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from([object(), decimal.Decimal("1.5"), 1j, frozenset(), "\ud800", "a\udfffb"]),
)
GOOD_VALUES = st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.floats(), st.text())

BAD_PARAMS = st.one_of(
    # a bad value among good ones, positional or named
    st.tuples(st.sampled_from([ONE, WRITE]), st.lists(BAD_VALUES, min_size=1, max_size=1)),
    st.tuples(st.just(TWO), st.tuples(GOOD_VALUES, BAD_VALUES).map(list)),
    st.tuples(
        st.sampled_from([NAMED, NAMED_WRITE]),
        st.fixed_dictionaries({"id": BAD_VALUES, "v": GOOD_VALUES}),
    ),
    # missing names, wrong counts, wrong containers
    st.tuples(
        st.sampled_from([NAMED, NAMED_WRITE]),
        st.sampled_from([{}, {"nope": 1}, {":id": 1, ":v": 1}, None, [1, 2, 3], "ab"]),
    ),
    st.tuples(
        st.sampled_from([ONE, TWO, WRITE]),
        st.one_of(
            st.lists(GOOD_VALUES, min_size=3, max_size=4),
            st.sampled_from([[], None, {"a": 1}, 7, b"xy"]),
        ),
    ),
)
BAD_STATEMENTS = st.tuples(
    st.sampled_from(
        [
            "",
            ";",
            "   -- only a comment",
            "SELEC 1",
            "SELECT",
            "SELECT 1; SELECT 2",
            "SELECT * FROM nope",
            "SELECT nope FROM t",
            "SELECT '\ud800'",
            "SELECT CAST(x'ff' AS TEXT)",
            "INSERT INTO t(id, v) VALUES (1, 'dup')",
            "INSERT INTO t VALUES (1, 2, 3)",
            "BEGIN",
            "COMMIT",
            "ROLLBACK",
            "SAVEPOINT s",
            "RELEASE s",
            "ATTACH 'x.db' AS x",
            "PRAGMA journal_mode = DELETE",
            "SELECT zeroblob(-1), randomblob(-5)",
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c",
        ]
    ),
    st.sampled_from([None, [], [1]]),
)

Case = tuple[str, str, Any]


async def _drain(rows: Any) -> None:
    async with rows:
        await rows.start()
        async for _chunk in rows:
            break  # an endless statement: one chunk is enough


async def run_everywhere(store: Store, sql: str, params: Any) -> None:
    """``sql`` with ``params`` through every door of the library; errors are expected."""

    async def in_transaction() -> None:
        async with store.transaction() as tx:
            await tx.execute(sql, params)

    async def in_transaction_query() -> None:
        async with store.transaction() as tx:
            with contextlib.suppress(edgestore.EdgestoreError):
                await tx.query(sql, params)  # the transaction goes on and commits
            await tx.execute("UPDATE t SET v = 'one' WHERE id = 1")

    async def in_session(begin: bool) -> None:
        async with await store.session() as session:
            if begin:
                await session.execute("BEGIN")
            try:
                await session.execute(sql, params)
            finally:
                if not session.is_autocommit:
                    await session.execute("ROLLBACK")

    async def session_stream(begin: bool) -> None:
        async with await store.session() as session:
            if begin:
                await session.execute("BEGIN")
            await _drain(session.stream(sql, params))

    calls: list[Callable[[], Awaitable[object]]] = [
        lambda: store.query(sql, params),
        lambda: store.query(sql, params, cache=False, max_rows=5),
        lambda: store.execute(sql, params, max_rows=5),
        lambda: store.batch([("UPDATE t SET v = 'one' WHERE id = 1", None), (sql, params)]),
        lambda: _drain(store.stream(sql, params, chunk_rows=2)),
        in_transaction,
        in_transaction_query,
        lambda: in_session(False),
        lambda: in_session(True),
        lambda: session_stream(False),
        lambda: session_stream(True),
    ]
    for call in calls:
        # UnicodeDecodeError: a text value that is not UTF-8 (CAST(x'ff' AS TEXT))
        with contextlib.suppress(edgestore.EdgestoreError, UnicodeDecodeError):
            await call()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=st.one_of(BAD_PARAMS, BAD_STATEMENTS))
async def test_fuzz_nothing_is_ever_held(store: Store, case: tuple[str, Any]) -> None:
    sql, params = case
    await run_everywhere(store, sql, params)
    await assert_nothing_held(store)


async def test_a_cancelled_thread_read_keeps_its_reader_until_the_thread_lets_go(
    tmp_path: Path,
) -> None:
    """A caller cancelled while its read runs on a thread (a client that went away): the
    reader is interrupted and goes back only once the thread has left SQLite, so the next
    caller never shares a connection with a statement still running."""
    store = await edgestore.open(
        tmp_path / "cancel.db", schemas_dir=None, max_readers=1, statement_timeout=30
    )
    try:
        endless = (
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c"
        )
        for _ in range(3):
            task = asyncio.ensure_future(store.query(endless, cache=False))
            for _ in range(1000):  # until it overran the inline budget and went to a thread
                stats = store.pool.stats()
                if stats.inline_overruns and stats.readers_busy:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)  # well inside SQLite on the reader thread now
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert (await store.query("SELECT 1", cache=False)).scalar() == 1
            stats = store.pool.stats()
            assert stats.readers_busy == 0, stats
            store.pool.inline_overruns = 0
    finally:
        await asyncio.wait_for(store.close(), 30)
