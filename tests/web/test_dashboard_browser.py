"""The dashboard in a real headless Chromium after real traffic: every chart has data.

Chromium loads /dashboard from a real `edgestore serve` (no other host reachable), with
virtual time so that polls happen without waiting. The DOM tells how many data points each
chart holds and how many samples of the server's history the fresh page received; the
screenshots at 1280x800 and at phone width are kept in the test's tmp_path as artefacts and
must show the chart line colour (a page whose fetches failed draws only axes).
"""

from __future__ import annotations

import re
import struct
import time
import zlib
from pathlib import Path

import httpx
import pytest

from tests.server import EdgestoreServer

from .chromium import CHROMIUM, MISSING, chromium

LINE = (0x09, 0x69, 0xDA)  # stroke colour of each chart's first line (dashboard.html)


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """(width, height, rows of RGB(A) bytes) of an 8-bit RGB/RGBA, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8
            assert ctype in (2, 6)
            assert interlace == 0
            channels = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        ftype = raw[start]
        line = bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 0xFF
            elif ftype == 2:
                line[i] = (line[i] + b) & 0xFF
            elif ftype == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def count_colour(png: bytes, rgb: tuple[int, int, int], tolerance: int = 24) -> int:
    width, _, rows = decode_png(png)
    channels = len(rows[0]) // width
    n = 0
    for row in rows:
        for x in range(0, len(row), channels):
            if (
                abs(row[x] - rgb[0]) <= tolerance
                and abs(row[x + 1] - rgb[1]) <= tolerance
                and abs(row[x + 2] - rgb[2]) <= tolerance
            ):
                n += 1
    return n


def real_traffic(url: str) -> None:
    """Reads (cached and not), writes, errors and a WebSocket, spread over a few seconds."""
    with httpx.Client(base_url=url, timeout=10) as http:
        for second in range(4):
            for i in range(25):
                http.post("/api/v1/tables/items/rows", json={"name": f"n{second}-{i}", "price": i})
                http.get(f"/api/v1/tables/items/rows/{1 + i % 5}")
                http.post("/api/v1/query", json={"sql": "SELECT count(*) FROM items"})
            http.get("/no/such/page")
            http.post("/api/v1/query", json={"sql": "SELECT * FROM no_table"})
            time.sleep(1.1)


CHART_IDS = (
    "memory",
    "cache_rate",
    "cache_bytes",
    "rps",
    "latency",
    "latency_family",
    "errors",
    "pool",
    "replication",
)


@pytest.mark.skipif(CHROMIUM is None, reason=MISSING)
def test_dashboard_shows_the_servers_history_in_every_chart(tmp_path: Path) -> None:
    env = {"EDGESTORE_STATEMENT_STATS": "true"}
    with EdgestoreServer(tmp_path / "dash.db", env=env) as server:
        real_traffic(server.url)
        time.sleep(2)
        dom = chromium(server.url + "/dashboard", tmp_path / "p0", "--dump-dom")
        desktop = tmp_path / "dashboard-1280x800.png"
        phone = tmp_path / "dashboard-phone-390x844.png"
        chromium(
            server.url + "/dashboard",
            tmp_path / "p1",
            "--window-size=1280,800",
            f"--screenshot={desktop}",
        )
        chromium(
            server.url + "/dashboard",
            tmp_path / "p2",
            "--window-size=390,844",
            f"--screenshot={phone}",
        )
    # A fresh page shows the past: the server kept the samples taken during the traffic.
    samples = re.search(r'<body data-samples="(\d+)"', dom)
    assert samples is not None, dom[:1500]
    assert int(samples.group(1)) >= 6
    for chart in CHART_IDS:
        found = re.search(
            r'<div class="card" data-points="(\d+)">\s*<h2>[^<]*<span class="now" '
            rf'id="now-{chart}"',
            dom,
        )
        assert found is not None, chart
        assert int(found.group(1)) > 0, chart
    assert '<span id="status">cannot reach' not in dom
    # The slowest statements (normalised) and per-table reads and writes are listed.
    for table in ("slowest", "tables"):
        rows = re.search(rf'id="{table}" data-rows="(\d+)"', dom)
        assert rows is not None, table
        assert int(rows.group(1)) > 0, table
    assert re.search(r"<code>[A-Z]+ [^<]*</code>", dom) is not None
    assert "<td>items</td>" in dom
    # Drawn with axes and time labels (uPlot's axis elements carry the labels as text).
    assert dom.count('class="u-axis"') >= 2 * len(CHART_IDS)
    for png in (desktop, phone):
        data = png.read_bytes()
        assert count_colour(data, LINE) > 500, png
    assert decode_png(desktop.read_bytes())[:2] == (1280, 800)
    assert decode_png(phone.read_bytes())[0] == 390
