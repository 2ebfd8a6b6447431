"""``/sync`` frame ranges stream in bounded chunks: slow replicas cost a chunk each, not the
range; the bytes are the WAL's own, also when the generation ends while they are sent."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from tests.rss import rss_mib
from tests.server import EdgestoreServer

WAL_HEADER = 32
PULLERS = 8
ROWS = 10_000  # about 40 MiB of WAL


def _fill(c: httpx.Client) -> None:
    assert c.post("/api/v1/execute", json={"sql": "CREATE TABLE t(b BLOB)"}).status_code == 200
    resp = c.post(
        "/api/v1/execute",
        json={
            "sql": "INSERT INTO t(b) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
            f"FROM n WHERE i < {ROWS}) SELECT randomblob(3900) FROM n"
        },
    )
    assert resp.status_code == 200, resp.text


def _slow_puller(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return sock


def test_slow_pullers_of_a_big_wal_hold_a_chunk_each(tmp_path: Path) -> None:
    db = tmp_path / "primary.db"
    with EdgestoreServer(db, schemas_dir=None) as server:
        assert server.proc is not None
        pid = server.proc.pid
        with httpx.Client(base_url=server.url, timeout=120) as c:
            _fill(c)
            gen = c.get("/info").json()["current_generation"]
            wal_mib = Path(str(db) + "-wal").stat().st_size / 2**20
            assert wal_mib > 30
            before = rss_mib(pid)
            socks = [_slow_puller(server.port, f"/sync/{gen}/1/1000000") for _ in range(PULLERS)]
            try:
                peak = before
                for _ in range(10):
                    time.sleep(0.3)
                    for sock in socks:
                        assert sock.recv(4096)  # they read, slowly
                    peak = max(peak, rss_mib(pid))
            finally:
                for sock in socks:
                    sock.close()
            # The whole range, read at speed, is the WAL's frames byte for byte.
            resp = c.get(f"/sync/{gen}/1/1000000")
            assert resp.status_code == 200
            frames = int(resp.headers["x-edgestore-frames"])
            wal = Path(str(db) + "-wal").read_bytes()
            assert resp.content == wal[WAL_HEADER : WAL_HEADER + len(resp.content)]
            assert len(resp.content) == frames * (24 + 4096)
    # Read whole, each puller held the range (8 x 40 MiB, and copies of it).
    assert peak - before < 100, f"RSS grew {peak - before:.0f} MiB for {wal_mib:.0f} MiB of WAL"


def test_generation_ending_mid_pull_finishes_from_the_archive(tmp_path: Path) -> None:
    db = tmp_path / "primary.db"
    with (
        EdgestoreServer(db, schemas_dir=None) as server,
        httpx.Client(base_url=server.url, timeout=120) as c,
    ):
        _fill(c)
        gen = c.get("/info").json()["current_generation"]
        wal = Path(str(db) + "-wal").read_bytes()
        with c.stream("GET", f"/sync/{gen}/1/1000000") as resp:
            assert resp.status_code == 200
            chunks = resp.iter_raw(65536)
            got = bytearray(next(chunks))
            # The generation ends (WAL archived, checkpointed, truncated) mid-answer.
            ended = c.post("/replication/checkpoint")
            assert ended.status_code == 200, ended.text
            assert ended.json()["generation"] == gen + 1
            assert Path(str(db) + "-wal").stat().st_size < len(wal)
            for chunk in chunks:
                got += chunk
        assert bytes(got) == wal[WAL_HEADER : WAL_HEADER + len(got)]
        assert len(got) == int(resp.headers["x-edgestore-frames"]) * (24 + 4096)
