"""A real headless Chromium page on another origin cannot write to a loopback edgestore.

Two pages are served from other local ports: one from an origin the server does not know, one
from an origin listed in ``allowed_origins``. Each tries a CORS "simple" ``text/plain`` POST (no
preflight), a JSON ``fetch`` and a Hrana WebSocket, and writes what happened into the page,
which Chromium dumps. The database is then read directly to see which writes landed.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import apsw
import pytest

from tests.server import EdgestoreServer

from .chromium import CHROMIUM, MISSING, headless

PAGE_TIMEOUT = 60.0

PAGE = """<!doctype html><html><body><script>
const server = %(server)s, tag = %(tag)s, results = {};
function done() { fetch("/report", {method: "POST", body: JSON.stringify(results)}); }
function insert(name) { return JSON.stringify(
  {sql: "INSERT INTO items(name, price) VALUES (?, 1)", params: [name]}); }
async function plainPost() {
  try {
    await fetch(server + "/api/v1/execute", {method: "POST", mode: "no-cors",
      headers: {"Content-Type": "text/plain"}, body: insert(tag + "-plain")});
    results.plain = "sent";
  } catch (e) { results.plain = "blocked"; }
}
async function jsonFetch() {
  try {
    const r = await fetch(server + "/api/v1/execute", {method: "POST",
      headers: {"Content-Type": "application/json"}, body: insert(tag + "-json")});
    results.json = "status " + r.status;
  } catch (e) { results.json = "blocked"; }
}
function socket() {
  return new Promise(resolve => {
    const ws = new WebSocket(server.replace("http", "ws") + "/", ["hrana3"]);
    let opened = false;
    ws.onopen = () => { opened = true; ws.send(JSON.stringify({type: "hello", jwt: null})); };
    ws.onmessage = m => { results.ws = "open: " + JSON.parse(m.data).type; ws.close(); resolve(); };
    ws.onerror = () => { if (!opened) { results.ws = "refused"; resolve(); } };
    ws.onclose = () => { if (!opened) { results.ws = results.ws || "refused"; } resolve(); };
  });
}
(async () => { await plainPost(); await jsonFetch(); await socket(); done(); })();
</script></body></html>
"""


class PageServer:
    """A local HTTP server (an origin of its own) serving one HTML page, set later."""

    def __init__(self) -> None:
        self.html = b""
        self.reports: queue.Queue[dict[str, str]] = queue.Queue()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.send_header("content-length", str(len(owner.html)))
                self.end_headers()
                self.wfile.write(owner.html)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                owner.reports.put(json.loads(self.rfile.read(length)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def show(self, server_url: str, tag: str) -> None:
        self.html = (PAGE % {"server": json.dumps(server_url), "tag": json.dumps(tag)}).encode()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(10)


@pytest.fixture
def pages() -> Iterator[tuple[PageServer, PageServer]]:
    """Two page servers: (an origin the server does not know, one it allows)."""
    evil, allowed = PageServer(), PageServer()
    yield evil, allowed
    evil.close()
    allowed.close()


def run_page(page: PageServer, profile: Path) -> dict[str, str]:
    """Open ``page`` in headless Chromium; the page posts its results back to its server."""
    proc = subprocess.Popen(
        [*headless(profile), page.url],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # Chromium's helper processes go down with it
    )
    try:
        return page.reports.get(timeout=PAGE_TIMEOUT)
    except queue.Empty:
        raise AssertionError(f"the page did not report within {PAGE_TIMEOUT}s") from None
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


def names_in(db: Path) -> set[str]:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return {str(row[0]) for row in conn.execute("SELECT name FROM items")}
    finally:
        conn.close()


@pytest.mark.skipif(CHROMIUM is None, reason=MISSING)
def test_pages_of_other_origins_cannot_write_or_open_websockets(
    tmp_path: Path, pages: tuple[PageServer, PageServer]
) -> None:
    evil_page, allowed_page = pages
    db = tmp_path / "browser.db"
    with EdgestoreServer(db, env={"EDGESTORE_ALLOWED_ORIGINS": allowed_page.url}) as server:
        evil_page.show(server.url, "evil")
        allowed_page.show(server.url, "allowed")

        evil = run_page(evil_page, tmp_path / "profile-evil")
        assert evil == {"plain": "sent", "json": "blocked", "ws": "refused"}, evil

        allowed = run_page(allowed_page, tmp_path / "profile-allowed")
        assert allowed == {"plain": "sent", "json": "status 200", "ws": "open: hello_ok"}, allowed
        assert server.stop() == 0
    names = names_in(db)
    # Both pages' text/plain POSTs reached the server (no preflight) and were refused; of the
    # JSON requests, only the allowed origin's got past its preflight and wrote.
    assert "evil-plain" not in names
    assert "evil-json" not in names
    assert "allowed-plain" not in names
    assert "allowed-json" in names
