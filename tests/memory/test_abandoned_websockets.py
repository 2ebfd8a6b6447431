"""Abandoned WebSockets give their memory back: 500 Hrana sockets, each with open streams that
ran queries (one inside a transaction), are dropped without a goodbye; the server's RSS,
measured from outside, returns within 10% of what it was before."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import httpx
import psutil
import websockets
from websockets.asyncio.client import connect

from tests.server import EdgestoreServer

SOCKETS = 500
BATCH = 125  # sockets open at once (four waves)


def tree_rss(pid: int) -> int:
    root = psutil.Process(pid)
    return root.memory_info().rss + sum(c.memory_info().rss for c in root.children(True))


async def _open_and_drop(url: str, n: int) -> None:
    async def one(i: int) -> None:
        ws = await connect(url, subprotocols=[websockets.Subprotocol("hrana3")], open_timeout=30)
        await ws.send(json.dumps({"type": "hello", "jwt": None}))
        for sid in range(2):
            await ws.send(
                json.dumps(
                    {
                        "type": "request",
                        "request_id": sid * 2,
                        "request": {"type": "open_stream", "stream_id": sid},
                    }
                )
            )
            sql = "BEGIN" if sid == 1 and i % 10 == 0 else "SELECT * FROM items LIMIT 500"
            await ws.send(
                json.dumps(
                    {
                        "type": "request",
                        "request_id": sid * 2 + 1,
                        "request": {
                            "type": "execute",
                            "stream_id": sid,
                            "stmt": {"sql": sql, "want_rows": True},
                        },
                    }
                )
            )
        for _ in range(5):  # hello + 2 x (open_stream, execute)
            await asyncio.wait_for(ws.recv(), 30)
        # Abandon: drop the TCP connection without a close frame or closing the streams.
        transport = ws.transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
        transport.abort()

    for start in range(0, n, BATCH):
        await asyncio.gather(*(one(i) for i in range(start, min(n, start + BATCH))))


def test_abandoned_websockets_give_memory_back(tmp_path: Path) -> None:
    env = {"EDGESTORE_MEMORY_SAMPLE_INTERVAL": "0.5", "EDGESTORE_STREAM_IDLE_TIMEOUT": "2"}
    with EdgestoreServer(tmp_path / "app.db", env=env) as server:
        assert server.proc is not None
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for i in range(1000):
                http.post(
                    "/api/v1/tables/items/rows", json={"name": "x" * 200 + str(i), "price": i}
                )
        ws_url = server.url.replace("http://", "ws://") + "/"
        asyncio.run(_open_and_drop(ws_url, 50))  # warm the paths once
        time.sleep(4)
        before = tree_rss(server.proc.pid)

        asyncio.run(_open_and_drop(ws_url, SOCKETS))
        peak = tree_rss(server.proc.pid)
        deadline = time.monotonic() + 40
        now = peak
        while time.monotonic() < deadline:
            time.sleep(1)
            now = tree_rss(server.proc.pid)
            if now <= before * 1.10:
                break
        # The server still works, and the abandoned transactions released the writer.
        with httpx.Client(base_url=server.url, timeout=30) as http:
            r = http.post("/api/v1/tables/items/rows", json={"name": "after", "price": 1})
            assert r.status_code in (200, 201), r.text
    print("RSS MiB before, peak, after:", before >> 20, peak >> 20, now >> 20)
    assert now <= before * 1.10, (before >> 20, peak >> 20, now >> 20)
