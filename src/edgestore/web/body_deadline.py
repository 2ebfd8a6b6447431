"""The bound on how long a request body may take to arrive (``body_read_timeout``).

One timer for every body being read rather than one per read: ``asyncio.timeout`` around
each ``receive()`` cost ~4 µs a call here (a Timeout, a TimerHandle pushed on the loop's heap
and cancelled again), ~5% of a JSON query; registering the read in a dict costs a fraction
of that. The timer ticks only while some body is being read, every ``timeout / 4`` (at most
every second), so a read is ended between ``timeout`` and ``1.25 x timeout`` after it began.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from ..errors import RequestTimeout

__all__ = ["BodyDeadlines"]

T = TypeVar("T")


class BodyDeadlines:
    """Ends the reads of one app's request bodies that outlive ``timeout`` seconds."""

    __slots__ = ("_expired", "_reads", "_tick", "_timer", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._tick = min(1.0, timeout / 4)
        self._reads: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._timer: asyncio.TimerHandle | None = None

    async def read(self, receive: Awaitable[T]) -> T:
        """Await ``receive`` (one ASGI receive) within the bound; RequestTimeout past it."""
        task = asyncio.current_task()
        if task is None:  # not in a task (never so under an ASGI server): no bound to keep
            return await receive
        loop = task.get_loop()
        self._reads[task] = loop.time() + self.timeout
        if self._timer is None:
            self._timer = loop.call_later(self._tick, self._check, loop)
        cancelling = task.cancelling()
        try:
            return await receive
        except asyncio.CancelledError:
            if task in self._expired:
                self._expired.discard(task)
                # Ours, and nobody else's meanwhile (as asyncio.timeout decides).
                if task.uncancel() <= cancelling:
                    raise RequestTimeout(
                        f"the request body did not arrive within {self.timeout:g}s"
                    ) from None
            raise
        finally:
            self._reads.pop(task, None)

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for task, deadline in list(self._reads.items()):
            if deadline <= now:
                del self._reads[task]
                self._expired.add(task)
                task.cancel()
        self._timer = loop.call_later(self._tick, self._check, loop) if self._reads else None
