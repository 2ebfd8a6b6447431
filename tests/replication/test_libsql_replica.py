"""Real ``libsql`` (PyPI) embedded replicas of a real ``edgestore serve`` primary."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import libsql

from .conftest import Node, replica_copy_check

SCHEMA = "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL, n INTEGER)"


def _write_rows(primary: Node, first: int, count: int, per_txn: int) -> None:
    for start in range(first, first + count, per_txn):
        primary.transaction(
            [
                ("INSERT INTO t (id, v, n) VALUES (?, ?, ?)", [i, f"row-{i}-" + "x" * 60, i * 7])
                for i in range(start, min(start + per_txn, first + count))
            ]
        )


def _info(replica_db: Path) -> dict[str, int]:
    data: dict[str, int] = json.loads(Path(str(replica_db) + "-info").read_text())
    return data


def test_bootstrap_10k_rows_across_generations(tmp_path: Path, nodes: list[Node]) -> None:
    # 1 MiB WAL threshold: generations also end on their own during the load.
    primary = Node(
        tmp_path / "p.db", replication_wal_threshold_bytes=1 << 20, max_rows=100_000
    ).start()
    nodes.append(primary)
    primary.write(SCHEMA)

    replica_db = tmp_path / "replica" / "r.db"
    replica_db.parent.mkdir()
    conn = libsql.connect(str(replica_db), sync_url=primary.url)
    conn.sync()
    assert conn.execute("SELECT count(*) FROM t").fetchall() == [(0,)]

    _write_rows(primary, 1, 3000, 25)
    frames_before_checkpoint = primary.status()["frames"]
    conn.sync()  # a pull in the middle of the history
    assert conn.execute("SELECT count(*) FROM t").fetchall() == [(3000,)]
    first_generation = _info(replica_db)["generation"]

    assert primary.checkpoint() > first_generation  # on demand
    _write_rows(primary, 3001, 7000, 40)
    conn.sync()

    status = primary.status()
    assert status["generation"] >= first_generation + 2  # threshold ones too
    # More than one pull batch (128 frames) was needed somewhere in that history.
    assert frames_before_checkpoint > 128 or status["archived_generations"]
    assert _info(replica_db)["generation"] == status["generation"]

    expected = primary.rows("SELECT id, v, n FROM t ORDER BY id")
    assert len(expected) == 10_000
    got = conn.execute("SELECT id, v, n FROM t ORDER BY id").fetchall()
    assert [list(r) for r in got] == expected
    conn.close()

    check, rows = replica_copy_check(replica_db, tmp_path / "copy")
    assert check == "ok"
    assert [list(r) for r in rows] == expected


def test_write_through_replica_lands_on_primary(tmp_path: Path, nodes: list[Node]) -> None:
    primary = Node(tmp_path / "p.db").start()
    nodes.append(primary)
    primary.write(SCHEMA)
    primary.write("INSERT INTO t (id, v, n) VALUES (1, 'from primary', 1)")

    conn = libsql.connect(str(tmp_path / "r.db"), sync_url=primary.url)
    conn.sync()
    conn.execute("INSERT INTO t (id, v, n) VALUES (2, 'from replica', 2)")
    conn.commit()
    # Visible on the replica at once (libsql pulls after the forwarded commit) ...
    assert conn.execute("SELECT v FROM t WHERE id = 2").fetchall() == [("from replica",)]
    # ... and it is on the primary.
    assert primary.rows("SELECT v FROM t WHERE id = 2") == [["from replica"]]
    conn.close()


def test_offline_replica_catches_up_over_two_generations(tmp_path: Path, nodes: list[Node]) -> None:
    primary = Node(tmp_path / "p.db").start()
    nodes.append(primary)
    primary.write(SCHEMA)
    replica_db = tmp_path / "r.db"
    conn = libsql.connect(str(replica_db), sync_url=primary.url)
    _write_rows(primary, 1, 200, 20)
    conn.sync()
    conn.close()  # offline from here

    generation = primary.status()["generation"]
    _write_rows(primary, 201, 300, 30)
    primary.checkpoint()
    _write_rows(primary, 501, 300, 30)
    primary.checkpoint()
    _write_rows(primary, 801, 100, 10)
    assert primary.status()["generation"] == generation + 2

    conn = libsql.connect(str(replica_db), sync_url=primary.url)
    conn.sync()
    expected = primary.rows("SELECT id, v, n FROM t ORDER BY id")
    assert [
        list(r) for r in conn.execute("SELECT id, v, n FROM t ORDER BY id").fetchall()
    ] == expected
    assert _info(replica_db)["generation"] == generation + 2
    conn.close()
    check, _ = replica_copy_check(replica_db, tmp_path / "copy")
    assert check == "ok"


def test_replica_older_than_retention_is_rebootstrapped(tmp_path: Path, nodes: list[Node]) -> None:
    # Nothing is retained: every ended generation is dropped at once.
    primary = Node(tmp_path / "p.db", replication_retention_seconds=0).start()
    nodes.append(primary)
    primary.write(SCHEMA)
    replica_db = tmp_path / "r.db"
    conn = libsql.connect(str(replica_db), sync_url=primary.url)
    _write_rows(primary, 1, 300, 10)
    conn.sync()
    _write_rows(primary, 301, 50, 10)  # the replica has part of this generation only ...
    conn.close()
    for first in (351, 651, 951):  # ... and misses three whole generation changes
        primary.checkpoint()
        _write_rows(primary, first, 300, 25)
        primary.rows("DELETE FROM t WHERE id % 97 = 0 RETURNING id")
    assert primary.status()["archived_generations"] == []

    conn = libsql.connect(str(replica_db), sync_url=primary.url)
    conn.sync()
    expected = primary.rows("SELECT id, v, n FROM t ORDER BY id")
    assert [
        list(r) for r in conn.execute("SELECT id, v, n FROM t ORDER BY id").fetchall()
    ] == expected
    conn.close()
    check, rows = replica_copy_check(replica_db, tmp_path / "copy")
    assert check == "ok"
    assert [list(r) for r in rows] == expected


def test_sync_protocol_answers(tmp_path: Path, nodes: list[Node]) -> None:
    primary = Node(tmp_path / "p.db").start()
    nodes.append(primary)
    primary.write(SCHEMA)
    info = httpx.get(primary.url + "/info").json()
    generation = info["current_generation"]
    assert generation >= 1
    frames = primary.status()["frames"]

    # Whole frames of 4096-byte pages, ending at a commit frame.
    pulled = httpx.get(f"{primary.url}/sync/{generation}/1/{frames + 1}")
    assert pulled.status_code == 200
    assert len(pulled.content) == frames * (24 + 4096)
    last = pulled.content[-(24 + 4096) :]
    assert int.from_bytes(last[4:8], "big") > 0  # the commit frame's database size

    # "Nothing more": 400 with the current generation, as libSQL servers answer.
    more = httpx.get(f"{primary.url}/sync/{generation}/{frames + 1}/{frames + 129}")
    assert more.status_code == 400
    assert more.json() == {"generation": generation}

    # The export is a SQLite database with 4096-byte pages.
    export = httpx.get(f"{primary.url}/export/{generation}")
    assert export.status_code == 200
    assert export.content[:16] == b"SQLite format 3\x00"
    assert int.from_bytes(export.content[16:18], "big") == 4096

    # Offline-write push is refused, clearly and without a retry-inviting 5xx.
    push = httpx.post(f"{primary.url}/sync/{generation}/1/2", content=b"\x00" * 4120)
    assert push.status_code == 405
    assert "offline" in push.json()["error"]["message"]


def test_partly_retained_history_rebuilds_from_the_base_snapshot(
    tmp_path: Path, nodes: list[Node]
) -> None:
    # Room for the newest archives only: the oldest are dropped and the base snapshot (the
    # start of the oldest archived generation) moves forward over them.
    primary = Node(tmp_path / "p.db", replication_retention_bytes=450_000).start()
    nodes.append(primary)
    primary.write(SCHEMA)
    replica_db = tmp_path / "r.db"
    conn = libsql.connect(str(replica_db), sync_url=primary.url)
    _write_rows(primary, 1, 100, 10)
    conn.sync()
    conn.close()
    for first in range(101, 1101, 200):
        _write_rows(primary, first, 200, 20)
        primary.rows("UPDATE t SET n = n + 1 WHERE id % 3 = 0 RETURNING id")
        primary.checkpoint()
    archived = primary.status()["archived_generations"]
    generation = primary.status()["generation"]
    assert archived, "retention too small for this test: nothing archived"
    assert archived[0] > 2, "retention too large for this test: nothing dropped"
    assert archived == list(range(archived[0], generation))

    conn = libsql.connect(str(replica_db), sync_url=primary.url)
    conn.sync()
    expected = primary.rows("SELECT id, v, n FROM t ORDER BY id")
    got = conn.execute("SELECT id, v, n FROM t ORDER BY id").fetchall()
    assert [list(r) for r in got] == expected
    conn.close()
    check, _ = replica_copy_check(replica_db, tmp_path / "copy")
    assert check == "ok"


def test_page_size_other_than_4096_is_refused(tmp_path: Path, nodes: list[Node]) -> None:
    import apsw
    import pytest

    db = tmp_path / "big-pages.db"
    conn = apsw.Connection(str(db))
    conn.execute("PRAGMA page_size = 8192; CREATE TABLE t (x); PRAGMA journal_mode = WAL")
    conn.close()
    primary = Node(db)
    nodes.append(primary)
    with pytest.raises(RuntimeError, match="page size 8192"):
        primary.start()
    # One line says why, not granian's tracebacks of the failed lifespan startup.
    assert "Traceback" not in primary.log.read_text()
    # Without replication the same database is served.
    plain = Node(db, replication="false")
    nodes.append(plain)
    plain.start()
    assert httpx.get(plain.url + "/info").status_code == 404


def test_idle_disconnect_ends_the_generation(tmp_path: Path, nodes: list[Node]) -> None:
    # The pool closes its connections after 0.5 s idle; its checkpoint becomes a generation
    # change, and the WAL is never lost in between.
    primary = Node(tmp_path / "p.db", idle_timeout=0.5).start()
    nodes.append(primary)
    primary.write(SCHEMA)
    conn = libsql.connect(str(tmp_path / "r.db"), sync_url=primary.url)
    _write_rows(primary, 1, 100, 10)
    generation = primary.status()["generation"]
    deadline = time.monotonic() + 20
    while primary.status()["generation"] == generation:
        assert time.monotonic() < deadline, "no generation change on idle"
        time.sleep(0.2)
    assert primary.status()["archived_generations"][-1] == generation
    _write_rows(primary, 101, 100, 10)
    conn.sync()
    expected = primary.rows("SELECT id, v, n FROM t ORDER BY id")
    got = conn.execute("SELECT id, v, n FROM t ORDER BY id").fetchall()
    assert [list(r) for r in got] == expected
    conn.close()


def test_export_is_stable_while_writes_go_on(tmp_path: Path, nodes: list[Node]) -> None:
    import threading

    import apsw

    primary = Node(tmp_path / "p.db").start()
    nodes.append(primary)
    primary.write(SCHEMA)
    _write_rows(primary, 1, 500, 50)
    generation = primary.checkpoint()  # the export now holds those 500 rows
    stop = threading.Event()

    def writer() -> None:
        i = 1000
        while not stop.is_set() and i < 20_000:
            primary.write("INSERT INTO t (id, v, n) VALUES (?, 'w', 0)", i)
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        exports = [httpx.get(f"{primary.url}/export/{generation}").content for _ in range(5)]
    finally:
        stop.set()
        thread.join(30)
    assert all(e == exports[0] for e in exports)  # the generation's start, byte for byte
    path = tmp_path / "export.db"
    path.write_bytes(exports[0])
    conn = apsw.Connection(str(path))
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("SELECT count(*) FROM t").fetchall() == [(500,)]
    conn.close()


def test_pulling_needs_ro_and_forwarding_writes_needs_rw(tmp_path: Path, nodes: list[Node]) -> None:
    import hashlib

    import pytest

    def digest(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    primary = Node(
        tmp_path / "p.db",
        auth_tokens=f"ro:{digest('reader-token')},rw:{digest('writer-token')}",
    ).start()
    nodes.append(primary)
    auth = {"authorization": "Bearer writer-token"}
    assert primary.pipeline([(SCHEMA, [])], headers=auth).status_code == 200
    assert httpx.get(primary.url + "/info").status_code == 401

    reader = libsql.connect(
        str(tmp_path / "ro.db"), sync_url=primary.url, auth_token="reader-token"
    )
    reader.sync()
    assert reader.execute("SELECT count(*) FROM t").fetchall() == [(0,)]
    with pytest.raises(ValueError, match="read-only"):
        reader.execute("INSERT INTO t (id, v, n) VALUES (1, 'no', 0)")
    reader.close()

    writer = libsql.connect(
        str(tmp_path / "rw.db"), sync_url=primary.url, auth_token="writer-token"
    )
    writer.execute("INSERT INTO t (id, v, n) VALUES (1, 'yes', 0)")
    writer.commit()
    assert writer.execute("SELECT v FROM t").fetchall() == [("yes",)]
    writer.close()


def test_checkpoint_by_another_program_never_corrupts_a_replica(
    tmp_path: Path, nodes: list[Node]
) -> None:
    import apsw
    import pytest

    primary = Node(tmp_path / "p.db", max_rows=100_000).start()
    nodes.append(primary)
    primary.write(SCHEMA)
    _write_rows(primary, 1, 200, 20)
    old = libsql.connect(str(tmp_path / "old.db"), sync_url=primary.url)
    old.sync()
    _write_rows(primary, 201, 200, 20)  # frames the old replica has not pulled yet

    # Another program checkpoints the live database behind edgestore's back.
    other = apsw.Connection(str(tmp_path / "p.db"))
    other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    other.close()
    _write_rows(primary, 401, 100, 20)

    # The old replica's frames are gone: it gets a clear error, not a mismatched WAL.
    with pytest.raises(ValueError, match=r"history was lost|re-bootstrap"):
        old.sync()
    old.close()

    # A new replica bootstraps from the new generation and matches the primary.
    fresh = libsql.connect(str(tmp_path / "fresh.db"), sync_url=primary.url)
    fresh.sync()
    expected = primary.rows("SELECT id, v, n FROM t ORDER BY id")
    assert len(expected) == 500
    got = fresh.execute("SELECT id, v, n FROM t ORDER BY id").fetchall()
    assert [list(r) for r in got] == expected
    fresh.close()
