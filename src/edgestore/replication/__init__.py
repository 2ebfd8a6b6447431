"""libSQL replication: the primary serves its WAL by generations (the sync pull protocol), and
a replica node follows a primary through a ``libsql`` embedded replica and forwards its writes
over Hrana.

Above storage: :func:`open_node` composes a Store with its role (plain, primary or replica)
from Settings, and the store keeps that role (``Store.replication_role``). Framework-free;
``edgestore.web.sync_routes`` exposes the primary over HTTP.
"""

from __future__ import annotations

from ..errors import EndOfGeneration, SyncPushRefused
from .node import open_node
from .position import POSITION_HEADER, Position, format_position, parse_position
from .primary import ReplicationPrimary
from .serving import Frames
from .status import PrimaryHealth, PrimaryStats, ReplicaStatus
from .wal import WalHeader, WalIndex, cut_at_commit, wal_checksum


def position_of(store: object) -> Position | None:
    """The replication position to report for ``store``: a primary's latest commit, or what a
    replica node has pulled; None when the store takes part in no replication."""
    role = getattr(store, "replication_role", None)
    return None if role is None else role.position()


__all__ = [
    "POSITION_HEADER",
    "EndOfGeneration",
    "Frames",
    "Position",
    "PrimaryHealth",
    "PrimaryStats",
    "ReplicaStatus",
    "ReplicationPrimary",
    "SyncPushRefused",
    "WalHeader",
    "WalIndex",
    "cut_at_commit",
    "format_position",
    "open_node",
    "parse_position",
    "position_of",
    "wal_checksum",
]
