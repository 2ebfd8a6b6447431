"""Reading SQLite's ``-wal`` file: header, frames, salts, cumulative checksums, commit points.

The file format (https://www.sqlite.org/fileformat2.html#walformat): a 32-byte header, then
frames of a 24-byte header plus one page. A frame is valid only if its salts equal the header's
and its checksum, chained from the previous frame (the header's for frame 1), matches. A frame
whose "database size after commit" field is non-zero ends a transaction. Frames after the last
valid commit frame belong to a transaction that is still being written (or was rolled back and
will be overwritten), so nothing past the last commit frame is ever handed out.

:class:`WalIndex` scans a WAL incrementally: frames up to the last commit frame already checked
are never read or checksummed again, which makes a pull cost what it sends, not the WAL size.
"""

from __future__ import annotations

import bisect
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ReplicationError

__all__ = [
    "FRAME_HEADER_SIZE",
    "WAL_HEADER_SIZE",
    "WalHeader",
    "WalIndex",
    "cut_at_commit",
    "frame_commit_size",
    "frame_page_number",
    "wal_checksum",
]

WAL_HEADER_SIZE = 32
FRAME_HEADER_SIZE = 24
_MAGIC_LE = 0x377F0682  # checksums computed on little-endian 32-bit words
_MAGIC_BE = 0x377F0683  # ... on big-endian words
_MASK = 0xFFFFFFFF


def wal_checksum(data: bytes, s0: int, s1: int, *, big_endian: bool) -> tuple[int, int]:
    """SQLite's WAL checksum of ``data`` (a multiple of 8 bytes) continued from ``(s0, s1)``."""
    count = len(data) // 4
    words = struct.unpack(f"{'>' if big_endian else '<'}{count}I", data)
    return _checksum_words(words, s0, s1)


def _checksum_words(words: tuple[int, ...], s0: int, s1: int) -> tuple[int, int]:
    if len(words) % 8:
        for i in range(0, len(words), 2):
            s0 = (s0 + words[i] + s1) & _MASK
            s1 = (s1 + words[i + 1] + s0) & _MASK
        return s0, s1
    # Only additions: reducing mod 2**32 once per 8 words gives the same result, and the
    # unrolled form runs ~2.8x faster than one step per iteration (measured: ~50 us per 4 KiB
    # page); pure Python because each frame is checksummed once, when first scanned.
    it = iter(words)
    for a, b, c, d, e, f, g, h in zip(it, it, it, it, it, it, it, it, strict=True):
        s0 += a + s1
        s1 += b + s0
        s0 += c + s1
        s1 += d + s0
        s0 += e + s1
        s1 += f + s0
        s0 += g + s1
        s1 = (s1 + h + s0) & _MASK
        s0 &= _MASK
    return s0, s1


@dataclass(frozen=True, slots=True)
class WalHeader:
    """The 32-byte WAL header."""

    big_endian: bool
    version: int
    page_size: int
    checkpoint_seq: int
    salt1: int
    salt2: int
    checksum: tuple[int, int]

    @property
    def salts(self) -> tuple[int, int]:
        return (self.salt1, self.salt2)

    @classmethod
    def parse(cls, data: bytes) -> WalHeader | None:
        """The header in ``data``, or None when it is missing, torn or not a WAL header."""
        if len(data) < WAL_HEADER_SIZE:
            return None
        magic, version, page_size, seq, salt1, salt2, c1, c2 = struct.unpack(
            ">8I", data[:WAL_HEADER_SIZE]
        )
        if magic not in (_MAGIC_LE, _MAGIC_BE):
            return None
        big = magic == _MAGIC_BE
        if wal_checksum(data[:24], 0, 0, big_endian=big) != (c1, c2):
            return None
        return cls(big, version, page_size, seq, salt1, salt2, (c1, c2))


def frame_page_number(frame: bytes) -> int:
    """The page number a frame writes."""
    return int.from_bytes(frame[0:4], "big")


def frame_commit_size(frame: bytes) -> int:
    """Database size in pages after the commit this frame ends, or 0 for a non-commit frame."""
    return int.from_bytes(frame[4:8], "big")


