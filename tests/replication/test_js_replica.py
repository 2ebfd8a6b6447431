"""``@libsql/client`` (npm) with ``url: file:...`` and ``syncUrl`` against an edgestore primary."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import Node, replica_copy_check
from .test_libsql_replica import SCHEMA, _write_rows

JS_DIR = Path(__file__).resolve().parents[1] / "js"


@pytest.fixture(scope="module")
def node_bin() -> str:
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node/npm are not installed on this machine")
    subprocess.run(["bash", str(JS_DIR / "install.sh")], check=True, timeout=600)
    return node


def _run(node: str, replica: Path, url: str, phase: str) -> dict[str, Any]:
    proc = subprocess.run(
        [node, str(JS_DIR / "sync_replica.mjs"), str(replica), url, phase],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=JS_DIR,
    )
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def test_js_embedded_replica(tmp_path: Path, nodes: list[Node], node_bin: str) -> None:
    primary = Node(tmp_path / "p.db", max_rows=100_000).start()
    nodes.append(primary)
    primary.write(SCHEMA)
    _write_rows(primary, 1, 1500, 30)
    replica = tmp_path / "js" / "r.db"
    replica.parent.mkdir()

    first = _run(node_bin, replica, primary.url, "read")  # bootstrap + pull
    assert len(first["rows"]) == 1500

    primary.checkpoint()
    _write_rows(primary, 1501, 1500, 30)
    second = _run(node_bin, replica, primary.url, "write")  # pull across a generation, write
    assert second["afterWrite"] == ["from js"]  # read its own write at once
    expected = primary.rows("SELECT id, v, n FROM t ORDER BY id")
    assert len(expected) == 3001
    assert second["rows"] == expected

    check, rows = replica_copy_check(replica, tmp_path / "copy")
    assert check == "ok"
    assert [list(r) for r in rows] == expected
