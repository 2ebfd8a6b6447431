"""``edgestore serve --replica-of``: a replica node in a subprocess, in front of a primary."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from .conftest import Node
from .test_libsql_replica import SCHEMA


def _count(node: Node, **headers: str) -> int:
    rows = node.rows("SELECT count(*) FROM t", headers=headers)
    return int(rows[0][0])


def test_replica_node(tmp_path: Path, nodes: list[Node]) -> None:
    primary = Node(tmp_path / "p.db").start()
    nodes.append(primary)
    primary.write(SCHEMA)
    primary.write("INSERT INTO t (id, v, n) VALUES (1, 'one', 1)")
    (tmp_path / "replica").mkdir()
    replica = Node(tmp_path / "replica" / "r.db", max_replication_lag=2)
    nodes.append(replica)
    replica.start("--replica-of", primary.url, "--sync-interval", "0.2")

    assert _count(replica) == 1
    ready = httpx.get(replica.url + "/health/ready", timeout=10)
    assert ready.status_code == 200
    assert "lag_seconds" in ready.text

    # A write sent to the replica lands on the primary; the replica reads it at once.
    replica.write("INSERT INTO t (id, v, n) VALUES (2, 'two', 2)")
    assert _count(replica) == 2
    assert _count(primary) == 2

    # Read-your-writes across nodes: the position of a write on the primary, sent with the
    # read to the replica, makes the replica wait until it has that write.
    resp = primary.write("INSERT INTO t (id, v, n) VALUES (3, 'three', 3)")
    position = resp.headers["x-edgestore-position"]
    assert _count(replica, **{"x-edgestore-position": position}) == 3

    # The primary goes away: reads are still served, writes fail cleanly ...
    primary.stop()
    assert _count(replica) == 3
    failed = replica.pipeline([("INSERT INTO t (id, v, n) VALUES (4, 'four', 4)", [])])
    body = failed.json()
    assert failed.status_code >= 400 or body["results"][0]["type"] == "error"
    # Past max_replication_lag, reads are refused unless the client accepts staleness.
    time.sleep(2.5)
    refused = replica.pipeline([("SELECT count(*) FROM t", [])])
    assert refused.status_code == 503 or refused.json()["results"][0]["type"] == "error"
    assert httpx.get(replica.url + "/health/ready", timeout=10).status_code == 503
    assert _count(replica, **{"x-edgestore-accept-stale": "true"}) == 3
    # ... and writes succeed once the primary is back.
    primary.start()
    deadline = time.monotonic() + 20
    while True:
        resp = replica.pipeline([("INSERT INTO t (id, v, n) VALUES (4, 'four', 4)", [])])
        if resp.status_code == 200 and resp.json()["results"][0]["type"] == "ok":
            break
        assert time.monotonic() < deadline, resp.text
        time.sleep(0.2)
    assert _count(replica) == 4
    assert _count(primary) == 4
