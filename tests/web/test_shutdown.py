"""SIGTERM under a write load: a clean, prompt exit that keeps every acknowledged write.

Each round starts `edgestore serve`, runs concurrent writers, sends SIGTERM mid-load and then
checks: exit code 0 within 5 s, every write the server acknowledged is in the database file,
and the WAL was checkpointed (no -wal content left), so the .db file alone is complete.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import apsw
import httpx
import pytest

from tests.server import EdgestoreServer

ROUNDS = 20
WRITERS = 4
EXIT_BOUND = 5.0  # seconds a graceful exit may take


def writer(url: str, wid: int, acked: list[str], stop: threading.Event) -> None:
    with httpx.Client(base_url=url, timeout=10) as http:
        for n in range(100_000):  # bounded; ends at the first refused request in practice
            if stop.is_set():
                return
            name = f"w{wid}-{n}"
            try:
                r = http.post(
                    "/api/v1/execute",
                    json={"sql": "INSERT INTO items(name) VALUES (?)", "params": [name]},
                )
            except httpx.HTTPError:
                return  # the server went away: this write was not acknowledged
            if r.status_code == 200:
                acked.append(name)
            else:
                return


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_sigterm_under_write_load(tmp_path: Path, round_: int) -> None:
    db = tmp_path / "shutdown.db"
    server = EdgestoreServer(db).start()
    acked: list[str] = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=writer, args=(server.url, i, acked, stop)) for i in range(WRITERS)
    ]
    try:
        for t in threads:
            t.start()
        for _ in range(200):  # bounded: wait until writes are flowing
            if len(acked) >= 20:
                break
            time.sleep(0.01)
        assert server.proc is not None
        started = time.monotonic()
        code = server.stop(timeout=EXIT_BOUND)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        server.kill()
    assert code == 0, server.log()
    assert elapsed < EXIT_BOUND
    assert acked, "no write was acknowledged before SIGTERM"
    wal = db.with_name(db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "WAL not checkpointed"
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        stored = {row[0] for row in conn.execute("SELECT name FROM items")}
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()
    missing = [name for name in acked if name not in stored]
    assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
