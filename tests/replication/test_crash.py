"""SIGKILL the primary during a write load while a replica pulls: nothing acknowledged is lost
and the replica converges after the restart."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import libsql

from .conftest import Node, replica_copy_check
from .test_libsql_replica import SCHEMA


def test_sigkill_primary_during_writes(tmp_path: Path, nodes: list[Node]) -> None:
    # A small WAL threshold: generation changes happen during the load too.
    primary = Node(
        tmp_path / "p.db", replication_wal_threshold_bytes=256 * 1024, max_rows=100_000
    ).start()
    nodes.append(primary)
    primary.write(SCHEMA)
    replica_db = tmp_path / "r.db"
    conn = libsql.connect(str(replica_db), sync_url=primary.url)

    acked: list[int] = []
    stop = threading.Event()

    def writer() -> None:
        with httpx.Client(timeout=10) as client:
            for i in range(1, 20_000):
                if stop.is_set():
                    return
                body = {
                    "baton": None,
                    "requests": [
                        {
                            "type": "execute",
                            "stmt": {
                                "sql": "INSERT INTO t (id, v, n) VALUES (?, ?, ?)",
                                "args": [
                                    {"type": "integer", "value": str(i)},
                                    {"type": "text", "value": f"row-{i}-" + "y" * 200},
                                    {"type": "integer", "value": str(i)},
                                ],
                            },
                        },
                        {"type": "close"},
                    ],
                }
                try:
                    resp = client.post(primary.url + "/v2/pipeline", json=body)
                except httpx.HTTPError:
                    return
                if resp.status_code == 200 and resp.json()["results"][0]["type"] == "ok":
                    acked.append(i)

    pulls = {"ok": 0, "failed": 0}

    def puller() -> None:
        while not stop.is_set():
            try:
                conn.sync()
                pulls["ok"] += 1
            except ValueError:
                pulls["failed"] += 1
            time.sleep(0.02)

    threads = [threading.Thread(target=writer), threading.Thread(target=puller)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 600 and time.monotonic() < deadline:
        time.sleep(0.05)
    primary.kill()  # SIGKILL in the middle of the load
    time.sleep(0.3)
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acked) >= 600
    assert pulls["ok"] > 0

    primary.start()
    expected = primary.rows("SELECT id, v, n FROM t ORDER BY id")
    present = {row[0] for row in expected}
    lost = [i for i in acked if i not in present]
    assert lost == []

    conn.sync()  # converges
    got = conn.execute("SELECT id, v, n FROM t ORDER BY id").fetchall()
    assert [list(r) for r in got] == expected
    conn.close()
    check, _ = replica_copy_check(replica_db, tmp_path / "copy")
    assert check == "ok"
