"""The frames of a pull answer, read a bounded chunk at a time as the response is sent.

A ``/sync`` range can span a whole generation (tens of MiB); read at once, every slow replica
pulling it kept that much in memory. Here a chunk is read only when the previous one has gone
out, so a pull holds one chunk whatever its range. Between chunks no lock is held: a slow
replica never postpones a generation change. If the generation ends while its frames are
being sent, the rest comes from its archive (the same frames, kept there when it ended).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import ReplicationError

__all__ = ["CHUNK_FRAMES", "archived_chunks", "live_chunks"]

CHUNK_FRAMES = 64
"""Frames per chunk (about 256 KiB with 4 KiB pages)."""

ReadLive = Callable[[int, int], bytes | None]
"""Frames ``a..b`` of the live WAL, or None once its generation has ended."""
ReadArchived = Callable[[int, int], bytes]
"""Frames ``a..b`` from the generation's archive (raises if it is gone)."""


def live_chunks(
    read_live: ReadLive, read_archived: ReadArchived, start: int, last: int
) -> Iterator[bytes]:
    """Frames ``start..last`` of a generation that was live when the pull began."""
    at = start
    live = True
    while at <= last:
        end = min(last, at + CHUNK_FRAMES - 1)
        data = read_live(at, end) if live else None
        if data is None:
            live = False
            data = read_archived(at, end)
        yield data
        at = end + 1


def archived_chunks(path: Path, start: int, last: int, frame_size: int) -> Iterator[bytes]:
    """Frames ``start..last`` of an archive file, opened now: a pruning that unlinks the file
    meanwhile does not cut the answer short."""
    fd = os.open(path, os.O_RDONLY)
    try:
        at = start
        while at <= last:
            end = min(last, at + CHUNK_FRAMES - 1)
            length = (end - at + 1) * frame_size
            data = os.pread(fd, length, (at - 1) * frame_size)
            if len(data) != length:
                raise ReplicationError(f"the archive {path.name} is shorter than its index says")
            yield data
            at = end + 1
    finally:
        os.close(fd)
