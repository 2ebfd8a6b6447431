"""Bytes held for WebSocket connections and Hrana streams: the ``streams`` component.

The web and Hrana layers own those buffers, so they report them here; this module imports
neither. Two kinds of figures:

- *transient* bytes, added and taken back by the holder as they come and go (a request
  message waiting for its answer, a response frame waiting for the socket): two integer
  additions per message;
- *holders*: long-lived objects (a WebSocket connection, the HTTP streams reached by baton)
  asked for what they hold (stored SQL, the rows a cursor has read ahead, their own state)
  only when the memory monitor samples, so reading that costs nothing per request.

The figure is what Python holds for them; buffers inside the HTTP server itself (granian's
socket buffers) are not visible from here and stay in the ``rest`` component.
"""

from __future__ import annotations

import weakref
from typing import Protocol

__all__ = ["BufferHolder", "StreamBuffers"]


class BufferHolder(Protocol):
    def held_bytes(self) -> int:
        """Bytes this object holds now for its clients (state, stored SQL, read-ahead rows)."""
        ...


class StreamBuffers:
    """The server's count of stream and connection buffers (one per app)."""

    __slots__ = ("_holders", "transient")

    def __init__(self) -> None:
        self.transient = 0
        """Bytes of messages in flight (added and taken back by their holders)."""
        self._holders: weakref.WeakSet[BufferHolder] = weakref.WeakSet()

    def add(self, n: int) -> None:
        self.transient += n

    def sub(self, n: int) -> None:
        self.transient -= n

    def track(self, holder: BufferHolder) -> None:
        """Count ``holder`` until :meth:`untrack` (or until it is garbage)."""
        self._holders.add(holder)

    def untrack(self, holder: BufferHolder) -> None:
        self._holders.discard(holder)

    @property
    def holders(self) -> int:
        return len(self._holders)

    def total(self) -> int:
        """Bytes held now: messages in flight plus what every holder reports."""
        return max(0, self.transient) + sum(h.held_bytes() for h in list(self._holders))