@dataclass(slots=True)
class WalIndex:
    """What is known, checked, about one WAL file with one salt (one WAL "pass").

    ``commits`` lists the frame numbers (1-based) of every valid commit frame, in order.
    """

    path: Path
    header: WalHeader | None = None
    commits: list[int] = field(default_factory=list)
    _checksum: tuple[int, int] = (0, 0)  # running checksum at the last commit frame

    @property
    def frame_size(self) -> int:
        assert self.header is not None
        return FRAME_HEADER_SIZE + self.header.page_size

    @property
    def last_commit(self) -> int:
        """Frame number of the last valid commit frame (0 when there is none)."""
        return self.commits[-1] if self.commits else 0

    def offset(self, frame_no: int) -> int:
        """Byte offset of frame ``frame_no`` (1-based) in the WAL file."""
        return WAL_HEADER_SIZE + (frame_no - 1) * self.frame_size

    def reset(self) -> None:
        self.header = None
        self.commits = []
        self._checksum = (0, 0)

    def refresh(self, fd: int | None = None) -> bool:
        """Scan frames written since the last call; return False if the WAL was restarted.

        A restart (new salts, a truncated or deleted file) resets the index: the frames it knew
        are gone from this file, which is for the caller to notice (a generation ended).
        """
        own = fd is None
        if own:
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                restarted = self.header is not None
                self.reset()
                return not restarted
        assert fd is not None
        try:
            return self._refresh(fd)
        finally:
            if own:
                os.close(fd)

    def _refresh(self, fd: int) -> bool:
        header = WalHeader.parse(os.pread(fd, WAL_HEADER_SIZE, 0))
        restarted = self.header is not None and (
            header is None or header.salts != self.header.salts
        )
        if restarted:
            self.reset()
        if header is None:
            return not restarted
        if self.header is None:
            self.header = header
            self._checksum = header.checksum
        self._scan(fd)
        return not restarted

    def _scan(self, fd: int) -> None:
        """Checksum frames after the last known commit frame; record new commit frames."""
        header = self.header
        assert header is not None
        size = self.frame_size
        next_no = self.last_commit + 1
        s0, s1 = self._checksum
        chunk_frames = 256  # read in large slices: one syscall per ~1 MiB
        salts = struct.pack(">II", header.salt1, header.salt2)
        order = ">" if header.big_endian else "<"
        head_words = struct.Struct(f"{order}2I")  # page number + commit size, as checksummed
        page_words = struct.Struct(f"{order}{header.page_size // 4}I")
        stored = struct.Struct(">2I")
        while True:
            data = os.pread(fd, size * chunk_frames, self.offset(next_no))
            whole = len(data) // size
            if whole == 0:
                return
            for i in range(whole):
                off = i * size
                if data[off + 8 : off + 16] != salts:
                    return
                # unpack_from: no copy of the page before checksumming it.
                s0, s1 = _checksum_words(head_words.unpack_from(data, off), s0, s1)
                s0, s1 = _checksum_words(
                    page_words.unpack_from(data, off + FRAME_HEADER_SIZE), s0, s1
                )
                if stored.unpack_from(data, off + 16) != (s0, s1):
                    return
                if data[off + 4 : off + 8] != b"\0\0\0\0":
                    self.commits.append(next_no + i)
                    self._checksum = (s0, s1)
            next_no += whole
            if whole < chunk_frames:
                return

    def read_frames(self, start: int, end: int, fd: int | None = None) -> bytes:
        """Raw frames ``start..end`` inclusive (both must be known valid), concatenated."""
        if start < 1 or end > self.last_commit or start > end:
            raise ReplicationError(f"frames {start}..{end} are not in this WAL")
        own = fd is None
        fd = os.open(self.path, os.O_RDONLY) if fd is None else fd
        try:
            length = (end - start + 1) * self.frame_size
            data = os.pread(fd, length, self.offset(start))
        finally:
            if own:
                os.close(fd)
        if len(data) != length:
            raise ReplicationError("the WAL shrank while it was read")
        return data


def cut_at_commit(commits: list[int], start: int, end: int) -> int | None:
    """Last frame to send for a request of frames ``start..end-1``: whole transactions only.

    The last commit frame inside the range; if the range holds none (a transaction larger than
    the range), the first commit frame after it, so a big transaction is sent whole; None when
    no commit frame at or after ``start`` exists (nothing more to send).
    """
    i = bisect.bisect_left(commits, start)
    if i == len(commits):
        return None
    j = bisect.bisect_left(commits, end) - 1  # last commit < end
    if j >= i:
        return commits[j]
    return commits[i]
