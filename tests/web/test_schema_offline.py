"""/schema works offline: the viewer ships in the package and loads nothing from elsewhere.

Headless Chromium opens /schema of a real `edgestore serve` with every host name except the
loopback address unresolvable, and the rendered page lists the API's operations."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.server import EdgestoreServer

from .chromium import CHROMIUM, MISSING, chromium


def test_schema_page_references_nothing_outside_the_server(tmp_path: Path) -> None:
    with EdgestoreServer(tmp_path / "s.db") as server:
        page = httpx.get(server.url + "/schema", timeout=10)
        doc = httpx.get(server.url + "/schema/openapi.json", timeout=10)
    assert page.status_code == 200
    assert doc.status_code == 200
    assert re.search(r"(src|href)=[\"']?(https?:)?//", page.text) is None
    assert "cdn" not in page.text.lower()


@pytest.mark.skipif(CHROMIUM is None, reason=MISSING)
def test_schema_renders_offline_in_chromium(tmp_path: Path) -> None:
    with EdgestoreServer(tmp_path / "s.db") as server:
        dom = chromium(server.url + "/schema", tmp_path / "profile", "--dump-dom")
    assert 'class="path">/api/v1/query<' in dom, dom[:2000]
    assert 'class="m post"' in dom
    assert '<main id="main">Could not load' not in dom
