"""``edgestore replication checkpoint`` / ``status``, against a server and offline; the
``edgestore tables`` commands on a replica node."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from click.testing import CliRunner

from edgestore.cli import main

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
    proc = subprocess.run(
        [*EDGESTORE, "replication", "checkpoint", "--offline", "--db", str(tmp_path / "p.db")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == f'{{"generation": {generation + 2}, "position": "{generation + 2}.0"}}\n'


def test_tables_commands_read_a_replica_node(tmp_path: Path, nodes: list[Node]) -> None:
    """With ``replica_of`` set, ``edgestore tables`` opens the node as ``edgestore.open`` does:
    a replica of the primary (a plain store refuses a replica's file)."""
    primary = Node(tmp_path / "p.db").start()
    nodes.append(primary)
    primary.write(SCHEMA)
    primary.write("INSERT INTO t (id, v, n) VALUES (1, 'one', 1), (2, 'two', NULL)")
    env = {"EDGESTORE_REPLICA_OF": primary.url, "EDGESTORE_SCHEMAS_DIR": "none"}
    replica = str(tmp_path / "replica" / "r.db")

    listed = CliRunner().invoke(main, ["tables", "list", "--db", replica], env=env)
    assert (listed.exit_code, listed.stderr) == (0, "")
    assert listed.stdout == (
        '{"name": "t", "columns": [{"name": "id", "type": "INTEGER"}, '
        '{"name": "v", "type": "TEXT"}, {"name": "n", "type": "INTEGER"}], '
        '"primary_key": ["id"], "orderable": ["id"]}\n'
    )
    rows = CliRunner().invoke(main, ["tables", "rows", "t", "--db", replica], env=env)
    assert (rows.exit_code, rows.stderr) == (0, "")
    assert rows.stdout == '{"id": 1, "v": "one", "n": 1}\n{"id": 2, "v": "two", "n": null}\n'
