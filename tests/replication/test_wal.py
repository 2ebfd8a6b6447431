"""The WAL reader against WAL files written by SQLite itself (apsw), then damaged on purpose."""

from __future__ import annotations

import shutil
from pathlib import Path

import apsw

from edgestore.replication.wal import WalHeader, WalIndex, cut_at_commit

FRAME = 24 + 4096


def _make_wal(tmp_path: Path, transactions: int) -> Path:
    db = tmp_path / "w.db"
    conn = apsw.Connection(str(db))
    conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)
    conn.execute("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    for i in range(transactions - 1):
        with conn:
            for j in range(20):
                conn.execute("INSERT INTO t (v) VALUES (?)", ("x" * 500 + str(i * 100 + j),))
    conn.close()
    return Path(str(db) + "-wal")


def test_commits_found_and_validated(tmp_path: Path) -> None:
    wal = _make_wal(tmp_path, 30)
    index = WalIndex(wal)
    assert index.refresh()
    header = index.header
    assert header is not None
    assert header.page_size == 4096
    assert len(index.commits) == 30
    assert index.last_commit * FRAME + 32 == wal.stat().st_size
    frames = index.read_frames(1, index.last_commit)
    assert len(frames) == index.last_commit * FRAME
    # A second refresh reads nothing new and keeps the same answer.
    assert index.refresh()
    assert len(index.commits) == 30


def test_corrupt_frame_and_torn_tail_are_not_served(tmp_path: Path) -> None:
    wal = _make_wal(tmp_path, 10)
    good = WalIndex(wal)
    good.refresh()
    commits = list(good.commits)

    # Flip one byte inside the page of the frame right after the 5th commit: the checksum
    # chain breaks there, so only the first 5 transactions are valid.
    damaged = tmp_path / "damaged-wal"
    shutil.copyfile(wal, damaged)
    with open(damaged, "r+b") as fh:
        fh.seek(32 + commits[4] * FRAME + 24 + 100)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))
    index = WalIndex(damaged)
    index.refresh()
    assert index.commits == commits[:5]

    # A torn last frame (a crash mid-write): that transaction is not there.
    torn = tmp_path / "torn-wal"
    shutil.copyfile(wal, torn)
    with open(torn, "r+b") as fh:
        fh.truncate(32 + commits[-1] * FRAME - 100)
    index = WalIndex(torn)
    index.refresh()
    assert index.commits == commits[:-1]


def test_restart_with_new_salts_is_noticed(tmp_path: Path) -> None:
    wal = _make_wal(tmp_path, 3)
    index = WalIndex(wal)
    index.refresh()
    first = index.header
    assert first is not None
    conn = apsw.Connection(str(wal)[: -len("-wal")])
    conn.config(apsw.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    conn.execute("INSERT INTO t (v) VALUES ('after restart')")
    conn.close()
    assert not index.refresh()  # the WAL restarted: the caller must notice
    second = WalHeader.parse(wal.read_bytes()[:32])
    assert second is not None
    assert second.salts != first.salts
    assert index.refresh()
    assert index.last_commit >= 1


def test_cut_at_commit() -> None:
    commits = [3, 5, 200, 201]
    assert cut_at_commit(commits, 1, 129) == 5  # last commit inside the range
    assert cut_at_commit(commits, 6, 134) == 200  # a transaction bigger than the range: whole
    assert cut_at_commit(commits, 201, 329) == 201
    assert cut_at_commit(commits, 202, 330) is None  # nothing more
