"""The blocking facade drives the same Store on its own loop thread."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import edgestore


def test_connect_round_trip(tmp_path: Path) -> None:
    with edgestore.connect(tmp_path / "s.db", schemas_dir=None) as db:
        assert isinstance(db, edgestore.SyncStore)
        assert isinstance(db.store, edgestore.Store)
        db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        res = db.execute("INSERT INTO t(v) VALUES (?)", ["a"])
        assert res.last_insert_rowid == 1
        assert db.query("SELECT v FROM t").rows[0]["v"] == "a"
        assert db.batch([("INSERT INTO t(v) VALUES ('b')", None)])[0].rows_affected == 1
        assert db.deps("SELECT * FROM t").reads == {"t"}
        assert db.describe("SELECT v FROM t WHERE id = ?").params == (None,)
        with db.transaction() as tx:
            tx.execute("INSERT INTO t(v) VALUES ('c')")

        def failing() -> None:
            with db.transaction() as tx:
                tx.execute("INSERT INTO t(v) VALUES ('d')")
                raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            failing()
        assert db.query("SELECT count(*) FROM t").values == [(3,)]
        with db.session() as session:
            session.execute("BEGIN")
            session.execute("INSERT INTO t(v) VALUES ('e')")
            session.execute("COMMIT")
        assert db.stats().connections_open >= 1
        with pytest.raises(edgestore.NoSuchTableError):
            db.query("SELECT * FROM nope")
    with pytest.raises(edgestore.StoreClosedError):
        db.store.deps("SELECT 2")


def test_connect_from_several_threads(tmp_path: Path) -> None:
    with edgestore.connect(tmp_path / "s.db", schemas_dir=None) as db:
        db.execute("CREATE TABLE t(v INT)")

        def work(n: int) -> None:
            for i in range(20):
                db.execute("INSERT INTO t(v) VALUES (?)", [n * 100 + i])
                db.query("SELECT count(*) FROM t")

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert db.query("SELECT count(*) FROM t").values == [(80,)]
