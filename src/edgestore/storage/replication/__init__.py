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
    "wal_checksum",
]
