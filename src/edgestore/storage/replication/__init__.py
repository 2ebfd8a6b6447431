"""libSQL replication: the primary serves its WAL by generations (the sync pull protocol), and
a replica node follows a primary through a ``libsql`` embedded replica.

Framework-free; ``edgestore.web.sync_routes`` exposes the primary over HTTP.
"""

from __future__ import annotations

from .primary import (
    POSITION_HEADER,
    EndOfGeneration,
    Frames,
    Position,
    ReplicationPrimary,
    SyncPushRefused,
    format_position,
    parse_position,
)
from .wal import WalHeader, WalIndex, cut_at_commit, wal_checksum


def position_of(store: object) -> Position | None:
    """The replication position to report for ``store``: a primary's latest commit, or what a
    replica node has pulled; None when the store takes part in no replication."""
    primary = ReplicationPrimary.of(store)
    if primary is not None:
        return primary.position()
    replica_position = getattr(store, "replication_position", None)
    if callable(replica_position):
        pos = replica_position()
        assert isinstance(pos, tuple)
        return pos
    return None


__all__ = [
    "POSITION_HEADER",
    "EndOfGeneration",
    "Frames",
    "Position",
    "ReplicationPrimary",
    "SyncPushRefused",
    "WalHeader",
    "WalIndex",
    "cut_at_commit",
    "format_position",
    "parse_position",
    "position_of",
    "wal_checksum",
]
