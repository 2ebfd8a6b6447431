"""The writer's FIFO queue: writes (group-committed back to back) and holds, in order.

Writes queued back to back are taken as one group (up to ``group_commit_max``; a write that
must run alone, or a hold, ends a group). A write that waited longer than ``pool_timeout``
without running fails with PoolTimeout; one timer serves the whole queue.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from ..config import Settings
from ..errors import PoolTimeout
from .execution import WriteJob

__all__ = ["HoldRequest", "WriteQueue", "WriteRequest"]


class WriteRequest:
    __slots__ = ("alone", "deadline", "future", "job")

    def __init__(self, job: WriteJob, future: asyncio.Future[WriteJob], alone: bool) -> None:
        self.job = job
        self.future = future
        self.alone = alone
        self.deadline = 0.0


class HoldRequest:
    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future
        """Resolves to the pool's ``Hold`` once the writer is this caller's."""


class WriteQueue:
    """Requests for the writer, oldest first. Used on the event loop thread only."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, settings: Settings, on_timeout: Callable[[], None]
    ) -> None:
        self.loop = loop
        self.settings = settings
        self.items: deque[WriteRequest | HoldRequest] = deque()
        self._on_timeout = on_timeout
        self._expiry_timer: asyncio.TimerHandle | None = None

    def __bool__(self) -> bool:
        return bool(self.items)

    def pending_writes(self) -> int:
        return sum(isinstance(r, WriteRequest) for r in self.items)

    def add_write(self, request: WriteRequest) -> None:
        request.deadline = self.loop.time() + self.settings.pool_timeout
        self.items.append(request)
        if self._expiry_timer is None:
            self._arm_expiry()

    def add_hold(self, request: HoldRequest) -> None:
        self.items.append(request)

    def take(self) -> HoldRequest | list[WriteRequest] | None:
        """The next work for the writer: a hold, or a group of writes; None if nothing waits."""
        queue = self.items
        while queue:
            head = queue[0]
            if isinstance(head, HoldRequest):
                queue.popleft()
                if head.future.done():  # timed out or cancelled while queued
                    continue
                return head
            if head.future.done():
                queue.popleft()
                continue
            batch: list[WriteRequest] = []
            if head.alone:
                queue.popleft()
                batch.append(head)
            else:
                limit = self.settings.group_commit_max
                while queue and len(batch) < limit:
                    item = queue[0]
                    if isinstance(item, HoldRequest) or item.alone:
                        break
                    queue.popleft()
                    if not item.future.done():
                        batch.append(item)
            if batch:
                return batch
        return None

    def stop_expiry(self) -> None:
        if self._expiry_timer is not None:
            self._expiry_timer.cancel()
            self._expiry_timer = None

    def _arm_expiry(self) -> None:
        # One timer for the whole queue (not one per request: that cost ~30% of group
        # commit throughput), set for the oldest queued write.
        for item in self.items:
            if isinstance(item, WriteRequest):
                self._expiry_timer = self.loop.call_at(item.deadline, self._expire_writes)
                return

    def _expire_writes(self) -> None:
        """Fail the queued writes that waited longer than pool_timeout (they never ran)."""
        self._expiry_timer = None
        now = self.loop.time()
        for item in [i for i in self.items if isinstance(i, WriteRequest)]:
            if item.deadline > now:
                continue
            self.items.remove(item)
            if not item.future.done():
                self._on_timeout()
                item.future.set_exception(
                    PoolTimeout(
                        "the writer did not become free within "
                        f"pool_timeout={self.settings.pool_timeout}s"
                    )
                )
        if self.items:
            self._arm_expiry()
