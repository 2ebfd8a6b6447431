"""`run` loads SQLite during the export; domain columns on the streamed reader; interrupted
or failed runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import apsw
import psycopg
import pytest

from edgestore.errors import SourceError
from edgestore.migrate import export_snapshot, read_plan, run
from edgestore.migrate.export import _rows
from edgestore.migrate.importer import STREAMING, partial_digest, read_meta
from edgestore.migrate.snapshot import Manifest
from edgestore.migrate.streaming import StreamingLoad

# `wrapped` has domain columns: Postgres reports their base types, so the binary stream loads
# them exactly like the plain columns of `plain`
SCHEMA = """
CREATE DOMAIN bytes_d AS bytea CHECK (length(VALUE) < 100);
CREATE DOMAIN code_d AS char(4);
CREATE TABLE plain (id int PRIMARY KEY, b bytea, c char(4), f float8, n numeric, t text);
CREATE TABLE wrapped (id int PRIMARY KEY, b bytes_d, c code_d, f float8, n numeric, t text);
INSERT INTO plain SELECT g, decode(lpad(to_hex(g), 6, '0'), 'hex'), 'x' || (g % 10),
    CASE g % 4 WHEN 0 THEN 'NaN'::float8 WHEN 1 THEN '-0'::float8 ELSE g / 3.0 END,
    g * 1.10, CASE WHEN g % 5 = 0 THEN NULL ELSE 'v' || g END
FROM generate_series(1, 3000) g;
INSERT INTO wrapped SELECT * FROM plain;
"""


@pytest.fixture(scope="module")
def dsn(make_db: Any) -> str:
    return str(make_db(SCHEMA))


def test_domain_columns_arrive_like_their_base_types(dsn: str, tmp_path: Path) -> None:
    target = tmp_path / "t.db"
    report = run(dsn, target, chunk_rows=700)
    assert report["ok"], report
    db = apsw.Connection(str(target))
    plain = db.execute("SELECT * FROM plain ORDER BY id").fetchall()
    assert plain == db.execute("SELECT * FROM wrapped ORDER BY id").fetchall()
    assert len(plain) == 3000
    assert plain[0] == (1, b"\x00\x00\x01", "x1  ", 0.0, 1.1, "v1")  # numeric: every value fits
    assert plain[3][3] == "NaN"
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    meta = read_meta(db)
    assert meta is not None
    assert meta["state"] == "complete"
    assert not target.with_name("t.db.partial").exists()


class _KilledAfterManifest(StreamingLoad):
    """Stands in for a run killed after the manifest was written, before the stamp."""

    def finish(self, manifest: Manifest) -> None:
        self.db.close()


def test_chunked_stream_and_copy_read_the_same_values(dsn: str) -> None:
    # the COPY reader is what a libpq older than 17 gets; all_types runs on the chunked one
    conn = psycopg.connect(dsn)
    try:
        for table in read_plan(dsn).tables:
            with _rows(conn, table, chunked=True) as rows:
                streamed = [tuple(r) for r in rows]
            with _rows(conn, table, chunked=False) as rows:
                copied = [tuple(r) for r in rows]
            assert len(streamed) == 3000
            # repr: exact for floats (NaN included, unequal to itself), bytes and text
            assert repr(sorted(streamed)) == repr(sorted(copied))
    finally:
        conn.close()


def test_run_killed_during_export_starts_over(dsn: str, tmp_path: Path) -> None:
    target = tmp_path / "k.db"
    snap = tmp_path / "k.db.snapshot"  # run's default: replaced by a new export
    # a partial that was loading when the process died (chunks committed, no manifest)
    export_snapshot(dsn, snap, chunk_rows=700, sink=_KilledAfterManifest(target))
    partial = target.with_name("k.db.partial")
    assert partial_digest(partial) == STREAMING
    (snap / "manifest.json").unlink()
    assert run(dsn, target)["ok"]
    assert not partial.exists()


def test_run_killed_after_the_manifest_reloads_the_snapshot(dsn: str, tmp_path: Path) -> None:
    target = tmp_path / "m.db"
    snap = tmp_path / "m.snap"
    export_snapshot(dsn, snap, chunk_rows=700, sink=_KilledAfterManifest(target))
    assert partial_digest(target.with_name("m.db.partial")) == STREAMING
    report = run(dsn, target, snapshot_dir=snap)
    assert report["ok"], report
    db = apsw.Connection(str(target))
    assert db.execute("SELECT count(*) FROM wrapped").fetchone()[0] == 3000


def test_failed_export_leaves_no_partial(make_db: Any, tmp_path: Path) -> None:
    bad = make_db(
        "CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a VALUES (1);"
        "CREATE TABLE t (id int PRIMARY KEY, s text);"
        "INSERT INTO t VALUES (1, 'ok'), (2, convert_from('\\xff41'::bytea, 'SQL_ASCII'))",
        encoding="SQL_ASCII",
    )
    target = tmp_path / "f.db"
    with pytest.raises(SourceError, match="not valid UTF-8"):
        run(bad, target)
    assert not target.exists()
    assert not target.with_name("f.db.partial").exists()
