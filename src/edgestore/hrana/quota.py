"""Per-caller shares of what a caller can hold across requests: Hrana streams, readers held by
cursors and read transactions, and the writer held by a transaction.

A caller is its credentials (a digest of the bearer token or JWT) or, without any, its client
address. Without shares one caller could open every stream the server allows, or pin both
readers with two cursors for ``transaction_timeout`` while every other read waited.

* Streams beyond ``max_streams_per_caller`` are refused at once (STREAMS_EXHAUSTED).
* A transaction or cursor beyond ``max_readers_per_caller`` / ``max_writer_per_caller`` waits
  for one of the caller's own to end (at most ``pool_timeout``, then SQLITE_BUSY), instead of
  queueing for the pool in front of everyone else: a caller competes with itself first.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import time
from collections.abc import Callable
from typing import Literal

from ..config import Settings
from ..errors import PoolTimeout, ProtocolError

__all__ = ["CallerShare", "Quotas", "Role", "Slot", "caller_key", "token_digest"]

Role = Literal["reader", "writer"]

_POLL = 0.25
"""Seconds between re-checks while waiting (a transaction can also end by its time bound,
which nobody announces)."""


@functools.lru_cache(maxsize=256)
def token_digest(token: str) -> str:
    """The SHA-256 hex digest of ``token``. Remembered for the few tokens a server sees:
    every Hrana HTTP request needs it twice (baton owner, caller share)."""
    return hashlib.sha256(token.encode()).hexdigest()


def caller_key(token: str | None, address: str | None) -> str:
    """Who a caller is: its credentials when it has any, else its client address."""
    if token:
        return "token:" + token_digest(token)
    return "addr:" + (address or "unknown")


class Slot:
    """One reader or writer held by a caller; :meth:`release` gives it back (idempotent)."""

    __slots__ = ("holding", "released", "role", "share")

    def __init__(self, share: CallerShare, role: Role, holding: Callable[[], bool]) -> None:
        self.share = share
        self.role = role
        self.holding = holding
        """False once the transaction it was taken for ended by itself (time bound)."""
        self.released = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.share._release(self)


class CallerShare:
    """One caller's streams and held connections."""

    def __init__(self, quotas: Quotas, key: str) -> None:
        self.quotas = quotas
        self.key = key
        self.streams = 0
        self._slots: dict[Role, set[Slot]] = {"reader": set(), "writer": set()}
        self._changed = asyncio.Event()

    def open_stream(self) -> None:
        """Count a new stream; STREAMS_EXHAUSTED past the caller's share."""
        limit = self.quotas.max_streams
        if self.streams >= limit:
            raise ProtocolError(
                f"this caller has {self.streams} open streams, its share "
                f"(max_streams_per_caller={limit}); close some",
                code="STREAMS_EXHAUSTED",
            )
        self.streams += 1

    def close_stream(self) -> None:
        self.streams -= 1
        self.quotas._forget_if_idle(self)

    def held(self, role: Role) -> int:
        """Slots of ``role`` in use (ones whose transaction ended by itself are freed)."""
        slots = self._slots[role]
        for slot in [s for s in slots if not s.holding()]:
            slot.release()
        return len(slots)

    async def acquire(self, role: Role, holding: Callable[[], bool] = lambda: True) -> Slot:
        """A slot of ``role``, waiting for one of the caller's own at most ``pool_timeout``."""
        limit = self.quotas.limit(role)
        deadline = time.monotonic() + self.quotas.wait
        while self.held(role) >= limit:
            left = deadline - time.monotonic()
            if left <= 0:
                what = "readers" if role == "reader" else "writer transactions"
                raise PoolTimeout(
                    f"this caller already holds {limit} {what}, its share "
                    f"(max_{role}s_per_caller={limit}), and none ended within "
                    f"pool_timeout={self.quotas.wait:g}s; end a transaction or a cursor first"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, _POLL))
        slot = Slot(self, role, holding)
        self._slots[role].add(slot)
        return slot

    def _release(self, slot: Slot) -> None:
        self._slots[slot.role].discard(slot)
        self._changed.set()
        self.quotas._forget_if_idle(self)

    def idle(self) -> bool:
        return not self.streams and not self._slots["reader"] and not self._slots["writer"]


class Quotas:
    """The shares of every caller of one server."""

    def __init__(self, settings: Settings) -> None:
        self.max_streams = settings.max_streams_per_caller
        self.max_readers = settings.max_readers_per_caller
        self.max_writers = settings.max_writers_per_caller
        self.wait = settings.pool_timeout
        self._shares: dict[str, CallerShare] = {}

    def limit(self, role: Role) -> int:
        return self.max_readers if role == "reader" else self.max_writers

    def share(self, key: str) -> CallerShare:
        """The share of the caller ``key`` (made on first use, dropped when idle)."""
        share = self._shares.get(key)
        if share is None:
            share = self._shares[key] = CallerShare(self, key)
        return share

    def may_open_stream(self, key: str) -> bool:
        """Whether the caller ``key`` may open one more stream (``CallerShare.open_stream``
        would not refuse it); creates no share."""
        share = self._shares.get(key)
        return share is None or share.streams < self.max_streams

    def _forget_if_idle(self, share: CallerShare) -> None:
        if share.idle() and self._shares.get(share.key) is share:
            del self._shares[share.key]

    def __len__(self) -> int:
        return len(self._shares)
