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
import operator
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import msgspec

__all__ = ["BUCKETS", "RowHasher", "encode_row", "fix_nan", "row_hash", "row_key"]

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
    """Accumulates the order-independent checksum of a table, and per-bucket sums used to
    narrow a mismatch down to a few rows.

    A row's bucket comes from its primary key when the table has one (so a changed row lands
    in the same bucket on both sides), else from its hash. Buckets use Python's ``hash``:
    they are only ever compared within one process, and it is ~5x cheaper than a digest.
    """

    __slots__ = ("buckets", "count", "key", "total")

    def __init__(self, key_idx: Sequence[int] = ()) -> None:
        self.count = 0
        self.total = 0
        self.buckets = [0] * BUCKETS
        self.key = row_key(key_idx)

    def update(self, rows: Iterable[Sequence[Any]]) -> None:
        b2 = hashlib.blake2b
        fb = int.from_bytes
        enc = _encode
        key = self.key
        buckets = self.buckets
        total = self.total
        n = 0
        for row in rows:
            h = fb(b2(enc(row), digest_size=16).digest(), "little")
            total += h
            buckets[(hash(key(row)) if key else h) & (BUCKETS - 1)] += h
            n += 1
        self.total = total & MASK
        self.count += n

    def bucket(self, row: Sequence[Any], h: int) -> int:
        return (hash(self.key(row)) if self.key else h) & (BUCKETS - 1)

    @property
    def checksum(self) -> str:
        return f"{self.total & MASK:032x}"

    def differing_buckets(self, other: RowHasher) -> set[int]:
        return {i for i in range(BUCKETS) if (self.buckets[i] & MASK) != (other.buckets[i] & MASK)}


def row_key(key_idx: Sequence[int]) -> Callable[[Sequence[Any]], Any] | None:
    """A function picking a row's primary-key values (None for a table without a key)."""
    return operator.itemgetter(*key_idx) if key_idx else None


def encode_row(row: Sequence[Any]) -> bytes:
    return _encode(row)
