"""``edgestore replication checkpoint`` / ``status``, against a server and offline."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .conftest import EDGESTORE, Node
from .test_libsql_replica import SCHEMA


def _cli(*args: str, cwd: Path) -> dict[str, object]:
    proc = subprocess.run(
        [*EDGESTORE, "replication", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )
    assert proc.returncode == 0, proc.stderr
    out: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def test_checkpoint_through_the_server_and_offline(tmp_path: Path, nodes: list[Node]) -> None:
    primary = Node(tmp_path / "p.db").start()
    nodes.append(primary)
    primary.write(SCHEMA)
    generation = primary.status()["generation"]

    out = _cli("checkpoint", "--url", primary.url, cwd=tmp_path)
    assert out["generation"] == generation + 1
    status = _cli("status", "--url", primary.url, cwd=tmp_path)
    assert status["generation"] == generation + 1
    assert status["archived_generations"] == [generation]

    primary.write("INSERT INTO t (id, v, n) VALUES (1, 'x', 1)")
    primary.stop()  # ends the generation on the way out (the pool's last checkpoint)
    stopped_at = json.loads((tmp_path / "p.db-replication" / "state.json").read_text())
    assert stopped_at["generation"] == generation + 2

    # Offline: nothing new in the WAL, so the generation stays; the command still works.
    out = _cli("checkpoint", "--offline", "--db", str(tmp_path / "p.db"), cwd=tmp_path)
    assert out["generation"] == generation + 2
