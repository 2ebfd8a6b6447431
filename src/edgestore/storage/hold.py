"""A hold: one caller's exclusive use of the writer (transactions, schema apply, idle close)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from ..errors import StoreClosedError
from .connection import Conn

__all__ = ["Hold", "WriterOwner"]

T = TypeVar("T")


class WriterOwner(Protocol):
    """The side of ``pool.Pool`` a hold uses."""

    loop: asyncio.AbstractEventLoop
    writer: Conn | None
    writer_executor: ThreadPoolExecutor

    def with_writer(self, fn: Callable[[Conn], T]) -> T: ...

    def end_hold(self) -> None: ...


class Hold:
    """Exclusive use of the writer. ``run`` executes on the writer thread; ``release`` ends it."""

    def __init__(self, pool: WriterOwner) -> None:
        self._pool = pool
        self.released = False

    async def run(self, fn: Callable[[Conn], T]) -> T:
        """Run ``fn(writer)`` on the writer thread (opening the writer if needed)."""
        if self.released:
            raise StoreClosedError("the writer was released")
        pool = self._pool
        return await pool.loop.run_in_executor(pool.writer_executor, pool.with_writer, fn)

    def interrupt(self) -> None:
        """Interrupt the statement running on the writer now (if any)."""
        writer = self._pool.writer
        if writer is not None:
            writer.db.interrupt()

    def release(self) -> None:
        """Give the writer back to the queue (idempotent)."""
        if not self.released:
            self.released = True
            self._pool.end_hold()
