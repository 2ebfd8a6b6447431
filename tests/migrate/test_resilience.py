"""Interruptions and damage: SIGKILL mid-import, a full disk, a corrupt chunk, a source that
keeps taking writes during export, and validation naming the differing keys."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import apsw
import psycopg
import pytest
from click.testing import CliRunner

from edgestore.cli.main import main
from edgestore.errors import SnapshotError
from edgestore.migrate import Progress, export_snapshot, import_snapshot, read_manifest, validate
from edgestore.migrate.snapshot import iter_chunk_batches

ROWS = 3000
SOURCE_SQL = f"""
CREATE TABLE item (id int PRIMARY KEY, name text NOT NULL, price numeric(10, 2), pad text);
INSERT INTO item SELECT g, 'item ' || g, g * 1.25, repeat('x', 200)
  FROM generate_series(1, {ROWS}) g;
CREATE TABLE tag (item_id int REFERENCES item (id), label text);
INSERT INTO tag SELECT g % 50 + 1, 'tag ' || (g % 7) FROM generate_series(1, 200) g;
"""


def _cli_subprocess(*args: str, preexec: Callable[[], None] | None = None) -> subprocess.Popen[str]:
    code = "import sys; from edgestore.cli import main; sys.exit(main())"
    return subprocess.Popen(
        [sys.executable, "-c", code, "migrate", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec,
    )


@pytest.fixture(scope="module")
def source(make_db: Callable[..., str]) -> str:
    return make_db(SOURCE_SQL)


@pytest.fixture(scope="module")
def snapshot(source: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    snap = tmp_path_factory.mktemp("snap") / "s"
    export_snapshot(source, snap, chunk_rows=100)  # 30 chunks for item: room to interrupt
    return snap


def _total_chunks(snapshot: Path) -> int:
    manifest = json.loads((snapshot / "manifest.json").read_text())
    return sum(len(d["chunks"]) for d in manifest["data"])


def _committed_chunks(partial: Path) -> int:
    if not partial.exists():
        return 0
    try:
        db = apsw.Connection(str(partial), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            return int(
                db.execute(
                    "SELECT count(*) FROM sqlite_edgestore_migration WHERE key LIKE 'chunk:%'"
                ).fetchone()[0]
            )
        finally:
            db.close()
    except apsw.Error:
        return 0


def test_sigkill_halfway_then_rerun_resumes_and_validates(snapshot: Path, tmp_path: Path) -> None:
    target = tmp_path / "app.db"
    partial = tmp_path / "app.db.partial"
    proc = _cli_subprocess(
        "import", "--from", str(snapshot), "--to", str(target), "--chunk-delay", "0.1"
    )
    deadline = time.monotonic() + 60
    while _committed_chunks(partial) < 5 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    committed = _committed_chunks(partial)
    assert 5 <= committed < _total_chunks(snapshot)
    assert not target.exists()  # nothing at the target path looks complete
    with pytest.raises(Exception, match="does not exist"):
        validate(snapshot, target)

    result = import_snapshot(snapshot, target)
    assert result.chunks_skipped >= committed
    assert result.chunks_loaded + result.chunks_skipped == _total_chunks(snapshot)
    assert not partial.exists()
    report = validate(snapshot, target)
    assert report["ok"], report
    db = apsw.Connection(str(target))
    assert db.execute("SELECT count(*) FROM item").fetchone()[0] == ROWS


def test_disk_full_stops_cleanly_and_resumes(snapshot: Path, tmp_path: Path) -> None:
    target = tmp_path / "full.db"

    def small_disk() -> None:  # every file the import writes is capped at 256 KiB
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))

    proc = _cli_subprocess(
        "import", "--from", str(snapshot), "--to", str(target), preexec=small_disk
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 5, err
    assert "free some space and run the same command again to resume" in err
    assert "Traceback" not in err
    assert not target.exists()
    result = import_snapshot(snapshot, target)
    assert result.chunks_loaded + result.chunks_skipped == _total_chunks(snapshot)
    assert validate(snapshot, target)["ok"]


def test_disk_full_during_a_streaming_run_starts_over_cleanly(source: str, tmp_path: Path) -> None:
    target = tmp_path / "full.db"

    def small_disk() -> None:  # the partial's WAL outgrows 256 KiB long before a chunk file
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, 256 * 1024))

    proc = _cli_subprocess("run", "--from", source, "--to", str(target), preexec=small_disk)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 5, err
    assert "run the same command again (it starts over)" in err
    assert "Traceback" not in err
    assert not target.exists()
    assert not target.with_name("full.db.partial").exists()
    proc = _cli_subprocess("run", "--from", source, "--to", str(target))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "validation: OK" in out


def test_corrupt_chunk_is_refused_naming_the_file(snapshot: Path, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for f in snapshot.iterdir():
        (damaged / f.name).write_bytes(f.read_bytes())
    manifest = json.loads((damaged / "manifest.json").read_text())
    victim = damaged / manifest["data"][0]["chunks"][3]["file"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    with pytest.raises(SnapshotError, match=victim.name):
        import_snapshot(damaged, tmp_path / "x.db")
    # the chunks before it are committed, nothing of the corrupt one is
    partial = apsw.Connection(str(tmp_path / "x.db.partial"))
    assert partial.execute("SELECT count(*) FROM item").fetchone()[0] == 300
    partial.close()
    # a flip in the last byte (past the data the decompressor needs) is caught by the digest
    last = damaged / manifest["data"][0]["chunks"][5]["file"]
    tail = bytearray(last.read_bytes())
    tail[-1] ^= 0x80
    last.write_bytes(bytes(tail))
    with pytest.raises(SnapshotError, match="corrupt"):
        list(iter_chunk_batches(damaged, read_manifest(damaged).data[0].chunks[5]))
    r = CliRunner().invoke(
        main, ["migrate", "import", "--from", str(damaged), "--to", str(tmp_path / "y.db")]
    )
    assert r.exit_code == 4
    assert victim.name in r.stderr
    assert "corrupt" in r.stderr
    assert not (tmp_path / "y.db").exists()


def test_validate_narrows_to_the_differing_keys(
    snapshot: Path, source: str, tmp_path: Path
) -> None:
    target = tmp_path / "v.db"
    import_snapshot(snapshot, target)
    db = apsw.Connection(str(target))
    db.execute("UPDATE item SET price = '1.26' WHERE id = 1234")
    db.execute("DELETE FROM item WHERE id = 77")
    db.execute("UPDATE tag SET label = 'changed' WHERE rowid = 5")
    db.close()
    report = validate(source, target)
    assert report["ok"] is False
    item = next(t for t in report["tables"] if t["name"] == "item")
    assert item["status"] == "mismatch"
    assert item["differing_rows"] == 2
    by_kind = {d["kind"]: d for d in item["differences"]}
    assert by_kind["changed"]["key"] == {"id": 1234}
    assert by_kind["changed"]["columns"] == {"price": {"source": 1542.5, "target": 1.26}}
    assert by_kind["missing_in_target"]["key"] == {"id": 77}
    tag = next(t for t in report["tables"] if t["name"] == "tag")  # no primary key
    assert tag["status"] == "mismatch"
    assert tag["differing_rows"] == 2
    assert {d["kind"] for d in tag["differences"]} == {"missing_in_target", "extra_in_target"}
    r = CliRunner().invoke(main, ["migrate", "validate", "--from", source, "--to", str(target)])
    assert r.exit_code == 1
    assert "{'id': 1234}" in r.stdout
    assert "DIFFERENCES FOUND" in r.stdout


class _WriteDuringExport(Progress):
    """Commits writes on another connection once the export has started reading."""

    def __init__(self, dsn: str) -> None:
        super().__init__()
        self.dsn = dsn
        self.fired = False

    def advance(self, rows: int) -> None:
        super().advance(rows)
        if not self.fired:
            self.fired = True
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                conn.execute(
                    "INSERT INTO item SELECT g, 'late', 1, '' "
                    "FROM generate_series(100001, 100100) g"
                )
                conn.execute("UPDATE item SET name = 'renamed' WHERE id = 2999")
                conn.execute("DELETE FROM tag")


def test_concurrent_source_writes_do_not_leak_into_the_snapshot(
    make_db: Callable[..., str], tmp_path: Path
) -> None:
    dsn = make_db(SOURCE_SQL)
    snap = tmp_path / "snap"
    progress = _WriteDuringExport(dsn)
    manifest = export_snapshot(dsn, snap, chunk_rows=500, progress=progress)
    assert progress.fired
    counts = {d.name: d.row_count for d in manifest.data}
    assert counts == {"item": ROWS, "tag": 200}
    target = tmp_path / "c.db"
    import_snapshot(snap, target)
    assert validate(snap, target)["ok"]
    db = apsw.Connection(str(target))
    assert db.execute("SELECT name FROM item WHERE id = 2999").fetchone()[0] == "item 2999"
    live = validate(dsn, target)  # the source moved on: the live comparison sees it
    assert live["ok"] is False
    item = next(t for t in live["tables"] if t["name"] == "item")
    assert item["differing_rows"] == 101


def test_json_events_and_plain_lines(source: str, tmp_path: Path) -> None:
    r = CliRunner().invoke(
        main, ["migrate", "run", "--from", source, "--to", str(tmp_path / "j.db"), "--json"]
    )
    assert r.exit_code == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    kinds = {e["event"] for e in events}
    assert {"phase", "table_start", "table_done", "report"} <= kinds
    assert events[-1]["event"] == "report"
    assert events[-1]["ok"] is True
    done = [e for e in events if e["event"] == "table_done" and e["step"] == "export"]
    assert {e["table"]: e["rows"] for e in done} == {"item": ROWS, "tag": 200}
    r = CliRunner().invoke(
        main, ["migrate", "run", "--from", source, "--to", str(tmp_path / "p.db")]
    )
    assert r.exit_code == 0
    assert "\r" not in r.stderr  # not a terminal: plain lines only
    assert "export:" in r.stderr
    assert "validation: OK" in r.stdout


def test_live_display_redraws_one_line() -> None:
    import io

    from edgestore.migrate import LiveProgress

    out = io.StringIO()
    p = LiveProgress(out)
    p.phase("export")
    p.start("big", 1000)
    p._last = -1.0  # draw on the next advance, whatever the clock says
    p.advance(500)
    p.done()
    p.close()
    text = out.getvalue()
    assert "\rexport" not in text
    assert "\r  export big: 500/1,000 rows  50.0%" in text
    assert "rows/s" in text
    assert "ETA" in text
    assert os.linesep in text


def test_interrupted_import_into_an_existing_database_resumes_in_place(
    snapshot: Path, tmp_path: Path
) -> None:
    target = tmp_path / "existing.db"
    db = apsw.Connection(str(target))
    db.execute("CREATE TABLE keep (x); INSERT INTO keep VALUES (1)")
    db.close()
    proc = _cli_subprocess(
        "import", "--from", str(snapshot), "--to", str(target), "--chunk-delay", "0.1"
    )
    deadline = time.monotonic() + 60
    while _committed_chunks(target) < 3 and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    with pytest.raises(Exception, match="unfinished import"):
        validate(snapshot, target)
    result = import_snapshot(snapshot, target)
    assert result.chunks_skipped >= 3
    assert validate(snapshot, target)["ok"]
    db = apsw.Connection(str(target))
    assert db.execute("SELECT x FROM keep").fetchall() == [(1,)]
