"""The JSON nesting bound (web/json_depth.py): 400 past 1,000 levels whatever the interpreter's
recursion limit, checked before any decoder sees the body or WebSocket frame."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.exceptions import WebSocketDisconnect
from litestar.testing import TestClient

from edgestore.web.json_depth import MAX_DEPTH, DepthGuard, too_deep

from .test_faults import BODIES


def nested(levels: int) -> str:
    return "[" * levels + "]" * levels


@pytest.fixture
def raised_recursion_limit() -> Iterator[None]:
    """What an embedding application may do: decoders that recurse then go past 1,000 levels."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(50_000)
    try:
        yield
    finally:
        sys.setrecursionlimit(limit)


def test_the_bound_is_exact() -> None:
    assert MAX_DEPTH == 1000
    assert not too_deep(nested(MAX_DEPTH))
    assert too_deep(nested(MAX_DEPTH + 1))
    assert too_deep(nested(MAX_DEPTH + 1).encode())
    # Objects and arrays both nest; brackets inside strings do not, escaped quotes included.
    mixed = '{"a": ' * 600 + "[" * 400 + "]" * 400 + "}" * 600
    assert not too_deep(mixed)
    assert too_deep('{"a": ' * 601 + "[" * 400 + "]" * 400 + "}" * 601)
    in_strings = json.dumps({"sql": "[" * 5000, "q": 'x\\"[[' * 2000, "v": [[["\\"]]]})
    assert not too_deep(in_strings)
    # Many brackets but shallow (a large batch) passes; the count alone does not refuse.
    assert not too_deep(json.dumps([[i] for i in range(5000)]))


def test_unclosed_strings_and_stray_escapes_are_scanned_once() -> None:
    # One string that never closes, full of escaped quotes: the brackets after them are inside
    # it (and the scan stays one linear pass).
    assert not too_deep('["' + '\\"' * 20_000 + "[" * 2000)
    assert too_deep("[" * 2000 + '"abc\\')
    assert not too_deep('["' + "[" * 2000 + "\\")


def test_the_guard_sees_a_body_in_chunks() -> None:
    body = ('{"sql": "SELECT 1", "params": ' + nested(MAX_DEPTH + 5) + "}").encode()
    chunks = [body[i : i + 97] for i in range(0, len(body), 97)]
    guard = DepthGuard()
    verdicts = [guard.feed(c, i == len(chunks) - 1) for i, c in enumerate(chunks)]
    assert verdicts[-1] is True
    assert not any(verdicts[:-1])
    fine = ('{"sql": "SELECT 1", "params": ' + nested(MAX_DEPTH - 1) + "}").encode()
    guard = DepthGuard()
    assert not any(
        guard.feed(fine[i : i + 50], i + 50 >= len(fine)) for i in range(0, len(fine), 50)
    )


@pytest.mark.usefixtures("raised_recursion_limit")
@pytest.mark.parametrize("path", sorted(BODIES))
def test_deep_bodies_are_400_with_a_raised_recursion_limit(
    client: TestClient[Any], path: str
) -> None:
    r = client.post(
        path, content=BODIES[path] % nested(3000), headers={"content-type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert "nested too deeply" in r.text


@pytest.mark.usefixtures("raised_recursion_limit")
def test_deep_websocket_frames_close_the_socket_with_a_raised_recursion_limit(
    client: TestClient[Any],
) -> None:
    with client.websocket_connect("/", subprotocols=["hrana3"]) as ws:
        ws.send_text(json.dumps({"type": "hello", "jwt": None}))
        assert json.loads(ws.receive_text())["type"] == "hello_ok"
        ws.send_text('{"type": "request", "request_id": 1, "request": ' + nested(3000) + "}")
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_text()
    assert info.value.code == 1002  # protocol error
    assert "nested too deeply" in info.value.detail


def test_bodies_at_the_bound_still_reach_the_route(client: TestClient[Any]) -> None:
    # 999 levels of params inside the body's object: not refused for its depth (the route
    # refuses the value itself, as it does any nested array parameter).
    body = '{"sql": "SELECT ?", "params": [' + nested(MAX_DEPTH - 2) + "]}"
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(50_000)
    try:
        r = client.post("/api/v1/query", content=body, headers={"content-type": "application/json"})
    finally:
        sys.setrecursionlimit(limit)
    assert r.status_code == 400, r.text
    assert "nested too deeply" not in r.text
    assert "unsupported value" in r.text
