"""The store as transactions, sessions, row streams and batches see it.

:class:`~edgestore.storage.store.Store` implements :class:`Engine`; the modules that need a
store's internals (``transaction``, ``pin``, ``streaming``, ``batch_settings``,
``read_batch``) name this protocol instead of importing ``store``, so ``store`` can import them
without an import cycle (tests/test_architecture.py).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from ..config import Settings
from .analysis import Analysis
from .connection import Conn
from .execution import Outcome
from .pool import Pool
from .results import Description, Params, Result

__all__ = ["Engine"]


class Engine(Protocol):
    """What a store offers the connections it lends out (see ``Store`` for each one)."""

    settings: Settings
    loop: asyncio.AbstractEventLoop
    pool: Pool
    inline_reads: bool
    closed: bool

    @property
    def analysis_generation(self) -> int: ...

    def check_open(self) -> None: ...

    async def analysis(self, sql: str) -> Analysis: ...

    def cached_analysis(self, sql: str) -> Analysis | None: ...

    def remember(self, analysis: Analysis, generation: int) -> None: ...

    def publish(self, outcome: Outcome) -> None: ...

    def data_version_moved(self, conn: Conn) -> None: ...

    async def execute(
        self, sql: str, params: Params = None, *, max_rows: int | None = None
    ) -> Result: ...

    async def describe(self, sql: str) -> Description: ...
