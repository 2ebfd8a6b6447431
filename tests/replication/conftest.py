"""Real edgestore processes on loopback ports for the replication tests.

``edgestore serve`` runs in a subprocess (a primary, or a replica node with ``--replica-of``);
the tests talk to it with real clients: ``libsql`` (PyPI), ``@libsql/client`` (node), httpx.
Every wait is bounded; every process is stopped (SIGKILL as the last resort) at teardown.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import httpx
import pytest

from tests.server import free_port

EDGESTORE = [sys.executable, "-c", "from edgestore.cli import main; main()"]


class Node:
    """One ``edgestore serve`` process."""

    def __init__(self, db: Path, *, port: int | None = None, **env: Any) -> None:
        self.db = db
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = db.with_name(db.name + f".{self.port}.log")

    def start(self, *args: str, timeout: float = 30.0) -> Node:
        env = dict(os.environ)
        env.pop("EDGESTORE_CONFIG", None)
        env.update({f"EDGESTORE_{k.upper()}": str(v) for k, v in self.env.items()})
        env.setdefault("EDGESTORE_SCHEMAS_DIR", "none")
        cmd = [
            *EDGESTORE,
            "serve",
            "--port",
            str(self.port),
            "--db",
            str(self.db),
            "--no-access-log",
            *args,
        ]
        with open(self.log, "ab") as log:
            # Its own process group: kill() must reach granian's worker processes too, or
            # they outlive the test and keep serving the port.
            self.proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.db.parent,
                start_new_session=True,
            )
        _STARTED.append(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"edgestore serve exited: {self.log.read_text()[-8000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/health", timeout=1).status_code < 500:
                    return self
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"edgestore serve did not start: {self.log.read_text()[-8000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self._kill_group()
        self._kill_group()  # workers left behind by a master that exited on its own
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self._kill_group()
        self.proc = None

    def _kill_group(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    # --- talking to it --------------------------------------------------------------------
    def pipeline(self, stmts: list[tuple[str, list[Any]]], **kw: Any) -> httpx.Response:
        """Hrana v2: every statement on one stream (then close)."""
        reqs: list[dict[str, Any]] = [
            {"type": "execute", "stmt": {"sql": sql, "args": [_hv(a) for a in args]}}
            for sql, args in stmts
        ]
        reqs.append({"type": "close"})
        return httpx.post(
            self.url + "/v2/pipeline", json={"baton": None, "requests": reqs}, timeout=30, **kw
        )

    def write(self, sql: str, *args: Any) -> httpx.Response:
        resp = self.pipeline([(sql, list(args))])
        resp.raise_for_status()
        result = resp.json()["results"][0]
        assert result["type"] == "ok", result
        return resp

    def transaction(self, stmts: list[tuple[str, list[Any]]]) -> httpx.Response:
        resp = self.pipeline([("BEGIN IMMEDIATE", []), *stmts, ("COMMIT", [])])
        resp.raise_for_status()
        for r in resp.json()["results"]:
            assert r["type"] == "ok", r
        return resp

    def rows(self, sql: str, **kw: Any) -> list[list[Any]]:
        resp = self.pipeline([(sql, [])], **kw)
        resp.raise_for_status()
        result = resp.json()["results"][0]
        assert result["type"] == "ok", result
        return [[_pv(v) for v in row] for row in result["response"]["result"]["rows"]]

    def checkpoint(self) -> int:
        resp = httpx.post(self.url + "/replication/checkpoint", timeout=60)
        resp.raise_for_status()
        generation: int = resp.json()["generation"]
        return generation

    def status(self) -> dict[str, Any]:
        resp = httpx.get(self.url + "/replication", timeout=10)
        resp.raise_for_status()
        out: dict[str, Any] = resp.json()
        return out


def _hv(v: Any) -> dict[str, Any]:
    if v is None:
        return {"type": "null"}
    if isinstance(v, int):
        return {"type": "integer", "value": str(v)}
    if isinstance(v, float):
        return {"type": "float", "value": v}
    return {"type": "text", "value": str(v)}


def _pv(v: dict[str, Any]) -> Any:
    if v["type"] == "integer":
        return int(v["value"])
    if v["type"] == "null":
        return None
    return v.get("value", v.get("base64"))


# Every Node started, so that a test that forgets one (or fails before adding it to
# ``nodes``) still stops it.
_STARTED: list[Node] = []


@pytest.fixture(autouse=True)
def _stop_started_nodes() -> Iterator[None]:
    yield
    while _STARTED:
        _STARTED.pop().kill()


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[Node]]:
    """Every Node a test makes goes in here and is stopped at the end."""
    made: list[Node] = []
    yield made
    for node in made:
        node.kill()


def replica_copy_check(replica_db: Path, dest: Path) -> tuple[str, list[tuple[Any, ...]]]:
    """integrity_check and the rows of ``t`` of a *copy* of a libsql replica.

    libsql sends PRAGMAs to the primary, and another driver must not open the replica's own
    files, so the copy is checked with apsw instead.
    """
    dest.mkdir()
    for suffix in ("", "-wal"):
        src = Path(str(replica_db) + suffix)
        if src.exists():
            shutil.copyfile(src, dest / ("r.db" + suffix))
    conn = apsw.Connection(str(dest / "r.db"))
    try:
        check = conn.execute("PRAGMA integrity_check").fetchall()[0][0]
        rows = conn.execute("SELECT * FROM t ORDER BY id").fetchall()
    finally:
        conn.close()
    return str(check), rows
