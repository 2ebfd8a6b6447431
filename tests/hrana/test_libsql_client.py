"""The Python ``libsql-client`` (PyPI 0.3.1) against edgestore, over http:// and ws://."""

from __future__ import annotations

import libsql_client
import pytest

from tests.pool import assert_pool_idle

from .conftest import Server

BIG = 2**63 - 1
VALUES = [
    None,
    0,
    -1,
    2**53 + 1,
    BIG,
    -(2**63),
    0.5,
    -1e300,
    "",
    "naïve ✓",
    b"",
    b"\x00\x01\xff" * 100,
]


@pytest.fixture(params=["http", "ws"])
def url(request: pytest.FixtureRequest, server: Server) -> str:
    return server.url if request.param == "http" else server.ws_url


async def test_values_args_batch_and_errors(url: str, server: Server) -> None:
    async with libsql_client.create_client(url) as client:
        await client.execute("CREATE TABLE v(id INTEGER PRIMARY KEY, x ANY, tag TEXT)")
        for i, value in enumerate(VALUES):
            rs = await client.execute("INSERT INTO v(x, tag) VALUES (?, ?)", [value, f"p{i}"])
            assert rs.rows_affected == 1
            assert rs.last_insert_rowid == i + 1
        rs = await client.execute("SELECT x FROM v ORDER BY id")
        assert [row[0] for row in rs.rows] == VALUES
        assert rs.columns == ("x",)
        for i, value in enumerate(VALUES):
            rs = await client.execute(
                "SELECT x, tag FROM v WHERE id = :id AND tag = $tag", {"id": i + 1, "tag": f"p{i}"}
            )
            assert rs.rows[0][0] == value
        rs = await client.execute(f"SELECT {BIG} AS big, typeof({BIG}) AS t")
        assert rs.rows[0]["big"] == BIG
        assert rs.rows[0]["t"] == "integer"

        results = await client.batch(
            [
                ("INSERT INTO v(x, tag) VALUES (?, 'batch')", [42]),
                "SELECT count(*) FROM v WHERE tag = 'batch'",
            ]
        )
        assert results[1].rows[0][0] == 1
        # A failing batch rolls back as a whole (the client wraps it in BEGIN/COMMIT).
        with pytest.raises(libsql_client.LibsqlError) as info:
            await client.batch(
                ["INSERT INTO v(x, tag) VALUES (1, 'gone')", "INSERT INTO v(id) VALUES (1)"]
            )
        assert info.value.code == "SQLITE_CONSTRAINT"
        rs = await client.execute("SELECT count(*) FROM v WHERE tag = 'gone'")
        assert rs.rows[0][0] == 0

        with pytest.raises(libsql_client.LibsqlError) as info:
            await client.execute("SELEC 1")
        assert info.value.code == "SQLITE_ERROR"
        with pytest.raises(libsql_client.LibsqlError) as info:
            await client.execute("SELECT * FROM missing_table")
        assert info.value.code == "SQLITE_ERROR"
        with pytest.raises(libsql_client.LibsqlError) as info:
            await client.execute("SELECT 1; SELECT 2")
        assert info.value.code == "SQL_MANY_STATEMENTS"
    await assert_pool_idle(server.store)


async def test_ws_transactions_commit_and_rollback(server: Server) -> None:
    async with libsql_client.create_client(server.ws_url) as client:
        await client.execute("CREATE TABLE t(x INTEGER)")
        tx = client.transaction()
        await tx.execute("INSERT INTO t VALUES (1)")
        await tx.execute("INSERT INTO t VALUES (2)")
        rs = await tx.execute("SELECT count(*) FROM t")
        assert rs.rows[0][0] == 2
        # Other streams do not see it yet.
        rs = await client.execute("SELECT count(*) FROM t")
        assert rs.rows[0][0] == 0
        await tx.rollback()
        rs = await client.execute("SELECT count(*) FROM t")
        assert rs.rows[0][0] == 0

        tx = client.transaction()
        await tx.execute("INSERT INTO t VALUES (3)")
        await tx.commit()
        rs = await client.execute("SELECT x FROM t")
        assert rs.rows[0][0] == 3
    await assert_pool_idle(server.store)
