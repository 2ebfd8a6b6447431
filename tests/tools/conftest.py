"""Fixtures of the tool conformance suite: real ORMs and migration tools against a real
``edgestore serve`` (only the URL changed, as a user moving from the libSQL server would)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import apsw
import pytest

from tests.server import EdgestoreServer

NODE_DIR = Path(__file__).resolve().parent / "node"
NODE = shutil.which("node")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\u2800-\u28ff]")


@pytest.fixture(scope="session")
def node_tools() -> Path:
    """tests/tools/node with its pinned npm packages installed."""
    if NODE is None:
        pytest.skip("node is not installed on this machine")
    if not (NODE_DIR / "node_modules" / ".edgestore-installed").is_file():
        subprocess.run(["bash", str(NODE_DIR / "install.sh")], check=True, timeout=900)
    return NODE_DIR


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EdgestoreServer]:
    """``edgestore serve`` on a new database with a schemas directory applied, so the database
    holds edgestore's schema record, which the tools must not see, rename or drop."""
    with EdgestoreServer(tmp_path / "app.db", schemas_dir=schema_dir(tmp_path)) as srv:
        yield srv


def schema_dir(tmp_path: Path) -> Path:
    """A schemas directory with one file that makes no table (the tool owns the tables)."""
    schemas = tmp_path / "schemas"
    schemas.mkdir(exist_ok=True)
    (schemas / "0001_settings.sql").write_text(
        "-- The tables belong to the ORM under test; edgestore only records this file.\nSELECT 1;\n"
    )
    return schemas


def run_tool(
    cmd: Sequence[str | Path],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> tuple[int, str]:
    """Run a tool without a terminal (as CI does); returns its exit code and readable output."""
    proc = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    out = (proc.stdout + proc.stderr).decode(errors="replace")
    return proc.returncode, _ANSI.sub("", out).replace("\r", "\n")


def table_digests(db_path: Path, tables: Sequence[str]) -> dict[str, tuple[int, str]]:
    """Row count and a checksum of every row (in rowid order) of ``tables``, read from the file."""
    db = apsw.Connection(str(db_path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        out: dict[str, tuple[int, str]] = {}
        for table in tables:
            digest = hashlib.sha256()
            count = 0
            for row in db.execute(f'SELECT * FROM "{table}" ORDER BY rowid'):
                digest.update(repr(row).encode())
                count += 1
            out[table] = (count, digest.hexdigest())
        return out
    finally:
        db.close()


def file_rows(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    """The rows of ``sql``, read from the file itself (read-only), not through a server."""
    db = apsw.Connection(str(db_path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return [tuple(r) for r in db.execute(sql)]
    finally:
        db.close()


def user_tables(db_path: Path) -> set[str]:
    return {
        str(r[0]) for r in file_rows(db_path, "SELECT name FROM sqlite_schema WHERE type = 'table'")
    }
