"""Opening a node: the store's replication role comes from Settings, composed above storage."""

from __future__ import annotations

from pathlib import Path

import pytest

import edgestore
from edgestore import storage
from edgestore.errors import ConfigError
from edgestore.replication import ReplicationPrimary, position_of


async def test_plain_store_has_no_role(tmp_path: Path) -> None:
    store = await edgestore.open(tmp_path / "a.db", schemas_dir=None)
    try:
        assert store.replication_role is None
        assert ReplicationPrimary.of(store) is None
        assert position_of(store) is None
        await store.checkpoint()  # a plain checkpoint
    finally:
        await store.close()


async def test_served_node_is_a_primary_and_checkpoints_as_one(tmp_path: Path) -> None:
    store = await edgestore.open(tmp_path / "p.db", schemas_dir=None, serve_replicas=True)
    try:
        primary = ReplicationPrimary.of(store)
        assert primary is not None
        assert store.replication_role is primary
        await store.execute("CREATE TABLE t (x)")
        await store.execute("INSERT INTO t VALUES (1)")
        generation, frame = primary.position()
        assert frame > 0
        await store.checkpoint()  # ends the generation instead of a raw checkpoint
        assert primary.position() == (generation + 1, 0)
    finally:
        await store.close()


async def test_served_node_with_replication_off_is_plain(tmp_path: Path) -> None:
    store = await edgestore.open(
        tmp_path / "p.db", schemas_dir=None, serve_replicas=True, replication=False
    )
    try:
        assert store.replication_role is None
    finally:
        await store.close()


async def test_storage_alone_does_not_open_replica_nodes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"edgestore\.open"):
        await storage.open(tmp_path / "r.db", replica_of="http://127.0.0.1:9", schemas_dir=None)
