"""Slow and half-open clients cannot keep others waiting (a real `edgestore serve`).

Every wait is bounded: a server that lets idle connections hold its connection slots (granian's
default: 1,024 per worker, each released only after 30 s without headers) fails these tests by
timing out, not by being measured.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.server import EdgestoreServer

HALF_OPEN = 1200
BOUND = 10.0  # seconds a healthy server has to answer; far above its usual milliseconds


@contextlib.contextmanager
def half_open(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections that start a request and never finish its headers."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def test_half_open_connections_do_not_delay_health(tmp_path: Path) -> None:
    with EdgestoreServer(tmp_path / "slow.db") as server, half_open(server.port, HALF_OPEN):
        r = httpx.get(server.url + "/health", timeout=BOUND)
        assert r.status_code == 200
        r = httpx.post(server.url + "/api/v1/query", json={"sql": "SELECT 1"}, timeout=BOUND)
        assert r.status_code == 200


def test_connections_without_headers_are_closed(tmp_path: Path) -> None:
    env = {"EDGESTORE_HEADER_READ_TIMEOUT": "1", "EDGESTORE_MAX_CONNECTIONS": "50"}
    # More idle connections than slots: the header timeout frees them for real clients.
    with (
        EdgestoreServer(tmp_path / "slow.db", env=env) as server,
        half_open(server.port, 80) as socks,
    ):
        assert httpx.get(server.url + "/health", timeout=BOUND).status_code == 200
        socks[0].settimeout(BOUND)
        try:
            leftover = socks[0].recv(4096)  # the server hangs up (maybe with a 408 first)
        except ConnectionResetError:
            leftover = b""
        assert leftover == b"" or leftover.startswith(b"HTTP/1.1 408")


@pytest.mark.parametrize("path", ["/api/v1/execute", "/v2/pipeline"])
def test_a_body_that_stops_arriving_is_refused(tmp_path: Path, path: str) -> None:
    env = {"EDGESTORE_BODY_READ_TIMEOUT": "1"}
    with EdgestoreServer(tmp_path / "slow.db", env=env) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=BOUND) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
                + b"content-type: application/json\r\ncontent-length: 100\r\n\r\n"
                + b'{"sql": "SEL'
            )
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert httpx.get(server.url + "/health", timeout=BOUND).status_code == 200


@pytest.mark.parametrize(
    "path", ["/api/v1/execute", "/api/v1/query", "/v1/execute", "/v2/pipeline", "/v3/pipeline"]
)
def test_a_body_declared_too_large_is_refused_before_it_is_read(tmp_path: Path, path: str) -> None:
    # The client announces 2 MB (the default limit is 1 MiB) and sends nothing more: the answer
    # must come from the header alone, not after the body deadline (a 408 after 30 s).
    with EdgestoreServer(tmp_path / "big.db") as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=BOUND) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
                + b"content-type: application/json\r\ncontent-length: 2000000\r\n\r\n"
            )
            answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 413"), answer
        assert httpx.get(server.url + "/health", timeout=BOUND).status_code == 200
