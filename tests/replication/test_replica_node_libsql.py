"""The official `libsql` client (Rust inside) against a replica node, as if it were a primary.

It sends `describe` before every statement, also inside a transaction that runs on the primary:
the replica must describe there, where tables the transaction created exist.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import Node

SCRIPT = """
import sys
import libsql

conn = libsql.connect(sys.argv[1])
conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
conn.execute("INSERT INTO t (v) VALUES ('autocommit')")
conn.commit()
print("rows", conn.execute("SELECT v FROM t").fetchall())
conn.execute("BEGIN")
conn.execute("CREATE TABLE made_in_tx (a INTEGER)")
conn.execute("INSERT INTO made_in_tx VALUES (7)")
print("in tx", conn.execute("SELECT a FROM made_in_tx").fetchall())
conn.commit()
print("after", conn.execute("SELECT a FROM made_in_tx").fetchall())
"""


def test_libsql_client_through_a_replica_node(tmp_path: Path, nodes: list[Node]) -> None:
    primary = Node(tmp_path / "p.db").start()
    nodes.append(primary)
    (tmp_path / "replica").mkdir()
    replica = Node(tmp_path / "replica" / "r.db")
    nodes.append(replica)
    replica.start("--replica-of", primary.url, "--sync-interval", "0.2")

    # In a subprocess: the libsql client holds the GIL while it blocks on the network.
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, replica.url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.splitlines() == [
        "rows [('autocommit',)]",
        "in tx [(7,)]",
        "after [(7,)]",
    ]
    # Everything landed on the primary.
    assert primary.rows("SELECT a FROM made_in_tx") == [[7]]
