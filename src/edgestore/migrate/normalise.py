"""The one value normalisation both sides of a validation go through, and the row checksum.

Postgres-side values are already converted by the export SQL (typemap); what is left for Python
is the single thing SQLite cannot store: a float NaN (SQLite turns it into NULL), which becomes
the text ``'NaN'``. A row's hash is BLAKE2b-128 over its MessagePack encoding (which keeps int,
float, text and bytes apart); a table's checksum is the sum of its row hashes modulo 2**128,
so it does not depend on row order and duplicate rows do not cancel out.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

__all__ = ["BUCKETS", "RowHasher", "fix_nan", "row_hash"]

MASK = (1 << 128) - 1
BUCKETS = 1024
_encode = msgspec.msgpack.Encoder().encode


def fix_nan(rows: list[Any], float_idx: Sequence[int]) -> list[Any]:
    """Normalise the floats SQLite cannot keep, in the given column positions: NaN becomes the
    text ``'NaN'`` (SQLite would store NULL) and -0.0 becomes 0.0 (SQLite drops the sign of
    zero). Rows are copied only where something changes."""
    if not float_idx:
        return rows
    for n, row in enumerate(rows):
        for i in float_idx:
            v = row[i]
            # NaN is the only value unequal to itself; == 0.0 also catches -0.0
            if v is not None and (v != v or (v == 0.0 and math.copysign(1.0, v) < 0)):
                fixed = list(row)
                for j in float_idx:
                    w = fixed[j]
                    if w is not None and w != w:
                        fixed[j] = "NaN"
                    elif w is not None and w == 0.0:
                        fixed[j] = 0.0
                rows[n] = fixed
                break
    return rows


def row_hash(row: Sequence[Any]) -> int:
    """The 128-bit hash of one normalised row."""
    return int.from_bytes(hashlib.blake2b(_encode(row), digest_size=16).digest(), "little")


class RowHasher:
    """Accumulates the order-independent checksum of a table (and per-bucket sums, used to
    narrow a mismatch down to a few rows)."""

    __slots__ = ("buckets", "count", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0
        self.buckets = [0] * BUCKETS

    def update_encoded(self, encoded_rows: Iterable[bytes]) -> None:
        """Add rows already MessagePack-encoded (export encodes each row once for both)."""
        b2 = hashlib.blake2b
        fb = int.from_bytes
        buckets = self.buckets
        total = self.total
        n = 0
        for enc in encoded_rows:
            h = fb(b2(enc, digest_size=16).digest(), "little")
            total += h
            buckets[h & (BUCKETS - 1)] += h
            n += 1
        self.total = total & MASK
        self.count += n

    def update(self, rows: Iterable[Sequence[Any]]) -> None:
        self.update_encoded(map(_encode, rows))

    @property
    def checksum(self) -> str:
        return f"{self.total & MASK:032x}"

    def differing_buckets(self, other: RowHasher) -> set[int]:
        return {i for i in range(BUCKETS) if (self.buckets[i] & MASK) != (other.buckets[i] & MASK)}


def encode_row(row: Sequence[Any]) -> bytes:
    return _encode(row)


def bucket_of(h: int) -> int:
    return h & (BUCKETS - 1)


def array_header(n: int) -> bytes:
    """The MessagePack header of an array of ``n`` items (to join pre-encoded rows)."""
    if n < 16:
        return bytes([0x90 | n])
    if n < 65536:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")
