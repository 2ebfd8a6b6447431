"""The replica node's store (``open_replica``) against a real primary process.

Reads are local (libsql embedded replica file), writes go to the primary over Hrana, and the
replica pulls right after each write so the caller reads its own write.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edgestore.config import Settings
from edgestore.errors import (
    ConstraintViolation,
    InvalidRequest,
    ParameterError,
    ReplicaLagging,
    ReplicationError,
)
from edgestore.replication import parse_position
from edgestore.replication.read_options import reset_read_options, set_read_options
from edgestore.replication.replica_store import open_replica

from .conftest import Node
from .test_libsql_replica import SCHEMA


def _settings(tmp_path: Path, url: str, **kw: object) -> Settings:
    return Settings(
        db_path=tmp_path / "replica" / "r.db",
        replica_of=url,
        schemas_dir=None,
        sync_interval=0.1,
        idle_timeout=0,
        **kw,  # type: ignore[arg-type]
    )


async def test_reads_local_writes_forwarded(tmp_path: Path, nodes: list[Node]) -> None:
    primary = Node(tmp_path / "p.db").start()
    nodes.append(primary)
    primary.write(SCHEMA)
    primary.write("INSERT INTO t (id, v, n) VALUES (1, 'one', 1)")

    store = await open_replica(_settings(tmp_path, primary.url))
    try:
        assert (await store.query("SELECT v FROM t")).values == [("one",)]

        # A write goes to the primary and is readable here at once.
        big = 2**62 + 3  # libsql's own forwarding would turn this into a float
        result = await store.execute("INSERT INTO t (id, v, n) VALUES (2, 'two', ?)", [big])
        assert result.rows_affected == 1
        assert (await store.query("SELECT n FROM t WHERE id = 2")).values == [(big,)]
        assert primary.rows("SELECT n FROM t WHERE id = 2") == [[big]]

        # Errors of the primary arrive as the same edgestore errors.
        with pytest.raises(ConstraintViolation):
            await store.execute("INSERT INTO t (id, v, n) VALUES (2, 'dup', 0)")

        # An atomic batch, and a transaction on a session (a Hrana stream).
        await store.batch(
            [
                ("INSERT INTO t (id, v, n) VALUES (3, 'three', 3)", None),
                ("UPDATE t SET n = n + 10 WHERE id = 1", None),
            ]
        )
        session = await store.session()
        await session.execute("BEGIN")
        await session.execute("INSERT INTO t (id, v, n) VALUES (4, 'four', 4)")
        inside = await session.execute("SELECT count(*) FROM t")  # on the primary's stream
        assert inside.values == [(4,)]
        assert not session.is_autocommit
        await session.execute("COMMIT")
        assert session.is_autocommit
        await session.close()
        rows = (await store.query("SELECT id, n FROM t ORDER BY id")).values
        assert rows == [(1, 11), (2, big), (3, 3), (4, 4)]
    finally:
        await store.close()


async def test_primary_down_then_back(tmp_path: Path, nodes: list[Node]) -> None:
    primary = Node(tmp_path / "p.db").start()
    nodes.append(primary)
    primary.write(SCHEMA)
    primary.write("INSERT INTO t (id, v, n) VALUES (1, 'one', 1)")
    store = await open_replica(_settings(tmp_path, primary.url, max_replication_lag=1.0))
    try:
        primary.stop()
        # Reads are served locally while the primary is away ...
        assert (await store.query("SELECT count(*) FROM t")).values == [(1,)]
        # ... writes fail cleanly ...
        with pytest.raises(ReplicationError):
            await store.execute("INSERT INTO t (id, v, n) VALUES (2, 'two', 2)")
        # ... and past max_replication_lag reads are refused unless staleness is accepted.
        await asyncio.sleep(1.5)
        with pytest.raises(ReplicaLagging):
            await store.query("SELECT count(*) FROM t")
        token = set_read_options(True, None)
        try:
            assert (await store.query("SELECT count(*) FROM t")).values == [(1,)]
        finally:
            reset_read_options(token)

        primary.start()
        await store.execute("INSERT INTO t (id, v, n) VALUES (2, 'two', 2)")
        assert (await store.query("SELECT count(*) FROM t")).values == [(2,)]
    finally:
        await store.close()


async def test_read_waits_for_a_position(tmp_path: Path, nodes: list[Node]) -> None:
    primary = Node(tmp_path / "p.db").start()
    nodes.append(primary)
    primary.write(SCHEMA)
    # A slow interval: only the position makes the replica pull before the read.
    settings = _settings(tmp_path, primary.url).replace(sync_interval=3600.0)
    store = await open_replica(settings)
    try:
        resp = primary.write("INSERT INTO t (id, v, n) VALUES (7, 'seven', 7)")
        header = resp.headers.get("x-edgestore-position") or primary.status()["position"]
        token = set_read_options(False, parse_position(header))
        try:
            assert (await store.query("SELECT v FROM t WHERE id = 7")).values == [("seven",)]
        finally:
            reset_read_options(token)
    finally:
        await store.close()


async def test_foreign_keys_off_lasts_for_a_replica_session(
    tmp_path: Path, nodes: list[Node]
) -> None:
    # drizzle-kit pointed at a replica: the rebuild of a parent table keeps every child row.
    primary = Node(tmp_path / "p.db").start()
    nodes.append(primary)
    primary.write("CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT)")
    primary.write(
        "CREATE TABLE posts(id INTEGER PRIMARY KEY, "
        "user_id INT NOT NULL REFERENCES users(id) ON DELETE CASCADE)"
    )
    primary.write("INSERT INTO users VALUES (1, 'a'), (2, 'b')")
    primary.write("INSERT INTO posts VALUES (1, 1), (2, 2)")
    store = await open_replica(_settings(tmp_path, primary.url))
    try:
        session = await store.session()
        for sql in (
            "PRAGMA foreign_keys=off",
            "BEGIN",
            "CREATE TABLE __new_users(id INTEGER PRIMARY KEY, name TEXT, email TEXT)",
            "INSERT INTO __new_users(id, name) SELECT id, name FROM users",
            "DROP TABLE users",
            "ALTER TABLE __new_users RENAME TO users",
            "COMMIT",
        ):
            await session.execute(sql)
            assert session.is_autocommit is (sql in ("PRAGMA foreign_keys=off", "COMMIT"))
        assert (await session.execute("PRAGMA foreign_keys")).values == [(0,)]
        await session.execute("PRAGMA foreign_keys=on")
        await session.close()
        assert primary.rows("SELECT count(*) FROM posts") == [[2]]
        assert (await store.query("SELECT count(*) FROM posts", cache=False)).values == [(2,)]
        # On its own, as on the primary, only the default is accepted.
        await store.execute("PRAGMA foreign_keys = ON")
        with pytest.raises(InvalidRequest):
            await store.execute("PRAGMA foreign_keys = OFF")
        # Everyone else's writes still cascade on the primary.
        await store.execute("DELETE FROM users WHERE id = 2")
        assert primary.rows("SELECT count(*) FROM posts") == [[1]]
    finally:
        await store.close()


async def test_forwarded_values_arrive_exactly(tmp_path: Path, nodes: list[Node]) -> None:
    """Values a replica forwards land on the primary as a local write would store them: the
    forwarder and the server share one Hrana codec (infinity exact, NaN as SQLite's NULL,
    64-bit integers, blobs), and a value no SQLite type fits is refused before sending."""
    primary = Node(tmp_path / "p.db").start()
    nodes.append(primary)
    primary.write("CREATE TABLE v (id INTEGER PRIMARY KEY, x)")

    store = await open_replica(_settings(tmp_path, primary.url))
    try:
        sent = [
            float("inf"),
            float("-inf"),
            float("nan"),
            2**63 - 1,
            -(2**63),
            1.5,
            b"\x00\xffblob",
            "text \u00e9",
            None,
        ]
        for i, value in enumerate(sent):
            await store.execute("INSERT INTO v (id, x) VALUES (?, ?)", [i, value])
        got = [row[0] for row in (await store.query("SELECT x FROM v ORDER BY id")).values]
        assert got == [value if value == value else None for value in sent]  # NaN -> NULL
        kinds = primary.rows("SELECT typeof(x) FROM v WHERE id < 2")
        assert kinds == [["real"], ["real"]]

        for bad in (object(), 2**64):
            with pytest.raises(ParameterError):
                await store.execute("INSERT INTO v (id, x) VALUES (?, ?)", [99, bad])
        assert (await store.query("SELECT count(*) FROM v WHERE id = 99")).values == [(0,)]
    finally:
        await store.close()
