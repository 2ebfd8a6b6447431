"""Database files as WAL frames, and WAL frames applied to a database file.

Both serve the re-bootstrap of a replica that fell behind the retained history: the sync
protocol has no "start over" message, so such a replica is sent every page of a known
generation-start snapshot as one transaction of frames. Applying frames to a file is how that
snapshot moves forward when the oldest archived generation is dropped (it is exactly what a
checkpoint does: each page's last committed image, then the size of the last commit).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from .wal import FRAME_HEADER_SIZE

__all__ = ["FRAME_SIZE", "PAGE_SIZE", "apply_frames", "file_as_frames"]

PAGE_SIZE = 4096
"""The page size libSQL replicas expect (the primary refuses to serve any other)."""
FRAME_SIZE = FRAME_HEADER_SIZE + PAGE_SIZE
"""One WAL frame of such a database."""


def file_as_frames(path: Path, *, padding: int = 0, pages_per_chunk: int = 256) -> Iterator[bytes]:
    """Every page of the database file at ``path`` as frames; the last one commits.

    ``padding`` extra frames (page 1, repeated) come first, so that the transaction ends at a
    frame number the server chooses. Salts and checksums are zero: replicas read only the page
    number and the commit size (libsql_wal_insert_frame checksums frames for its own WAL).
    """
    with open(path, "rb") as fh:
        total = os.fstat(fh.fileno()).st_size // PAGE_SIZE
        if padding:
            first = fh.read(PAGE_SIZE)
            frame = (1).to_bytes(4, "big") + bytes(20) + first
            for i in range(0, padding, pages_per_chunk):
                yield frame * min(pages_per_chunk, padding - i)
            fh.seek(0)
        pgno = 0
        while pgno < total:
            out = bytearray()
            for _ in range(min(pages_per_chunk, total - pgno)):
                page = fh.read(PAGE_SIZE)
                pgno += 1
                commit = total if pgno == total else 0
                out += pgno.to_bytes(4, "big") + commit.to_bytes(4, "big") + bytes(16) + page
            yield bytes(out)


def apply_frames(path: Path, frames: Path, *, upto: int, page_size: int) -> None:
    """Apply frames 1..``upto`` of the archive ``frames`` to the file at ``path``, in place.

    ``upto`` must be a commit frame; the file is cut to that commit's database size. In
    place, so moving the base snapshot forward costs the frames, not a copy of the database;
    the caller marks the file as being rewritten (a crash midway leaves it unusable).
    """
    frame_size = FRAME_HEADER_SIZE + page_size
    size_pages = 0
    with open(frames, "rb") as src, open(path, "r+b") as dst:
        for _ in range(upto):
            frame = src.read(frame_size)
            if len(frame) < frame_size:
                break
            pgno = int.from_bytes(frame[0:4], "big")
            commit = int.from_bytes(frame[4:8], "big")
            dst.seek((pgno - 1) * page_size)
            dst.write(frame[FRAME_HEADER_SIZE:])
            if commit:
                size_pages = commit
        if size_pages:
            dst.truncate(size_pages * page_size)
        dst.flush()
        os.fsync(dst.fileno())
