"""Replication figures as typed, frozen values: a primary's (``GET /replication``) and a
node's part of ``/health/ready``. Field names are the JSON keys; positions are
``"<generation>.<frame>"``."""

from __future__ import annotations

import msgspec

__all__ = ["PrimaryHealth", "PrimaryStats", "ReplicaStatus"]


class PrimaryStats(msgspec.Struct, frozen=True, kw_only=True):
    """A primary's WAL and archive (``GET /replication``)."""

    generation: int
    frames: int
    """Frames of the current generation's WAL."""
    wal_bytes: int
    """Size of the WAL file now."""
    archived_generations: list[int]
    position: str
    """The position after the latest commit."""


class PrimaryHealth(msgspec.Struct, frozen=True, kw_only=True, tag_field="role", tag="primary"):
    """A primary's part of ``/health/ready``: always ready as far as replication goes. The
    JSON carries ``"role": "primary"`` (the tag that tells it from :class:`ReplicaStatus`)."""

    position: str
    ok: bool = True


class ReplicaStatus(msgspec.Struct, frozen=True, kw_only=True, tag_field="role", tag="replica"):
    """A replica node's part of ``/health/ready`` (``"role": "replica"`` in the JSON)."""

    primary: str
    """The primary's URL."""
    position: str
    """What this replica has pulled."""
    primary_position: str | None
    """The primary's position (None when it did not answer)."""
    lag_frames: int | None
    """Frames behind (None across a generation change or without the primary's answer)."""
    lag_seconds: float | None
    """Seconds since the last pull that caught up (None: never synced)."""
    max_replication_lag: float
    """Seconds behind beyond which the replica is not ready."""
    pulls: int
    last_error: str | None
    ok: bool
    """Synced at least once and no further behind than ``max_replication_lag``."""
