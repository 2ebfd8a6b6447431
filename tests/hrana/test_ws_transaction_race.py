"""Many WebSocket transactions at once, with the real clients: committed, rolled back,
abandoned (stream closed inside the transaction) and cut off (socket closed mid-way).

A socket that closes cancels the requests still under way on it, a stream's close among
them; the rollback of its transaction must finish before the writer goes to the next BEGIN
(else that BEGIN fails with "cannot start a transaction within a transaction").
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import libsql_client
import pytest

from tests.pool import assert_pool_idle
from tests.server import EdgestoreServer

from .clients import run_node
from .conftest import Server, StartServer

ROUNDS = 8
CALLERS = 5


async def _caller(
    url: str, tag: int, errors: list[str], closing: list[asyncio.Future[Any]]
) -> None:
    table = f"t{tag}"

    async def commit(c: Any) -> None:
        await c.batch([f"DROP TABLE IF EXISTS {table}", f"CREATE TABLE {table} (a)"])
        with c.transaction() as tx:
            await tx.execute(f"INSERT INTO {table} VALUES ('one')")
            await tx.commit()
        rs = await c.execute(f"SELECT count(*) FROM {table}")
        assert rs[0][0] == 1

    async def rollback(c: Any) -> None:
        await c.batch([f"DROP TABLE IF EXISTS {table}", f"CREATE TABLE {table} (a)"])
        with c.transaction() as tx:
            await tx.execute(f"INSERT INTO {table} VALUES ('one')")
            await tx.rollback()
        rs = await c.execute(f"SELECT count(*) FROM {table}")
        assert rs[0][0] == 0

    async def abandoned(c: Any) -> None:
        tx = c.transaction()
        await tx.execute("SELECT 1")
        await tx.execute(f"CREATE TABLE IF NOT EXISTS {table} (a)")
        tx.close()  # close_stream inside the transaction: the server rolls it back

    async def cut_off(c: Any) -> None:
        tx = c.transaction()
        await tx.execute(f"CREATE TABLE IF NOT EXISTS {table} (a)")
        # Sent, then the socket closes under it (its answer never comes).
        lost = asyncio.ensure_future(tx.execute(f"INSERT INTO {table} VALUES ('lost')"))
        closing.append(lost)
        await asyncio.sleep(0)

    for fn in (abandoned, commit, cut_off, rollback, abandoned, commit):
        client = libsql_client.create_client(url)
        try:
            await fn(client)
        except Exception as exc:
            errors.append(f"{fn.__name__}: {exc!r}")
        # Half the time the socket closes without waiting, as a test fixture's teardown does.
        close = asyncio.ensure_future(client.close())
        if random.random() < 0.5:
            await close
        else:
            closing.append(close)


async def test_concurrent_ws_transactions_python_client(start_server: StartServer) -> None:
    server: Server = await start_server()
    errors: list[str] = []
    closing: list[asyncio.Future[Any]] = []
    for _ in range(ROUNDS):
        await asyncio.gather(*(_caller(server.ws_url, i, errors, closing) for i in range(CALLERS)))
    await asyncio.gather(*closing, return_exceptions=True)
    assert errors == []
    # Nothing is left holding the writer: a transaction begins and commits at once.
    async with libsql_client.create_client(server.ws_url) as client:
        with client.transaction() as tx:
            await tx.execute("CREATE TABLE after(a)")
            await tx.commit()
    for _ in range(100):  # closes of cut-off sockets may still be rolling back
        stats = server.store.pool.stats()
        if stats.readers_busy == 0 and stats.writes_pending == 0:
            break
        await asyncio.sleep(0.05)
    await assert_pool_idle(server.store)


@pytest.mark.usefixtures("js_packages")
async def test_concurrent_ws_transactions_js_client(tmp_path: Path) -> None:
    # Against `edgestore serve` itself (granian), where the clients' own suites failed.
    with EdgestoreServer(tmp_path / "race.db", schemas_dir=None) as server:
        ws_url = server.url.replace("http://", "ws://")
        report = await run_node(
            "ws_transaction_race.mjs", ws_url, str(ROUNDS), str(CALLERS), limit=240
        )
    assert report["errors"] == [], report
    assert report["committed"] > 0
