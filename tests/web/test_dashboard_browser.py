"""The dashboard in a real headless Chromium: its charts draw live data.

Chromium loads /dashboard from a real `edgestore serve`, with virtual time so that several
2-second polls happen without waiting; the screenshot must contain the chart line colour in
quantity (a page whose fetches failed draws only the grid).
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import httpx
import pytest

from tests.server import EdgestoreServer

LINE = (0x09, 0x69, 0xDA)  # stroke colour of every chart line (dashboard.html)
AREA = (0xDA, 0xE9, 0xF9)  # the fill under a line: rgba(9, 105, 218, 0.15) over white
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


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


def screenshot(url: str, out: Path, profile: Path) -> bytes:
    assert CHROMIUM is not None
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            "--window-size=1200,900",
            "--virtual-time-budget=9000",
            f"--screenshot={out}",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out.read_bytes()


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_dashboard_charts_render_live_data(tmp_path: Path) -> None:
    with EdgestoreServer(tmp_path / "dash.db") as server:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            for i in range(20):  # some traffic so the request-rate chart moves
                http.get(f"/api/v1/tables/items/rows?limit={i + 1}")
        png = screenshot(server.url + "/dashboard", tmp_path / "dash.png", tmp_path / "profile")
        (tmp_path / "dash.png").write_bytes(png)
        polled = httpx.get(server.url + "/metrics", timeout=10).text
    # The page fetched its data from the server (several polls in virtual time) ...
    stats_lines = [
        line
        for line in polled.splitlines()
        if line.startswith("edgestore_http_requests_total") and 'route="/api/v1/stats"' in line
    ]
    assert stats_lines, "the dashboard never fetched /api/v1/stats"
    assert sum(float(line.rsplit(" ", 1)[1]) for line in stats_lines) >= 2
    # ... and drew it: the six chart lines put plenty of line-coloured pixels on screen.
    assert count_colour(png, LINE) > 1500
    # The memory chart's area under a non-zero RSS line is filled (15% line colour on white).
    assert count_colour(png, AREA, tolerance=6) > 10_000
