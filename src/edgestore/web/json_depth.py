"""The nesting bound of JSON that clients send: at most ``MAX_DEPTH`` levels of arrays/objects.

msgspec (and the stdlib ``json``) decode nested JSON recursively and stop only at the
interpreter's recursion limit: an application embedding edgestore that raises
``sys.setrecursionlimit`` would have them decode deeper, up to overflowing the C stack. So
the bound is checked here, before any decoder sees the text, whatever the recursion limit.

Cheap on purpose, as it sees every request body: JSON nested deeper than ``MAX_DEPTH`` holds
more than ``MAX_DEPTH`` opening brackets, and ``bytes.count`` finds them at memory speed, so
almost every body is passed on that count alone (~0.1 µs for a small body, ~50 µs for
1 MiB). Only a body with more opening brackets than that gets the exact, linear scan.
"""

from __future__ import annotations

import re
from itertools import accumulate

__all__ = ["MAX_DEPTH", "DepthGuard", "too_deep"]

MAX_DEPTH = 1000

# A string (to its closing quote, or to the end of the text when it has none: every quote
# then matches, so a text of many unclosed quotes is still one pass), else any bracket.
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.S)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_SIGNED = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


def _opens(data: bytes | str) -> int:
    if isinstance(data, str):
        return data.count("[") + data.count("{")
    return data.count(b"[") + data.count(b"{")


def _depth(data: bytes) -> int:
    """The deepest nesting of arrays/objects in ``data``, strings left out."""
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    steps = memoryview(brackets.translate(_SIGNED)).cast("b")  # +1 per opening, -1 per closing
    return max(accumulate(steps))


def too_deep(data: bytes | str) -> bool:
    """Whether the JSON text ``data`` nests deeper than ``MAX_DEPTH``."""
    if _opens(data) <= MAX_DEPTH:
        return False
    return _depth(data.encode() if isinstance(data, str) else data) > MAX_DEPTH


class DepthGuard:
    """``too_deep`` for a body arriving in chunks: counts the opening brackets as the chunks
    come, and scans the whole body only when that count passes ``MAX_DEPTH``."""

    __slots__ = ("_chunks", "_opens")

    def __init__(self) -> None:
        self._opens = 0
        self._chunks: list[bytes] = []

    def feed(self, chunk: bytes, last: bool) -> bool:
        """Take the next chunk of the body; True when the body (complete with ``last``)
        nests deeper than ``MAX_DEPTH``."""
        self._opens += _opens(chunk)
        if self._opens <= MAX_DEPTH:
            if not last:
                self._chunks.append(chunk)
            return False
        self._chunks.append(chunk)
        if not last:
            return False
        body = b"".join(self._chunks)
        self._chunks = []
        return _depth(body) > MAX_DEPTH
